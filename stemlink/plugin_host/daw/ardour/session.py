"""Ardour session files (`NAME.ardour`, XML, format 7000-7003: Ardour 7 and 8): read the audio
regions, add one track per returned stem.

What is read (`read_session`)::

    <Session version="7002" name=NAME sample-rate=RATE id-counter=N>
      <Config><Option name="audio-search-path" value="DIR:DIR"/>...
      <Sources><Source id=S name=FILE type="audio" channel=C/>         FILE: relative to
                                                                      interchange/*/audiofiles/,
                                                                      or absolute (embedded)
      <Routes><Route id=R name=TRACK audio-playlist=P>...                audio tracks
      <Playlists><Playlist id=P orig-track-id=R>
                   <Region id=G name=NAME start="a<sc>" length="a<sc>@a<sc>" scale-amplitude=g
                           source-0=S master-source-0=S channels=N .../>

Times are Ardour's superclock (`a<ticks>`, 282,240,000 ticks per second; `length` is a distance
with its position after `@`), converted to samples at the session rate exactly as Ardour does
(`superclock * rate // 282240000`: an integer for every common rate). A region glued to musical
time (`b<beats>`) is refused: stemlink would need the tempo map to place it. Compound regions
(playlist sources), MIDI and non-audio sources are refused by name. A region stemlink cannot
read (one of those, or a missing source file) is kept with its reason in `problem`: it is an
error only when chosen, so one missing file does not lock the rest of a session away.

What is written (`add_stem_tracks`): for each new track, a `Route` built from the template of an
Ardour 7.3 audio track (`route_template.py`: the same processors, controls and automation lists
Ardour writes for a new track, its output connected to the Master bus), a `Playlist` holding one
`Region` at the original region's position and length, whole-file `Region`s in `<Regions>` and
one `Source` per channel of the stem file (which lies in the session's own
`interchange/NAME/audiofiles/`). Every new object takes a fresh id above `id-counter`, which is
bumped; track names are made unique. Nothing else in the file is touched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from stemlink.errors import InvalidInput

SUPERCLOCK_RATE = 282_240_000  # Ardour's superclock ticks per second (the TempoMap says so too)
KNOWN_VERSIONS = range(7000, 7004)  # session formats of Ardour 7.0 .. 8.x (tested: 7002, Ardour 7.3)
SUFFIX = ".ardour"


class SessionFormatError(InvalidInput):
    """The file is not an Ardour session stemlink can read (format, version, or content)."""

    code = "ARDOUR_SESSION"


@dataclass(frozen=True)
class SourceChannel:
    """One channel of a region: a channel of an audio file."""

    id: str
    path: Path
    channel: int


@dataclass(frozen=True)
class ArdourRegion:
    """An audio region on a track's playlist, in samples at the session rate."""

    id: str
    name: str
    track: str
    route_id: str
    position: int  # timeline position
    start: int  # offset into the source files
    length: int
    gain: float  # the region's `scale-amplitude`
    sources: tuple[SourceChannel, ...]
    problem: str | None = None  # why stemlink cannot read this region (missing file, compound...); None: it can

    @property
    def channels(self) -> int:
        return len(self.sources)


@dataclass
class ArdourSession:
    path: Path
    tree: ET.ElementTree[ET.Element]
    version: int
    sample_rate: int
    name: str
    regions: tuple[ArdourRegion, ...]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def root(self) -> ET.Element:
        root = self.tree.getroot()
        assert root is not None
        return root

    @property
    def audio_dir(self) -> Path:
        """Where Ardour keeps this session's own audio files."""
        return self.folder / "interchange" / self.name / "audiofiles"

    def track_names(self) -> set[str]:
        return {r.get("name", "") for r in self.root.iterfind("Routes/Route")}


def samples(clock: int, rate: int) -> int:
    """Superclock ticks -> samples at `rate` (Ardour's superclock_to_samples)."""
    return clock * rate // SUPERCLOCK_RATE


def superclock(frames: int, rate: int) -> int:
    """Samples at `rate` -> superclock ticks (exact for rates dividing 282,240,000)."""
    return (frames * SUPERCLOCK_RATE + rate // 2) // rate


def parse_time(text: str | None, what: str) -> int:
    """`a<ticks>` -> ticks; beat time and garbage are refused."""
    if text is None:
        raise SessionFormatError(f"{what}: missing", field="session")
    if text.startswith("b"):
        raise SessionFormatError(
            f"{what} is in musical time ({text}): stemlink reads regions placed in audio time; "
            "set the region's time domain to audio (Region > Properties > Lock to audio time) and save",
            field="session",
        )
    match = re.fullmatch(r"a(-?\d+)", text)
    if not match:
        raise SessionFormatError(f"{what}: not an Ardour time: {text!r}", field="session")
    return int(match.group(1))


def parse_length(text: str | None, what: str) -> tuple[int, int]:
    """`a<distance>@a<position>` -> (distance, position) in ticks."""
    if text is None or "@" not in text:
        raise SessionFormatError(f"{what}: expected LENGTH@POSITION, got {text!r}", field="session")
    distance, position = text.split("@", 1)
    return parse_time(distance, what), parse_time(position, what)


def _int(node: ET.Element, key: str, what: str) -> int:
    try:
        return int(node.get(key, ""))
    except ValueError as exc:
        raise SessionFormatError(f"{what}: attribute {key!r} is not an integer: {node.get(key)!r}", field="session") from exc


def read_session(path: str | Path) -> ArdourSession:
    """Parse `NAME.ardour`; `SessionFormatError` (one line) for anything stemlink cannot read."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise SessionFormatError(f"{path}: an Ardour session file ends in {SUFFIX}", field="session")
    if not path.is_file():
        raise SessionFormatError(f"Ardour session not found: {path}", field="session")
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as exc:
        raise SessionFormatError(f"{path}: not a readable Ardour session file: {exc}", field="session") from exc
    root = tree.getroot()
    if root is None or root.tag != "Session":
        raise SessionFormatError(
            f"{path}: not an Ardour session (root element {root.tag if root is not None else None!r})", field="session"
        )
    version = _int(root, "version", f"{path}: Session")
    if version not in KNOWN_VERSIONS:
        raise SessionFormatError(
            f"{path}: session format version {version} is unknown to stemlink "
            f"(known: {KNOWN_VERSIONS.start}-{KNOWN_VERSIONS.stop - 1}, Ardour 7-8); not touched",
            field="session",
        )
    rate = _int(root, "sample-rate", f"{path}: Session")
    name = root.get("name") or path.stem
    session = ArdourSession(path=path, tree=tree, version=version, sample_rate=rate, name=name, regions=())
    session.regions = tuple(_regions(session))
    return session


def _search_dirs(session: ArdourSession) -> list[Path]:
    dirs = sorted(p for p in (session.folder / "interchange").glob("*/audiofiles") if p.is_dir())
    dirs.sort(key=lambda p: p.parent.name != session.name)  # the session's own folder first
    for option in session.root.iterfind("Config/Option"):
        if option.get("name") == "audio-search-path" and option.get("value"):
            dirs.extend(Path(d) for d in option.get("value", "").split(os.pathsep) if d)
    return dirs


def _sources(session: ArdourSession) -> dict[str, ET.Element]:
    return {s.get("id", ""): s for s in session.root.iterfind("Sources/Source")}


def _source_channel(session: ArdourSession, node: ET.Element, dirs: list[Path], what: str) -> SourceChannel:
    if node.get("type", "audio") != "audio":
        raise SessionFormatError(f"{what}: a {node.get('type')} source; stemlink separates audio regions", field="regions")
    if node.get("playlist") is not None or node.get("original") is not None:
        raise SessionFormatError(f"{what}: a compound region (its source is a playlist); unsupported", field="regions")
    name = node.get("name", "")
    channel = int(node.get("channel", "0") or 0)
    if os.path.isabs(name):
        path = Path(name)
        if not path.is_file():
            raise SessionFormatError(f"{what}: its embedded file {path} is missing", field="regions")
        return SourceChannel(node.get("id", ""), path, channel)
    for folder in dirs:
        if (folder / name).is_file():
            return SourceChannel(node.get("id", ""), folder / name, channel)
    raise SessionFormatError(f"{what}: source file {name!r} not found in {', '.join(map(str, dirs)) or 'interchange/'}", field="regions")


def _regions(session: ArdourSession) -> list[ArdourRegion]:
    sources = _sources(session)
    dirs = _search_dirs(session)
    routes = {r.get("audio-playlist"): r for r in session.root.iterfind("Routes/Route") if r.get("audio-playlist")}
    regions = []
    for playlist in session.root.iterfind("Playlists/Playlist"):
        if playlist.get("type", "audio") != "audio":
            continue
        route = routes.get(playlist.get("id"))
        if route is None:
            continue  # an unused take playlist: not on any track
        track = route.get("name", "")
        for node in playlist.iterfind("Region"):
            name = node.get("name", "")
            what = f"region {name!r} (id {node.get('id')}) on track {track!r}"
            distance, position = parse_length(node.get("length"), f"{what}: length")
            start = parse_time(node.get("start"), f"{what}: start")
            n = _int(node, "channels", what) if node.get("channels") else 1
            chans, problem = [], None
            try:  # a region stemlink cannot read stops a job only when it is chosen
                for c in range(n):
                    sid = node.get(f"source-{c}")
                    if sid not in sources:
                        raise SessionFormatError(f"{what}: source-{c} {sid!r} is not in <Sources>", field="session")
                    chans.append(_source_channel(session, sources[sid], dirs, what))
            except SessionFormatError as exc:
                chans, problem = [], exc.message
            regions.append(
                ArdourRegion(
                    id=node.get("id", ""),
                    name=name,
                    track=track,
                    route_id=route.get("id", ""),
                    position=samples(position, session.sample_rate),
                    start=samples(start, session.sample_rate),
                    length=samples(distance, session.sample_rate),
                    gain=float(node.get("scale-amplitude", "1") or 1),
                    sources=tuple(chans),
                    problem=problem,
                )
            )
    return regions


def select_regions(session: ArdourSession, wanted: Sequence[str]) -> list[ArdourRegion]:
    """Regions by name or id, in the order asked; an unknown or ambiguous one is an error listing the choices."""
    chosen = []
    for key in wanted:
        by_id = [r for r in session.regions if r.id == key]
        match = by_id or [r for r in session.regions if r.name == key]
        if not match:
            raise InvalidInput(f"no audio region named or with id {key!r}; the session has: {describe(session.regions)}", field="regions")
        if len(match) > 1:
            raise InvalidInput(
                f"region name {key!r} is ambiguous ({', '.join(f'id {r.id} on {r.track!r}' for r in match)}): give its id",
                field="regions",
            )
        if match[0].problem:
            raise SessionFormatError(match[0].problem, field="regions")
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def describe(regions: Sequence[ArdourRegion]) -> str:
    if not regions:
        return "(no audio regions)"
    return ", ".join(f"{r.name!r} (id {r.id}, track {r.track!r})" for r in regions)


# --- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StemTrack:
    """A new track holding one stem file at the position of the region it came from."""

    name: str  # wanted track name (made unique on insertion)
    file: Path  # the stem WAV, inside `session.audio_dir`, at the session rate
    channels: int
    frames: int  # file length = region length
    position: int  # timeline position, session samples
    region_name: str
    start: int = 0  # offset into the file, session samples (0 for a returned stem)
    file_frames: int | None = None  # the file's length, if longer than `start + frames`


class IdCounter:
    """Fresh object ids above the session's `id-counter` (and above every id in use)."""

    def __init__(self, root: ET.Element):
        used = [int(v) for node in root.iter() for k, v in node.attrib.items() if k == "id" and v.isdigit()]
        self.next = max([int(root.get("id-counter", "0") or 0), *used]) + 1
        self.root = root

    def __call__(self) -> str:
        value, self.next = self.next, self.next + 1
        self.root.set("id-counter", str(self.next))
        return str(value)


def unique_name(name: str, taken: set[str]) -> str:
    name = name.replace("/", "-").replace(":", "-").strip() or "stem"  # Ardour's port names use both
    if name not in taken:
        return name
    n = 2
    while f"{name} {n}" in taken:
        n += 1
    return f"{name} {n}"


def add_stem_tracks(session: ArdourSession, tracks: Sequence[StemTrack]) -> list[str]:
    """Add one audio track per `StemTrack` (see module docstring); returns the track names used."""
    from stemlink.plugin_host.daw.ardour.route_template import audio_route

    root = session.root
    ids = IdCounter(root)
    rate = session.sample_rate
    sources_node = _child(root, "Sources", before="Regions")
    regions_node = _child(root, "Regions", before="Locations")
    routes_node = _child(root, "Routes", before="Playlists")
    playlists_node = _child(root, "Playlists", before="UnusedPlaylists")
    taken = session.track_names()
    orders = [int(p.get("order", "0")) for p in root.iterfind("Routes/Route/PresentationInfo") if p.get("order", "").isdigit()]
    order = max(orders, default=-1) + 1
    names = []
    for track in tracks:
        name = unique_name(track.name, taken)
        taken.add(name)
        names.append(name)
        rel = track.file.name
        source_ids = []
        for c in range(track.channels):
            sid = ids()
            source_ids.append(sid)
            ET.SubElement(
                sources_node,
                "Source",
                {
                    "name": rel,
                    "type": "audio",
                    "flags": "",
                    "id": sid,
                    "captured-for": "",
                    "take-id": "",
                    "channel": str(c),
                    "origin": "",
                    "gain": "1",
                },
            )
        length = f"a{superclock(track.frames, rate)}"
        whole_length = f"a{superclock(track.file_frames or track.start + track.frames, rate)}"
        src = {f"source-{c}": sid for c, sid in enumerate(source_ids)} | {f"master-source-{c}": sid for c, sid in enumerate(source_ids)}
        whole = _region_attrs(Path(rel).stem, ids(), f"{whole_length}@a0", "a0", track.channels, src, whole_file=True)
        ET.SubElement(regions_node, "Region", whole)
        route_id, playlist_id = ids(), ids()
        playlist = ET.SubElement(
            playlists_node,
            "Playlist",
            {
                "id": playlist_id,
                "name": name,
                "type": "audio",
                "orig-track-id": route_id,
                "pgroup-id": "",
                "shared-with-ids": "",
                "frozen": "0",
                "combine-ops": "0",
            },
        )
        placed = f"{length}@a{superclock(track.position, rate)}"
        offset = f"a{superclock(track.start, rate)}"
        ET.SubElement(playlist, "Region", _region_attrs(track.region_name, ids(), placed, offset, track.channels, src, whole_file=False))
        routes_node.append(audio_route(name, route_id, playlist_id, track.channels, order, ids))
        _connect_master(root, name, track.channels)
        order += 1
    _ensure_session_range(root, ids, max((superclock(t.position + t.frames, rate) for t in tracks), default=0))
    return names


def _ensure_session_range(root: ET.Element, ids: IdCounter, end: int) -> None:
    """A session with no region yet has no session range; Ardour adds one with the first region
    (and `ardour7-export` renders only within it): add one from 0 to the new regions' end."""
    locations = _child(root, "Locations", before="Bundles")
    if any("IsSessionRange" in (n.get("flags") or "") for n in locations.iterfind("Location")):
        return
    ET.SubElement(
        locations,
        "Location",
        {
            "id": ids(),
            "name": "session",
            "start": "a0",
            "end": f"a{end}",
            "flags": "IsSessionRange",
            "locked": "0",
            "timestamp": "0",
            "cue": "0",
        },
    )


def _connect_master(root: ET.Element, name: str, channels: int) -> None:
    """Ardour writes a connection on both of its ends: the Master bus's inputs list the new outputs."""
    master = next((r for r in root.iterfind("Routes/Route") if r.get("name") == "Master"), None)
    if master is None:
        return
    io = next((n for n in master.iterfind("IO") if n.get("direction") == "Input"), None)
    ports = [] if io is None else io.findall("Port")
    for c in range(channels):
        if ports:
            ET.SubElement(ports[c % len(ports)], "Connection", {"other": f"{name}/audio_out {c + 1}"})


def _child(root: ET.Element, tag: str, before: str) -> ET.Element:
    node = root.find(tag)
    if node is None:
        node = ET.Element(tag)
        anchor = root.find(before)
        root.insert(list(root).index(anchor) if anchor is not None else len(root), node)
    return node


def _region_attrs(
    name: str, rid: str, length: str, start: str, channels: int, sources: dict[str, str], *, whole_file: bool
) -> dict[str, str]:
    flag = "1" if whole_file else "0"
    return {
        "name": name,
        "muted": "0",
        "opaque": "1",
        "locked": "0",
        "video-locked": "0",
        "automatic": "0",
        "whole-file": flag,
        "import": "0",
        "external": "0",
        "sync-marked": "0",
        "left-of-split": "0",
        "right-of-split": "0",
        "hidden": "0",
        "position-locked": "0",
        "valid-transients": "0",
        "start": start,
        "length": length,
        "sync-position": "a0",
        "ancestral-start": "a0",
        "ancestral-length": "a0@a0",
        "stretch": "1",
        "shift": "1",
        "layering-index": "0",
        "tags": "stemlink",
        "reg-group": "-1",
        "contents": "0",
        "envelope-active": "0",
        "default-fade-in": "1",
        "default-fade-out": "1",
        "fade-in-active": "1",
        "fade-out-active": "1",
        "scale-amplitude": "1",
        "id": rid,
        "type": "audio",
        "first-edit": "nothing",
        **sources,
        "channels": str(channels),
    }


def write_session(session: ArdourSession, path: Path) -> None:
    """Serialize to `path` (Ardour's own layout: XML declaration, two-space indentation)."""
    ET.indent(session.tree, space="  ")
    session.tree.write(path, encoding="UTF-8", xml_declaration=True)
