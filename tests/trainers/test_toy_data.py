import math

import numpy as np
import pytest
from scipy import integrate

from isosweep.trainers.data.toy import SOURCE_VARIANCES, TOY_DATASETS, Source, ToyData, embedding_matrix


@pytest.mark.parametrize("shape", ["normal", "ramp", "uniform"])
@pytest.mark.parametrize("var", SOURCE_VARIANCES)
def test_source_density_integrates_to_one_with_stated_mean_and_variance(shape, var):
    src = Source(shape, var)
    pdf = lambda s: float(np.exp(src.log_pdf(np.array([s]))[0]))  # noqa: E731
    lim = 12 * math.sqrt(var)
    # Split at the support's ends so quad sees the kinks of the ramp and the uniform.
    w = math.sqrt(18 * var)
    h = math.sqrt(3 * var)
    points = sorted({-2 * w / 3, w / 3, -h, h, 0.0})
    mass = integrate.quad(pdf, -lim, lim, points=points, limit=200)[0]
    mean = integrate.quad(lambda s: s * pdf(s), -lim, lim, points=points, limit=200)[0]
    second = integrate.quad(lambda s: s * s * pdf(s), -lim, lim, points=points, limit=200)[0]
    assert mass == pytest.approx(1.0, abs=1e-6)
    assert mean == pytest.approx(0.0, abs=1e-6)
    assert second == pytest.approx(var, rel=1e-6)


@pytest.mark.parametrize("shape", ["normal", "ramp", "uniform"])
def test_samples_follow_the_density(shape):
    src = Source(shape, 2.0 / 3.0)
    s = src.sample(200_000, np.random.default_rng(1))
    assert s.var() == pytest.approx(2.0 / 3.0, rel=0.02)
    assert abs(s.mean()) < 0.01
    assert np.isfinite(src.log_pdf(s)).all(), "every sample lies inside the support"
    # Histogram against the density at bin centres.
    hist, edges = np.histogram(s, bins=40, density=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    expected = np.exp(src.log_pdf(centres))
    inner = slice(2, -2)  # the ramp's and uniform's edge bins straddle a jump
    np.testing.assert_allclose(hist[inner], expected[inner], atol=0.03)


def test_embedding_is_orthonormal_and_fixed_by_the_seed():
    v = embedding_matrix(0)
    assert v.shape == (16, 3)
    np.testing.assert_allclose(v.T @ v, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(v, embedding_matrix(0))
    assert not np.allclose(v, embedding_matrix(1))


@pytest.mark.parametrize("name", list(TOY_DATASETS))
def test_toy_data_lies_in_the_subspace_with_ratio_1_4_16(name):
    toy = ToyData(name)
    x = toy.sample(100_000, np.random.default_rng(0))
    s = x @ embedding_matrix(0)
    np.testing.assert_allclose(x, s @ embedding_matrix(0).T, atol=1e-12)
    variances = s.var(axis=0)
    np.testing.assert_allclose(variances, SOURCE_VARIANCES, rtol=0.03)
    # Total variance 7/2 makes the mean of a(x) = 2/3 + 2|x|^2/21 equal 1.
    assert (x**2).sum(axis=1).mean() == pytest.approx(3.5, rel=0.02)
    logp = toy.log_density(x[:1000])
    expected = sum(src.log_pdf(s[:1000, k]) for k, src in enumerate(toy.sources))
    np.testing.assert_allclose(logp, expected)


def test_unknown_toy_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown toy data set"):
        ToyData("circle")
