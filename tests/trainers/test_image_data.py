"""The image loaders (docs/method.md 5.2): MNIST's IDX files (gzip or plain) and the folder of aligned
CelebA JPEGs, on small generated files in the real formats and on the real MNIST files when present
(read where they are); bad files give one clear line naming the file."""

import gzip

import numpy as np
import pytest
import torch
from image_files import MNIST_NAMES, idx_bytes, write_celeba, write_mnist

from helpers import one_line
from isosweep.trainers.data.celeba import CROP, CelebAImages, celeba_split, centre_crop_box, check_celeba, list_images
from isosweep.trainers.data.errors import DataError
from isosweep.trainers.data.mnist import load_mnist, mnist_split, parse_idx


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_the_four_idx_files(tmp_path, gz):
    root = write_mnist(tmp_path, n_train=40, n_test=12, gz=gz)
    arrays = load_mnist(str(root))
    assert arrays.train.shape == (40, 28, 28) and arrays.test.shape == (12, 28, 28)
    raw = (
        (root / "mnist" / MNIST_NAMES[0]).read_bytes()
        if not gz
        else gzip.decompress((root / "mnist" / f"{MNIST_NAMES[0]}.gz").read_bytes())
    )
    np.testing.assert_array_equal(arrays.train, np.frombuffer(raw[16:], np.uint8).reshape(40, 28, 28))
    train, held_out = mnist_split(str(root), n_train=30, n_eval=100)
    assert train.shape == (30, 784) and held_out.shape == (12, 784) and train.dtype == np.float32
    np.testing.assert_allclose(train[3], arrays.train[3].reshape(-1) / 255.0)
    assert 0.0 <= train.min() and train.max() <= 1.0


def test_idx_header_and_size_are_checked():
    good = idx_bytes(np.zeros((2, 28, 28)))
    np.testing.assert_array_equal(parse_idx(good, "f", 3), np.zeros((2, 28, 28), np.uint8))
    for raw, needle in [
        (b"PK\x03\x04", "does not start with an IDX header"),
        (good[:-5], "the header gives shape (2, 28, 28) (1568 values) but the file holds 1563"),
        (bytes([0, 0, 0x0D, 3]) + good[4:], "IDX type 0x0d with 3 dimension(s)"),
        (good, "with 1"),
        (b"\x1f\x8b" + b"junk", "broken gzip data"),
    ]:
        with pytest.raises(DataError) as exc:
            parse_idx(raw, "some/file", 1 if needle == "with 1" else 3)
        assert needle in one_line(exc) and one_line(exc).startswith("some/file: ")


def test_missing_or_inconsistent_mnist_files_name_the_file(tmp_path):
    with pytest.raises(DataError) as exc:
        load_mnist(str(tmp_path / "nowhere"))
    assert "does not exist" in one_line(exc)
    root = write_mnist(tmp_path / "a", n_train=10, n_test=5)
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as exc:
        load_mnist(str(root))
    assert "mnist/t10k-labels-idx1-ubyte(.gz): not found" in one_line(exc)
    root = write_mnist(tmp_path / "b", n_train=10, n_test=5)
    (root / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(9))))
    with pytest.raises(DataError) as exc:
        load_mnist(str(root))
    assert "train-labels-idx1-ubyte.gz: holds 9 labels for 10 images" in one_line(exc)


def test_real_mnist_is_read_in_place(shared_data):
    if not (shared_data / "mnist").is_dir():
        pytest.skip("no real MNIST files")
    arrays = load_mnist(str(shared_data))
    assert arrays.train.shape == (60_000, 28, 28) and arrays.test.shape == (10_000, 28, 28)
    assert arrays.train.max() == 255 and 0.1 < arrays.train.mean() / 255 < 0.2  # mostly black digits


def test_celeba_images_are_centre_cropped_and_resized(tmp_path):
    from PIL import Image

    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    # Red bands above and below the centred 178 x 178 square, blue inside: the crop keeps only blue.
    picture = np.zeros((218, 178, 3), np.uint8)
    picture[:, :, 2] = 255
    picture[:20, :, :] = (255, 0, 0)
    picture[198:, :, :] = (255, 0, 0)
    Image.fromarray(picture).save(folder / "000001.png")  # not a .jpg: ignored
    Image.fromarray(picture).save(folder / "000001.jpg", quality=100)
    Image.fromarray(picture).save(folder / "000002.jpg", quality=100)
    assert centre_crop_box(178, 218) == (0, 20, CROP, 198)
    images = list_images(str(tmp_path))
    assert [p.rsplit("/", 1)[-1] for p in images] == ["000001.jpg", "000002.jpg"]
    item = CelebAImages(str(tmp_path), images)[0]
    assert item.shape == (3, 64, 64) and item.dtype == torch.uint8
    # JPEG blurs the colour edges a little: the first and last rows are still blue, not red.
    assert item[2].float().mean() > 240 and item[0, [0, -1]].float().max() < 40


def test_celeba_split_holds_out_the_last_images(tmp_path):
    root = str(write_celeba(tmp_path, n=10))
    train, held_out = celeba_split(root, n_train=5, n_eval=3)
    names = [p.rsplit("/", 1)[-1] for p in (*train, *held_out)]
    assert names == [
        "000001.jpg",
        "000002.jpg",
        "000003.jpg",
        "000004.jpg",
        "000005.jpg",
        "000008.jpg",
        "000009.jpg",
        "000010.jpg",
    ]
    batch = CelebAImages(root, held_out).stack(range(3))
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == torch.float32 and 0 <= batch.min() and batch.max() <= 1
    with pytest.raises(DataError) as exc:
        celeba_split(root, n_train=5, n_eval=10)
    assert "holds 10 JPEG(s); this budget holds out 10" in one_line(exc)


def test_bad_celeba_folders_and_files_name_the_problem(tmp_path):
    with pytest.raises(DataError) as exc:
        check_celeba(str(tmp_path), 1)
    assert "celeba/img_align_celeba: not found" in one_line(exc)
    (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)
    with pytest.raises(DataError) as exc:
        check_celeba(str(tmp_path), 1)
    assert "holds no .jpg files" in one_line(exc)
    root = write_celeba(tmp_path / "small", n=3, size=(100, 120))
    with pytest.raises(DataError) as exc:
        check_celeba(str(root), 1)
    assert "000001.jpg: is 100 x 120 pixels" in one_line(exc)
    root = write_celeba(tmp_path / "broken", n=3)
    (root / "celeba" / "img_align_celeba" / "000003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as exc:
        check_celeba(str(root), 1)
    assert "000003.jpg: cannot be decoded" in one_line(exc)
    with pytest.raises(DataError) as exc:
        check_celeba(None, 1)
    assert "--data-root" in one_line(exc)
