"""Samplers: one shared contract (shapes, determinism, progress, cancellation) for every
sampler on a tiny network, plus the invariants of each (mixture sums, inpainting, analytic
Gaussian-prior checks) and the Karras schedule."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from stemlink.engine.sampling import karras_sigmas, sample_dirac, sample_gaussian, sample_generate, sample_inpaint
from stemlink.errors import Cancelled
from tests.engine.msdm_fixtures import DEBUG_CONFIG, GaussianDenoiser, tiny_denoiser

B, N, T = 2, 4, DEBUG_CONFIG.window


def _mix() -> torch.Tensor:
    return torch.randn(B, T, generator=torch.Generator().manual_seed(5)) * 0.3


def _known() -> torch.Tensor:
    return torch.randn(B, N, T, generator=torch.Generator().manual_seed(6)) * 0.2


SAMPLERS = {
    "generate": lambda: (sample_generate, {}),
    "generate_heun_churn": lambda: (sample_generate, {"heun": True, "s_churn": 5.0}),
    "inpaint": lambda: (sample_inpaint, {"known": _known(), "mask": [True, False, False, True], "s_churn": 2.0}),
    "dirac": lambda: (sample_dirac, {"mixture": _mix()}),
    "dirac_subset": lambda: (sample_dirac, {"mixture": _mix(), "subset": [1, 3]}),
    "dirac_sym": lambda: (sample_dirac, {"mixture": _mix(), "symmetric": True}),
    "dirac_sym_subset": lambda: (sample_dirac, {"mixture": _mix(), "subset": [0, 2, 3], "symmetric": True}),
    "gaussian": lambda: (sample_gaussian, {"mixture": _mix(), "gamma": 2.0}),
}


def _run(name: str, steps: int = 6, seed: int = 0, callback=None, denoiser=None):
    sampler, opts = SAMPLERS[name]()
    sigmas = karras_sigmas(steps, 1e-4, 1.0)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, T, generator=g) * sigmas[0]
    with torch.no_grad():
        return sampler(denoiser or tiny_denoiser(), x, sigmas, generator=g, callback=callback, **opts)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
class TestSamplerContract:
    def test_shape_and_finite(self, name):
        out = _run(name)
        assert out.shape == (B, N, T)
        assert torch.isfinite(out).all()

    def test_seeded_determinism(self, name):
        assert torch.equal(_run(name, seed=3), _run(name, seed=3))
        assert not torch.equal(_run(name, seed=3), _run(name, seed=4))

    def test_progress_counts_every_network_call(self, name):
        seen = []
        counter = GaussianDenoiser()
        _run(name, callback=lambda done, total: seen.append((done, total)), denoiser=counter)
        assert [d for d, _ in seen] == list(range(1, counter.calls + 1))
        assert all(total == counter.calls for _, total in seen)

    def test_cancel_from_callback_stops_within_one_call(self, name):
        counter = GaussianDenoiser()

        def cancel(done, total):
            if done == 3:
                raise Cancelled("stop")

        with pytest.raises(Cancelled):
            _run(name, callback=cancel, denoiser=counter)
        assert counter.calls == 3


@pytest.mark.parametrize("name", ["dirac", "dirac_sym"])
def test_dirac_separation_sums_exactly_to_mixture(name):
    out = _run(name, steps=25)
    assert torch.allclose(out.sum(dim=1), _mix(), atol=1e-5)


def test_symmetric_dirac_subset_sums_and_stays_bounded_with_few_steps():
    out = _run("dirac_sym_subset", steps=4)
    assert torch.allclose(out[:, [0, 2, 3]].sum(dim=1), _mix(), atol=1e-5)
    assert out.abs().max() < 10


def test_symmetric_dirac_is_stable_where_algorithm_3_is_not():
    # exact denoiser, 4 steps with S_churn 20: Algorithm 3 amplifies the constrained
    # stem's noise by |1 - N h| > 1 per step; the symmetric variant shrinks it
    y = torch.randn(4, 512, generator=torch.Generator().manual_seed(0)) * 0.4
    sigmas = karras_sigmas(4, 1e-4, 1.0)
    outs = {}
    for symmetric in (False, True):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(4, N, 512, generator=g) * sigmas[0]
        outs[symmetric] = sample_dirac(GaussianDenoiser(0.2), x, sigmas, mixture=y, symmetric=symmetric, generator=g, s_churn=20.0)
    assert outs[True].abs().max() < 2.0
    assert outs[False].abs().max() > 10 * outs[True].abs().max()


def test_dirac_subset_constrains_only_the_subset():
    out = _run("dirac_subset", steps=25)
    assert torch.allclose(out[:, [1, 3]].sum(dim=1), _mix(), atol=1e-5)
    assert not torch.allclose(out.sum(dim=1), _mix(), atol=1e-2)


def test_inpainting_leaves_known_stems_untouched():
    out = _run("inpaint", steps=8)
    known = _known()
    assert torch.equal(out[:, [0, 3]], known[:, [0, 3]])
    assert not torch.allclose(out[:, [1, 2]], known[:, [1, 2]])


def test_generate_matches_gaussian_prior_statistics():
    # exact denoiser of N(0, s0^2) data: the ODE sampler must return std ~ s0
    s0 = 0.2
    sigmas = karras_sigmas(40, 1e-4, 2.0)
    g = torch.Generator().manual_seed(0)
    out = sample_generate(GaussianDenoiser(s0), torch.randn(64, N, 512, generator=g) * sigmas[0], sigmas, generator=g)
    assert abs(out.std().item() - s0) < 0.02


@pytest.mark.parametrize("sampler", [sample_dirac, functools.partial(sample_dirac, symmetric=True), sample_gaussian])
def test_separation_posterior_mean_for_iid_gaussian_prior(sampler):
    # iid sources given their sum y: E[x_n | y] = y / N; the sampler must be centred there
    s0 = 0.2
    y = torch.randn(1, 256, generator=torch.Generator().manual_seed(1)) * s0 * 2
    sigmas = karras_sigmas(60, 1e-4, 1.0)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, N, 256, generator=g) * sigmas[0]
    out = sampler(GaussianDenoiser(s0), x, sigmas, mixture=y.repeat(200, 1), generator=g, s_churn=0.0, corrector_steps=0)
    mean = out.mean(dim=0)  # (N, T)
    assert torch.allclose(mean, (y / N).expand(N, -1), atol=0.05)


def test_karras_schedule_is_decreasing_and_hits_its_ends():
    s = karras_sigmas(10, 1e-4, 1.0, rho=7.0)
    assert s.shape == (11,)
    assert math.isclose(s[0].item(), 1.0, rel_tol=1e-6) and math.isclose(s[-2].item(), 1e-4, rel_tol=1e-4)
    assert s[-1].item() == 0.0 and bool((s[:-1] > s[1:]).all())
    with pytest.raises(ValueError):
        karras_sigmas(0, 1e-4, 1.0)
    with pytest.raises(ValueError):
        karras_sigmas(10, 1.0, 0.5)
