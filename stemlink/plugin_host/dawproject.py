"""The written stems as a DAWproject file (`--dawproject OUT.dawproject`), for Bitwig Studio,
Studio One and the other DAWs that open the open exchange format (github.com/bitwig/dawproject).

A `.dawproject` file is a zip holding `project.xml` (the format's `Project` element, version
1.0), `metadata.xml` (`MetaData`) and, here, the audio: every stem WAV is embedded in the zip
under `audio/` (the format's default: a `File` path without `external="true"` is a path inside
the container), so the project opens wherever it is copied to. The zip stores the WAVs as they
are (no compression: PCM barely compresses and the copy stays fast).

What the project holds, for the stems of one run::

    Structure: one audio Track (with its Channel) per `StemClip.track`, in first-seen order,
               routed to a master Track
    Arrangement: Lanes timeUnit="seconds", one Lanes per track, with one Clip per stem file:
        <Clip time=POSITION duration=LENGTH playStart="0" name=REGION>
          <Audio timeUnit="seconds" duration=LENGTH sampleRate=RATE channels=N>
            <File path="audio/NAME.wav"/>

Times are seconds (`timeUnit="seconds"`: no tempo map is involved), written as the shortest
decimal that reads back as the same double as `samples / rate` (Python's `repr`), so a reader
gets the region's sample back exactly with `round(seconds * rate)`. The position is the
region's timeline position at the session rate (`StemClip.position` / `position_rate`), the
length the stem's frames at its own rate.

Like every other output the file is written to a temp file beside it and moved into place;
an existing file is refused with `OutputExists` unless overwriting was asked for. No torch,
no numpy: the standard library's `xml.etree` and `zipfile`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from stemlink.errors import InvalidInput, OutputError, OutputExists
from stemlink.plugin_host.outputs import SPACE_MARGIN, AtomicFile, check_out_dir, io_error

FORMAT_VERSION = "1.0"  # the `Project version` this writer follows (the format's current one)
SUFFIX = ".dawproject"
PROJECT_XML = "project.xml"
METADATA_XML = "metadata.xml"
AUDIO_FOLDER = "audio"


@dataclass(frozen=True)
class StemClip:
    """One written stem file placed on the timeline."""

    track: str  # DAW track name: clips with the same name share a track
    path: Path  # the written WAV
    sample_rate: int  # of the WAV
    channels: int
    frames: int  # length of the WAV, at `sample_rate`
    position: int  # timeline position in samples at `position_rate`
    position_rate: int  # the session (timeline) rate
    name: str = ""  # clip name (the region's label)

    @property
    def start_seconds(self) -> float:
        return self.position / self.position_rate

    @property
    def length_seconds(self) -> float:
        return self.frames / self.sample_rate


def seconds(value: float) -> str:
    """A time in seconds as the shortest decimal that reads back as the same double."""
    return repr(float(value))


def check_dawproject_path(path: str | Path, *, overwrite: bool) -> Path:
    """Refuse a bad `--dawproject` target before any work: wrong suffix, a folder, an existing
    file (unless `overwrite`), an unwritable folder (`OutputError`). Returns the path."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise InvalidInput(f"--dawproject {path}: the file name must end in {SUFFIX}", field="dawproject")
    if path.is_dir():
        raise OutputError(f"--dawproject {path} is a directory, not a file name", field="dawproject")
    if not overwrite and os.path.lexists(path):
        raise OutputExists(f"output {path} already exists; pass --overwrite or choose another --dawproject", field="dawproject")
    check_out_dir(path.parent)
    return path


def write_dawproject(path: str | Path, clips: Sequence[StemClip], *, title: str = "", overwrite: bool = False) -> Path:
    """Write `clips` (their WAVs embedded) as a DAWproject file at `path`; returns the path."""
    path = check_dawproject_path(path, overwrite=overwrite)
    if not clips:
        raise InvalidInput("a DAWproject needs at least one stem", field="dawproject")
    entries = _entry_names(clip.path for clip in clips)
    try:
        need = sum(clip.path.stat().st_size for clip in clips) + SPACE_MARGIN
    except OSError as exc:
        raise OutputError(f"cannot read a stem for {path}: {exc.strerror or exc}", field="dawproject") from exc
    check_out_dir(path.parent, need)
    project = project_xml(clips, entries)
    metadata = metadata_xml(title or path.stem)
    out = AtomicFile(path, overwrite=overwrite)
    try:
        with zipfile.ZipFile(out.fh, "w") as zf:
            zf.writestr(METADATA_XML, metadata, compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr(PROJECT_XML, project, compress_type=zipfile.ZIP_DEFLATED)
            for clip, entry in zip(clips, entries, strict=True):
                zf.write(clip.path, entry, compress_type=zipfile.ZIP_STORED)
        out.finish()
    except OSError as exc:
        out.abort()
        raise io_error(path, exc) from exc
    except BaseException:
        out.abort()
        raise
    return out.commit()


def _entry_names(paths: Iterable[Path]) -> list[str]:
    """`audio/NAME.wav` for each file; a name used twice (two output folders) gets `-2`, `-3`..."""
    names: list[str] = []
    used: set[str] = set()
    for p in paths:
        entry, n = f"{AUDIO_FOLDER}/{p.name}", 2
        while entry.lower() in used:
            entry, n = f"{AUDIO_FOLDER}/{p.stem}-{n}{p.suffix}", n + 1
        used.add(entry.lower())
        names.append(entry)
    return names


class _Ids:
    """Unique `xs:ID` values (an ID must not start with a digit)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"id{self.n}"


def _channel(parent: ET.Element, ids: _Ids, *, role: str, channels: int, destination: str | None) -> ET.Element:
    channel = ET.SubElement(parent, "Channel", id=ids(), role=role, audioChannels=str(channels), solo="false")
    if destination is not None:
        channel.set("destination", destination)
    # the schema's order: Devices?, Mute?, Pan?, Sends?, Volume?
    ET.SubElement(channel, "Mute", id=ids(), name="Mute", value="false")
    ET.SubElement(channel, "Pan", id=ids(), name="Pan", unit="normalized", min="0.0", max="1.0", value="0.5")
    ET.SubElement(channel, "Volume", id=ids(), name="Volume", unit="linear", min="0.0", max="2.0", value="1.0")
    return channel


def project_xml(clips: Sequence[StemClip], entries: Sequence[str]) -> bytes:
    """The `project.xml` of `clips`, each referring to its zip entry in `entries`."""
    from stemlink import __version__

    ids = _Ids()
    root = ET.Element("Project", version=FORMAT_VERSION)
    ET.SubElement(root, "Application", name="stemlink", version=__version__)
    transport = ET.SubElement(root, "Transport")  # not used by seconds-based clips; importers expect one
    ET.SubElement(transport, "Tempo", id=ids(), name="Tempo", unit="bpm", min="20.0", max="666.0", value="120.0")
    ET.SubElement(transport, "TimeSignature", id=ids(), name="Time Signature", numerator="4", denominator="4")
    structure = ET.SubElement(root, "Structure")
    tracks: dict[str, ET.Element] = {}
    track_channels: dict[str, ET.Element] = {}
    for clip in clips:
        if clip.track not in tracks:
            tracks[clip.track] = ET.SubElement(structure, "Track", id=ids(), name=clip.track, contentType="audio", loaded="true")
    master = ET.SubElement(structure, "Track", id=ids(), name="Master", contentType="audio", loaded="true")
    master_channel = _channel(master, ids, role="master", channels=max(c.channels for c in clips), destination=None)
    for clip in clips:
        if clip.track not in track_channels:
            track_channels[clip.track] = _channel(
                tracks[clip.track], ids, role="regular", channels=clip.channels, destination=master_channel.get("id")
            )
    arrangement = ET.SubElement(root, "Arrangement", id=ids())
    lanes = ET.SubElement(arrangement, "Lanes", id=ids(), timeUnit="seconds")
    track_clips: dict[str, ET.Element] = {}
    for name, track in tracks.items():
        lane = ET.SubElement(lanes, "Lanes", id=ids(), track=track.get("id", ""))
        track_clips[name] = ET.SubElement(lane, "Clips", id=ids())
    for clip, entry in zip(clips, entries, strict=True):
        length = seconds(clip.length_seconds)
        element = ET.SubElement(
            track_clips[clip.track],
            "Clip",
            time=seconds(clip.start_seconds),
            duration=length,
            playStart="0.0",
            name=clip.name or clip.path.stem,
        )
        audio = ET.SubElement(
            element,
            "Audio",
            id=ids(),
            timeUnit="seconds",
            duration=length,
            sampleRate=str(clip.sample_rate),
            channels=str(clip.channels),
            name=clip.path.stem,
        )
        ET.SubElement(audio, "File", path=entry)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def metadata_xml(title: str) -> bytes:
    root = ET.Element("MetaData")
    ET.SubElement(root, "Title").text = title
    ET.SubElement(root, "Comment").text = "stems written by stemlink"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
