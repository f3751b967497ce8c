"""`run_task`: one task on one loaded model, at the host rate.

`TaskRequest`, `TaskResult`, the task inputs, the limits and the output-stem rule are the
contract's (`stemlink/contract.py`). This is the seam between the server (whose wire messages
carry a `TaskRequest`) and the apply layer (which runs a model's capability over a region of
any rate, length and channel count). Audio here is numpy float32, channels-first, at the host rate:

    inputs[name]: (C, N)     outputs.stems[name]: (C, N)   (same C and N as the request)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stemlink.contract import (
    DEFAULT_LIMITS,
    Limits,
    TaskRequest,
    TaskResult,
    check_conditions,
    check_model,
    check_request,
    check_task,
    output_stems,
)

CAPABILITY = {
    "separate": "Separator",
    "extract": "Separator",
    "remove": "Separator",
    "accompany": "Accompanist",
    "generate": "Generator",
    "score": "Scorer",
}


def validate_request(model: Any, request: TaskRequest, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check a request for a direct caller of `run_task`. Raises `UnknownTask` / `InvalidInput` / `TooLarge` naming the field.

    The two checks of `stemlink.contract` (the server runs them at the wire and on submit):
    `check_model` (the task is one the model serves, the stems are its stems) and
    `check_request` (inputs, sample rate, channels, frames, candidates, sampler steps, bytes
    against `limits`). Plus what only arrays can break: float32 numpy (C, N), finite samples.
    """
    check_task(request.task)
    check_model(request, model.name, model.tasks, model.stems)
    check_conditions(request, model.name, model.conditions)
    check_capability(model, request.task)
    for name, audio in request.inputs.items():
        _check_array(audio, f"inputs.{name}")
    check_request(request, [(name, *a.shape) for name, a in request.inputs.items()], limits)
    for name, audio in request.inputs.items():
        _check_finite(audio, f"inputs.{name}")


def check_capability(model: Any, task: str) -> None:
    """The loaded model implements the capability class the task runs (an export whose
    manifest names a task its family cannot run is refused here, not half-way through)."""
    from stemlink.engine.models import base
    from stemlink.errors import UnknownTask

    if not isinstance(model, getattr(base, CAPABILITY[task])):
        raise UnknownTask(
            f"model {model.name!r} ({type(model).__name__}) cannot run task {task!r}: it is not a {CAPABILITY[task]}", field="task"
        )


def _check_array(audio: Any, field_name: str) -> None:
    from stemlink.errors import InvalidInput

    if not isinstance(audio, np.ndarray):
        raise InvalidInput(f"{field_name} must be a numpy array, got {type(audio).__name__}", field=field_name)
    if audio.dtype != np.float32:
        raise InvalidInput(f"{field_name} must be float32, got {audio.dtype}", field=field_name)
    if audio.ndim != 2:
        raise InvalidInput(f"{field_name} must be a (channels, frames) array, got shape {audio.shape}", field=field_name)


def _check_finite(audio: np.ndarray, field_name: str) -> None:
    from stemlink.errors import InvalidInput

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
    candidate 0 is made (ranking needs a score model), `info["ranked"]` is False and
    `info["warnings"]` says so.
    `callback(done, total)` gets progress; raising from it cancels (the exception propagates).
    """
    validate_request(model, request)
    return execute_task(model, request, callback=callback, scorer=scorer, config=config)


def execute_task(
    model: Any,
    request: TaskRequest,
    *,
    callback: Any = None,
    scorer: Any = None,
    config: Any = None,
    no_scorer: str = "no score model was given",
) -> TaskResult:
    """`run_task` without `validate_request`, for the server: its wire (`check_request`) and
    its submit (`check_model`) already checked the request. `no_scorer`: why `scorer` is None,
    for the warning an unranked accompany carries in `info["warnings"]`."""
    import time
    from dataclasses import asdict, is_dataclass

    from stemlink.engine.apply import ApplyConfig

    check_capability(model, request.task)
    if hasattr(model, "bind"):  # a tag-conditioned family: the request's stems become the model's (GMSDI)
        model = model.bind(request.task, request.stems, request.context_stems)
    config = config or ApplyConfig()
    params = model.parse_params(request.task, request.params) if request.task != "score" else None
    started = time.perf_counter()
    result = TaskResult(
        task=request.task,
        model=model.name,
        model_version=model.spec.version,
        model_sha256=model.spec.sha256,
        stems={},
        params=asdict(params) if is_dataclass(params) and not isinstance(params, type) else dict(request.params),
        seed=request.seed,
    )
    runner = {"score": _score, "accompany": _accompany, "generate": _generate}.get(request.task, _separate)
    runner(model, request, params, callback, scorer, config, result)
    if request.task == "accompany" and request.candidates > 1 and scorer is None:
        result.info["warnings"] = [f"candidates={request.candidates} asked, but {no_scorer}: made 1 candidate, not ranked"]
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
    from stemlink.audio.files import ArraySource
    from stemlink.engine.apply import separate_stream

    mix = request.inputs["mix"]
    source = ArraySource(mix, request.sample_rate)
    blocks = separate_stream(model, source, params=params, seed=request.seed, callback=callback, config=config)
    names = list(output_stems(request.task, model.stems, request.stems))
    chosen = names if request.task == "separate" else list(dict.fromkeys(request.stems))
    index = [model.stems.index(s) for s in chosen]
    if request.task == "separate":
        pick = None if index == list(range(len(model.stems))) else (lambda block, pos: block[index])
    elif request.task == "extract":  # the stems, then residual = mix - their sum

        def pick(block, pos):
            rows = np.empty((len(names),) + block.shape[1:], dtype=np.float32)
            rows[:-1] = block[index]
            np.subtract(mix[:, pos : pos + block.shape[-1]], rows[:-1].sum(axis=0, dtype=np.float32), out=rows[-1])
            return rows
    else:  # remove: mix - the stems' sum

        def pick(block, pos):
            return (mix[:, pos : pos + block.shape[-1]] - _rows(block, index).sum(axis=0, dtype=np.float32))[None]

    channels, frames = mix.shape
    out = _fill(blocks, len(names), channels, frames, pick=pick)
    result.stems = dict(zip(names, out, strict=True))


def _accompany(model, request, params, callback, scorer, config, result) -> None:
    from stemlink.audio.files import ArraySource
    from stemlink.engine.apply import accompany_stream, score
    from stemlink.errors import InvalidInput

    context = request.inputs["context"]
    wanted = output_stems("accompany", model.stems, request.stems, request.context_stems)
    if not wanted:
        raise InvalidInput(f"nothing to accompany: context_stems {list(request.context_stems)} cover all model stems", field="stems")
    index = [model.stems.index(s) for s in wanted]
    condition = _condition(model, request, result)
    count = request.candidates if scorer is not None else 1
    source = ArraySource(context, request.sample_rate)
    best, best_score, best_audible = None, -np.inf, False
    heard: list[int] = []
    for i in range(count):
        seed = (request.seed + i) % 2**63
        sub = None if callback is None else (lambda d, t, i=i: callback(i * t + d, count * t))
        blocks = accompany_stream(
            model, source, context_stems=request.context_stems, params=params, seed=seed, callback=sub, config=config, condition=condition
        )
        out = _fill(
            blocks, len(index), context.shape[0], context.shape[1], pick=lambda block, pos: _rows(block, index)
        )  # only the wanted stems
        stems = dict(zip(wanted, out, strict=True))
        if count == 1:
            best = stems
            break
        part = out[0] if len(out) == 1 else out.sum(axis=0, dtype=np.float32)
        value, _ = score(
            scorer, source, ArraySource(part, request.sample_rate), config=config
        )  # (context, candidate), as COCOLA was trained
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


def _condition(model, request, result) -> Any:
    """The request's text prompt or style reference as the model's conditioning (`model.condition`),
    made once per request; None when there is neither."""
    reference = request.inputs.get("reference")
    if not request.text and reference is None:
        return None
    result.info["condition"] = {"text": request.text} if request.text else {"reference_seconds": reference.shape[-1] / request.sample_rate}
    return model.condition(text=request.text or None, reference=reference, sample_rate=request.sample_rate, seed=request.seed)


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
    names = list(output_stems("generate", model.stems, request.stems))
    index = [model.stems.index(s) for s in names]
    condition = _condition(model, request, result)
    blocks = generate_stream(
        model,
        request.frames,
        request.sample_rate,
        channels,
        params=params,
        seed=request.seed,
        callback=callback,
        config=config,
        condition=condition,
    )
    out = _fill(blocks, len(names), channels, request.frames, pick=lambda block, pos: _rows(block, index))  # only the wanted stems
    result.stems = dict(zip(names, out, strict=True))


def _score(model, request, params, callback, scorer, config, result) -> None:
    from stemlink.audio.files import ArraySource
    from stemlink.engine.apply import score

    a, b = (ArraySource(request.inputs[k], request.sample_rate) for k in ("a", "b"))
    value, windows = score(model, a, b, callback=callback, config=config)
    result.scores = {"score": value, "windows": windows}
