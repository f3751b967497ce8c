"""Output files: names from a pattern, no silent clobbering, atomic writes, sidecar JSON.

Every output is first written to a hidden temporary file in the destination folder and then
moved into place in one step (`os.link` when the name must not exist yet, `os.replace` when
overwriting was asked for), so a reader never sees a half-written WAV and a failed job leaves
nothing behind. Existing outputs are never replaced silently: `OutputExists` names the file
unless `overwrite` is set, or the `number` policy picks the first free "name-2.wav", ...

`check_out_dir` runs before any audio is computed: the folder must be (or be creatable as) a
writable directory on a real filesystem with room for the expected bytes; `OutputError`
says which of these fails. A later I/O error (disk full, read-only filesystem, permission) is raised
as `OutputError` too, after every temp file of the job was removed.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from stemlink.errors import OutputError, OutputExists, PresetError

PATTERN_FIELDS = ("track", "stem", "region", "task", "model", "seed", "timeline")
ON_EXISTS = ("error", "number")
SPACE_MARGIN = 1 << 20  # bytes beyond the samples: WAV headers, sidecars, filesystem slack
VIRTUAL_FS = ("/proc", "/sys")  # kernel views: writes there are never audio files


def expected_bytes(frames: int, channels: int, stems: int) -> int:
    """Bytes the WAVs of one job need on disk (float32, the larger format) plus a margin."""
    return frames * channels * 4 * stems + SPACE_MARGIN


def check_out_dir(out_dir: Path, need: int = 0) -> Path:
    """Make sure `out_dir` is, or can be created as, a writable folder with `need` bytes free.

    Nothing is created: one probe file is written and removed in the folder, or in its nearest
    existing parent when the folder does not exist yet (it is made when the first output is
    written). Raises `OutputError` naming the folder and the reason. Returns `out_dir`.
    """
    out_dir = Path(out_dir)
    real = Path(os.path.realpath(out_dir))
    for virtual in map(Path, VIRTUAL_FS):
        if real == virtual or virtual in real.parents:
            raise OutputError(
                f"output folder {out_dir} is under {virtual}, a virtual filesystem, not a place for files: choose another --out",
                field="out",
            )
    base = next(part for part in (real, *real.parents) if part.exists() or part.is_symlink())
    if not base.is_dir():
        what = "is" if base == real else f"is inside {base}, which is"
        raise OutputError(f"output folder {out_dir} {what} not a directory ({_kind(base)}): choose another --out", field="out")
    try:
        fd, probe = tempfile.mkstemp(prefix=".stemlink-probe-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = "" if base == real else f" (cannot be created in {base})"
        raise OutputError(f"output folder {out_dir} is not writable{where}: {exc.strerror or exc}", field="out") from exc
    free = shutil.disk_usage(base).free
    if need > free:
        raise OutputError(f"not enough space in {out_dir}: the outputs need about {_mb(need)}, {_mb(free)} free", field="out")
    return out_dir


def io_error(path: Path, exc: OSError) -> OutputError:
    """One-line `OutputError` for a failed write of `path` (disk full, read-only, permission)."""
    return OutputError(f"cannot write {path}: {exc.strerror or exc}", field="out")


def _kind(path: Path) -> str:
    return "a regular file" if path.is_file() else "not a folder"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def check_pattern(pattern: str, field: str = "output") -> str:
    """Validate an output name pattern like "{track}_{stem}_{region}.wav"."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise PresetError(f"{field}: bad pattern {pattern!r}: {exc}", field=field) from exc
    unknown = [n for n in names if n not in PATTERN_FIELDS]
    if unknown:
        raise PresetError(
            f"{field}: unknown placeholder {{{unknown[0]}}} in {pattern!r}; allowed: {', '.join('{' + f + '}' for f in PATTERN_FIELDS)}",
            field=field,
        )
    if "stem" not in names:
        raise PresetError(f"{field}: pattern {pattern!r} must contain {{stem}} so stems get distinct names", field=field)
    if not pattern.lower().endswith(".wav") or "/" in pattern or "\\" in pattern:
        raise PresetError(f"{field}: pattern {pattern!r} must be a file name ending in .wav (no folders)", field=field)
    return pattern


def _safe(value: Any) -> str:
    text = str(value)
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in text).strip(".") or "x"


def plan_outputs(
    out_dir: Path,
    pattern: str,
    fields: Mapping[str, Any],
    stems: Iterable[str],
    *,
    overwrite: bool,
    on_exists: str = "error",
    taken: set[Path] | None = None,
) -> dict[str, Path]:
    """Stem -> final WAV path, checked before any work is done.

    Raises `OutputExists` for an existing WAV or sidecar unless `overwrite`, or numbers the
    name when `on_exists == "number"`. `taken` collects paths already planned by this run.
    """
    taken = set() if taken is None else taken
    plan: dict[str, Path] = {}
    for stem in stems:
        name = pattern.format(**{k: _safe(v) for k, v in {**fields, "stem": stem}.items()})
        path = out_dir / name
        if not overwrite:
            path = _free(path, on_exists, taken)
        elif path in taken:
            raise OutputExists(
                f"two outputs of this run would both be named {path}; add {{track}} / {{region}} to the output pattern", field="output"
            )
        taken.add(path)
        plan[stem] = path
    return plan


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _free(path: Path, on_exists: str, taken: set[Path]) -> Path:
    def exists(p: Path) -> bool:
        return p in taken or p.exists() or sidecar_path(p).exists()

    if not exists(path):
        return path
    if path in taken and on_exists != "number":
        raise OutputExists(
            f"two outputs of this run would both be named {path}; add {{track}} / {{region}} to the output pattern", field="output"
        )
    if on_exists != "number":
        raise OutputExists(f"output {path} already exists; pass --overwrite or choose another --out", field="output")
    for i in range(2, 10000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not exists(candidate):
            return candidate
    raise OutputExists(f"no free numbered name for {path}", field="output")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class AtomicFile:
    """`with AtomicFile(path) as fh:` write to a temp file beside `path`; committed on success.

    On an exception the temp file is removed and `path` is untouched. Use `commit=False` to
    keep the temp file and call `commit()` later (several outputs committed together). An
    `OSError` of the filesystem (creating, flushing, placing) is raised as `OutputError`.
    """

    def __init__(self, path: Path, *, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.placed_new = False  # set by commit(): `path` did not exist before
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        except OSError as exc:
            raise io_error(self.path, exc) from exc
        self.tmp = Path(tmp)
        os.chmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        self.fh = os.fdopen(fd, "w+b")

    def __enter__(self):
        return self.fh

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.finish()
            self.commit()

    def finish(self) -> None:
        """Flush and close the temp file (data on disk before the rename)."""
        if not self.fh.closed:
            try:
                self.fh.flush()
                os.fsync(self.fh.fileno())
                self.fh.close()
            except OSError as exc:
                self.abort()
                raise io_error(self.path, exc) from exc

    def commit(self) -> Path:
        self.finish()
        try:
            if self.overwrite:
                self.placed_new = not os.path.lexists(self.path)
                os.replace(self.tmp, self.path)
            else:
                try:
                    os.link(self.tmp, self.path)  # fails if the name exists: no clobbering, even racing
                except FileExistsError as exc:
                    raise OutputExists(f"output {self.path} appeared while writing; not overwritten", field="output") from exc
                self.placed_new = True
                self.tmp.unlink()
        except OSError as exc:
            self.abort()
            raise io_error(self.path, exc) from exc
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        if not self.fh.closed:
            try:
                self.fh.close()
            except OSError:
                pass  # the close of a file being discarded (e.g. ENOSPC on its last flush)
        self.tmp.unlink(missing_ok=True)


def write_json(path: Path, data: Mapping[str, Any], *, overwrite: bool) -> AtomicFile:
    """A sidecar JSON written to a temp file (call `.commit()` to place it)."""
    out = AtomicFile(path, overwrite=overwrite)
    try:
        out.fh.write(json.dumps(data, indent=2, sort_keys=True, default=str).encode("utf-8") + b"\n")
    except OSError as exc:
        out.abort()
        raise io_error(path, exc) from exc
    except BaseException:
        out.abort()
        raise
    out.finish()
    return out


def commit_all(files: Iterable[AtomicFile], cleanup: Callable[[], None] | None = None) -> list[Path]:
    """Commit prepared temp files in order; on a failure remove the rest's temp files and the
    files already placed by this call (those that did not replace an existing file)."""
    files = list(files)
    done: list[Path] = []
    try:
        for f in files:
            done.append(f.commit())
    except BaseException:
        for f in files[len(done) :]:
            f.abort()
        for f in files[: len(done)]:
            if f.placed_new:
                f.path.unlink(missing_ok=True)
        if cleanup:
            cleanup()
        raise
    return done
