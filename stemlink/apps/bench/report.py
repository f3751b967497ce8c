"""Turn `stemlink bench` results into PNG plots and the generated `BENCHMARKS.md`.

Both read only the results dict (the content of `results.json`), so the page can be rebuilt
from a saved run: `python -m stemlink.apps.bench.report bench/results.json BENCHMARKS.md`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

MISSING = "n/a"


def _fmt(value: Any, spec: str = ".2f") -> str:
    return MISSING if value is None or (isinstance(value, float) and value != value) else format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows] + [""]


# --- plots ---------------------------------------------------------------------------------


def _figure(path: Path, draw: Any, size: tuple[float, float] = (8, 3.6)) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path.name


def _bars(ax: Any, groups: list[str], series: dict[str, list[float | None]], ylabel: str) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8)


def write_plots(results: dict[str, Any], out: Path) -> list[str]:
    """One PNG per section that has data; returns the file names (relative to `out`)."""
    names = []
    for i, entry in enumerate(results.get("separation", {}).get("sets", [])):
        systems = [x for x in entry.get("systems", []) if "per_stem" in x]
        if not systems:
            continue
        stems = list(systems[0]["per_stem"])
        series = {x["system"]: [x["per_stem"][k]["sisdri"] for k in stems] for x in systems}
        title = f"separation at {entry['sample_rate']} Hz: {entry['set']}, {entry['windows']} windows"

        def draw_separation(ax: Any, stems: list[str] = stems, series: dict = series, title: str = title) -> None:
            _bars(ax, stems, series, "SI-SDRi (dB)")
            ax.set_title(title)

        names.append(_figure(out / f"separation_{i}.png", draw_separation))
    coherence = results.get("coherence", {})
    groups, means, lows, highs = [], [], [], []
    for entry in coherence.get("cocola", []):
        for d in entry.get("scores", []):
            groups.append(f"{d['kind']}")
            means.append(d["mean"])
            lows.append(d["mean"] - d["p05"])
            highs.append(d["p95"] - d["mean"])
    for entry in coherence.get("accompaniment", []):
        for kind in ("generated", "true", "random"):
            if entry.get(kind):
                groups.append(f"accompaniment: {kind}")
                d = entry[kind]
                means.append(d["mean"])
                lows.append(d["mean"] - d["p05"])
                highs.append(d["p95"] - d["mean"])
    if groups:

        def draw(ax: Any) -> None:
            ax.barh(range(len(groups)), means, xerr=[lows, highs], color="#4a7ab5", capsize=3)
            ax.set_yticks(range(len(groups)), groups, fontsize=8)
            ax.set_xlabel("COCOLA score (mean, p05-p95)")
            ax.set_title("coherence")

        names.append(_figure(out / "coherence.png", draw, (8, 0.45 * len(groups) + 1.2)))
    runs = results.get("speed", {}).get("runs", [])
    if runs:
        labels = list(dict.fromkeys(f"{r['model']}\n{r['task']}" for r in runs))
        runtimes = list(dict.fromkeys(r["runtime"] for r in runs))
        table = {(f"{r['model']}\n{r['task']}", r["runtime"]): r["rtf"] for r in runs}
        series = {rt: [table.get((lab, rt)) for lab in labels] for rt in runtimes}

        def draw_speed(ax: Any) -> None:
            _bars(ax, labels, series, "real-time factor (lower = faster)")
            ax.axhline(1.0, color="red", linewidth=0.8, linestyle="--")
            ax.set_title(f"speed, {results['speed']['region']['seconds']:g} s stereo 44.1 kHz region")
            ax.tick_params(axis="x", labelsize=7)

        names.append(_figure(out / "speed.png", draw_speed, (max(8, len(labels) * 0.9), 3.8)))
    bridge = results.get("bridge")
    if bridge:
        transports = list(bridge["job_ms"])
        series = {
            "wire only (reflector)": [bridge["transport_ms"][t] for t in transports],
            "job (echo model)": [bridge["job_ms"][t] for t in transports],
        }

        def draw_bridge(ax: Any) -> None:
            _bars(ax, transports, series, "ms (median)")
            ax.axhline(bridge["copy_ms"]["region_and_4_stems"], color="gray", linestyle=":", label="memory copy, region + 4 stems")
            ax.axhline(bridge["direct_ms"], color="green", linestyle="--", label="run_task in process")
            ax.legend(fontsize=8)
            ax.set_title(f"bridge round trip, {bridge['region']['seconds']:g} s stereo 44.1 kHz")

        names.append(_figure(out / "bridge.png", draw_bridge))
    scale = results.get("scale")
    if scale:
        secs = [r["seconds"] for r in scale["runs"]]

        def draw_scale(ax: Any) -> None:
            ax.plot(secs, [r["wall"] for r in scale["runs"]], "o-", label="wall time (s)")
            ax.set_xscale("log"), ax.set_yscale("log")
            ax.set_xlabel("region length (s)"), ax.set_ylabel("wall time (s)")
            twin = ax.twinx()
            twin.plot(secs, [r["peak_rss_mb"] for r in scale["runs"]], "s--", color="tab:orange", label="peak RSS (MB)")
            twin.set_ylabel("peak RSS (MB)")
            twin.set_ylim(0, max(r["peak_rss_mb"] for r in scale["runs"]) * 1.3)
            ax.set_title("scale: apply layer, echo model, file to files")
            ax.legend(loc="upper left", fontsize=8), twin.legend(loc="lower right", fontsize=8)

        names.append(_figure(out / "scale.png", draw_scale))
    return names


# --- markdown ------------------------------------------------------------------------------


def markdown(results: dict[str, Any], plots_prefix: str = "bench/") -> str:
    """The BENCHMARKS.md text for one results dict."""
    m, g = results["machine"], results["git"]
    lines = [
        "# stemlink benchmarks",
        "",
        f"Generated by `{results['command']}` from `{plots_prefix}results.json` (schema {results['schema']}); do not edit by hand.",
        "",
        f"- run: {results['created']}, {'quick' if results['quick'] else 'full'} settings, "
        f"{results['timings']['total'] / 60:.1f} min (expected about {results['expected_minutes']:g} min)",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['threads']} torch threads, {m['memory_gb']} GiB; "
        f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, Python {m['python']}; load average at start "
        f"{_fmt(m['load_average'][0], '.1f')}",
        f"- code: commit {g['commit'] or 'unknown'}{' (with uncommitted changes)' if g.get('dirty') else ''}",
        f"- data: {results['data']['root']} split `{results['data']['split']}`",
        "",
    ]
    models = results.get("models", [])
    if models:
        lines += ["## Models", ""] + _table(
            ["name", "version", "family", "format", "tasks", "rate", "window", "sha256"],
            [
                [
                    x["name"],
                    x["version"],
                    x["family"],
                    x["format"],
                    ", ".join(x["tasks"]),
                    str(x["sample_rate"]),
                    str(x["window"]),
                    x["sha256"][:12],
                ]
                for x in models
            ],
        )
        cards = {x["name"]: x["card"] for x in models if x.get("card")}
        lines += [f"- `{k}`: {v}" for k, v in cards.items()] + ([""] if cards else [])
    plots = set(results.get("plots", []))
    for section, render in SECTIONS.items():
        if section in results:
            lines += render(results[section], results)
            lines += [f"![{section}]({plots_prefix}{p})" for p in sorted(plots) if p.startswith(section)] + [""]
    lines += ["## Timings (s)", ""] + _table(["section", "seconds"], [[k, _fmt(v, ".1f")] for k, v in results["timings"].items()])
    return "\n".join(lines)


def _md_separation(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    lines = [
        "## Separation (MSDM protocol, full band)",
        "",
        f"SI-SDRi in dB per stem (mean over windows with a non-silent reference; SI-SDR in parentheses), 4 s windows, "
        f"2 s hop, windows with <= 1 non-silent stem skipped, scored at {sec.get('sample_rate')} Hz on the whole band; every model "
        "runs as the engine serves it (resampled to its rate and back, windows, crossfades, stems summing to the mix).",
        "",
    ]
    for entry in sec.get("sets", []):
        if "systems" not in entry:
            lines += [f"- {entry['set']}: skipped ({entry['skipped']})", ""]
            continue
        stems = entry["stems"]
        lines += [f"**{entry['set']}**: {entry['windows']} windows from `{entry['root']}` (split `{entry['split']}`).", ""]
        rows = []
        for s in entry["systems"]:
            if "per_stem" not in s:
                rows.append([s["system"]] + ["skipped"] * len(stems) + [s.get("skipped", "")])
                continue
            rows.append(
                [s["system"]]
                + [f"{_fmt(s['per_stem'][k]['sisdri'], '+.2f')} ({_fmt(s['per_stem'][k]['sisdr'])})" for k in stems]
                + [_fmt(s["avg_sisdri"], "+.2f"), _fmt(s.get("rtf"), ".3f")]
            )
        lines += _table(["system"] + stems + ["mean SI-SDRi", "RTF"], rows)
        for s in entry["systems"]:
            p = s.get("params") or {}
            if p.get("steps"):
                lines += [
                    f"{s['system']}: {p.get('steps')} steps, S_churn {p.get('s_churn')}, {p.get('corrector_steps')} corrector steps, "
                    f"{p.get('likelihood')} likelihood.",
                    "",
                ]
    return lines


def _md_coherence(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    lines = ["## Coherence (COCOLA)", ""]
    for entry in sec.get("cocola", []):
        if "accuracy" not in entry:
            lines += [f"- {entry['model']}: skipped ({entry['skipped']})", ""]
            continue
        lines += [
            f"`{entry['model']}` on {entry['pairs']} sub-mix pairs from {entry['tracks']} tracks: "
            + ", ".join(f"accuracy {k} **{v * 100:.1f}%** (chance {100 / int(k[2:]):.1f}%)" for k, v in entry["accuracy"].items()),
            "",
        ]
        lines += _table(
            ["pair kind", "n", "mean", "std", "median", "p05", "p95"],
            [
                [
                    d["kind"],
                    str(d["count"]),
                    _fmt(d["mean"], ".3f"),
                    _fmt(d["std"], ".3f"),
                    _fmt(d["median"], ".3f"),
                    _fmt(d["p05"], ".3f"),
                    _fmt(d["p95"], ".3f"),
                ]
                for d in entry["scores"]
            ],
        )
    for entry in sec.get("accompaniment", []):
        if "parts" not in entry:
            lines += [f"- accompaniment {entry['model']}: skipped ({entry['skipped']})", ""]
            continue
        lines += [
            f"Accompaniment: `{entry['model']}` generates each non-silent stem of {entry['windows']} windows from the "
            f"sum of the others ({entry['steps']} steps, {entry['candidates']} candidate); `{entry['scorer']}` scores "
            "each part against that context. True part = upper bound, same stem from another track = lower bound.",
            "",
        ]
        lines += _table(
            ["part", "n", "mean COCOLA", "std", "p05", "p95"],
            [
                [kind, str(d["count"]), _fmt(d["mean"], ".3f"), _fmt(d["std"], ".3f"), _fmt(d["p05"], ".3f"), _fmt(d["p95"], ".3f")]
                for kind in ("generated", "true", "random")
                if (d := entry.get(kind))
            ],
        )
        lines += [
            f"Non-silent generated parts (RMS above -50 dBFS where the true part is): "
            f"**{_fmt(entry['generated_nonsilent'] * 100 if entry['generated_nonsilent'] is not None else None, '.0f')}%** "
            f"of {entry['parts']}.",
            "",
        ]
    return lines


def _md_speed(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    r = sec["region"]
    lines = [
        "## Speed",
        "",
        f"Real-time factor (processing seconds / audio seconds; < 1 is faster than real time) of `run_task` (apply layer: "
        f"resampling, stereo, overlap-add) on a {r['seconds']:g} s {r['channels']}-channel {r['sample_rate']} Hz region, "
        f"{sec['threads']} threads, after a 1 s warm-up. onnxruntime and torch (TorchScript) run the exports the engine "
        "serves; torch eager (when `--eager MODEL=CHECKPOINT` is given) runs the training network.",
        "",
    ]
    runtimes = list(dict.fromkeys(x["runtime"] for x in sec["runs"]))
    keys = list(dict.fromkeys((x["model"], x["task"], x["steps"]) for x in sec["runs"]))
    table = {(x["model"], x["task"], x["runtime"]): x["rtf"] for x in sec["runs"]}
    lines += _table(
        ["model", "task", "sampler steps"] + [f"RTF {rt}" for rt in runtimes],
        [[m, t, str(s) if s is not None else "-"] + [_fmt(table.get((m, t, rt)), ".3f") for rt in runtimes] for m, t, s in keys],
    )
    eager = [x for x in sec["runs"] if "max_abs_diff_vs_export" in x]
    if eager:
        lines += [
            "Torch eager runs the training checkpoint's network ("
            + ", ".join(f"`{k}`: {v}" for k, v in results.get("eager_checkpoints", {}).items())
            + "); same request and seed as the export, "
            "max |eager - export| on the warm-up output: "
            + ", ".join(f"{x['model']} {x['task']} {x['max_abs_diff_vs_export']:.2g}" for x in eager)
            + ".",
            "",
        ]
    return lines


def _md_bridge(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    r = sec["region"]
    lines = [
        "## Bridge round trip",
        "",
        f"{r['seconds']:g} s {r['channels']}-channel {r['sample_rate']} Hz float32 region ({r['bytes'] / 1e6:.2f} MB), "
        f"median of {sec['n']}. Memory copy of the region: {_fmt(sec['copy_ms']['region'], '.3f')} ms, of region + 4 stems: "
        f"{_fmt(sec['copy_ms']['region_and_4_stems'], '.3f')} ms; `run_task` in process (echo model, no bridge): "
        f"{_fmt(sec['direct_ms'])} ms.",
        "",
    ]
    lines += _table(
        ["transport", "wire only (ms)", "job (ms)", "job - in-process (ms)"],
        [[t, _fmt(sec["transport_ms"].get(t)), _fmt(sec["job_ms"][t]), _fmt(sec["overhead_ms"][t])] for t in sec["job_ms"]]
        + (
            [
                [
                    "process (embedded child engine, ipc)",
                    MISSING,
                    _fmt(sec["child_process"]["job_ms"]),
                    _fmt(sec["child_process"]["overhead_ms"]),
                ]
            ]
            if sec.get("child_process")
            else []
        ),
    )
    lines += [
        "Wire only: a model-free engine answers 4 views of the input (the bridge's own cost). Job: a real engine with "
        "the echo model. Under a busy machine the job - in-process difference is noisy (it can be negative).",
        "",
    ]
    return lines


def _md_scale(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    lines = [
        "## Scale",
        "",
        "Apply layer, echo debug model (cheap settings: the model costs nothing, so this measures the engine's own "
        "chunking, resampling and I/O), stereo 44.1 kHz float WAV in, 4 stem WAVs out; each length in a fresh process.",
        "",
    ]
    lines += _table(
        ["region", "wall (s)", "ms per audio second", "peak RSS (MB)", "apply peak delta (MB)"],
        [
            [
                f"{r['seconds']:g} s",
                _fmt(r["wall"]),
                _fmt(r["wall_per_audio_second"] * 1000),
                _fmt(r["peak_rss_mb"], ".0f"),
                _fmt(r["apply_peak_delta_mb"], ".0f"),
            ]
            for r in sec["runs"]
        ],
    )
    lines += [
        f"Longest vs shortest: time per audio second x{_fmt(sec['time_ratio_per_second'])} (1.0 = linear), "
        f"peak RSS x{_fmt(sec['peak_rss_ratio'])} (1.0 = flat).",
        "",
    ]
    return lines


def _md_daw(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    if "skipped" in sec:
        return ["## Ardour round trip", "", f"Skipped: {sec['skipped']}", ""]
    r = sec["region"]
    lines = [
        "## Ardour round trip",
        "",
        f"{sec['command']}: a {r['seconds']:g} s region of the demo song ({r['source_rate']} Hz source, {r['offset']} samples "
        "in) at timeline sample rate + 17 (`stemlink/apps/bench/ardour_roundtrip.py`). Wall: the job (session read, engine "
        "start, separation, session write; for the GUI case also Ardour's start and the import); reload: `ardour7-lua` "
        "loading the result. Null: `ardour7-export` of the original region minus that of the stems alone.",
        "",
    ]
    lines += _table(
        ["case", "wall (s)", "reload (s)", "tracks placed exactly", "null (dB)", "lag", "mean SI-SDRi (dB)"],
        [
            [
                c["case"],
                _fmt(c["wall_s"]),
                _fmt(c["reload_s"]),
                f"{len(c['tracks'])}: {c['placed_exactly']}",
                _fmt(c["null_residual_db"], ".1f"),
                str(c["lag"]),
                _fmt(c["mean_si_sdri"]) if c["mean_si_sdri"] is not None else MISSING,
            ]
            for c in sec["cases"]
        ],
    )
    for c in sec["cases"]:
        if c["stems"]:
            per = ", ".join(f"{k} {_fmt(v['si_sdri'])}" for k, v in c["stems"].items())
            lines.append(f"- {c['case']}: SI-SDRi per stem {per} dB (one excerpt, not the protocol's windows).")
    return lines + [""]


# results section -> its Markdown renderer, in the order they appear in BENCHMARKS.md
def _md_riff(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    lines = ["## Accompaniment: the riff family (issue 14)", ""]
    if sec.get("skipped"):
        return lines + [f"Skipped: {sec['skipped']}.", ""]
    lines += [
        f"{sec['items']} items of 10 s per corpus; our encoders stand in for CLAP (`clap-small`) and for the coherence "
        "score (`cocola-small`), so the figures compare rows of this table, not the paper's numbers. COCOLA ratio = "
        "generated / true part; text R@1: the part's own prompt is the nearest of the run's prompts (chance in brackets).",
        "",
    ]
    cols = ["data", "model", "steps", "condition", "FAD", "KD", "density", "coverage", "APA", "COCOLA", "ratio", "CLAP AA", "CLAP TA"]
    rows = [
        [r["data"], r["model"], str(r["steps"]), r["condition"]]
        + [_fmt(r[k], f) for k, f in (("fad", ".3f"), ("kd", ".4f"), ("density", ".2f"), ("coverage", ".2f"), ("apa", ".2f"))]
        + [_fmt(r["cocola"], ".2f"), _fmt(r["cocola_ratio"], ".0%"), _fmt(r["clap_aa"], ".2f"), _fmt(r["clap_ta"], ".2f")]
        for r in sec["runs"]
    ]
    lines += _table(cols, rows)
    more = [
        [
            r["data"],
            r["model"],
            str(r["steps"]),
            r["condition"],
            _fmt(r["audible"], ".0%"),
            f"{_fmt(r['text_retrieval'], '.2f')} ({_fmt(r['text_chance'], '.2f')})",
            _fmt(r.get("text_retrieval_true", float("nan")), ".2f"),
            _fmt(r["seconds_per_10s_item"], ".2f"),
        ]
        for r in sec["runs"]
    ]
    cols = ["data", "model", "steps", "condition", "audible", "text R@1 (chance)", "true parts' R@1", "s per 10 s item"]
    return lines + _table(cols, more)


SECTIONS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[str]]] = {
    "separation": _md_separation,
    "coherence": _md_coherence,
    "riff": _md_riff,
    "speed": _md_speed,
    "bridge": _md_bridge,
    "scale": _md_scale,
    "daw": _md_daw,
}


def write_markdown(results: dict[str, Any], path: Path, out: Path) -> Path:
    """Write BENCHMARKS.md at `path`; plots are linked relative to it (they live in `out`)."""
    path = Path(path)
    prefix = os.path.relpath(Path(out).resolve(), path.resolve().parent).replace(os.sep, "/")
    text = markdown(results, "" if prefix == "." else prefix + "/")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    write_markdown(json.loads(source.read_text()), target, source.parent)
