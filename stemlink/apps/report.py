"""Static HTML reports with a waveform + spectrogram figure per signal.

Used by `stemlink demo` (and anything else that wants a page a person can look at).
Figures are PNG files next to the page; the page references them by relative path, so the
report folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Figure:
    title: str
    png: str  # path relative to the report folder
    caption: str = ""


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    table: list[tuple[str, str]] = field(default_factory=list)  # (key, value) rows
    code: list[str] = field(default_factory=list)  # shell commands to reproduce


def plot_signal(audio: np.ndarray, sample_rate: int, path: Path, *, title: str = "") -> Path:
    """Waveform (top) and log-magnitude spectrogram (bottom) of the channel mean of (C, N) audio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mono = np.asarray(audio, dtype=np.float64)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    fig, (ax_wave, ax_spec) = plt.subplots(2, 1, figsize=(8, 3.6), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    t = np.arange(mono.size) / sample_rate
    ax_wave.plot(t, mono, linewidth=0.4, color="#1f4e79")
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    ax_wave.set_ylim(-max(peak, 1e-3) * 1.05, max(peak, 1e-3) * 1.05)
    ax_wave.set_ylabel("amp")
    ax_wave.set_title(title, fontsize=10)
    if mono.size >= 1024:
        ax_spec.specgram(mono, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", vmin=-120)
    ax_spec.set_ylabel("Hz")
    ax_spec.set_xlabel("seconds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_html(path: Path, title: str, sections: list[Section]) -> Path:
    """Write the report page atomically and return its path."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td{border:1px solid #ccc;padding:3px 8px}"
        "pre{background:#f4f4f4;padding:8px;overflow-x:auto}figure{margin:1em 0}"
        "figcaption{font-size:90%;color:#555}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{esc(section.text)}</p>")
        if section.table:
            parts.append("<table>" + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in section.table) + "</table>")
        for fig in section.figures:
            parts.append(
                f"<figure><img src='{esc(fig.png)}' alt='{esc(fig.title)}'>"
                f"<figcaption>{esc(fig.title)}{(' - ' + esc(fig.caption)) if fig.caption else ''}</figcaption></figure>"
            )
        if section.code:
            parts.append("<pre>" + esc("\n".join(section.code)) + "</pre>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    return path
