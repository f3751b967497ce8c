"""Outputs: no silent clobbering, numbered names, atomic writes leave nothing on failure."""

from __future__ import annotations

import pytest

from stemlink.errors import OutputExists
from stemlink.plugin_host.outputs import AtomicFile, plan_outputs


def test_plan_refuses_existing_unless_overwrite_or_number(tmp_path):
    (tmp_path / "t_bass_r.wav").write_bytes(b"old")
    fields = {"track": "t", "region": "r"}
    with pytest.raises(OutputExists, match="t_bass_r.wav"):
        plan_outputs(tmp_path, "{track}_{stem}_{region}.wav", fields, ["bass", "drums"], overwrite=False)
    numbered = plan_outputs(tmp_path, "{track}_{stem}_{region}.wav", fields, ["bass", "drums"], overwrite=False, on_exists="number")
    assert numbered == {"bass": tmp_path / "t_bass_r-2.wav", "drums": tmp_path / "t_drums_r.wav"}
    assert plan_outputs(tmp_path, "{track}_{stem}_{region}.wav", fields, ["bass"], overwrite=True)["bass"] == tmp_path / "t_bass_r.wav"


def test_plan_sanitises_names(tmp_path):
    plan = plan_outputs(tmp_path, "{track}_{stem}.wav", {"track": "../../etc/x y"}, ["bass"], overwrite=False)
    assert plan["bass"].parent == tmp_path and "/" not in plan["bass"].name


def test_same_run_collisions_are_caught(tmp_path):
    taken: set = set()
    plan_outputs(tmp_path, "{stem}.wav", {}, ["bass"], overwrite=False, taken=taken)
    with pytest.raises(OutputExists):
        plan_outputs(tmp_path, "{stem}.wav", {}, ["bass"], overwrite=False, taken=taken)


def test_atomic_file_commit_and_abort(tmp_path):
    target = tmp_path / "a.wav"
    with AtomicFile(target) as fh:
        fh.write(b"new")
        assert not target.exists()  # invisible until committed
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError):
        with AtomicFile(tmp_path / "b.wav") as fh:
            fh.write(b"partial")
            raise RuntimeError("engine died")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]  # no partial file, no temp file
    with pytest.raises(OutputExists):
        with AtomicFile(target) as fh:
            fh.write(b"clobber")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
    with AtomicFile(target, overwrite=True) as fh:
        fh.write(b"newer")
    assert target.read_bytes() == b"newer"
