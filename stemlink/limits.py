"""Every bound on a request, in one place (standard library only: no numpy, no torch).

`Limits` is what an engine accepts. The engine advertises it in `capabilities`, the wire
checks every `submit` against it before any audio array is built or any job is queued
(`stemlink/bridge/protocol.py decode` -> `Submit.check_limits`), and the engine's `validate_request`
(`stemlink/engine/tasks.py`) runs the same checks again for direct callers of `run_task`. The model
families read `MAX_STEPS` for their sampler step counts. So the wire and the worker cannot
disagree: there is no second copy of any number.

An engine may lower these limits (`ServerConfig(limits=Limits(...))`); raising one above its
default makes the wire accept what `validate_request` still refuses with the default.

Errors name the field, the value, what is allowed and the limit's name:
`InvalidInput` for a value out of range, `TooLarge` (code TOO_LARGE) for a size over a limit.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from numbers import Integral
from typing import Any, Mapping

from stemlink.errors import InvalidInput, TooLarge

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
QUEUE_SIZE = 8
SAMPLE_BYTES = 4  # float32


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.6g} s"


def _int_field(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)  # numpy integers too


@dataclass(frozen=True)
class Limits:
    """What an engine accepts; advertised in `capabilities` (every field an integer)."""

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
    def from_header(cls, r: Any) -> "Limits":
        """Read from a `bridge.fields.HeaderReader`; a field an older engine does not send keeps its default."""
        return cls(**{f.name: r.int(f.name, 0, 2**63 - 1, f.default) for f in fields(cls)})

    # --- checks (`where` prefixes messages, e.g. "submit: ") -------------------------------

    def check_rate(self, rate: Any, *, field: str = "sample_rate", where: str = "") -> None:
        if not _int_field(rate) or not self.min_sample_rate <= rate <= self.max_sample_rate:
            raise InvalidInput(f"{where}{field} = {rate!r} Hz is out of range; allowed: integers {self.min_sample_rate}..{self.max_sample_rate} "
                               "(limits.min_sample_rate..max_sample_rate)", field=field)

    def check_channels(self, channels: Any, *, field: str, where: str = "", low: int = 1) -> None:
        if not _int_field(channels) or not low <= channels <= self.max_channels:
            raise InvalidInput(f"{where}{field} = {channels!r} is out of range; allowed: {low}..{self.max_channels} channels (limits.max_channels)", field=field)

    def check_frames(self, frames: Any, *, field: str, where: str = "", rate: int | None = None) -> None:
        """`min_frames <= frames <= max_frames`: below is `InvalidInput`, above is `TooLarge`."""
        if not _int_field(frames):
            raise InvalidInput(f"{where}{field} must be an integer number of frames, got {frames!r}", field=field)
        at = f" ({_duration(frames / rate)} at {rate} Hz)" if rate else ""
        if frames < self.min_frames:
            raise InvalidInput(f"{where}{field} = {frames}{at} is too short; at least {self.min_frames} frames (limits.min_frames)", field=field)
        if frames > self.max_frames:
            raise TooLarge(f"{where}{field} = {frames}{at} is too long; at most {self.max_frames} frames (limits.max_frames)", field=field)

    def check_bytes(self, nbytes: int, *, field: str, what: str, where: str = "") -> None:
        if nbytes > self.max_message_bytes:
            raise TooLarge(f"{where}{what} is {nbytes} bytes; at most {self.max_message_bytes} allowed (limits.max_message_bytes)", field=field)

    def check_generate(self, frames: Any, channels: Any, *, where: str = "", rate: int | None = None) -> None:
        """Output shape of `generate`: frames in min..max, channels 0 (stereo) or 1..max, one
        stem (frames x channels float32) within `max_message_bytes`."""
        self.check_frames(frames, field="frames", where=where, rate=rate)
        self.check_channels(channels, field="channels", where=where, low=0)
        self.check_bytes(frames * (channels or 2) * SAMPLE_BYTES, field="frames", where=where,
                         what=f"one generated stem ({frames} frames x {channels or 2} channels float32)")

    def check_candidates(self, candidates: Any, *, where: str = "") -> None:
        if not _int_field(candidates) or not 1 <= candidates <= self.max_candidates:
            raise InvalidInput(f"{where}candidates = {candidates!r} is out of range; allowed: 1..{self.max_candidates} (limits.max_candidates)", field="candidates")

    def check_params(self, params: Mapping[str, Any], *, where: str = "") -> None:
        """The bounds shared by every model family (`steps`); the family validates the rest."""
        if "steps" in params:
            steps = params["steps"]
            if not _int_field(steps) or not 1 <= steps <= self.max_steps:
                raise InvalidInput(f"{where}params.steps = {steps!r} is out of range; allowed: integers 1..{self.max_steps} (limits.max_steps)", field="params.steps")


DEFAULT_LIMITS = Limits()
