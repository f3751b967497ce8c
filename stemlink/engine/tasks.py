"""Task requests and results, and `run_task`: one task on one loaded model, at the host rate.

This is the seam between the server (which decodes wire messages into a `TaskRequest`) and
the apply layer (which runs a model's capability over a region of any rate, length and channel
count). Audio here is numpy float32, channels-first, at the host rate:

    inputs[name]: (C, N)     outputs.stems[name]: (C, N)   (same C and N as the request)

Inputs per task: separate / extract / remove -> "mix"; accompany -> "context";
score -> "a" and "b"; generate -> none (`frames` and `channels` give the output shape).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class TaskRequest:
    task: str
    sample_rate: int  # host rate of inputs and outputs
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    model: str | None = None  # None -> the registry's default model for the task
    params: Mapping[str, Any] = field(default_factory=dict)  # validated by the model family
    seed: int = 0
    stems: tuple[str, ...] = ()  # stems wanted (accompany/extract/remove/generate); () -> model default
    context_stems: tuple[str, ...] = ()  # accompany: which stems the context contains
    candidates: int = 1  # accompany: generate N, return the best by COCOLA score
    frames: int = 0  # generate: output length at the host rate
    channels: int = 0  # generate: output channel count


@dataclass
class TaskResult:
    task: str
    model: str
    model_version: str
    model_sha256: str
    stems: dict[str, np.ndarray]  # name -> (C, N) at the host rate
    scores: dict[str, float] = field(default_factory=dict)  # score task, accompany candidates
    params: dict[str, Any] = field(default_factory=dict)  # the parameters actually used
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # timings, window count, ...


# --- run_task: validation, then the capability through the apply layer -------------------

INPUTS = {"separate": ("mix",), "extract": ("mix",), "remove": ("mix",), "accompany": ("context",), "generate": (), "score": ("a", "b")}
CAPABILITY = {"separate": "Separator", "extract": "Separator", "remove": "Separator", "accompany": "Accompanist", "generate": "Generator", "score": "Scorer"}


def validate_request(model: Any, request: TaskRequest, limits: Any = None) -> None:
    """Check a request against a model. Raises `UnknownTask` / `InvalidInput` / `TooLarge` naming the field.

    Against the model: the task is one it serves, the stems are its stems, the inputs are the
    task's. Every numeric bound (sample rate, channels, frames, candidates, sampler steps,
    bytes) is `limits` (default `stemlink.limits.DEFAULT_LIMITS`), the same checks the wire
    runs on a `submit`. Inputs: float32 numpy (C, N), finite samples; seed in 0..2**63-1.
    """
    from stemlink.engine.models import base
    from stemlink.errors import InvalidInput, UnknownTask
    from stemlink.limits import DEFAULT_LIMITS

    limits = limits or DEFAULT_LIMITS
    if request.task not in INPUTS:
        raise UnknownTask(f"task {request.task!r} is not known; allowed: {', '.join(INPUTS)}", field="task")
    capability = getattr(base, CAPABILITY[request.task])
    if request.task not in model.tasks or not isinstance(model, capability):
        raise UnknownTask(f"model {model.name!r} does not serve task {request.task!r}; its tasks: {', '.join(model.tasks)}", field="task")
    limits.check_rate(request.sample_rate)
    if not _is_int(request.seed) or not 0 <= request.seed < 2**63:
        raise InvalidInput(f"seed must be an integer in 0..2**63-1, got {request.seed!r}", field="seed")
    limits.check_candidates(request.candidates)
    limits.check_params(request.params)
    wanted = INPUTS[request.task]
    extra = set(request.inputs) - set(wanted)
    if extra:
        raise InvalidInput(f"task {request.task!r} takes inputs {list(wanted) or 'none'}, got unexpected {sorted(extra)}", field=f"inputs.{sorted(extra)[0]}")
    for name in wanted:
        if name not in request.inputs:
            raise InvalidInput(f"task {request.task!r} needs input {name!r}", field=f"inputs.{name}")
        _check_audio(request.inputs[name], f"inputs.{name}", limits, request.sample_rate)
    limits.check_bytes(sum(a.nbytes for a in request.inputs.values()), field="inputs", what="the inputs")
    for name in (*request.stems, *request.context_stems):
        if name not in model.stems:
            raise InvalidInput(f"stem {name!r} is not one of model {model.name!r}'s stems: {', '.join(model.stems)}", field="stems")
    if request.task == "generate":
        limits.check_generate(request.frames, request.channels, rate=request.sample_rate)
    if request.candidates > 1 and request.task != "accompany":
        raise InvalidInput(f"candidates > 1 is only for accompany, not {request.task!r}", field="candidates")
    if request.task in ("extract", "remove") and not request.stems:
        raise InvalidInput(f"task {request.task!r} needs the stem name(s) in `stems`", field="stems")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_audio(audio: Any, field_name: str, limits: Any, rate: int) -> None:
    from stemlink.errors import InvalidInput

    if not isinstance(audio, np.ndarray):
        raise InvalidInput(f"{field_name} must be a numpy array, got {type(audio).__name__}", field=field_name)
    if audio.dtype != np.float32:
        raise InvalidInput(f"{field_name} must be float32, got {audio.dtype}", field=field_name)
    if audio.ndim != 2:
        raise InvalidInput(f"{field_name} must be a (channels, frames) array, got shape {audio.shape}", field=field_name)
    limits.check_channels(audio.shape[0], field=field_name)
    limits.check_frames(audio.shape[1], field=field_name, rate=rate)
    if not np.isfinite(audio).all():
        bad = int(np.size(audio) - np.count_nonzero(np.isfinite(audio)))
        raise InvalidInput(f"{field_name} has {bad} NaN/inf sample(s); audio must be finite", field=field_name)


def run_task(model: Any, request: TaskRequest, *, callback: Any = None, scorer: Any = None, config: Any = None) -> TaskResult:
    """Run one task on one loaded model, at the request's host rate. Returns a `TaskResult`.

    separate -> all model stems (or `request.stems`); extract -> the requested stems plus
    "residual" (mix minus them); remove -> "mix" without the requested stems;
    accompany -> `request.stems` (default: model stems not in `context_stems`);
    generate -> `request.stems` or all, `frames` x `channels` (0 = 2);
    score -> scores {"score": mean similarity, "windows": n}.
    accompany with `candidates=N>1` and a `scorer` (the registry's default score model):
    candidates use seeds seed, seed+1, ...; each is scored against the context and the best
    returned (audible parts before silent ones, then by score: `better_candidate`), all
    scores in `scores` ("candidate_0", ...; "best"), audible ones in `info["audible_candidates"]`. Without a scorer only
    candidate 0 is made (ranking needs a score model) and `info["ranked"]` is False.
    `callback(done, total)` gets progress; raising from it cancels (the exception propagates).
    """
    import time
    from dataclasses import asdict, is_dataclass

    from stemlink.engine.apply import ApplyConfig

    validate_request(model, request)
    config = config or ApplyConfig()
    params = model.parse_params(request.task, request.params) if request.task != "score" else None
    started = time.perf_counter()
    result = TaskResult(
        task=request.task, model=model.name, model_version=model.spec.version, model_sha256=model.spec.sha256,
        stems={}, params=asdict(params) if is_dataclass(params) else dict(request.params), seed=request.seed,
    )
    runner = {"score": _score, "accompany": _accompany, "generate": _generate}.get(request.task, _separate)
    runner(model, request, params, callback, scorer, config, result)
    result.info["seconds"] = time.perf_counter() - started
    result.info["apply"] = {"overlap": config.overlap, "batch": config.batch}
    return result


def _fill(blocks: Any, rows: int, channels: int, frames: int, pick: Any = None) -> np.ndarray:
    """Write a block stream (S, C, n) into one preallocated (rows, C, frames) float32 array.

    `pick(block, start) -> (rows, C, n)` chooses/derives the rows kept from each block (default:
    the whole block), so stems nobody asked for are never held for the whole region.
    """
    out = np.empty((rows, channels, frames), dtype=np.float32)
    pos = 0
    for block in blocks:
        n = block.shape[-1]
        out[..., pos : pos + n] = block if pick is None else pick(block, pos)
        pos += n
    assert pos == frames, (pos, frames)
    return out


def _rows(block: np.ndarray, index: list[int]) -> np.ndarray:
    """block[index] (a view when `index` is all rows in order)."""
    return block if index == list(range(block.shape[0])) else block[index]


def _separate(model, request, params, callback, scorer, config, result) -> None:
    from stemlink.engine.apply import separate_stream
    from stemlink.audio.files import ArraySource

    mix = request.inputs["mix"]
    source = ArraySource(mix, request.sample_rate)
    blocks = separate_stream(model, source, params=params, seed=request.seed, callback=callback, config=config)
    chosen = list(dict.fromkeys(request.stems or model.stems))
    index = [model.stems.index(s) for s in chosen]
    if request.task == "separate":
        names = chosen
        pick = None if index == list(range(len(model.stems))) else (lambda block, pos: block[index])
    elif request.task == "extract":  # the stems, then residual = mix - their sum
        names = [*chosen, "residual"]

        def pick(block, pos):
            rows = np.empty((len(names),) + block.shape[1:], dtype=np.float32)
            rows[:-1] = block[index]
            np.subtract(mix[:, pos : pos + block.shape[-1]], rows[:-1].sum(axis=0, dtype=np.float32), out=rows[-1])
            return rows
    else:  # remove: mix - the stems' sum
        names = ["mix"]

        def pick(block, pos):
            return (mix[:, pos : pos + block.shape[-1]] - _rows(block, index).sum(axis=0, dtype=np.float32))[None]
    out = _fill(blocks, len(names), *mix.shape, pick=pick)
    result.stems = dict(zip(names, out))


def _accompany(model, request, params, callback, scorer, config, result) -> None:
    from stemlink.engine.apply import accompany_stream, score
    from stemlink.audio.files import ArraySource
    from stemlink.errors import InvalidInput

    context = request.inputs["context"]
    wanted = request.stems or tuple(s for s in model.stems if s not in request.context_stems)
    if not wanted:
        raise InvalidInput(f"nothing to accompany: context_stems {list(request.context_stems)} cover all model stems", field="stems")
    wanted = tuple(dict.fromkeys(wanted))
    index = [model.stems.index(s) for s in wanted]
    count = request.candidates if scorer is not None else 1
    source = ArraySource(context, request.sample_rate)
    best, best_score, best_audible = None, -np.inf, False
    heard: list[int] = []
    for i in range(count):
        seed = (request.seed + i) % 2**63
        sub = None if callback is None else (lambda d, t, i=i: callback(i * t + d, count * t))
        blocks = accompany_stream(model, source, context_stems=request.context_stems, params=params, seed=seed, callback=sub, config=config)
        out = _fill(blocks, len(index), *context.shape, pick=lambda block, pos: _rows(block, index))  # only the wanted stems
        stems = dict(zip(wanted, out))
        if count == 1:
            best = stems
            break
        part = out[0] if len(out) == 1 else out.sum(axis=0, dtype=np.float32)
        value, _ = score(scorer, source, ArraySource(part, request.sample_rate), config=config)  # (context, candidate), as COCOLA was trained
        result.scores[f"candidate_{i}"] = value
        audible = is_audible(part)
        if audible:
            heard.append(i)
        if better_candidate(value, audible, best_score, best_audible):
            best, best_score, best_audible, result.info["best_candidate"] = stems, value, audible, i
    if count > 1:
        result.scores["best"] = float(best_score)
        result.info["audible_candidates"] = heard
    result.info["ranked"] = count > 1
    result.stems = best


AUDIBLE_RMS = 10 ** (-50 / 20)  # -50 dBFS: a part with a lower RMS counts as silent (also what the evals count)


def is_audible(part: np.ndarray) -> bool:
    """RMS of a (C, N) part at or above `AUDIBLE_RMS`."""
    rms = float(np.sqrt(np.mean(np.square(part, dtype=np.float64)))) if part.size else 0.0
    return rms >= AUDIBLE_RMS


def better_candidate(score: float, audible: bool, best_score: float, best_audible: bool) -> bool:
    """Ranking of accompaniment candidates: an audible part always beats a silent one (COCOLA
    rates low-level noise well above silence, so a near-silent candidate could otherwise win),
    then the higher COCOLA score."""
    return (audible, score) > (best_audible, best_score)


def _generate(model, request, params, callback, scorer, config, result) -> None:
    from stemlink.engine.apply import generate_stream

    channels = request.channels or 2
    names = list(dict.fromkeys(request.stems or model.stems))
    index = [model.stems.index(s) for s in names]
    blocks = generate_stream(model, request.frames, request.sample_rate, channels, params=params, seed=request.seed, callback=callback, config=config)
    out = _fill(blocks, len(names), channels, request.frames, pick=lambda block, pos: _rows(block, index))  # only the wanted stems
    result.stems = dict(zip(names, out))


def _score(model, request, params, callback, scorer, config, result) -> None:
    from stemlink.engine.apply import score
    from stemlink.audio.files import ArraySource

    a, b = (ArraySource(request.inputs[k], request.sample_rate) for k in ("a", "b"))
    value, windows = score(model, a, b, callback=callback, config=config)
    result.scores = {"score": value, "windows": windows}
