"""Audio and corpus builders shared by the data tests and their fixtures (a module with its own
name, so that test modules and pool workers never import some other folder's conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from stemlink.audio.files import write_flac

RATE = 8000


def tone(seconds: float, freq: float, rate: int = RATE, amp: float = 0.2, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(x, (channels, 1))


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(str(path), rate, audio.T.astype(np.float32))


def make_stemlink(root: Path, plan: dict[str, dict[str, np.ndarray]], splits: dict[str, str], rate: int = RATE) -> Path:
    """A stemlink-layout corpus: plan = {track_id: {class: (2, n) audio}}."""
    for tid, stems in plan.items():
        folder = root / tid
        folder.mkdir(parents=True)
        info = {}
        for cls, audio in stems.items():
            write_flac(folder / f"{cls}.flac", audio, rate)
            info[cls] = {"file": f"{cls}.flac", "class": cls, "tags": [cls, f"{cls} tag"]}
        meta = {"id": tid, "split": splits[tid], "stems": info, "sample_rate": rate}
        (folder / "metadata.json").write_text(json.dumps(meta))
    (root / "READY").write_text("{}\n")
    return root
