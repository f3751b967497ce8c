"""stemlink: separate the selected media items (a REAPER ReaScript, Python).

Select one or more audio items, run this script (Actions > Show action list > ReaScript:
Load...), and every item's stems land on new tracks directly below its track, each stem item at
exactly the original item's position and length. Install and the manual check: README.md here.

The file is standalone on purpose: REAPER runs it in its own Python, where the stemlink package
is usually not importable, so it uses the standard library only and talks to stemlink through
its command line (`stemlink run SESSION.toml`: one engine start for all the selected items, every
output name checked before the first job). Which `stemlink` to call: `$STEMLINK_BIN` (default
`stemlink` on PATH); the preset: `$STEMLINK_REAPER_PRESET` (default `separate-msdm`).

Everything that decides something is a pure function over plain data (tested in
tests/plugin_host/test_reaper_items.py); only `main` and the `Reaper` class touch the REAPER API
(`reaper_python`), which no test can load.

- item -> region: the active take's source file from `D_STARTOFFS` (source seconds at the
  item's left edge) for `D_LENGTH` seconds, both at the source file's rate, at playrate 1.0.
  Another playrate, a take without an audio file, a section/reversed source, a negative offset
  or an item longer than its source (looped) is refused with a message saying what to do.
- naming: region `itemN` (N in selection order) -> files `{track}_{stem}_itemN.wav`; new tracks
  `"{track} - {stem}"`, one per stem and source track (two items on one track share them).
- insertion order: source tracks bottom-up, each one's stem tracks directly below it in the
  order stemlink returned them, so no insertion shifts a track that is still to be processed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEMLINK = os.environ.get("STEMLINK_BIN", "stemlink")
PRESET = os.environ.get("STEMLINK_REAPER_PRESET", "separate-msdm")
TITLE = "stemlink"
RATE_TOLERANCE = 1e-9  # |playrate - 1| below this is 1.0


class ItemError(Exception):
    """An item that cannot be separated as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Item:
    """What the script reads from REAPER for one selected media item (times in seconds)."""

    index: int  # 0-based, in selection order
    track_index: int  # 0-based index of its track in the project
    track_name: str
    position: float  # D_POSITION: project time of the item's left edge
    length: float  # D_LENGTH
    start_offset: float  # D_STARTOFFS of the active take: source time at the item's left edge
    playrate: float  # D_PLAYRATE of the active take
    source_path: str  # "" when the active take has no audio file (MIDI, empty item)
    source_rate: int  # the source file's sample rate
    source_length: float  # the source file's length, seconds
    source_type: str = "WAVE"  # "SECTION": a section or reversed source
    take_name: str = ""

    def label(self) -> str:
        return f"item {self.index + 1} on track {self.track_name!r}"


@dataclass(frozen=True)
class ItemRegion:
    """A selected item as a stemlink region: samples of its source file, its timeline sample."""

    item: Item
    name: str  # region name, unique in a run: item1, item2, ...
    start_sample: int  # first sample in the source file, at its rate
    end_sample: int  # one past the last
    timeline_sample: int  # the item's position at `session_rate`
    session_rate: int


@dataclass(frozen=True)
class Stem:
    """One written stem file (from its sidecar JSON)."""

    stem: str
    region: str
    path: Path
    frames: int
    sample_rate: int


@dataclass(frozen=True)
class NewClip:
    path: Path
    position: float  # seconds: the source item's own D_POSITION
    length: float  # seconds: the stem file's length
    name: str


@dataclass(frozen=True)
class NewTrack:
    """A track to insert: `InsertTrackAtIndex(insert_at)`, in list order, then its clips."""

    insert_at: int
    name: str
    clips: tuple[NewClip, ...]


def track_label(name: str, index: int) -> str:
    """REAPER's name for a track: its name, else "Track N"."""
    return name.strip() or f"Track {index + 1}"


def region_for_item(item: Item, session_rate: int | None = None) -> ItemRegion:
    """The region of `item` (see module docstring); `ItemError` when it cannot be separated.
    `session_rate`: the project's rate (None: the source file's)."""
    if not item.source_path or item.source_rate <= 0:
        raise ItemError(f"{item.label()}: its active take has no audio file (MIDI or empty item)")
    if item.source_type.upper() == "SECTION":
        raise ItemError(f"{item.label()}: its source is a section or reversed; glue the item first (Item > Glue items)")
    if abs(item.playrate - 1.0) > RATE_TOLERANCE:
        raise ItemError(
            f"{item.label()}: playrate {item.playrate:g}; stemlink separates at playrate 1.0 only "
            "(the stems would not line up). Set the take's playrate to 1.0, or glue the item (Item > Glue items) and run again"
        )
    if item.start_offset < -0.5 / item.source_rate:
        raise ItemError(f"{item.label()}: it starts {-item.start_offset:g} s before its source begins; trim its left edge or glue it")
    rate = item.source_rate
    start = max(0, round(item.start_offset * rate))
    frames = round(item.length * rate)
    if frames <= 0:
        raise ItemError(f"{item.label()}: it is empty (length {item.length:g} s)")
    available = round(item.source_length * rate)
    end = start + frames
    if end > available + 1:
        raise ItemError(
            f"{item.label()}: it runs {(end - available) / rate:g} s past the end of its source "
            f"{Path(item.source_path).name} (looped or extended); trim it to the source or glue it"
        )
    end = min(end, available)  # one sample of rounding at the very end of the file
    timeline_rate = session_rate or rate
    return ItemRegion(item, f"item{item.index + 1}", start, end, round(item.position * timeline_rate), timeline_rate)


def regions_for_items(items: Sequence[Item], session_rate: int | None = None) -> list[ItemRegion]:
    """Every item's region; one `ItemError` listing every item that cannot be separated."""
    if not items:
        raise ItemError("select one or more audio items first")
    regions, problems = [], []
    for item in items:
        try:
            regions.append(region_for_item(item, session_rate))
        except ItemError as exc:
            problems.append(str(exc))
    if problems:
        raise ItemError("\n".join(problems))
    return regions


def _toml(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def session_toml(regions: Sequence[ItemRegion], out_dir: Path, preset: str = PRESET) -> str:
    """A `stemlink run` session file (stemlink/plugin_host/SESSION.md): one track per item."""
    if not regions:
        raise ItemError("no regions to separate")
    lines = [f"session_rate = {regions[0].session_rate}", f"preset = {_toml(preset)}", f"out = {_toml(str(out_dir))}", ""]
    for region in regions:
        item = region.item
        lines += [
            "[[tracks]]",
            f"name = {_toml(track_label(item.track_name, item.track_index))}",
            f"file = {_toml(str(Path(item.source_path).resolve()))}",
            "[[tracks.regions]]",
            f"name = {_toml(region.name)}",
            f"start_sample = {region.start_sample}",
            f"end_sample = {region.end_sample}",
            f"timeline_sample = {region.timeline_sample}",
            "",
        ]
    return "\n".join(lines)


def run_command(session: Path, stemlink: str = STEMLINK) -> list[str]:
    return [stemlink, "run", str(session)]


def run_folder(base: Path, now: _dt.datetime) -> Path:
    """A fresh folder per run (stems of an earlier run are never in the way): base/stems-YYYYmmdd-HHMMSS."""
    return base / f"stems-{now:%Y%m%d-%H%M%S}"


def written_files(stdout: str) -> list[Path]:
    """The WAVs `stemlink run` printed (one path a line on stdout)."""
    return [Path(line.strip()) for line in stdout.splitlines() if line.strip().lower().endswith(".wav")]


def read_stem(path: Path, read: Callable[[Path], str] = lambda p: p.read_text(encoding="utf-8")) -> Stem:
    """A written stem from its sidecar JSON (`NAME.json` beside `NAME.wav`)."""
    side = json.loads(read(path.with_suffix(".json")))
    region = side.get("region") or {}
    return Stem(str(side["stem"]), str(region.get("name") or ""), path, int(side["frames"]), int(side["sample_rate"]))


def plan_tracks(regions: Sequence[ItemRegion], stems: Iterable[Stem]) -> list[NewTrack]:
    """The tracks to insert and their clips, in the order to insert them (module docstring)."""
    by_region: dict[str, list[Stem]] = {}
    for stem in stems:
        by_region.setdefault(stem.region, []).append(stem)
    per_track: dict[int, list[ItemRegion]] = {}
    for region in regions:
        per_track.setdefault(region.item.track_index, []).append(region)
    plan: list[NewTrack] = []
    for track_index in sorted(per_track, reverse=True):
        clips: dict[str, list[NewClip]] = {}  # stem -> clips, stems in first-returned order
        name = ""
        for region in per_track[track_index]:
            item = region.item
            name = track_label(item.track_name, item.track_index)
            for stem in by_region.get(region.name, []):
                clip_name = f"{item.take_name or name} - {stem.stem}"
                clips.setdefault(stem.stem, []).append(NewClip(stem.path, item.position, stem.frames / stem.sample_rate, clip_name))
        for k, (stem_name, stem_clips) in enumerate(clips.items()):
            plan.append(NewTrack(track_index + 1 + k, f"{name} - {stem_name}", tuple(stem_clips)))
    return plan


def missing_regions(regions: Sequence[ItemRegion], stems: Iterable[Stem]) -> list[str]:
    """Items stemlink returned no stem for (a message each)."""
    done = {s.region for s in stems}
    return [f"{r.item.label()}: no stems came back" for r in regions if r.name not in done]


class Reaper:
    """The few REAPER API calls the script makes (`reaper_python`; functions with output
    buffers return a tuple of all their arguments, after the return value if any)."""

    def __init__(self, api: Any):
        self.api = api

    def selected_items(self) -> list[Item]:
        a, items = self.api, []
        for i in range(a.RPR_CountSelectedMediaItems(0)):
            item = a.RPR_GetSelectedMediaItem(0, i)
            take = a.RPR_GetActiveTake(item)
            track = a.RPR_GetMediaItem_Track(item)
            track_index = int(a.RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")) - 1
            track_name = a.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3]
            path, rate, length, kind, offset, playrate, take_name = "", 0, 0.0, "", 0.0, 1.0, ""
            if take:
                source = a.RPR_GetMediaItemTake_Source(take)
                path = a.RPR_GetMediaSourceFileName(source, "", 4096)[1]
                rate = int(a.RPR_GetMediaSourceSampleRate(source))
                length = float(a.RPR_GetMediaSourceLength(source, False)[0])
                kind = a.RPR_GetMediaSourceType(source, "", 64)[1]
                offset = float(a.RPR_GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"))
                playrate = float(a.RPR_GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"))
                take_name = a.RPR_GetTakeName(take)
            items.append(
                Item(
                    index=i,
                    track_index=track_index,
                    track_name=track_name,
                    position=float(a.RPR_GetMediaItemInfo_Value(item, "D_POSITION")),
                    length=float(a.RPR_GetMediaItemInfo_Value(item, "D_LENGTH")),
                    start_offset=offset,
                    playrate=playrate,
                    source_path=path,
                    source_rate=rate,
                    source_length=length,
                    source_type=kind,
                    take_name=take_name,
                )
            )
        return items

    def session_rate(self) -> int | None:
        """The project's sample rate when it is set in the project settings, else None."""
        if self.api.RPR_GetSetProjectInfo(0, "PROJECT_SRATE_USE", 0, False):
            return int(self.api.RPR_GetSetProjectInfo(0, "PROJECT_SRATE", 0, False)) or None
        return None

    def project_folder(self) -> Path | None:
        folder = self.api.RPR_GetProjectPath("", 4096)[0]
        return Path(folder) if folder else None

    def insert(self, plan: Sequence[NewTrack]) -> None:
        a = self.api
        a.RPR_Undo_BeginBlock()
        try:
            for new in plan:
                a.RPR_InsertTrackAtIndex(new.insert_at, True)
                track = a.RPR_GetTrack(0, new.insert_at)
                a.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", new.name, True)
                for clip in new.clips:
                    item = a.RPR_AddMediaItemToTrack(track)
                    take = a.RPR_AddTakeToMediaItem(item)
                    a.RPR_SetMediaItemTake_Source(take, a.RPR_PCM_Source_CreateFromFile(str(clip.path)))
                    a.RPR_GetSetMediaItemTakeInfo_String(take, "P_NAME", clip.name, True)
                    a.RPR_SetMediaItemInfo_Value(item, "D_POSITION", clip.position)
                    a.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", clip.length)
        finally:
            a.RPR_Undo_EndBlock("stemlink: separate selected items", -1)
            a.RPR_UpdateArrange()

    def message(self, text: str) -> None:
        self.api.RPR_ShowMessageBox(text, TITLE, 0)


def separate(reaper: Reaper, now: _dt.datetime | None = None, *, preset: str | None = None, stemlink: str | None = None) -> str:
    """Separate the selected items and insert the stems; returns a summary (one line, then one
    per item that got no stems). `preset`, `stemlink`: default `PRESET`, `STEMLINK`."""
    stemlink = stemlink or STEMLINK
    regions = regions_for_items(reaper.selected_items(), reaper.session_rate())
    base = reaper.project_folder() or Path(regions[0].item.source_path).resolve().parent
    out_dir = run_folder(base / "stemlink", now or _dt.datetime.now())
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".stemlink-reaper-", suffix=".toml", dir=out_dir)
    session = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(session_toml(regions, out_dir, preset or PRESET))
        try:
            done = subprocess.run(run_command(session, stemlink), capture_output=True, text=True, check=False)
        except OSError as exc:
            raise ItemError(f"cannot run {stemlink!r} ({exc.strerror or exc}); set STEMLINK_BIN to the stemlink program") from exc
    finally:
        session.unlink(missing_ok=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ItemError(f"stemlink failed (exit {done.returncode}):\n{tail}")
    stems = [read_stem(path) for path in written_files(done.stdout)]
    plan = plan_tracks(regions, stems)
    reaper.insert(plan)
    missing = missing_regions(regions, stems)
    summary = f"{sum(len(t.clips) for t in plan)} stems on {len(plan)} new tracks, files in {out_dir}"
    return "\n".join([summary, *missing])


def main(api: Any | None = None) -> None:
    if api is None:
        try:
            import reaper_python as api  # type: ignore[import-not-found, no-redef]  # only inside REAPER
        except ImportError:
            print("stemlink_separate.py is a REAPER script: load it with Actions > ReaScript: Load... (see README.md)")
            return
    reaper = Reaper(api)
    try:
        reaper.message(separate(reaper))
    except ItemError as exc:
        reaper.message(str(exc))


def _inside_reaper(names: Mapping[str, Any]) -> bool:
    return "RPR_ShowMessageBox" in names  # REAPER puts its API into a script's globals


if __name__ == "__main__" or _inside_reaper(globals()):
    main()
