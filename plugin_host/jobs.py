"""One host job: read a region, ask the engine, post-process, write spotted stems + sidecars.

    job = Job(preset=load_preset("separate-msdm"), region=Region(Path("mix.wav"), 44100, 441000),
              out_dir=Path("stems"), track="mix")
    with Client() as client:                    # embedded engine when no address
        output = run_job(client, job)           # output.stems[name] -> Path of the BWF WAV

Order of work, so a failure never leaves a partial or clobbered file: validate the region and
the FX chain, resolve the model and plan every output name (`OutputExists` before any audio
is computed), run the task, apply the FX chain, write every WAV and sidecar to temp files in
the output folder, then move them all into place. If the engine dies mid-job the client
raises `EngineUnavailable` and nothing has been written. Inputs are only ever opened for
reading.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from stemlink.errors import InvalidInput, UnknownModel, UnknownTask
from stemlink.plugin_host.bwf import BwfWriter
from stemlink.plugin_host.fx import apply_chain, build_chain
from stemlink.plugin_host.outputs import AtomicFile, commit_all, plan_outputs, sidecar_path, write_json
from stemlink.plugin_host.presets import Preset
from stemlink.plugin_host.region import Region, read_region

WRITE_BLOCK = 1 << 16  # frames per write call
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Job:
    """What to run (`preset`) on what (`region`, or a length for `generate`) and where to write."""

    preset: Preset
    out_dir: Path
    region: Region | None = None
    track: str | None = None
    overwrite: bool = False
    frames: int = 0  # generate: output length at `sample_rate`
    sample_rate: int = 0  # generate: output rate
    channels: int = 2  # generate: output channels
    timeline: int = 0  # generate: BWF TimeReference (samples at `sample_rate`)


@dataclass
class JobOutput:
    stems: dict[str, Path]
    sidecars: dict[str, Path]
    audio: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # post-FX, for --play
    sample_rate: int = 0
    scores: dict[str, float] = field(default_factory=dict)


def resolve_model(capabilities: Any, task: str, name: str | None) -> Any:
    """The engine's `ModelInfo` for `name` (or its default for `task`); typed errors otherwise."""
    models = {m.name: m for m in capabilities.models}
    name = name or capabilities.defaults.get(task) or next((m.name for m in capabilities.models if task in m.tasks), None)
    if name is None:
        raise UnknownModel(f"the engine serves no model for task {task!r}", field="model")
    if name not in models:
        raise UnknownModel(f"model {name!r} is not served by the engine; available: {', '.join(models) or '(none)'}", field="model")
    if task not in models[name].tasks:
        raise UnknownTask(f"model {name!r} does not serve task {task!r}; its tasks: {', '.join(models[name].tasks)}", field="task")
    return models[name]


def output_stems(preset: Preset, model_stems: tuple[str, ...]) -> tuple[str, ...]:
    """The stem files a task writes (what `run_task` returns)."""
    chosen = preset.stems
    if preset.task == "extract":
        return (*chosen, "residual")
    if preset.task == "remove":
        return ("mix",)
    if preset.task == "accompany" and not chosen:
        return tuple(s for s in model_stems if s not in preset.context_stems)
    return chosen or model_stems


def run_job(client: Any, job: Job, *, progress: ProgressFn | None = None, taken: set[Path] | None = None) -> JobOutput:
    """Run one job end to end (see module docstring). Returns the written paths."""
    from stemlink.engine.tasks import TaskRequest

    preset = job.preset
    if preset.task == "score":
        raise UnknownTask("the score task compares two sub-mixes: use Client.score(a, b, rate), not a region job", field="task")
    board = build_chain(preset.fx)  # fail on a bad VST3 before the engine works
    capabilities = client.hello()
    info = resolve_model(capabilities, preset.task, preset.model)
    if job.region is not None:
        audio, rate, region = read_region(job.region)
        inputs = {"accompany": {"context": audio}}.get(preset.task, {"mix": audio})
        frames, channels, time_reference = region.frames, audio.shape[0], region.time_reference(rate)
        track = job.track or region.track or region.path.stem
    else:
        if preset.task != "generate":
            raise InvalidInput(f"task {preset.task!r} needs a region (an input file)", field="region")
        region, inputs, rate, frames, channels, time_reference = None, {}, job.sample_rate, job.frames, job.channels, job.timeline
        track = job.track or "generated"
    fields = {"track": track, "region": region.label() if region else "0", "task": preset.task, "model": info.name, "seed": preset.seed, "timeline": time_reference}
    plan = plan_outputs(job.out_dir, preset.output, fields, output_stems(preset, info.stems), overwrite=job.overwrite, on_exists=preset.on_exists, taken=taken)
    request = TaskRequest(
        task=preset.task, sample_rate=rate, inputs=inputs, model=info.name, params=dict(preset.params), seed=preset.seed,
        stems=preset.stems, context_stems=preset.context_stems, candidates=preset.candidates,
        frames=frames if region is None else 0, channels=channels if region is None else 0,
    )
    result = client.submit(request, progress=progress)
    missing = set(plan) - set(result.stems)
    if missing:
        raise InvalidInput(f"the engine returned stems {sorted(result.stems)}, expected {sorted(plan)}", field="stems")
    provenance = _provenance(job, preset, result, capabilities, region, rate, time_reference, channels)
    files: list[AtomicFile] = []
    out = JobOutput(stems={}, sidecars={}, sample_rate=rate, scores=dict(result.scores))
    try:
        for stem, path in plan.items():
            audio_out = apply_chain(board, np.asarray(result.stems[stem], dtype=np.float32), rate)
            files.append(_write_wav(path, audio_out, rate, time_reference, preset, job.overwrite, stem))
            files.append(write_json(sidecar_path(path), {**provenance, "stem": stem, "file": path.name}, overwrite=job.overwrite))
            out.stems[stem], out.sidecars[stem], out.audio[stem] = path, sidecar_path(path), audio_out
    except BaseException:
        for f in files:
            f.abort()
        raise
    commit_all(files)
    return out


def _write_wav(path: Path, audio: np.ndarray, rate: int, time_reference: int, preset: Preset, overwrite: bool, stem: str) -> AtomicFile:
    out = AtomicFile(path, overwrite=overwrite)
    try:
        writer = BwfWriter(out.fh, rate, audio.shape[0], time_reference=time_reference, sample_format=preset.format,
                           description=f"stemlink {preset.task} {stem}", reference=path.stem[:32])
        for i in range(0, audio.shape[-1], WRITE_BLOCK):
            writer.write(audio[:, i : i + WRITE_BLOCK])
        writer.close()
        out.finish()
    except BaseException:
        out.abort()
        raise
    return out


def _provenance(job: Job, preset: Preset, result: Any, capabilities: Any, region: Region | None, rate: int, time_reference: int, channels: int) -> dict[str, Any]:
    from stemlink import __version__

    return {
        "stemlink_version": __version__,
        "engine_version": capabilities.engine_version,
        "model": {"name": result.model, "version": result.model_version, "sha256": result.model_sha256},
        "task": result.task,
        "preset": preset.name,
        "params": result.params,
        "seed": result.seed,
        "scores": result.scores,
        "info": dict(result.info),  # engine-side details: apply settings, timings, candidate ranking
        "fx": [{"type": f.type, "path": f.path, "params": dict(f.params)} for f in preset.fx],
        "sample_rate": rate,
        "channels": channels,
        "frames": region.frames if region else job.frames,
        "region": None if region is None else {
            "source": str(region.path.resolve()), "name": region.name, "track": region.track, "start": region.start,
            "frames": region.frames, "timeline": region.timeline, "session_rate": region.session_rate,
            "channels": None if region.channels is None else list(region.channels),
        },
        "time_reference": time_reference,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
