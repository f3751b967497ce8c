"""Learning curves: SI-SDRi of every snapshot of one or more training runs, against the CPU time
that produced it (the separator bake-off of issue 12).

    curve_records(run_dirs, windows, stems, sample_rate) -> [{"run", "core", "step", "cpu_minutes",
        "wall_minutes", "avg_sisdri", "<stem>_sisdri", ...}, ...]
    plot_curves(records, path, title)  -> a PNG, SI-SDRi vs CPU minutes, one line per run

Snapshots are `RUN/curve/step-NNNNNN.pt` (EMA weights, written by `stemlink train bandsplit`);
each is run at its own rate on the protocol windows (`protocol_windows`), the whole band.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from stemlink.lab.eval.separation import evaluate


def snapshot_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """A snapshot -> (an engine `BandSplitModel` over its eager network, the checkpoint dict)."""
    from stemlink.engine.models.bandsplit import BANDSPLIT_TASKS, BandSplitModel
    from stemlink.engine.models.base import ModelSpec
    from stemlink.lab.export.bandsplit import load_bandsplit

    net, config, state = load_bandsplit(path)
    spec = ModelSpec(
        name=Path(path).stem,
        version="0",
        family="bandsplit",
        tasks=BANDSPLIT_TASKS,
        format="torchscript",
        file="",
        sha256="",
        sample_rate=config.sample_rate,
        stems=config.stems,
        window=config.window,
        config=config.to_dict(),
    )
    return BandSplitModel(spec, net), state


def _no_progress(done: int, total: int) -> None:
    """A progress callback that reports nothing."""


def curve_records(run_dirs: Sequence[str | Path], windows: Sequence[torch.Tensor], stems: Sequence[str], sample_rate: int) -> list[dict]:
    """Score every snapshot of every run on `windows` ((S, T) at `sample_rate`)."""
    records = []
    g = torch.Generator().manual_seed(0)
    for run in run_dirs:
        for snap in sorted(Path(run, "curve").glob("step-*.pt")):
            model, state = snapshot_model(snap)
            if model.sample_rate != sample_rate or tuple(model.stems) != tuple(stems):
                raise ValueError(f"{snap}: model is {model.sample_rate} Hz {model.stems}, windows are {sample_rate} Hz {tuple(stems)}")

            def separate(mix: torch.Tensor, m: Any = model) -> torch.Tensor:
                return m.separate(mix, params=None, generator=g, callback=_no_progress)

            with torch.no_grad():
                scores = evaluate(
                    separate,
                    windows,
                    stems,
                    batch=4,
                    sample_rate=sample_rate,
                )
            records.append(
                {
                    "run": str(run),
                    "core": model.spec.config.get("core"),
                    "step": int(state["step"]),
                    "cpu_minutes": round(float(state.get("cpu_time", state["wall_time"])) / 60, 2),
                    "wall_minutes": round(float(state["wall_time"]) / 60, 2),
                    "parameters": sum(p.numel() for p in model.network.parameters()),
                    **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in scores.summary().items()},
                }
            )
    return records


def plot_curves(records: Sequence[dict], path: str | Path, title: str) -> Path:
    """SI-SDRi (average over stems) vs CPU minutes, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    runs: dict[str, list[dict]] = {}
    for r in records:
        runs.setdefault(r["run"], []).append(r)
    for run, rows in runs.items():
        rows = sorted(rows, key=lambda r: r["cpu_minutes"])
        label = f"{rows[0]['core']} ({rows[0]['parameters'] / 1e6:.2f}M)" if rows[0].get("core") else Path(run).name
        ax.plot([r["cpu_minutes"] for r in rows], [r["avg_sisdri"] for r in rows], marker="o", label=label)
    ax.set_xlabel("CPU minutes (one thread)")
    ax.set_ylabel("SI-SDRi, average of stems (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
