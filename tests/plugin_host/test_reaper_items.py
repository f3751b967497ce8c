"""The REAPER script's logic without REAPER: item -> region arithmetic (take offset, item length,
playrate 1.0 only), the session file it hands to `stemlink run`, stem naming, the order new
tracks are inserted in, and one round trip through the real CLI with a stand-in for the API."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

from stemlink.plugin_host.daw.reaper import stemlink_separate as script
from stemlink.plugin_host.daw.reaper.stemlink_separate import (
    Item,
    ItemError,
    Reaper,
    Stem,
    plan_tracks,
    read_stem,
    region_for_item,
    regions_for_items,
    session_toml,
    written_files,
)
from stemlink.plugin_host.session import load_session


def item(**fields) -> Item:
    base = dict(
        index=0,
        track_index=0,
        track_name="Mix",
        position=12.5,
        length=2.0,
        start_offset=1.25,
        playrate=1.0,
        source_path="/music/mix.wav",
        source_rate=44100,
        source_length=10.0,
    )
    return Item(**{**base, **fields})


def test_take_offset_and_item_length_become_source_samples():
    region = region_for_item(item(), session_rate=48000)
    assert (region.start_sample, region.end_sample) == (55125, 55125 + 88200)  # 1.25 s .. 3.25 s of the 44.1 kHz file
    assert (region.timeline_sample, region.session_rate, region.name) == (600000, 48000, "item1")
    odd = region_for_item(item(start_offset=17 / 44100, length=44117 / 44100, position=1 + 17 / 48000, index=4), 48000)
    assert (odd.start_sample, odd.end_sample, odd.timeline_sample, odd.name) == (17, 17 + 44117, 48017, "item5")
    assert region_for_item(item(position=2.0)).session_rate == 44100  # no project rate: the file's
    end = region_for_item(item(start_offset=8.0, length=2.0 + 0.4 / 44100))  # rounding at the file's end: clamped
    assert end.end_sample == 441000


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"playrate": 1.5}, "playrate 1.5; stemlink separates at playrate 1.0 only"),
        ({"playrate": 0.999}, "glue the item"),
        ({"source_path": ""}, "no audio file"),
        ({"source_type": "SECTION"}, "section or reversed"),
        ({"start_offset": -0.5}, "before its source begins"),
        ({"start_offset": 9.0}, "past the end of its source mix.wav"),
        ({"length": 0.0}, "empty"),
    ],
)
def test_items_that_cannot_be_separated_say_why(fields, message):
    with pytest.raises(ItemError, match=message):
        region_for_item(item(**fields))


def test_every_bad_item_is_listed_and_nothing_runs():
    with pytest.raises(ItemError) as err:
        regions_for_items([item(), item(index=1, playrate=2.0), item(index=2, track_name="", track_index=3, source_path="")])
    assert str(err.value).splitlines() == [
        "item 2 on track 'Mix': playrate 2; stemlink separates at playrate 1.0 only (the stems would not line up). "
        "Set the take's playrate to 1.0, or glue the item (Item > Glue items) and run again",
        "item 3 on track '': its active take has no audio file (MIDI or empty item)",
    ]
    with pytest.raises(ItemError, match="select one or more audio items"):
        regions_for_items([])


def wav(path: Path, rate: int, seconds: float) -> Path:
    x = (0.1 * np.random.default_rng(0).standard_normal((2, int(rate * seconds)))).astype(np.float32)
    with AudioFile(str(path), "w", rate, 2, bit_depth=32) as f:
        f.write(x)
    return path


def test_the_session_file_is_what_stemlink_run_reads(tmp_path, monkeypatch):
    monkeypatch.delenv("STEMLINK_PRESETS", raising=False)  # the checkout's presets/
    src = wav(tmp_path / 'mix "live".wav', 44100, 4.0)
    items = [
        item(source_path=str(src), source_length=4.0, start_offset=17 / 44100, length=1.0, position=1 + 17 / 48000),
        item(index=1, track_index=2, track_name="", source_path=str(src), source_length=4.0, start_offset=2.0, length=0.5, position=7.0),
    ]
    regions = regions_for_items(items, 48000)
    session = tmp_path / "s.toml"
    session.write_text(session_toml(regions, tmp_path / "out"), encoding="utf-8")
    jobs = load_session(session).jobs
    assert [(j.track, j.region.name, j.region.start, j.region.frames, j.region.timeline) for j in jobs] == [
        ("Mix", "item1", 17, 44100, 48017),
        ("Track 3", "item2", 88200, 22050, 336000),
    ]
    assert all(j.region.session_rate == 48000 and j.out_dir == tmp_path / "out" and j.preset.task == "separate" for j in jobs)


def stems_for(regions, names=("bass", "drums"), folder=Path("/out")):
    return [Stem(s, r.name, folder / f"{r.name}_{s}.wav", 48000 + i, 48000) for i, r in enumerate(regions) for s in names]


def test_new_tracks_go_below_their_track_in_stem_order_and_keep_item_positions():
    items = [
        item(index=0, track_index=2, track_name="Keys", position=30.0),
        item(index=1, track_index=0, track_name="Band", position=4.0),
        item(index=2, track_index=0, track_name="Band", position=10.0, take_name="take B"),
    ]
    regions = regions_for_items(items, 48000)
    plan = plan_tracks(regions, stems_for(regions))
    project = ["Band", "Vox", "Keys", "Drums"]  # REAPER's tracks; each insert shifts what is below
    for new in plan:
        project.insert(new.insert_at, new.name)
    assert project == ["Band", "Band - bass", "Band - drums", "Vox", "Keys", "Keys - bass", "Keys - drums", "Drums"]
    band_bass = next(t for t in plan if t.name == "Band - bass")
    assert [(c.position, c.length, c.name) for c in band_bass.clips] == [
        (4.0, 48001 / 48000, "Band - bass"),
        (10.0, 48002 / 48000, "take B - bass"),
    ]
    assert script.missing_regions(regions, stems_for(regions[:2])) == ["item 3 on track 'Band': no stems came back"]


def test_written_files_and_sidecars_name_the_stem(tmp_path):
    out = "out/a_bass_item1.wav\nout/a_bass_item1.WAV\nsong.dawproject\n\n"
    assert written_files(out) == [Path("out/a_bass_item1.wav"), Path("out/a_bass_item1.WAV")]
    (tmp_path / "x.json").write_text(json.dumps({"stem": "bass", "region": {"name": "item7"}, "frames": 123, "sample_rate": 44100}))
    assert read_stem(tmp_path / "x.wav") == Stem("bass", "item7", tmp_path / "x.wav", 123, 44100)


class FakeReaper:
    """Stands in for `reaper_python` with the calling conventions the script assumes
    (output buffers come back in a tuple of all the arguments)."""

    def __init__(self, items, folder):
        self.items, self.folder, self.calls = items, folder, []
        self.tracks = [{"name": "Mix"}]  # the project's tracks, top to bottom

    def __getattr__(self, name):
        def record(*args):
            self.calls.append((name, args))
            return len(self.calls)

        return record

    def RPR_CountSelectedMediaItems(self, project):
        return len(self.items)

    def RPR_GetSelectedMediaItem(self, project, i):
        return self.items[i]

    def RPR_GetActiveTake(self, it):
        return it

    def RPR_GetMediaItem_Track(self, it):
        return it

    def RPR_GetMediaTrackInfo_Value(self, track, key):
        return track["track"] + 1

    def RPR_GetSetMediaTrackInfo_String(self, track, key, value, set_it):
        if set_it:
            track["name"] = value
        return True, track, key, value if set_it else "Mix", set_it

    def RPR_GetMediaItemTake_Source(self, take):
        return take

    def RPR_GetMediaSourceFileName(self, source, buf, size):
        return source, source["path"], size

    def RPR_GetMediaSourceSampleRate(self, source):
        return 44100

    def RPR_GetMediaSourceLength(self, source, is_qn):
        return 4.0, source, False

    def RPR_GetMediaSourceType(self, source, buf, size):
        return source, "WAVE", size

    def RPR_GetMediaItemTakeInfo_Value(self, take, key):
        return {"D_STARTOFFS": take["offset"], "D_PLAYRATE": 1.0}[key]

    def RPR_GetTakeName(self, take):
        return "mix"

    def RPR_GetMediaItemInfo_Value(self, it, key):
        return {"D_POSITION": it["position"], "D_LENGTH": it["length"]}[key]

    def RPR_GetSetProjectInfo(self, project, key, value, set_it):
        return 48000.0

    def RPR_GetProjectPath(self, buf, size):
        return self.folder, size

    def RPR_InsertTrackAtIndex(self, index, defaults):
        self.tracks.insert(index, {"name": ""})

    def RPR_GetTrack(self, project, index):
        return self.tracks[index]

    def RPR_SetMediaItemInfo_Value(self, it, key, value):
        self.calls.append(("set", (key, value)))


def test_the_script_runs_stemlink_and_inserts_what_came_back(start_server, tmp_path, monkeypatch):
    """The whole script against the real CLI (an echo engine) with a stand-in API."""
    monkeypatch.setenv("STEMLINK_ENGINE", start_server("tcp").address)
    preset = tmp_path / "echo.toml"
    preset.write_text('task = "separate"\nmodel = "echo"\n')
    src = wav(tmp_path / "mix.wav", 44100, 4.0)
    api = FakeReaper(
        [{"track": 0, "path": str(src), "offset": 17 / 44100, "position": 1 + 17 / 48000, "length": 1.0}], str(tmp_path / "project")
    )
    stemlink = str(Path(sys.executable).parent / "stemlink")
    summary = script.separate(Reaper(api), now=dt.datetime(2026, 1, 2, 3, 4, 5), preset=str(preset), stemlink=stemlink)
    out = tmp_path / "project" / "stemlink" / "stems-20260102-030405"
    wavs = sorted(out.glob("*.wav"))
    assert summary == f"{len(wavs)} stems on {len(wavs)} new tracks, files in {out}" and len(wavs) >= 2
    assert not list(out.glob("*.toml"))  # the session file is removed
    created = [args[0] for name, args in api.calls if name == "RPR_PCM_Source_CreateFromFile"]
    assert sorted(created) == [str(p) for p in wavs]
    positions = [value for name, (key, value) in ((n, a) for n, a in api.calls if n == "set") if key == "D_POSITION"]
    lengths = [value for name, (key, value) in ((n, a) for n, a in api.calls if n == "set") if key == "D_LENGTH"]
    assert positions == [1 + 17 / 48000] * len(wavs) and lengths == [1.0] * len(wavs)
    stems = [json.loads(p.with_suffix(".json").read_text())["stem"] for p in wavs]  # sorted by file name = by stem
    assert [t["name"] for t in api.tracks] == ["Mix", *(f"Mix - {s}" for s in stems)]  # below the source, in stem order
    assert [n for n, _ in api.calls][-2:] == ["RPR_Undo_EndBlock", "RPR_UpdateArrange"]
