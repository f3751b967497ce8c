"""run_task: request validation (typed errors naming the field) and per-task outputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stemlink.contract import TaskRequest
from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.echo import EchoModel
from stemlink.engine.tasks import run_task
from stemlink.errors import InvalidInput, UnknownTask
from stemlink.lab.nn.echo import ECHO_STEMS, EchoNet


def echo(rate=16000, window=1024, tasks=("separate", "accompany", "generate", "score")) -> EchoModel:
    spec = ModelSpec(
        name="echo",
        version="1",
        family="echo",
        tasks=tasks,
        format="torchscript",
        file="echo.pt",
        sha256="ab" * 32,
        sample_rate=rate,
        stems=ECHO_STEMS,
        window=window,
    )
    return EchoModel(spec, EchoNet().eval())


class NoisyEcho(EchoModel):
    """Accompanist whose output depends on the seed, so candidates differ."""

    def accompany(self, context, *, context_stems, params, generator, callback):
        import torch

        return super().accompany(context, context_stems=context_stems, params=params, generator=generator, callback=callback) + torch.randn(
            context.shape[0], len(self.stems), context.shape[-1], generator=generator
        )


def mix(channels=2, frames=20000, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)


def sep(audio, **kw):
    return TaskRequest(task="separate", sample_rate=kw.pop("sample_rate", 44100), inputs={"mix": audio}, **kw)


@pytest.mark.parametrize(
    "bad,field",
    [
        (np.full((2, 100), np.nan, np.float32), "inputs.mix"),
        (np.array([[0.0, np.inf]], np.float32), "inputs.mix"),
        (np.zeros((2, 100), np.float64), "inputs.mix"),
        (np.zeros((2, 0), np.float32), "inputs.mix"),
        (np.zeros((100,), np.float32), "inputs.mix"),
        (np.zeros((17, 100), np.float32), "inputs.mix"),
        ([[0.0, 1.0]], "inputs.mix"),
    ],
)
def test_bad_audio_is_invalid_input_naming_field(bad, field):
    with pytest.raises(InvalidInput) as info:
        run_task(echo(), sep(bad))
    assert info.value.field == field


@pytest.mark.parametrize(
    "request_,field",
    [
        (sep(mix(), sample_rate=999), "sample_rate"),
        (sep(mix(), sample_rate=44100.0), "sample_rate"),
        (sep(mix(), seed=-1), "seed"),
        (sep(mix(), stems=("kazoo",)), "stems"),
        (TaskRequest(task="separate", sample_rate=44100, inputs={}), "inputs.mix"),
        (TaskRequest(task="separate", sample_rate=44100, inputs={"mix": mix(), "extra": mix()}), "inputs.extra"),
        (TaskRequest(task="generate", sample_rate=44100, frames=0), "frames"),
        (TaskRequest(task="generate", sample_rate=44100, frames=1000, channels=17), "channels"),
        (TaskRequest(task="accompany", sample_rate=44100, inputs={"context": mix()}, candidates=0), "candidates"),
        (sep(mix(), params={"steps": 0}), "params.steps"),
    ],
)
def test_bad_request_fields(request_, field):
    with pytest.raises(InvalidInput) as info:
        run_task(echo(), request_)
    assert info.value.field == field


def test_unknown_or_unsupported_task():
    with pytest.raises(UnknownTask, match="dance"):
        run_task(echo(), TaskRequest(task="dance", sample_rate=44100))
    with pytest.raises(UnknownTask, match="score"):
        run_task(echo(tasks=("separate",)), TaskRequest(task="score", sample_rate=44100, inputs={"a": mix(), "b": mix()}))


def test_separate_all_stems_exact_shape_and_sum():
    x = mix(6, 48000 + 7)  # 5.1
    result = run_task(echo(), sep(x, sample_rate=48000))
    assert list(result.stems) == list(ECHO_STEMS)
    assert all(s.shape == x.shape and s.dtype == np.float32 for s in result.stems.values())
    assert np.abs(sum(result.stems.values()) - x).max() < 1e-6
    assert (result.model, result.model_sha256, result.params) == ("echo", "ab" * 32, {"steps": 1, "sleep": 0.0})


def test_separate_subset_of_stems():
    result = run_task(echo(), sep(mix(), stems=("drums",)))
    assert list(result.stems) == ["drums"]


def test_input_is_not_modified():
    x = mix()
    before = x.copy()
    run_task(echo(), sep(x))
    np.testing.assert_array_equal(x, before)


def test_accompany_default_stems_are_the_missing_ones():
    req = TaskRequest(task="accompany", sample_rate=44100, inputs={"context": mix()}, context_stems=("bass", "drums"))
    result = run_task(echo(), req)
    assert sorted(result.stems) == ["guitar", "piano"]
    assert result.info["ranked"] is False
    np.testing.assert_array_equal(result.stems["piano"][0], result.stems["piano"][1])


def test_accompany_candidates_ranked_by_scorer():
    model, scorer = NoisyEcho(echo().spec, EchoNet().eval()), echo()
    req = TaskRequest(
        task="accompany",
        sample_rate=16000,
        inputs={"context": mix(2, 16000)},
        context_stems=("bass",),
        stems=("piano",),
        candidates=4,
        seed=5,
    )
    result = run_task(model, req, scorer=scorer)
    scores = [result.scores[f"candidate_{i}"] for i in range(4)]
    assert len(set(scores)) == 4 and result.scores["best"] == max(scores)
    best = result.info["best_candidate"]
    again = run_task(model, replace(req, candidates=1, seed=5 + best))
    np.testing.assert_array_equal(again.stems["piano"], result.stems["piano"])
    assert result.info["audible_candidates"] == [0, 1, 2, 3]
    # without a scorer only one candidate is made, unranked
    assert run_task(model, req).info["ranked"] is False


def test_an_audible_candidate_beats_a_silent_one_whatever_the_scores():
    from stemlink.engine.tasks import better_candidate, is_audible

    loud = np.full((2, 1000), 0.01, np.float32)  # -40 dBFS
    assert is_audible(loud) and not is_audible(loud * 0.1) and not is_audible(np.zeros((2, 0), np.float32))
    # first candidate: anything beats the initial state
    assert better_candidate(-5.0, False, -np.inf, False)
    # a silent part with a higher score does not replace an audible one, and the reverse holds
    assert not better_candidate(20.0, False, 3.0, True)
    assert better_candidate(3.0, True, 20.0, False)
    # among equals, the score decides
    assert better_candidate(4.0, True, 3.0, True) and not better_candidate(2.0, True, 3.0, True)


def test_generate_shape_and_seed():
    req = TaskRequest(task="generate", sample_rate=22050, frames=30001, channels=1, stems=("bass", "piano"), seed=3)
    a, b = run_task(echo(), req), run_task(echo(), req)
    assert list(a.stems) == ["bass", "piano"] and a.stems["bass"].shape == (1, 30001)
    np.testing.assert_array_equal(a.stems["bass"], b.stems["bass"])
    c = run_task(echo(), replace(req, seed=4))
    assert not np.array_equal(a.stems["bass"], c.stems["bass"])
    assert run_task(echo(), replace(req, channels=0)).stems["bass"].shape == (2, 30001)


def test_score_self_vs_other():
    x, y = mix(2, 32000, seed=1), mix(2, 32000, seed=2)
    y[:, :16000] *= 10  # different loudness envelope
    same = run_task(echo(), TaskRequest(task="score", sample_rate=32000, inputs={"a": x, "b": x}))
    other = run_task(echo(), TaskRequest(task="score", sample_rate=32000, inputs={"a": x, "b": y}))
    assert same.scores["score"] == pytest.approx(1.0, abs=1e-5)
    assert other.scores["score"] < same.scores["score"]
    assert same.scores["windows"] == 16
    assert same.stems == {}


@pytest.mark.parametrize("rate", [1000, 4410, 7999])
def test_host_rates_below_the_model_rate_are_resampled(rate):
    x = mix(2, rate)
    result = run_task(echo(16000), sep(x, sample_rate=rate))
    assert all(s.shape == x.shape for s in result.stems.values())
    assert np.abs(sum(result.stems.values()) - x).max() < 1e-5


@pytest.mark.parametrize(
    "request_,field",
    [
        (sep(mix(2, 1)), "inputs.mix"),
        (sep(mix(2, 63)), "inputs.mix"),
        (TaskRequest(task="score", sample_rate=44100, inputs={"a": mix(), "b": mix(2, 1)}), "inputs.b"),
        (TaskRequest(task="generate", sample_rate=44100, frames=1), "frames"),
    ],
)
def test_regions_shorter_than_the_minimum_are_refused(request_, field):
    with pytest.raises(InvalidInput, match="limits.min_frames") as info:
        run_task(echo(), request_)
    assert info.value.field == field


def test_the_minimum_region_is_processed():
    x = mix(2, 64)
    assert run_task(echo(), sep(x)).stems["bass"].shape == (2, 64)
