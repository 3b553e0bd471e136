"""GDN / IGDN (Balle, Laparra, Simoncelli, ICLR 2016) against the formula, and the non-negative
reparameterisation of beta and gamma."""

import torch

from isosweep.trainers.gdn import BETA_MIN, GDN, IGDN, NonNegative


def _formula(x, beta, gamma, inverse):
    # y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) at every pixel, written out channel by channel.
    out = torch.empty_like(x)
    for i in range(x.shape[1]):
        norm = beta[i] + sum(gamma[i, j] * x[:, j] ** 2 for j in range(x.shape[1]))
        out[:, i] = x[:, i] * torch.sqrt(norm) if inverse else x[:, i] / torch.sqrt(norm)
    return out


def _randomised(layer, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.beta.raw.copy_(0.5 + torch.rand(layer.beta.raw.shape, generator=gen, dtype=layer.beta.raw.dtype))
        layer.gamma.raw.copy_(torch.rand(layer.gamma.raw.shape, generator=gen, dtype=layer.gamma.raw.dtype))
    return layer


def test_gdn_and_igdn_follow_the_formula_with_a_full_gamma_matrix():
    x = torch.randn(2, 4, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for layer in (_randomised(GDN(4).double()), _randomised(IGDN(4).double())):
        beta, gamma = layer.effective()
        assert (gamma[~torch.eye(4, dtype=torch.bool)] > 0).all()  # every channel weighs every other
        torch.testing.assert_close(layer(x), _formula(x, beta, gamma, layer.inverse), rtol=1e-12, atol=1e-12)


def test_initial_parameters_are_beta_one_and_gamma_a_tenth_of_the_identity():
    beta, gamma = GDN(3).double().effective()
    torch.testing.assert_close(beta, torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-7)
    torch.testing.assert_close(gamma, 0.1 * torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-7)
    x = torch.full((1, 3, 1, 1), 2.0, dtype=torch.float64)
    # Every channel equal to 2: y = 2 / sqrt(1 + 0.1 * 4), and IGDN multiplies instead.
    torch.testing.assert_close(GDN(3).double()(x), x / 1.4**0.5)
    torch.testing.assert_close(IGDN(3).double()(x), x * 1.4**0.5)


def test_reparameterisation_keeps_beta_above_its_minimum_and_gamma_non_negative():
    layer = GDN(3)
    with torch.no_grad():
        layer.beta.raw.fill_(-5.0)
        layer.gamma.raw.fill_(-5.0)
    beta, gamma = layer.effective()
    assert beta.min() >= BETA_MIN * 0.999 and gamma.min() >= 0.0
    assert torch.isfinite(layer(torch.randn(2, 3, 4, 4))).all()


def test_the_bound_passes_gradients_that_lead_back_above_it_and_blocks_the_others():
    p = NonNegative(torch.zeros(2))
    with torch.no_grad():
        p.raw.fill_(-1.0)  # below the bound
    # A loss that wants the value larger: its gradient on raw is negative, so it passes.
    (-p().sum()).backward()
    assert (p.raw.grad < 0).all()
    p.raw.grad = None
    # A loss that wants the value smaller: the gradient would push raw further down; blocked.
    p().sum().backward()
    assert (p.raw.grad == 0).all()


def test_training_steps_keep_the_layer_valid():
    layer = GDN(4)
    opt = torch.optim.SGD(layer.parameters(), lr=10.0)
    x = torch.randn(8, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        loss = layer(x).pow(2).mean()  # pushes beta and gamma up, then large steps overshoot
        opt.zero_grad()
        loss.backward()
        opt.step()
    beta, gamma = layer.effective()
    assert beta.min() >= BETA_MIN * 0.999 and gamma.min() >= 0 and torch.isfinite(layer(x)).all()


def test_forward_mode_derivative_through_gdn_matches_a_central_difference():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1),
        _randomised(GDN(3)),
        torch.nn.Conv2d(3, 2, 3, padding=1),
        _randomised(IGDN(2), seed=1),
    ).double()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=gen)
    t = torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        _, jv = torch.func.jvp(net, (x,), (t,))
        fd = (net(x + 1e-6 * t) - net(x - 1e-6 * t)) / 2e-6
    torch.testing.assert_close(jv, fd, rtol=1e-6, atol=1e-8)
