"""`stemlink daw ardour SESSION.ardour`: regions of a saved Ardour session -> the bridge -> one
new track per returned stem, in the same session file.

    session = read_session("song/song.ardour")
    regions = choose_regions(session, names=["mix.1"])          # or selected=True / every=True
    result = roundtrip(args, session, regions, preset)          # args: the engine options

Order of work, so that a failure leaves the session as it was:
1. the session is read and the regions chosen (errors name the regions there are);
2. `SessionGuard` refuses a session open in Ardour, being recorded, or locked by another job;
3. each region is written, as Ardour plays it (`region_audio.py`), to a temporary WAV at the
   session rate and sent as a host job: the stems land in the session's own
   `interchange/NAME/audiofiles/` (new names only; a sidecar JSON beside each), or in `--out`
   for `--stems-only`;
4. the session file, unless it changed meanwhile, is backed up and rewritten atomically with
   one new track per (region, stem), named "REGION - STEM", holding one region at exactly the
   original timeline position and length.

`--stems-only` (what the Lua script inside Ardour uses, since Ardour itself owns the open
session) skips steps 2 and 4 and prints a manifest instead: one tab-separated line per stem,
`POSITION<TAB>LENGTH<TAB>TRACK NAME<TAB>FILE` (session samples).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from stemlink.errors import InvalidInput
from stemlink.plugin_host.daw.ardour.guard import SessionGuard
from stemlink.plugin_host.daw.ardour.region_audio import write_region_wav
from stemlink.plugin_host.daw.ardour.session import (
    ArdourRegion,
    ArdourSession,
    StemTrack,
    add_stem_tracks,
    describe,
    read_session,
    select_regions,
    write_session,
)
from stemlink.plugin_host.jobs import Job
from stemlink.plugin_host.presets import Preset
from stemlink.plugin_host.region import Region

OUTPUT_PATTERN = "{track}-{region}-{stem}.wav"


@dataclass(frozen=True)
class RoundTrip:
    stems: list[StemTrack]  # what was written, one per (region, stem)
    track_names: list[str]  # the new tracks (empty for --stems-only)
    backup: Path | None  # the session file as it was (None for --stems-only)


def selected_ids(session: ArdourSession) -> list[str]:
    """Ids of the regions selected in Ardour's editor when the session was last saved from the
    GUI (Session > Save writes them to the session folder's `instant.xml`:
    `<Editor><Selection><Regions><Region id=.../>`; the session file's own `<Selection>` holds
    only tracks and controls, and a Lua `Session:save_state` writes neither)."""
    path = session.folder / "instant.xml"
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    return [n.get("id", "") for n in root.iterfind("Editor/Selection/Regions/Region") if n.get("id")]


def choose_regions(session: ArdourSession, *, names: Sequence[str] = (), selected: bool = False, every: bool = False) -> list[ArdourRegion]:
    """Exactly one way of choosing: names/ids, the editor selection saved with the session, or every audio region."""
    if sum(map(bool, (names, selected, every))) != 1:
        raise InvalidInput(
            f"choose the regions: --regions NAME|ID..., --selected or --all; the session has {describe(session.regions)}",
            field="regions",
        )
    if every:
        usable = [r for r in session.regions if not r.problem]
        for r in session.regions:
            if r.problem:
                warnings.warn(f"skipped: {r.problem}", stacklevel=2)
        if not usable:
            raise InvalidInput(f"{session.path} has no audio regions stemlink can read on its tracks", field="regions")
        return usable
    if selected:
        ids = [i for i in selected_ids(session) if any(r.id == i for r in session.regions)]
        if not ids:
            raise InvalidInput(
                f"no audio region was selected when {session.path.name} was last saved in Ardour (select regions, "
                f"Session > Save, close), or name them with --regions; the session has {describe(session.regions)}",
                field="regions",
            )
        return select_regions(session, ids)
    return select_regions(session, names)


def region_jobs(session: ArdourSession, regions: Sequence[ArdourRegion], preset: Preset, out_dir: Path, tmp: Path) -> list[Job]:
    """One host job per region: its audio as Ardour plays it, placed at its timeline position."""
    preset = preset.with_overrides(output=OUTPUT_PATTERN, on_exists="number")
    jobs = []
    for i, region in enumerate(regions):
        wav = write_region_wav(region, session.sample_rate, tmp / f"region-{i}.wav")
        source = Region(wav, name=region.name, track=region.track, timeline=region.position, session_rate=session.sample_rate)
        jobs.append(Job(preset=preset, out_dir=out_dir, region=source, track=region.track))
    return jobs


def stem_tracks(regions: Sequence[ArdourRegion], outputs: Sequence) -> list[StemTrack]:
    tracks = []
    for region, output in zip(regions, outputs, strict=True):
        for stem, path in output.stems.items():
            channels, frames = output.audio[stem].shape
            name = f"{region.name} - {stem}"  # the track's and its region's name
            tracks.append(StemTrack(name, path, channels, frames, region.position, name))
    return tracks


def _reread(session: ArdourSession, regions: Sequence[ArdourRegion]) -> tuple[ArdourSession, list[ArdourRegion]]:
    current = read_session(session.path)
    by_id = {r.id: r for r in current.regions}
    missing = [r.name for r in regions if r.id not in by_id]
    if missing:
        raise InvalidInput(
            f"region(s) {', '.join(map(repr, missing))} left {session.path.name} while stemlink started; run it again", field="regions"
        )
    return current, [by_id[r.id] for r in regions]


def roundtrip(
    args: argparse.Namespace, session: ArdourSession, regions: Sequence[ArdourRegion], preset: Preset, *, stems_only: Path | None = None
) -> RoundTrip:
    """Run the regions' jobs and add their stems to the session (see the module docstring)."""
    from stemlink.plugin_host.cli import execute_jobs

    if stems_only is not None:
        with tempfile.TemporaryDirectory(prefix="stemlink-ardour-") as tmp:
            _, outputs = execute_jobs(args, region_jobs(session, regions, preset, stems_only, Path(tmp)))
        return RoundTrip(stem_tracks(regions, outputs), [], None)
    with SessionGuard(session.path) as guard:
        session, regions = _reread(session, regions)  # the file as the guard saw it, not as it was before the lock
        session.audio_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="stemlink-ardour-") as tmp:
            _, outputs = execute_jobs(args, region_jobs(session, regions, preset, session.audio_dir, Path(tmp)))
        stems = stem_tracks(regions, outputs)
        names: list[str] = []

        def write(path: Path) -> None:
            names.extend(add_stem_tracks(session, stems))
            write_session(session, path)

        backup = guard.commit(write)
    return RoundTrip(stems, names, backup)
