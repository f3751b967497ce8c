"""Error types shared by every layer. Each carries a stable wire `code`.

The bridge turns any `StemlinkError` into a typed `error` reply with this code; the CLI prints
it as one line. Raise the most specific subclass, and name the field, the value and what is
allowed in the message.
"""

from __future__ import annotations


class StemlinkError(Exception):
    """Base class for every error a user can see."""

    code = "INTERNAL"
    request_id: str = ""  # id of the bridge message that raised it; set by the protocol decoder

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(StemlinkError):
    """Bad audio or parameters: NaN/inf samples, zero-length or out-of-range region, bad value."""

    code = "INVALID_INPUT"


class ProtocolError(StemlinkError):
    """A malformed, oversized, hostile or wrong-version message."""

    code = "PROTOCOL"


class VersionMismatch(ProtocolError):
    code = "VERSION"


class TooLarge(ProtocolError):
    code = "TOO_LARGE"


class BadResult(ProtocolError):
    """An engine's result the host refuses: wrong stems, shapes, dtype, NaN/inf or provenance."""

    code = "BAD_RESULT"


class UnknownModel(StemlinkError):
    code = "UNKNOWN_MODEL"


class UnknownTask(StemlinkError):
    code = "UNKNOWN_TASK"


class ModelLoadError(StemlinkError):
    """A registered model file is missing, corrupt (sha256 mismatch) or cannot be loaded."""

    code = "MODEL_LOAD"


class Busy(StemlinkError):
    """The engine's job queue is full; retry later."""

    code = "BUSY"


class Cancelled(StemlinkError):
    code = "CANCELLED"


class EngineUnavailable(StemlinkError):
    """No engine answered (timeout, or the engine process died mid-job)."""

    code = "ENGINE_UNAVAILABLE"


class Timeout(EngineUnavailable):
    code = "TIMEOUT"


class PresetError(StemlinkError):
    code = "PRESET"


class OutputExists(StemlinkError):
    """Refusing to overwrite an existing output file."""

    code = "OUTPUT_EXISTS"


class OutputError(StemlinkError):
    """The output folder cannot take the outputs (not a folder, read-only, full) or writing failed."""

    code = "OUTPUT"


class MissingDependency(StemlinkError):
    """An optional system or Python dependency is missing; the message says how to install it."""

    code = "MISSING_DEPENDENCY"


ERRORS_BY_CODE: dict[str, type[StemlinkError]] = {
    cls.code: cls
    for cls in [
        StemlinkError,
        InvalidInput,
        ProtocolError,
        VersionMismatch,
        TooLarge,
        BadResult,
        UnknownModel,
        UnknownTask,
        ModelLoadError,
        Busy,
        Cancelled,
        EngineUnavailable,
        Timeout,
        PresetError,
        OutputExists,
        OutputError,
        MissingDependency,
    ]
}
