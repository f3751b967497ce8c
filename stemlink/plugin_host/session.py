"""Session files (TOML): many tracks and regions in one job list, for `stemlink run SESSION.toml`.

Schema (paths relative to the session file; see stemlink/plugin_host/SESSION.md)::

    session_rate = 48000            # optional: timeline rate (default: each file's rate)
    preset = "separate-msdm"        # default preset (name in presets/ or a path)
    out = "stems"                   # output folder (default: "stems" beside the session file)
    overwrite = false

    [[tracks]]
    name = "band"                   # used in output names ({track})
    file = "audio/band.wav"
    preset = "accompany-msdm"       # optional, overrides the session preset
    channels = [0, 1]               # optional channel selection (0-based)

    [[tracks.regions]]
    name = "verse"                  # used in output names ({region}); default: start sample
    start = 12.5                    # seconds in the file, or start_sample = 551250
    end = 20.0                      # seconds, or end_sample; omitted: to the end of the file
    timeline = 12.5                 # seconds on the timeline, or timeline_sample; omitted: = start
    preset = "separate-msdm"        # optional, overrides the track preset

A track without `[[tracks.regions]]` is one region: the whole file. Errors raise
`InvalidInput` (or `PresetError`) naming the field, e.g. `tracks[0].regions[1].end`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stemlink.errors import InvalidInput, StemlinkError
from stemlink.plugin_host.jobs import Job
from stemlink.plugin_host.presets import Preset, load_preset
from stemlink.plugin_host.region import Region, check_input_file

SESSION_KEYS = {"session_rate", "preset", "out", "overwrite", "tracks"}
TRACK_KEYS = {"name", "file", "preset", "channels", "regions"}
REGION_KEYS = {"name", "start", "end", "start_sample", "end_sample", "timeline", "timeline_sample", "preset"}


@dataclass(frozen=True)
class Session:
    path: Path
    out_dir: Path
    jobs: tuple[Job, ...]


def _keys(table: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise InvalidInput(f"{where} must be a table", field=where)
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InvalidInput(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}", field=f"{where}.{unknown[0]}")
    return table


def load_session(path: str | Path, *, out_dir: Path | None = None, overwrite: bool | None = None) -> Session:
    """Parse and validate a session file into jobs (regions are checked against their files)."""
    path = check_input_file(path, "session file", field="session")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"session {path}: not valid TOML: {exc}", field="session") from exc
    _keys(data, SESSION_KEYS, "session")
    base = path.parent
    rate = data.get("session_rate")
    if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or not 1000 <= rate <= 384000):
        raise InvalidInput(f"session_rate must be an integer in 1000..384000, got {rate!r}", field="session_rate")
    out = out_dir or base / str(data.get("out", "stems"))
    keep = bool(data.get("overwrite", False)) if overwrite is None else overwrite
    tracks = data.get("tracks")
    if not isinstance(tracks, list) or not tracks:
        raise InvalidInput("session needs at least one [[tracks]] table", field="tracks")
    cache: dict[str, Preset] = {}
    jobs = []
    for t, track in enumerate(tracks):
        where = f"tracks[{t}]"
        _keys(track, TRACK_KEYS, where)
        if not isinstance(track.get("file"), str):
            raise InvalidInput(f"{where}.file must be the path of an audio file", field=f"{where}.file")
        name = str(track.get("name") or Path(track["file"]).stem)
        channels = track.get("channels")
        if channels is not None and (not isinstance(channels, list) or not all(isinstance(c, int) for c in channels)):
            raise InvalidInput(f"{where}.channels must be a list of channel indices", field=f"{where}.channels")
        regions = track.get("regions", [{}])
        if not isinstance(regions, list) or not regions:
            raise InvalidInput(f"{where}.regions must be a non-empty list of [[tracks.regions]] tables", field=f"{where}.regions")
        for r, spec in enumerate(regions):
            rwhere = f"{where}.regions[{r}]"
            _keys(spec, REGION_KEYS, rwhere)
            preset_name = spec.get("preset") or track.get("preset") or data.get("preset")
            if not preset_name:
                raise InvalidInput(f"{rwhere}: no preset (set 'preset' on the session, track or region)", field=f"{rwhere}.preset")
            preset = _preset(str(preset_name), base, cache)
            try:
                region = Region.from_times(
                    base / track["file"],
                    start=spec.get("start"),
                    end=spec.get("end"),
                    start_sample=spec.get("start_sample"),
                    end_sample=spec.get("end_sample"),
                    timeline=spec.get("timeline"),
                    timeline_sample=spec.get("timeline_sample"),
                    session_rate=rate,
                    channels=None if channels is None else tuple(channels),
                    name=str(spec["name"]) if "name" in spec else None,
                    track=name,
                )
            except StemlinkError as exc:
                raise type(exc)(f"{rwhere}: {exc.message}", field=f"{rwhere}.{exc.field or 'region'}") from exc
            jobs.append(Job(preset=preset, out_dir=out, region=region, track=name, overwrite=keep))
    return Session(path=path, out_dir=out, jobs=tuple(jobs))


def _preset(name: str, base: Path, cache: dict[str, Preset]) -> Preset:
    if name not in cache:
        local = base / name
        cache[name] = load_preset(local if name.endswith(".toml") and local.is_file() else name)
    return cache[name]
