"""Listening-check plot: log-mel-like spectrograms of a rendered track's mix and every stem.

`plot_track(track_dir, out_png, seconds=None)` draws one row per signal (mix first), shared
time axis, dB colour scale, with the section boundaries of the metadata as vertical lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stemlink.audio.files import read_audio


def _spectrogram(x: np.ndarray, rate: int, n_fft: int = 1024, hop: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.signal import stft

    freqs, times, z = stft(x, fs=rate, nperseg=n_fft, noverlap=n_fft - hop, boundary=None)
    return freqs, times, 20 * np.log10(np.abs(z) + 1e-7)


def plot_track(track_dir: str | Path, out_png: str | Path, seconds: float | None = None) -> Path:
    """Write a PNG with the mix and stem spectrograms of one rendered track; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    track_dir = Path(track_dir)
    meta = json.loads((track_dir / "metadata.json").read_text())
    names = ["mix"] + sorted(meta["stems"])
    files = [track_dir / meta["mix"]] + [track_dir / meta["stems"][n]["file"] for n in names[1:]]
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 1.9 * len(names)), sharex=True)
    for ax, name, path in zip(np.atleast_1d(axes), names, files, strict=False):
        audio, rate = read_audio(path)
        mono = audio.mean(axis=0)
        if seconds:
            mono = mono[: int(seconds * rate)]
        f, t, db = _spectrogram(mono, rate)
        keep = f >= 30.0
        ax.pcolormesh(t, f[keep] / 1000, db[keep], vmin=-100, vmax=-10, shading="auto", cmap="magma")
        ax.set_yscale("log")
        ax.set_ylim(0.03, rate / 2000)
        ax.set_xlim(0, len(mono) / rate)
        ax.set_ylabel("kHz (log)")
        label = name if name == "mix" else f"{name}: {meta['stems'][name]['instrument']}"
        ax.set_title(label, loc="left", fontsize=9)
        for sec in meta.get("sections", []):
            if not seconds or sec["start"] <= seconds:
                ax.axvline(sec["start"], color="cyan", lw=0.6, alpha=0.7)
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.suptitle(
        f"{meta['id']}: {meta.get('style')} {meta.get('meter')} {meta.get('tempo')} bpm, {meta.get('key')} (cyan: section starts)",
        fontsize=10,
    )
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png
