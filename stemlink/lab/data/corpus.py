"""One corpus interface over rendered and real multi-stem datasets.

    corpus = open_corpus(root, layout="auto")      # or "stemlink", "slakh", "musdb", ...
    corpus.splits() -> ["train", "valid", "test"]
    corpus.tracks("train") -> list[Track]

A `Track` maps each class of the common vocabulary (`classes.CLASSES`) to the audio files
that make it up; several files of one class (e.g. two Slakh guitar stems) are summed when
the track is loaded. Layout readers live in `layouts.py`; each returns every track of a
root with its split.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from stemlink.errors import InvalidInput

LAYOUTS = ("stemlink", "slakh", "musdb", "moisesdb", "cocochorales")


@dataclass(frozen=True)
class Track:
    """One multi-stem track.

    stems: class -> tuple of files summed to make that class (usually one file).
    meta: layout metadata; for rendered corpora the track's metadata.json (tags, tempo...).
    """

    id: str
    split: str
    stems: dict[str, tuple[Path, ...]]
    meta: dict = field(default_factory=dict, compare=False)
    mix: Path | None = None

    def tags(self, cls: str) -> list[str]:
        """Text tags of one stem (rendered metadata when present, else the class name)."""
        info = self.meta.get("stems", {}).get(cls, {})
        return list(info.get("tags") or [cls.replace("_", " ")])


class Corpus:
    """Tracks of one dataset root, grouped by split. Build with `open_corpus`."""

    def __init__(self, root: Path, layout: str, tracks: list[Track], cache_dir: Path | None = None):
        self.root = Path(root)
        self.layout = layout
        self._tracks = tracks
        self._cache_dir = Path(cache_dir) if cache_dir else None

    def splits(self) -> list[str]:
        order = {"train": 0, "valid": 1, "test": 2}
        return sorted({t.split for t in self._tracks}, key=lambda s: (order.get(s, 9), s))

    def tracks(self, split: str | None = None) -> list[Track]:
        """Tracks of one split (all tracks when split is None), in a stable order."""
        if split is None:
            return list(self._tracks)
        if split not in self.splits():
            raise InvalidInput(f"split {split!r} not in corpus {self.root} (has {', '.join(self.splits())})", field="split")
        return [t for t in self._tracks if t.split == split]

    @property
    def cache_dir(self) -> Path:
        """Where resampled arrays go: ROOT/.cache when writable, else a per-root user cache.

        Env STEMLINK_DATA_CACHE overrides (a folder per root is made inside it).
        """
        if self._cache_dir is not None:
            return self._cache_dir
        env = os.environ.get("STEMLINK_DATA_CACHE")
        tag = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        if env:
            return Path(env) / f"{self.root.name}-{tag}"
        if os.access(self.root, os.W_OK):
            return self.root / ".cache"
        return Path.home() / ".cache" / "stemlink" / f"{self.root.name}-{tag}"

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r}, layout={self.layout!r}, tracks={len(self._tracks)})"


def open_corpus(root: str | os.PathLike, layout: str = "auto", *, cache_dir: str | os.PathLike | None = None) -> Corpus:
    """Open a dataset root in one of `LAYOUTS` ("auto" detects it)."""
    from stemlink.lab.data import layouts

    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"corpus root {root} is not a folder", field="root")
    if layout == "auto":
        layout = layouts.detect(root)
    if layout not in LAYOUTS:
        raise InvalidInput(f"layout must be 'auto' or one of {', '.join(LAYOUTS)}, got {layout!r}", field="layout")
    tracks = layouts.READERS[layout](root)
    if not tracks:
        raise InvalidInput(f"no tracks found in {root} with layout {layout!r}", field="root")
    return Corpus(root, layout, tracks, Path(cache_dir) if cache_dir else None)
