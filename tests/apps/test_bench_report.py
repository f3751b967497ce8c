"""BENCHMARKS.md sections rendered from results records (no models needed)."""

from __future__ import annotations

from stemlink.apps.bench.report import _md_riff

RUN = {
    "data": "data/mma-ood44", "model": "riff-small", "steps": 5, "condition": "text+ctx", "fad": 0.8, "kd": 0.002,
    "density": 0.7, "coverage": 1.0, "apa": 0.35, "cocola": 11.9, "cocola_ratio": 1.06, "clap_aa": 0.18, "clap_ta": 0.07,
    "audible": 1.0, "text_retrieval": 0.125, "text_chance": 1 / 6, "text_retrieval_true": 0.5, "seconds_per_10s_item": 0.7,
}  # fmt: skip


def test_riff_table_shows_generated_and_true_parts_text_retrieval():
    lines = _md_riff({"items": 8, "runs": [RUN, {k: v for k, v in RUN.items() if k != "text_retrieval_true"}]}, {})
    header = next(line for line in lines if "text R@1 (chance)" in line)
    assert "true parts' R@1" in header
    rows = [line for line in lines if line.startswith("| data/mma-ood44") and "0.12 (0.17)" in line]
    assert len(rows) == 2 and "| 0.50 |" in rows[0] and "| 0.50 |" not in rows[1]  # an older record: shown as missing
