"""One host job: read a region, ask the engine, post-process, write spotted stems + sidecars.

    job = Job(preset=load_preset("separate-msdm"), region=Region(Path("mix.wav"), 44100, 441000),
              out_dir=Path("stems"), track="mix")
    with connect() as client:                   # stemlink.launcher: embedded engine when none runs
        output = run_job(client, job)           # output.stems[name] -> Path of the BWF WAV

The host reaches the engine only through the bridge (a `Client`), the contract
(`stemlink/contract.py`: `TaskRequest`, the output-stem rule, `check_model`) and the launcher.

Order of work, so a failure never leaves a partial or clobbered file: validate the FX chain,
then `plan_job`: resolve the model, check the stems asked for, the region against its file
(no audio is read), every output name (`OutputExists`) and the output folder (a writable
directory with room for the expected bytes: `OutputError`). Only then read the region, run
the task, check the result (`stemlink/plugin_host/verify.py`: `BadResult` for wrong stems, shapes,
NaN/inf or provenance), apply the FX chain, write every WAV and sidecar to temp files in the
output folder and move them all into place. If the engine dies mid-job the client raises
`EngineUnavailable` and nothing has been written; an I/O error while writing is one
`OutputError` and the job's files are removed. A session plans all its jobs first
(`plan_jobs`), so a clash between two jobs' names fails before any job runs. Inputs are only
ever opened for reading.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from stemlink.contract import INPUTS, MAX_REFERENCE_SECONDS, MIN_REFERENCE_SECONDS, TaskRequest, check_model, output_stems, resolve_tag
from stemlink.errors import InvalidInput, TooLarge, UnknownModel, UnknownTask
from stemlink.plugin_host.bwf import BwfWriter
from stemlink.plugin_host.fx import apply_chain, build_chain
from stemlink.plugin_host.outputs import (
    AtomicFile,
    check_out_dir,
    commit_all,
    expected_bytes,
    io_error,
    plan_outputs,
    sidecar_path,
    write_json,
)
from stemlink.plugin_host.presets import Preset
from stemlink.plugin_host.region import Region, check_input_file, file_info, read_region
from stemlink.plugin_host.verify import check_result

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


@dataclass(frozen=True)
class JobPlan:
    """A job checked against the engine's models, its input file and the output folder."""

    job: Job
    model: Any  # the engine's ModelInfo
    request: TaskRequest  # what will be submitted, without its audio (read by `run_job`)
    region: Region | None  # checked: frames filled in
    sample_rate: int
    frames: int
    channels: int  # of the input region (= of every stem written)
    time_reference: int
    track: str
    outputs: dict[str, Path]  # stem -> final WAV path

    @property
    def need_bytes(self) -> int:
        return expected_bytes(self.frames, self.channels, len(self.outputs))

    @property
    def position(self) -> tuple[int, int]:
        """Where the stems sit on the timeline, exactly: (sample, at this rate). The region's
        timeline sample at the session rate; by default its start in the file (the file at
        timeline 0); for `generate` the job's timeline sample at the output rate."""
        region = self.region
        if region is None:
            return self.time_reference, self.sample_rate
        if region.timeline is None:
            return region.start, self.sample_rate
        return region.timeline, region.session_rate or self.sample_rate


@dataclass
class JobOutput:
    stems: dict[str, Path]
    sidecars: dict[str, Path]
    audio: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # post-FX, for --play
    sample_rate: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # the engine's, e.g. candidates it could not rank


def resolve_model(capabilities: Any, task: str, name: str | None) -> Any:
    """The engine's `ModelInfo` for `name` (or its default for `task`); `UnknownModel` otherwise.
    Whether it serves the task is `check_model` (in `plan_job`)."""
    models = {m.name: m for m in capabilities.models}
    name = name or capabilities.defaults.get(task) or next((m.name for m in capabilities.models if task in m.tasks), None)
    if name is None:
        raise UnknownModel(f"the engine serves no model for task {task!r}", field="model")
    if name not in models:
        raise UnknownModel(f"model {name!r} is not served by the engine; available: {', '.join(models) or '(none)'}", field="model")
    return models[name]


def check_context(preset: Preset, model: Any) -> None:
    """Accompany needs a consistent context: which stems the region holds, none of them asked for
    (for models steered by named context stems; a model that reads the whole region, such as the
    riff family, needs none). Text and reference go only to models that take them."""
    known = tuple(model.stems)
    conditions = tuple(getattr(model, "conditions", ("context_stems",)))
    for key in ("text", "reference"):
        if getattr(preset, key) and key not in conditions:
            steer = ", ".join(c for c in conditions if c != "context_stems") or "neither"
            raise InvalidInput(f"model {model.name!r} cannot be steered by a {key} (--{key}); it takes {steer}", field=key)
    if preset.text and preset.reference:
        raise InvalidInput("give --text or --reference, not both", field="text")
    if preset.task != "accompany" or "context_stems" not in conditions:
        return
    if not preset.context_stems:
        raise InvalidInput(
            f"accompany needs --context-stems: which stems of model {model.name!r} ({', '.join(known)}) the region holds, "
            f"e.g. --context-stems {','.join(known[:2])}",
            field="context_stems",
        )
    both = [s for s in preset.stems if s in preset.context_stems]
    free = [s for s in known if s not in preset.context_stems]
    if both:
        raise InvalidInput(
            f"stem(s) {', '.join(both)} in both --stems and --context-stems: the region already holds them; "
            f"generate {', '.join(free) or 'nothing'} instead",
            field="stems",
        )
    if not free:
        raise InvalidInput(
            f"nothing to accompany: --context-stems {','.join(preset.context_stems)} are all the stems of model {model.name!r}",
            field="context_stems",
        )


def check_reference_file(path: str) -> None:
    """A style reference file that exists, decodes and lasts MIN..MAX_REFERENCE_SECONDS."""
    info = file_info(check_input_file(path, "reference file", field="reference"))
    seconds = info.frames / info.sample_rate
    if not MIN_REFERENCE_SECONDS <= seconds <= MAX_REFERENCE_SECONDS:
        raise InvalidInput(
            f"reference {path} is {seconds:.2f} s; a style reference must be {MIN_REFERENCE_SECONDS}..{MAX_REFERENCE_SECONDS:g} s",
            field="reference",
        )


def plan_job(capabilities: Any, job: Job, *, taken: set[Path] | None = None, check_space: bool = True) -> JobPlan:
    """Check a job before any audio is read or computed (see module docstring)."""
    preset = job.preset
    if preset.task == "score":
        raise UnknownTask("the score task compares two sub-mixes: use Client.score(a, b, rate), not a region job", field="task")
    info = resolve_model(capabilities, preset.task, preset.model)
    if "tags" in getattr(info, "conditions", ()):  # free-text tags ("brass section") -> the model's vocabulary
        preset = replace(
            preset,
            stems=tuple(resolve_tag(s, info.stems) for s in preset.stems),
            context_stems=tuple(resolve_tag(s, info.stems) for s in preset.context_stems),
        )
    request = TaskRequest(
        task=preset.task,
        sample_rate=0,
        model=info.name,
        params=dict(preset.params),
        seed=preset.seed,
        stems=preset.stems,
        context_stems=preset.context_stems,
        candidates=preset.candidates,
        text=preset.text,
    )
    check_model(request, info.name, info.tasks, info.stems)
    check_context(preset, info)
    if preset.reference:
        check_reference_file(preset.reference)
    if job.region is not None:
        region = job.region.check()  # probes the file unless the region was checked before (Region.from_times)
        source = region.info
        assert source is not None and region.frames is not None  # a checked region has info and frames set
        rate, frames = source.sample_rate, region.frames
        channels = len(region.channels) if region.channels is not None else source.channels
        time_reference = region.time_reference(rate)
        track = job.track or region.track or region.path.stem
    else:
        if preset.task != "generate":
            raise InvalidInput(f"task {preset.task!r} needs a region (an input file)", field="region")
        region, rate, frames, time_reference = None, job.sample_rate, job.frames, job.timeline
        channels, track = job.channels or 2, job.track or "generated"  # 0 channels = stereo
    limit = getattr(getattr(capabilities, "limits", None), "max_frames", None)
    if limit is not None and frames > limit:  # before the space check: the limit is the real problem
        raise TooLarge(f"{preset.task}: {frames} frames; the engine accepts at most {limit} (limits.max_frames)", field="frames")
    fields = {
        "track": track,
        "region": region.label() if region else "0",
        "task": preset.task,
        "model": info.name,
        "seed": preset.seed,
        "timeline": time_reference,
    }
    stems = output_stems(preset.task, info.stems, preset.stems, preset.context_stems)
    outputs = plan_outputs(job.out_dir, preset.output, fields, stems, overwrite=job.overwrite, on_exists=preset.on_exists, taken=taken)
    if region is None:  # generate: the output shape
        request = replace(request, sample_rate=rate, frames=frames, channels=job.channels)
    else:  # the region's rate until `run_job` reads it
        request = replace(request, sample_rate=rate)
    plan = JobPlan(job, info, request, region, rate, frames, channels, time_reference, track, outputs)
    if check_space:
        check_out_dir(job.out_dir, plan.need_bytes)
    return plan


def plan_jobs(capabilities: Any, jobs: Sequence[Job]) -> list[JobPlan]:
    """Plan a whole session: every name checked against the others, each folder's space for all its jobs."""
    taken: set[Path] = set()
    plans = [plan_job(capabilities, job, taken=taken, check_space=False) for job in jobs]
    need: dict[Path, int] = {}
    for plan in plans:
        need[plan.job.out_dir] = need.get(plan.job.out_dir, 0) + plan.need_bytes
    for out_dir, total in need.items():
        check_out_dir(out_dir, total)
    return plans


def run_job(
    client: Any, job: Job, *, progress: ProgressFn | None = None, taken: set[Path] | None = None, plan: JobPlan | None = None
) -> JobOutput:
    """Run one job end to end (see module docstring). Returns the written paths.

    `plan`: from `plan_jobs` (a session planned up front); otherwise the job is planned here.
    """
    preset = job.preset
    board = build_chain(preset.fx)  # fail on a bad VST3 before the engine works
    capabilities = client.hello()
    plan = plan or plan_job(capabilities, job, taken=taken)
    region, rate, channels = plan.region, plan.sample_rate, plan.channels
    request, frames = plan.request, plan.frames
    if region is not None:
        audio, rate, region = read_region(region)
        assert region.frames is not None  # read_region returns the checked region
        frames = region.frames
        (name,) = INPUTS[preset.task]
        request = replace(request, sample_rate=rate, inputs={name: audio})
    if preset.reference:  # the style reference, at the request's rate
        reference, _, _ = read_region(Region(Path(preset.reference)).check(), rate=request.sample_rate)
        request = replace(request, inputs={**request.inputs, "reference": reference})
    result = client.submit(request, progress=progress)
    check_result(
        result,
        source=getattr(client, "address", "?"),
        task=preset.task,
        model=plan.model.name,
        seed=preset.seed,
        stems=plan.outputs,
        channels=channels,
        frames=frames,
    )
    provenance = _provenance(job, preset, result, capabilities, region, rate, plan.time_reference, channels)
    files: list[AtomicFile] = []
    out = JobOutput(stems={}, sidecars={}, sample_rate=rate, scores=dict(result.scores), warnings=result.warnings)
    path = job.out_dir
    try:
        for stem, path in plan.outputs.items():
            audio_out = apply_chain(board, np.asarray(result.stems[stem], dtype=np.float32), rate)
            files.append(_write_wav(path, audio_out, rate, plan.time_reference, preset, job.overwrite, stem))
            files.append(write_json(sidecar_path(path), {**provenance, "stem": stem, "file": path.name}, overwrite=job.overwrite))
            out.stems[stem], out.sidecars[stem], out.audio[stem] = path, sidecar_path(path), audio_out
    except BaseException as exc:
        for f in files:
            f.abort()
        if isinstance(exc, OSError):
            raise io_error(path, exc) from exc
        raise
    commit_all(files)
    return out


def _write_wav(path: Path, audio: np.ndarray, rate: int, time_reference: int, preset: Preset, overwrite: bool, stem: str) -> AtomicFile:
    out = AtomicFile(path, overwrite=overwrite)
    try:
        writer = BwfWriter(
            out.fh,
            rate,
            audio.shape[0],
            time_reference=time_reference,
            sample_format=preset.format,
            description=f"stemlink {preset.task} {stem}",
            reference=path.stem[:32],
        )
        for i in range(0, audio.shape[-1], WRITE_BLOCK):
            writer.write(audio[:, i : i + WRITE_BLOCK])
        writer.close()
        out.finish()
    except OSError as exc:  # disk full, read-only filesystem, permission: one line, no temp file
        out.abort()
        raise io_error(path, exc) from exc
    except BaseException:
        out.abort()
        raise
    return out


def _provenance(
    job: Job, preset: Preset, result: Any, capabilities: Any, region: Region | None, rate: int, time_reference: int, channels: int
) -> dict[str, Any]:
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
        "region": None
        if region is None
        else {
            "source": str(region.path.resolve()),
            "name": region.name,
            "track": region.track,
            "start": region.start,
            "frames": region.frames,
            "timeline": region.timeline,
            "session_rate": region.session_rate,
            "channels": None if region.channels is None else list(region.channels),
        },
        "time_reference": time_reference,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
