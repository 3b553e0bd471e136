"""Loaders of the anomaly data sets: the real files' shapes and anomaly shares, generated files in
the same formats, and bad files rejected with one line naming the file."""

import gzip

import numpy as np
import pytest
import scipy.io
from anomaly_files import write_anomaly_files

from helpers import one_line
from isosweep.trainers.data.anomaly import (
    ANOMALY_DATASETS,
    DataError,
    check_files,
    kddcup_rev_rows,
    load_anomaly,
    minmax,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_anomaly_files(tmp_path_factory.mktemp("anomaly-data"))


@pytest.mark.slow  # reads the whole KDD Cup file
def test_real_kddcup_has_121_dims_and_20_percent_anomalies(shared_data):
    data = load_anomaly("kddcup", str(shared_data))
    assert data.x.shape == (494_021, 121)
    assert data.anomaly.sum() == 97_278 and abs(data.anomaly.mean() - 0.2) < 0.005
    assert data.anomaly_ratio == 0.2
    assert data.x.min() == 0.0 and data.x.max() == 1.0
    rev = load_anomaly("kddcup_rev", str(shared_data), seed=3)
    assert rev.x.shape == (121_597, 121)
    assert rev.anomaly.sum() == 24_319 and (~rev.anomaly).sum() == 97_278
    assert rev.x.min() == 0.0 and rev.x.max() == 1.0
    # The attack draw is seeded: the same seed gives the same rows, another seed others.
    assert np.array_equal(load_anomaly("kddcup_rev", str(shared_data), seed=3).x, rev.x)
    assert not np.array_equal(load_anomaly("kddcup_rev", str(shared_data), seed=4).x, rev.x)


@pytest.mark.parametrize("name,rows,dims,anomalies", [("thyroid", 3772, 6, 93), ("arrhythmia", 452, 274, 66)])
def test_real_odds_files(shared_data, name, rows, dims, anomalies):
    data = load_anomaly(name, str(shared_data))
    assert data.x.shape == (rows, dims) and data.anomaly.sum() == anomalies
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0
    assert data.anomaly_ratio == {"thyroid": 0.025, "arrhythmia": 0.15}[name]


def test_generated_files_load_in_the_same_formats(files, tmp_path):
    for name in ANOMALY_DATASETS:
        data = load_anomaly(name, str(files))
        assert data.x.dtype == np.float32 and data.x.min() >= 0 and data.x.max() <= 1
    kdd = load_anomaly("kddcup", str(files))
    # 34 numeric columns plus one-hot: 3 protocols, 5 services, 3 flags, land 2, logged_in 2,
    # is_host_login 1 (always 0), is_guest_login 2.
    assert kdd.x.shape == (600, 34 + 3 + 5 + 3 + 2 + 2 + 1 + 2)
    rev = load_anomaly("kddcup_rev", str(files))
    # kddcup's anomalies are the `normal.` rows, kddcup_rev's normal class.
    assert (~rev.anomaly).sum() == kdd.anomaly.sum()
    assert rev.anomaly.sum() == kdd.anomaly.sum() // 4
    # Plain (not gzipped) CSV gives the same data.
    plain = write_anomaly_files(tmp_path / "plain", gz=False)
    assert np.array_equal(load_anomaly("kddcup", str(plain)).x, kdd.x)
    # Through an fsspec URL as well.
    assert load_anomaly("thyroid", f"file://{files}").x.shape == (400, 6)


def test_minmax_maps_columns_to_unit_range_and_constants_to_zero():
    x = np.array([[1.0, 5.0, -2.0], [3.0, 5.0, 2.0], [2.0, 5.0, 0.0]])
    out = minmax(x)
    assert np.allclose(out, [[0, 0, 0], [1, 0, 1], [0.5, 0, 0.5]])


def test_kddcup_rev_rows_keep_every_normal_row_and_a_quarter_as_many_attacks():
    normal = np.array([True] * 40 + [False] * 60)
    rows = kddcup_rev_rows(normal, seed=0)
    assert normal[rows].sum() == 40 and (~normal[rows]).sum() == 10
    assert np.array_equal(rows, kddcup_rev_rows(normal, seed=0))


def test_missing_root_or_file_is_one_clear_line(tmp_path, files):
    with pytest.raises(DataError) as e:
        check_files(["thyroid"], None)
    assert "--data-root" in one_line(e)
    with pytest.raises(DataError) as e:
        check_files(["thyroid"], str(tmp_path / "nowhere"))
    assert "does not exist" in one_line(e)
    with pytest.raises(DataError) as e:
        check_files(["arrhythmia"], str(tmp_path))
    assert "arrhythmia/arrhythmia.mat: not found" in one_line(e) and ".mat" in one_line(e)
    with pytest.raises(DataError) as e:
        load_anomaly("kddcup", str(tmp_path))
    assert "kddcup99/kddcup.data_10_percent.gz: not found" in one_line(e)
    check_files(["thyroid", "kddcup", "norm"], str(files))  # toy names are not files: ignored


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"1,2,3\n4,5,6\n", "3 fields"),
        (b"0,tcp,http,SF" + b",0" * 37 + b",normal\n", "does not end in '.'"),
        (b"0,tcp,http,SF,abc" + b",0" * 36 + b",normal.\n", "not a number"),
        (b"\x1f\x8b\x08broken", "gzip"),
        (b"", "empty"),
    ],
)
def test_malformed_kdd_files_are_rejected(tmp_path, content, needle):
    (tmp_path / "kddcup99").mkdir()
    path = tmp_path / "kddcup99" / "kddcup.data_10_percent.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        check_files(["kddcup"], str(tmp_path))
        load_anomaly("kddcup", str(tmp_path))
    message = one_line(e)
    assert needle in message and str(path) in message


def test_a_malformed_row_after_the_head_is_found_when_read(tmp_path):
    (tmp_path / "kddcup99").mkdir()
    good = b"0,tcp,http,SF" + b",1" * 37 + b",normal.\n"
    bad = b"0,tcp,http,SF" + b",x" * 37 + b",smurf.\n"
    (tmp_path / "kddcup99" / "kddcup.data_10_percent.gz").write_bytes(gzip.compress(good * 10 + bad))
    with pytest.raises(DataError, match="row 11, field 5 is 'x', not a number"):
        load_anomaly("kddcup", str(tmp_path))


@pytest.mark.parametrize(
    "variables,needle",
    [
        (None, "not a readable .mat file"),
        ({"X": np.zeros((5, 2))}, "has variables X"),
        ({"X": np.zeros((5, 2)), "y": np.array([[0], [1], [2], [0], [0]])}, "other than 0 and 1"),
        ({"X": np.zeros((5, 2)), "y": np.zeros((4, 1))}, "y has shape"),
        ({"X": np.zeros((5, 2)), "y": np.zeros((5, 1))}, "single class"),
        ({"X": np.full((5, 2), np.nan), "y": np.array([[0], [1], [0], [0], [0]])}, "NaN"),
    ],
)
def test_malformed_odds_files_are_rejected(tmp_path, variables, needle):
    (tmp_path / "thyroid").mkdir()
    path = tmp_path / "thyroid" / "thyroid.mat"
    if variables is None:
        path.write_bytes(b"MATLAB? no, just text")
    else:
        scipy.io.savemat(str(path), variables)
    with pytest.raises(DataError) as e:
        check_files(["thyroid"], str(tmp_path))
    message = one_line(e)
    assert needle in message and str(path) in message
