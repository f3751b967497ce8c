"""MSDMModel: the three tasks on a tiny network, parameter validation, candidate selection."""

from __future__ import annotations

import pytest
import torch

from stemlink.engine.models.msdm import MSDMModel, MSDMParams, parse_msdm_params
from stemlink.errors import InvalidInput
from tests.engine.msdm_fixtures import DEBUG_CONFIG, debug_spec, tiny_denoiser

T = DEBUG_CONFIG.window


def _model(defaults=None) -> MSDMModel:
    return MSDMModel(debug_spec(defaults=defaults), tiny_denoiser())


def _gen(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _noop(done, total):
    pass


@torch.no_grad()
def test_separate_returns_all_stems_summing_to_the_mix():
    model = _model()
    mix = torch.randn(2, T, generator=_gen(1)) * 0.3
    out = model.separate(mix, params=model.parse_params("separate", {"steps": 20}), generator=_gen(), callback=_noop)
    assert out.shape == (2, 4, T)
    assert torch.allclose(out.sum(dim=1), mix, atol=1e-5)


@torch.no_grad()
def test_separate_gaussian_likelihood_runs_and_approximates_the_mix():
    model = _model()
    mix = torch.randn(1, T, generator=_gen(1)) * 0.3
    out = model.separate(
        mix, params=model.parse_params("separate", {"steps": 20, "likelihood": "gaussian"}), generator=_gen(), callback=_noop
    )
    assert out.shape == (1, 4, T) and torch.isfinite(out).all()


@torch.no_grad()
def test_accompany_one_context_stem_is_inpainting_and_keeps_it_exactly():
    model = _model()
    ctx = torch.randn(2, T, generator=_gen(2)) * 0.2
    out = model.accompany(ctx, context_stems=("drums",), params={"steps": 8}, generator=_gen(), callback=_noop)
    assert out.shape == (2, 4, T)
    assert torch.equal(out[:, 1], ctx)


@torch.no_grad()
def test_accompany_submix_context_constrains_the_sum_of_its_stems():
    model = _model()
    ctx = torch.randn(1, T, generator=_gen(3)) * 0.2
    out = model.accompany(ctx, context_stems=("bass", "piano"), params={"steps": 20}, generator=_gen(), callback=_noop)
    assert torch.allclose(out[:, 0] + out[:, 3], ctx, atol=1e-5)


@torch.no_grad()
def test_generate_is_seeded():
    model = _model()
    a = model.generate(2, params={"steps": 6}, generator=_gen(7), callback=_noop)
    b = model.generate(2, params={"steps": 6}, generator=_gen(7), callback=_noop)
    assert a.shape == (2, 4, T) and torch.equal(a, b)


def test_best_of_keeps_the_candidate_with_the_loudest_generated_stems():
    model = _model()
    quiet, loud = torch.full((1, 4, 8), 0.01), torch.full((1, 4, 8), 0.5)
    loud[:, 0] = 0.0  # stem 0 is context: its level must not matter
    quiet[:, 0] = 9.0
    out = model._best_of(lambda n: torch.cat([quiet, loud]), 1, 2, free=[1, 2, 3])
    assert torch.equal(out, loud)


def test_params_defaults_come_from_the_manifest_and_errors_name_the_field():
    model = _model(defaults={"steps": 33, "s_churn": 5.0})
    p = model.parse_params("separate", {"corrector_steps": 0})
    assert (p.steps, p.s_churn, p.corrector_steps) == (33, 5.0, 0)
    assert parse_msdm_params({}) == MSDMParams()
    for bad, field in [
        ({"steps": 0}, "params.steps"),
        ({"likelihood": "laplace"}, "params.likelihood"),
        ({"bogus": 1}, "params.bogus"),
        ({"sigma_min": 2.0, "sigma_max": 1.0}, "params.sigma_min"),
        ({"heun": 1}, "params.heun"),
    ]:
        with pytest.raises(InvalidInput) as info:
            model.parse_params("separate", bad)
        assert info.value.field == field


def test_bad_inputs_are_refused_with_the_field_named():
    model = _model()
    with pytest.raises(InvalidInput) as info:
        model.separate(torch.zeros(1, T + 1), params={"steps": 2}, generator=_gen(), callback=_noop)
    assert info.value.field == "mix"
    for stems in [("violin",), ("bass", "bass"), ("bass", "drums", "guitar", "piano"), ()]:
        with pytest.raises(InvalidInput) as info:
            model.accompany(torch.zeros(1, T), context_stems=stems, params={"steps": 2}, generator=_gen(), callback=_noop)
        assert info.value.field == "context_stems"


def test_manifest_defaults_can_differ_per_task():
    model = _model(defaults={"steps": 25, "s_churn": 20.0, "accompany": {"s_churn": 0.0, "steps": 40}, "generate": {"s_churn": 0.0}})
    assert model.parse_params("separate", {}).s_churn == 20.0 and model.parse_params("separate", {}).steps == 25
    accompany = model.parse_params("accompany", {})
    assert accompany.s_churn == 0.0 and accompany.steps == 40
    assert model.parse_params("generate", {}).steps == 25
    assert model.parse_params("accompany", {"s_churn": 5.0}).s_churn == 5.0  # a request still wins
    with pytest.raises(InvalidInput, match="defaults.accompany"):
        _model(defaults={"accompany": 3}).parse_params("accompany", {})
