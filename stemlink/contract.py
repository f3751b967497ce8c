"""The contract shared by host, bridge and engine: tasks, requests, results, limits (standard library only).

Everything a request may be is defined here once:

- `TASKS` and `INPUTS` (which audio inputs each task takes): separate / extract / remove ->
  "mix"; accompany -> "context"; score -> "a" and "b"; generate -> none (`frames` and
  `channels` give the output shape).
- `TaskRequest` / `TaskResult`: what a client asks and what an engine answers. The wire
  messages (`stemlink/bridge/messages.py` `Submit`, `Result`) carry them as they are.
- `Limits`: every numeric bound (rates, channels, frames, inputs, bytes, candidates, steps).
  An engine advertises its `Limits` in `capabilities` and may lower them
  (`ServerConfig(limits=Limits(...))`).
- `output_stems`: which stems a task returns for a model's stems and the request's
  `stems` / `context_stems`.

Two checks use them, each once per request: `check_request` at the wire (the task is known,
its inputs are the task's, every limit; from the header alone, before any array is built) and
`check_model` against the model that will serve it (the task is one it serves, the stems are
its stems). The engine's `validate_request` (`stemlink/engine/tasks.py`) runs both for
direct callers of `run_task`.

Audio is numpy float32, channels-first, at the host rate: `inputs[name]` and `stems[name]`
are (C, N). This module imports no numpy: arrays only travel through it.

Errors name the field, the value, what is allowed and the limit's name: `InvalidInput` for
a value out of range, `TooLarge` (code TOO_LARGE) for a size over a limit, `UnknownTask`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from numbers import Integral
from typing import TYPE_CHECKING, Any

from stemlink.errors import InvalidInput, TooLarge, UnknownTask

if TYPE_CHECKING:
    import numpy as np

# --- tasks --------------------------------------------------------------------------------

TASKS = ("separate", "extract", "remove", "accompany", "generate", "score")
INPUTS: dict[str, tuple[str, ...]] = {
    "separate": ("mix",),
    "extract": ("mix",),
    "remove": ("mix",),
    "accompany": ("context",),
    "generate": (),
    "score": ("a", "b"),
}
NEEDS_STEMS = ("extract", "remove")  # tasks that need the stem name(s) in `stems`
# Inputs a task may also take: a style reference for the part (accompany, generate)
OPTIONAL_INPUTS: dict[str, tuple[str, ...]] = {"accompany": ("reference",), "generate": ("reference",)}
# What steers a model (ModelInfo.conditions): named context stems, a text prompt, a style reference,
# or "tags": its stems are a tag vocabulary, any subset of which a request may name (GMSDI)
CONDITIONS = ("context_stems", "text", "reference", "tags")
MAX_TEXT = 200  # characters in a text prompt
MIN_REFERENCE_SECONDS = 0.5
MAX_REFERENCE_SECONDS = 30.0

# --- limits -------------------------------------------------------------------------------

MIN_SAMPLE_RATE = 1000  # Hz; host rates in MIN..MAX are resampled to the model's rate
MAX_SAMPLE_RATE = 384000
MAX_CHANNELS = 16  # per input, and generate's output channels (5.1 = 6)
MIN_FRAMES = 64  # per input and for generate: shorter regions are refused (1.5 ms at 44.1 kHz)
MAX_FRAMES = 2**26  # per input, and generate's output length (~25 min at 44.1 kHz)
MAX_INPUTS = 8
MAX_MESSAGE_BYTES = 2**30  # all audio of one request; also one generated stem (frames x channels x 4)
MAX_HEADER_BYTES = 64 * 1024
MAX_CANDIDATES = 16  # accompany: candidates ranked by the score model
MAX_STEPS = 1000  # sampler steps (`params.steps`) of every model family
MAX_SEED = 2**63 - 1
QUEUE_SIZE = 8
SAMPLE_BYTES = 4  # float32


def is_int(value: Any) -> bool:
    """An integer that is not a bool (numpy integers too)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.6g} s"


@dataclass(frozen=True)
class Limits:
    """What an engine accepts; advertised in `capabilities` (every field an integer).

    Raising a field above its default makes the wire accept what `validate_request` (which
    checks the defaults for direct callers) still refuses."""

    max_frames: int = MAX_FRAMES
    max_channels: int = MAX_CHANNELS
    max_inputs: int = MAX_INPUTS
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES
    queue_size: int = QUEUE_SIZE
    min_frames: int = MIN_FRAMES
    min_sample_rate: int = MIN_SAMPLE_RATE
    max_sample_rate: int = MAX_SAMPLE_RATE
    max_candidates: int = MAX_CANDIDATES
    max_steps: int = MAX_STEPS

    def to_header(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_header(cls, r: Any) -> Limits:
        """Read from a `bridge.fields.HeaderReader`; a field an older engine does not send keeps its default."""
        return cls(**{f.name: r.int(f.name, 0, 2**63 - 1, f.default) for f in fields(cls)})

    # --- checks (`where` prefixes messages, e.g. "submit: ") -------------------------------

    def check_rate(self, rate: Any, *, field: str = "sample_rate", where: str = "") -> None:
        if not is_int(rate) or not self.min_sample_rate <= rate <= self.max_sample_rate:
            raise InvalidInput(
                f"{where}{field} = {rate!r} Hz is out of range; allowed: integers {self.min_sample_rate}..{self.max_sample_rate} "
                "(limits.min_sample_rate..max_sample_rate)",
                field=field,
            )

    def check_channels(self, channels: Any, *, field: str, where: str = "", low: int = 1) -> None:
        if not is_int(channels) or not low <= channels <= self.max_channels:
            raise InvalidInput(
                f"{where}{field} = {channels!r} is out of range; allowed: {low}..{self.max_channels} channels (limits.max_channels)",
                field=field,
            )

    def check_frames(self, frames: Any, *, field: str, where: str = "", rate: int | None = None) -> None:
        """`min_frames <= frames <= max_frames`: below is `InvalidInput`, above is `TooLarge`."""
        if not is_int(frames):
            raise InvalidInput(f"{where}{field} must be an integer number of frames, got {frames!r}", field=field)
        at = f" ({_duration(frames / rate)} at {rate} Hz)" if rate else ""
        if frames < self.min_frames:
            raise InvalidInput(
                f"{where}{field} = {frames}{at} is too short; at least {self.min_frames} frames (limits.min_frames)", field=field
            )
        if frames > self.max_frames:
            raise TooLarge(f"{where}{field} = {frames}{at} is too long; at most {self.max_frames} frames (limits.max_frames)", field=field)

    def check_bytes(self, nbytes: int, *, field: str, what: str, where: str = "") -> None:
        if nbytes > self.max_message_bytes:
            raise TooLarge(
                f"{where}{what} is {nbytes} bytes; at most {self.max_message_bytes} allowed (limits.max_message_bytes)", field=field
            )

    def check_generate(self, frames: Any, channels: Any, *, where: str = "", rate: int | None = None) -> None:
        """Output shape of `generate`: frames in min..max, channels 0 (stereo) or 1..max, one
        stem (frames x channels float32) within `max_message_bytes`."""
        self.check_frames(frames, field="frames", where=where, rate=rate)
        self.check_channels(channels, field="channels", where=where, low=0)
        self.check_bytes(
            frames * (channels or 2) * SAMPLE_BYTES,
            field="frames",
            where=where,
            what=f"one generated stem ({frames} frames x {channels or 2} channels float32)",
        )

    def check_candidates(self, candidates: Any, *, where: str = "") -> None:
        if not is_int(candidates) or not 1 <= candidates <= self.max_candidates:
            raise InvalidInput(
                f"{where}candidates = {candidates!r} is out of range; allowed: 1..{self.max_candidates} (limits.max_candidates)",
                field="candidates",
            )

    def check_params(self, params: Mapping[str, Any], *, where: str = "") -> None:
        """The bounds shared by every model family (`steps`); the family validates the rest."""
        if "steps" in params:
            steps = params["steps"]
            if not is_int(steps) or not 1 <= steps <= self.max_steps:
                raise InvalidInput(
                    f"{where}params.steps = {steps!r} is out of range; allowed: integers 1..{self.max_steps} (limits.max_steps)",
                    field="params.steps",
                )


DEFAULT_LIMITS = Limits()

# --- requests and results -----------------------------------------------------------------


@dataclass(frozen=True)
class TaskRequest:
    task: str
    sample_rate: int  # host rate of inputs and outputs
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)  # name -> (C, N) float32, names from INPUTS[task]
    model: str | None = None  # None -> the engine's default model for the task
    params: Mapping[str, Any] = field(default_factory=dict)  # validated by the model family
    seed: int = 0
    stems: tuple[str, ...] = ()  # stems wanted (accompany/extract/remove/generate); () -> model default
    context_stems: tuple[str, ...] = ()  # accompany: which stems the context contains
    candidates: int = 1  # accompany: generate N, return the best by COCOLA score
    frames: int = 0  # generate: output length at the host rate
    channels: int = 0  # generate: output channel count (0 = stereo)
    text: str = ""  # accompany/generate: a description of the wanted part ("warm electric piano, chords")


@dataclass
class TaskResult:
    task: str
    model: str = ""
    model_version: str = ""
    model_sha256: str = ""
    stems: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (C, N) at the host rate
    scores: dict[str, float] = field(default_factory=dict)  # score task, accompany candidates
    params: dict[str, Any] = field(default_factory=dict)  # the parameters actually used
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # timings, window count, warnings, ...

    @property
    def warnings(self) -> list[str]:
        """Engine warnings about this result (e.g. candidates that could not be ranked)."""
        value = self.info.get("warnings", [])
        return [str(w) for w in value] if isinstance(value, list) else [str(value)]


# --- the two checks -----------------------------------------------------------------------


def check_task(task: Any, *, where: str = "") -> None:
    """`task` is one of `TASKS`."""
    if task not in TASKS:
        raise UnknownTask(f"{where}task {task!r} is not known; allowed: {', '.join(TASKS)}", field="task")


def check_request(
    request: TaskRequest,
    shapes: Sequence[tuple[str, int, int]],
    limits: Limits = DEFAULT_LIMITS,
    *,
    where: str = "",
    names_field: str | None = None,
    frames_field: str | None = None,
) -> None:
    """Everything about a request that does not depend on the model, from its fields and the
    `shapes` (name, channels, frames) of its inputs, before any array is built.

    Field names in errors: an input's name or size is `inputs.NAME`; the wire passes
    `names_field="audio"` and `frames_field="audio[{i}]"` to name its own frames instead.
    """
    check_task(request.task, where=where)
    limits.check_rate(request.sample_rate, where=where)
    if not is_int(request.seed) or not 0 <= request.seed <= MAX_SEED:
        raise InvalidInput(f"{where}seed must be an integer in 0..2**63-1, got {request.seed!r}", field="seed")
    limits.check_candidates(request.candidates, where=where)
    if request.candidates > 1 and request.task != "accompany":
        raise InvalidInput(f"{where}candidates > 1 is only for accompany, not {request.task!r}", field="candidates")
    limits.check_params(request.params, where=where)
    wanted = INPUTS[request.task]
    optional = OPTIONAL_INPUTS.get(request.task, ())
    names = [name for name, _, _ in shapes]
    extra = [n for n in names if n not in wanted and n not in optional]
    missing = [n for n in wanted if n not in names]
    if extra or missing:
        got = f"got unexpected {sorted(extra)}" if extra else f"it needs {missing[0]!r}"
        bad = sorted(extra)[0] if extra else missing[0]
        raise InvalidInput(
            f"{where}task {request.task!r} takes audio inputs {list(wanted) or 'none'}, {got}", field=names_field or f"inputs.{bad}"
        )
    for i, (name, channels, frames) in enumerate(shapes):
        prefix = frames_field.format(i=i) if frames_field else f"inputs.{name}"
        at = f"{where}input {name!r}: " if frames_field else where
        limits.check_channels(channels, field=f"{prefix}.channels" if frames_field else prefix, where=at)
        limits.check_frames(frames, field=f"{prefix}.frames" if frames_field else prefix, where=at, rate=request.sample_rate)
    limits.check_bytes(sum(c * n * SAMPLE_BYTES for _, c, n in shapes), field=names_field or "inputs", what="the inputs", where=where)
    for name, _, frames in shapes:
        if name == "reference" and not MIN_REFERENCE_SECONDS <= frames / request.sample_rate <= MAX_REFERENCE_SECONDS:
            raise InvalidInput(
                f"{where}the reference is {frames / request.sample_rate:.2f} s; a style reference must be "
                f"{MIN_REFERENCE_SECONDS}..{MAX_REFERENCE_SECONDS:g} s",
                field=names_field or "inputs.reference",
            )
    check_text(request.text, request.task, where=where)
    if request.task == "generate":
        limits.check_generate(request.frames, request.channels, where=where, rate=request.sample_rate)
    if request.task in NEEDS_STEMS and not request.stems:
        raise InvalidInput(f"{where}task {request.task!r} needs the stem name(s) in `stems`", field="stems")


def check_text(text: Any, task: str, *, where: str = "") -> None:
    """A text prompt: a string of at most MAX_TEXT printable characters, only for accompany/generate."""
    if not isinstance(text, str):
        raise InvalidInput(f"{where}text must be a string, got {type(text).__name__}", field="text")
    if not text:
        return
    if task not in OPTIONAL_INPUTS:
        raise InvalidInput(f"{where}a text prompt is for accompany and generate, not {task!r}", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{where}text has {len(text)} characters; at most {MAX_TEXT}", field="text")
    if not text.strip() or not text.isprintable():
        raise InvalidInput(f"{where}text must be printable and not blank, got {text!r}", field="text")


def check_conditions(request: TaskRequest, name: str, conditions: Sequence[str]) -> None:
    """Text and reference go to a model that can use them (`ModelInfo.conditions`), one at a time."""
    given = [c for c, on in (("text", bool(request.text)), ("reference", "reference" in request.inputs)) if on]
    for c in given:
        if c not in conditions:
            steer = ", ".join(c for c in conditions if c != "context_stems") or "neither"
            raise InvalidInput(f"model {name!r} cannot be steered by a {c}; it takes {steer}", field=c)
    if len(given) > 1:
        raise InvalidInput("give a text prompt or a reference, not both", field="text")


def check_model(request: TaskRequest, name: str, tasks: Iterable[str], stems: Sequence[str]) -> None:
    """The request against the model that serves it (its manifest entry or the loaded model):
    the task is one it serves, every stem named is one of its stems."""
    tasks = tuple(tasks)
    if request.task not in tasks:
        raise UnknownTask(f"model {name!r} does not serve task {request.task!r}; its tasks: {', '.join(tasks)}", field="task")
    for stem in (*request.stems, *request.context_stems):
        if stem not in stems:
            raise InvalidInput(f"stem {stem!r} is not a stem of model {name!r} (its stems: {', '.join(stems)})", field="stems")


def output_stems(task: str, model_stems: Sequence[str], stems: Sequence[str] = (), context_stems: Sequence[str] = ()) -> tuple[str, ...]:
    """The stems a task returns, in order: separate / generate -> `stems` or all the model's;
    extract -> `stems` + "residual" (the mix minus them); remove -> "mix" (without `stems`);
    accompany -> `stems`, or the model's stems not in `context_stems`; score -> none.
    Each name once (the first time it is asked for)."""
    chosen = tuple(dict.fromkeys(stems))
    if task == "extract":
        return (*chosen, "residual")
    if task == "remove":
        return ("mix",)
    if task == "score":
        return ()
    if task == "accompany" and not chosen:
        return tuple(s for s in model_stems if s not in context_stems)
    return chosen or tuple(model_stems)


# --- tags (tag-conditioned models: ModelInfo.conditions has "tags", its stems are the vocabulary) ---


def normalise_tag(tag: str) -> str:
    """ "Synth Lead" / "synth-lead" -> "synth_lead"."""
    return "_".join(tag.strip().lower().replace("-", " ").split())


def resolve_tag(text: str, vocabulary: Sequence[str]) -> str:
    """Free text -> the vocabulary tag it names: "Synth Lead" -> "synth_lead", "brass section" ->
    "brass" (the one tag whose words all appear in it); none or several is an `InvalidInput`
    naming the vocabulary."""
    name = normalise_tag(text)
    known = {normalise_tag(t): t for t in vocabulary}
    if name in known:
        return known[name]
    words = set(name.split("_"))
    hits = [t for n, t in known.items() if set(n.split("_")) <= words]
    if len(hits) == 1:
        return hits[0]
    listing = ", ".join(t.replace("_", " ") for t in vocabulary)
    what = f"names several tags ({', '.join(hits)})" if hits else "names no tag"
    raise InvalidInput(f"{text!r} {what}; the vocabulary: {listing}", field="stems")
