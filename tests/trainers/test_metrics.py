import math

import pytest
import torch

from isosweep.trainers.metrics import METRICS, dconv_scale, get_metric

A = torch.tensor([[1.0, 2.0, -1.0], [0.0, 0.5, 0.5]], dtype=torch.float64)
B = torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 1.5]], dtype=torch.float64)
# Squared differences: row 0: 1 + 0 + 4 = 5; row 1: 0 + 0.25 + 1 = 1.25. |A|^2: 6 and 0.5.


def test_se_sums_over_input_dims_and_mean_divides_by_m():
    torch.testing.assert_close(get_metric("se")(A, B), torch.tensor([5.0, 1.25], dtype=torch.float64))
    torch.testing.assert_close(get_metric("se")(A, B, "mean"), torch.tensor([5 / 3, 1.25 / 3], dtype=torch.float64))


def test_dconv_and_uconv_scale_by_the_first_argument():
    a0 = 2 / 3 + 2 * 6 / 21
    a1 = 2 / 3 + 2 * 0.5 / 21
    torch.testing.assert_close(get_metric("dconv")(A, B), torch.tensor([a0 * 5, a1 * 1.25], dtype=torch.float64))
    torch.testing.assert_close(get_metric("uconv")(A, B), torch.tensor([5 / a0, 1.25 / a1], dtype=torch.float64))
    # Scale is taken at the first argument: swapping the arguments changes the value.
    assert not torch.allclose(get_metric("dconv")(A, B), get_metric("dconv")(B, A))
    torch.testing.assert_close(dconv_scale(A), torch.tensor([a0, a1], dtype=torch.float64))


def test_l2_is_the_unsquared_norm():
    torch.testing.assert_close(
        get_metric("l2")(A, B), torch.tensor([math.sqrt(5), math.sqrt(1.25)], dtype=torch.float64)
    )


def test_bce_is_a_cross_entropy_and_its_distance_a_kl_divergence():
    t = torch.tensor([[0.2, 0.9]], dtype=torch.float64)
    p = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    bce = get_metric("bce")
    expected = -(0.2 * math.log(0.5) + 0.8 * math.log(0.5) + 0.9 * math.log(0.5) + 0.1 * math.log(0.5)) / 2
    assert bce(t, p).item() == pytest.approx(expected)
    entropy = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8) + 0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / 2
    assert bce(t, t).item() == pytest.approx(entropy)
    assert bce.distance(t, t).item() == pytest.approx(0.0, abs=1e-12)
    assert bce.distance(t, p).item() == pytest.approx(expected - entropy)


def test_quadratic_metrics_are_zero_at_equal_inputs_and_registered():
    for name in ("se", "dconv", "uconv"):
        m = METRICS[name]
        assert m.quadratic
        assert torch.all(m(A, A) == 0)
    with pytest.raises(KeyError, match="unknown loss 'mse'"):
        get_metric("mse")
