"""The apply-layer scale benchmark runs and measures a file-to-files job of the right length."""

from __future__ import annotations

from stemlink.apps.bench.scale import RATE, run_one


def test_run_one_short(tmp_path):
    result = run_one(2.0, tmp_path)
    assert result["frames"] == 2 * RATE
    assert result["wall"] > 0 and result["peak_rss_mb"] >= result["rss_before_mb"] * 0.5
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["bass.wav", "drums.wav", "guitar.wav", "input.wav", "piano.wav"]
