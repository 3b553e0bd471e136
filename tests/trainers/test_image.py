"""The image trials (docs/method.md 5.2): the conv VAE's shapes, D' by finite differences for SSIM and
BCE against their second-order terms along J e_j, the iteration loop's exact resume and batch
order, the loader's independence of its worker count, and the traversal grid."""

import io

import numpy as np
import pytest
import torch
from image_files import write_celeba, write_mnist

from isosweep.trainers.config import TrialConfig
from isosweep.trainers.image import BatchOrder, batches, load_image_data, log_points, train_images
from isosweep.trainers.image_models import ConvGDNVAE, build_image_model
from isosweep.trainers.kinds import fusable
from isosweep.trainers.measure import dprime_fd, dprime_second_order, measure
from isosweep.trainers.metrics import get_metric
from isosweep.trainers.records import TrialStatus
from isosweep.trainers.run import run_trial
from isosweep.trainers.training import step_learning_rate
from isosweep.trainers.traversal import GAP, VALUES, traversal_png, traversal_tiles

CPU = torch.device("cpu")


def _mnist_cfg(**kw):
    fields = dict(
        study="mnist",
        budget="t",
        dataset="mnist",
        loss="bce",
        seed=0,
        latent_dim=4,
        lam=2000.0,
        hidden=(64, 64),
        activation="relu",
        iterations=10,
        n_train=64,
        n_eval=8,
        batch_size=16,
        lr_schedule="constant",
        arch="mlp_sigmoid",
    )
    return TrialConfig(**{**fields, **kw})


@pytest.mark.parametrize("latent, hidden", [(32, 1024), (256, 2048)])
def test_conv_gdn_vae_maps_64_by_64_images_to_n_dims_and_back(latent, hidden):
    model = ConvGDNVAE(latent, hidden)
    x = torch.rand(2, 3, 64, 64)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, latent)
    assert model.decode(mu).shape == (2, 3, 64, 64)
    assert model.body[-2].in_features == 1024 and model.body[-2].out_features == hidden
    assert sum(isinstance(m, torch.nn.Module) and type(m).__name__ == "GDN" for m in model.modules()) == 8


def _small_conv(latent=3):
    model = ConvGDNVAE(latent, 16).double().eval()
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu = model.encode(x)[0]
    return model, mu


def test_ssim_dprime_by_finite_differences_agrees_with_its_second_order_term():
    model, mu = _small_conv()
    ssim = get_metric("ssim")
    with torch.no_grad():
        fd = dprime_fd(model, mu, ssim, "sum", 1e-3)
    exact = dprime_second_order(model, mu, ssim, "sum").detach()
    assert (exact > 0).all()
    torch.testing.assert_close(fd, exact, rtol=1e-4, atol=0)
    # and the check can fail: a step 100 times larger is off by more than that.
    with torch.no_grad():
        coarse = dprime_fd(model, mu, ssim, "sum", 0.3)
    assert not torch.allclose(coarse, exact, rtol=1e-4, atol=0)


def test_bce_dprime_agrees_with_the_bernoulli_fisher_form():
    # tanh, not relu: a finite step must not cross a kink (docs/method.md 4).
    model = build_image_model(_mnist_cfg(activation="tanh"), 784).double().eval()
    x = torch.rand(5, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    bce = get_metric("bce")
    with torch.no_grad():
        mu = model.encode(x)[0]
        t = model.decode(mu)
        fd = dprime_fd(model, mu, bce, "sum", 1e-3)
    cols = []
    for j in range(mu.shape[1]):
        e = torch.zeros_like(mu)
        e[:, j] = 1.0
        d = torch.func.jvp(model.decode, (mu,), (e,))[1]
        cols.append((d.pow(2) / (2 * t * (1 - t))).mean(dim=1))
    fisher = torch.stack(cols, dim=1).detach()
    torch.testing.assert_close(fd, fisher, rtol=1e-4, atol=0)
    torch.testing.assert_close(dprime_second_order(model, mu, bce, "sum").detach(), fisher, rtol=1e-8, atol=0)


def test_measure_takes_image_tensors_and_skips_density_estimates():
    model, _ = _small_conv(latent=3)
    cfg = TrialConfig(
        study="celeba",
        budget="t",
        dataset="celeba",
        loss="ssim",
        seed=0,
        latent_dim=3,
        lam=1000.0,
        hidden=(16,),
        iterations=1,
        arch="conv_gdn",
    )
    x = np.random.default_rng(0).random((3, 3, 64, 64)).astype(np.float32)
    found = measure(model, cfg, x, None, get_metric("ssim"), chunk=2)
    assert sorted(d["rank"] for d in found.dims) == [1, 2, 3] and found.points == {}
    assert "corr_elbo" not in found.scalars and found.scalars["transform_loss"] > 0
    assert all(d["dprime_mean"] > 0 and np.isfinite(d["norm_mean"]) for d in found.dims)


def test_batch_order_is_a_permutation_per_epoch_and_a_pure_function_of_the_iteration():
    order = BatchOrder(n=10, batch_size=3, seed=4)
    assert order.per_epoch == 3
    epoch0 = np.concatenate([order(k) for k in range(3)])
    assert len(set(epoch0.tolist())) == 9
    later = order(7)
    fresh = BatchOrder(n=10, batch_size=3, seed=4)
    np.testing.assert_array_equal(fresh(7), later)
    np.testing.assert_array_equal(fresh(1), epoch0[3:6])
    assert not np.array_equal(BatchOrder(10, 3, seed=5)(0), order(0))


def test_learning_rate_and_log_points():
    assert step_learning_rate(_mnist_cfg(iterations=30), 29, 30) == 1e-3
    step = _mnist_cfg(iterations=30, lr_schedule="step")
    assert step_learning_rate(step, 19, 30) == 1e-3 and step_learning_rate(step, 20, 30) == pytest.approx(1e-4)
    curve, reports = log_points(1000)
    assert reports == set(range(100, 1001, 100)) and reports <= curve and len(curve) == 100


def test_resuming_from_a_checkpoint_continues_exactly(tmp_path):
    root = str(write_mnist(tmp_path))
    cfg = _mnist_cfg()
    data = load_image_data(cfg, root)
    straight = train_images(cfg, data, where=CPU)
    saved = {}

    def report(metrics, make_checkpoint):
        if metrics["iteration"] == 5:
            saved.update(make_checkpoint())

    train_images(cfg, data, report, where=CPU)
    assert saved["iteration"] == 5
    resumed = train_images(cfg, data, checkpoint=saved, where=CPU)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.curves == resumed.curves and [c["step"] for c in straight.curves] == list(range(1, 11))


def test_celeba_batches_do_not_depend_on_the_number_of_loader_workers(tmp_path, monkeypatch):
    root = str(write_celeba(tmp_path, n=12))
    cfg = TrialConfig(
        study="celeba",
        budget="t",
        dataset="celeba",
        loss="ssim",
        seed=0,
        latent_dim=2,
        lam=10.0,
        hidden=(8,),
        iterations=4,
        n_train=10,
        n_eval=2,
        batch_size=4,
        arch="conv_gdn",
    )
    data = load_image_data(cfg, root)
    assert data.n_train == 10 and data.eval.shape == (2, 3, 64, 64)
    runs = []
    for workers in ("0", "2"):
        monkeypatch.setenv("ISOSWEEP_LOADER_WORKERS", workers)
        runs.append(torch.stack(list(batches(data, BatchOrder(10, 4, 0), 1, 4, CPU))))
    assert runs[0].shape == (3, 4, 3, 64, 64) and runs[0].dtype == torch.float32
    assert torch.equal(runs[0], runs[1])
    expected = torch.stack([data.train[i] for i in BatchOrder(10, 4, 0)(2)]).float() / 255
    assert torch.equal(runs[0][1], expected)


def test_traversal_rows_follow_the_ranks_and_set_one_coordinate():
    model = build_image_model(_mnist_cfg(), 784).eval()
    x = torch.rand(1, 784, generator=torch.Generator().manual_seed(0))
    tiles = traversal_tiles(model, x, [2, 0], (1, 28, 28))
    assert tiles.shape == (2, len(VALUES), 28, 28, 1)
    with torch.no_grad():
        z = model.encode(x)[0]
        z[0, 0] = VALUES[-1]
        expected = model.decode(z).clamp(0, 1).reshape(28, 28)
    np.testing.assert_allclose(tiles[1, -1, :, :, 0], expected.numpy(), atol=1e-6)
    from PIL import Image

    picture = Image.open(io.BytesIO(traversal_png(model, x, [3, 1, 2, 0], (1, 28, 28))))
    side = 2 * 28  # MNIST's tiles are drawn at twice their size
    assert picture.size == (side + 3 * GAP + len(VALUES) * side + (len(VALUES) - 1) * GAP, 4 * side + 3 * GAP)
    grid = np.asarray(picture, dtype=np.float64) / 255
    row = 2 * (side + GAP)  # the third row of the picture is dim 2, the first row of ``tiles``
    np.testing.assert_allclose(grid[row : row + side : 2, -side::2], tiles[0, -1, :, :, 0], atol=1 / 255)


def test_an_image_trial_end_to_end_and_not_fusable(tmp_path):
    root = str(write_mnist(tmp_path))
    cfg = _mnist_cfg()
    assert not fusable([cfg, _mnist_cfg(seed=1)])
    reports = []
    result = run_trial(cfg, lambda m, make: reports.append(m), None, root)
    assert result.status == TrialStatus.OK and result.scalars["steps"] == 10 and result.scalars["n_fit"] == 64
    assert [r["iteration"] for r in reports] == [r["progress"] for r in reports] == list(range(1, 11))
    assert not any("epoch" in r for r in reports) and len(result.dims) == 4
    assert result.artifacts["traversal.png"][:8] == b"\x89PNG\r\n\x1a\n"
    diverged = run_trial(_mnist_cfg(lam=1e308), None, None, root)
    assert diverged.status == TrialStatus.DIVERGED and "iteration" in diverged.error


def test_a_smoke_trial_on_the_real_mnist_files(shared_data):
    if not (shared_data / "mnist").is_dir():
        pytest.skip("no real MNIST files")
    from isosweep.studies import STUDIES

    cfg = STUDIES["mnist"].configs("smoke")[0]
    result = run_trial(cfg, None, None, str(shared_data))
    assert result.status == TrialStatus.OK and result.scalars["n_fit"] == cfg.n_train
    assert result.scalars["n_test"] == cfg.n_eval and len(result.dims) == cfg.latent_dim


@pytest.mark.gpu
def test_on_a_gpu_training_runs_there_and_the_measurements_match_the_cpu(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from isosweep.trainers.image import device

    root = str(write_mnist(tmp_path))
    cfg = _mnist_cfg()
    data = load_image_data(cfg, root)
    assert device().type == "cuda"
    trained = train_images(cfg, data)
    assert next(trained.model.parameters()).is_cuda
    model = trained.model.cpu()
    on_cpu = measure(model, cfg, data.eval, None, get_metric("bce"), device="cpu")
    on_gpu = measure(model, cfg, data.eval, None, get_metric("bce"), device="cuda")
    for a, b in zip(on_cpu.dims, on_gpu.dims):
        assert a["rank"] == b["rank"] and a["norm_mean"] == pytest.approx(b["norm_mean"], rel=1e-6)
