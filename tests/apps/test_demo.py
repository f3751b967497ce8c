"""`stemlink demo` end to end on tiny debug exports (no trained checkpoint): files, exact lengths,
BWF TimeReference, stems summing to the mix, report references, last line, no clobbering, and
the report's CLI command reproducing the separation."""

from __future__ import annotations

import contextlib
import html
import io
import re
import shlex
import struct
from pathlib import Path

import numpy as np
import pytest

from stemlink import cli
from stemlink.apps.demo import DEMO_SONG, DemoConfig

RATE = 44100


def read_bwf(path: Path) -> tuple[np.ndarray, int, int]:
    """A minimal RIFF parser: (float32 (C, N) audio, sample rate, bext TimeReference)."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos, chunks = 12, {}
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks[cid] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    fmt_tag, channels, rate = struct.unpack("<HHI", chunks[b"fmt "][:8])
    bits = struct.unpack("<H", chunks[b"fmt "][14:16])[0]
    assert (fmt_tag, bits) == (3, 32), "the demo writes float32 WAVs"
    low, high = struct.unpack("<II", chunks[b"bext"][338:346])  # TimeReference, after the text fields
    audio = np.frombuffer(chunks[b"data"], dtype="<f4").reshape(-1, channels).T
    return audio, rate, low + (high << 32)


def read_song(name: str, start: float, end: float) -> np.ndarray:
    from pedalboard.io import AudioFile

    with AudioFile(str(DEMO_SONG / f"{name}.flac")) as f:
        f.seek(int(round(start * RATE)))
        return f.read(int(round(end * RATE)) - int(round(start * RATE)))


@pytest.fixture(scope="module", autouse=True)
def fixed_threads():
    """One thread count for every run in this module: the thread policy follows the machine's
    load, and a different count may round differently, so "the report's command reproduces
    the separation" is only bit-exact with the count fixed."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEMLINK_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from stemlink.lab.debug import build_debug_exports

    return build_debug_exports(tmp_path_factory.mktemp("exports"), formats=("torchscript",))


@pytest.fixture(scope="module")
def demo(exports, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["demo", "--quick", "--steps", "2", "--exports", str(exports), "--out", str(out)])
    return code, out, stdout.getvalue().splitlines()


@pytest.mark.timeout(240)
def test_demo_writes_stems_report_and_last_line(demo):
    code, out, lines = demo
    quick = DemoConfig.quick()
    assert code == 0
    assert lines[-1] == str((out / "report.html").resolve())
    (s0, s1), (a0, a1) = quick.separate_region, quick.accompany_region
    separated = {}
    for stem in ("bass", "drums", "guitar", "piano"):
        wav = out / "separate" / f"demo_{stem}_{int(s0 * RATE)}.wav"
        audio, rate, time_reference = read_bwf(wav)
        assert (rate, audio.shape) == (RATE, (2, int(round((s1 - s0) * RATE))))
        assert time_reference == int(s0 * RATE)
        assert wav.with_suffix(".json").is_file()
        separated[stem] = audio
    # Dirac separation: the stems sum to the input region
    assert np.abs(sum(separated.values()) - read_song("mix", s0, s1)).max() < 1e-3
    generated = sorted((out / "accompany").glob("demo_piano_*.wav"))
    assert len(generated) == 1
    audio, rate, time_reference = read_bwf(generated[0])
    assert (rate, audio.shape, time_reference) == (RATE, (2, int(round((a1 - a0) * RATE))), int(a0 * RATE))
    context, _, context_reference = read_bwf(out / "inputs" / "context.wav")
    assert context_reference == int(a0 * RATE)
    want = sum(read_song(s, a0, a1) for s in ("bass", "drums", "guitar"))
    assert np.abs(context - want).max() < 1e-6
    page = (out / "report.html").read_text()
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) == 1 + 8 + 1 + 1 + 2  # mix, truth + separated x4, context, generated, 2 references
    for png in pngs:
        assert f"figures/{png.name}" in page
    for wav in [*out.glob("separate/*.wav"), *out.glob("accompany/*.wav"), *out.glob("inputs/*.wav")]:
        assert str(wav.relative_to(out)) in page
    for text in ("SI-SDRi", "COCOLA", "stemlink separate", "stemlink accompany", "stemlink score"):
        assert text in page


def test_demo_refuses_to_clobber(demo, exports, capsys):
    _, out, _ = demo
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code = cli.main(["demo", "--quick", "--exports", str(exports), "--out", str(out)])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@pytest.mark.timeout(120)
def test_report_command_reproduces_the_separation(demo, exports, tmp_path, monkeypatch):
    _, out, _ = demo
    page = html.unescape((out / "report.html").read_text())
    line = next(text for text in page.splitlines() if re.search(r"\bstemlink separate\b", text))
    argv = shlex.split(line)
    assert argv[0] == f"STEMLINK_EXPORTS={exports}" and argv[1] == "stemlink"
    argv = argv[2:]
    argv[argv.index("--out") + 1] = str(tmp_path / "again")
    monkeypatch.setenv("STEMLINK_EXPORTS", str(exports))
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    assert cli.main(argv) == 0
    for wav in (out / "separate").glob("*.wav"):
        assert np.array_equal(read_bwf(wav)[0], read_bwf(tmp_path / "again" / wav.name)[0])


@pytest.mark.timeout(180)
def test_demo_without_a_score_model(exports, tmp_path):
    """No COCOLA in the exports: the demo still separates and accompanies (one unranked
    candidate) and says in the report that scoring was skipped."""
    import json
    import shutil

    only_msdm = tmp_path / "exports"
    shutil.copytree(exports, only_msdm)
    manifest = json.loads((only_msdm / "manifest.json").read_text())
    manifest["models"] = [m for m in manifest["models"] if m["family"] != "cocola"]
    manifest.get("defaults", {}).pop("score", None)
    (only_msdm / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "demo-out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(["demo", "--quick", "--steps", "1", "--exports", str(only_msdm), "--out", str(out)]) == 0
    assert "no model serves 'score'" in stdout.getvalue()
    page = (out / "report.html").read_text()
    assert "Skipped: the exports have no model serving" in page and "not ranked" in page
    (sidecar,) = (out / "accompany").glob("*.json")
    assert json.loads(sidecar.read_text())["info"]["ranked"] is False
