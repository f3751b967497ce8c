"""Smoke test of the bridge benchmark (schema and sanity, tiny sizes)."""

from __future__ import annotations

from stemlink.apps.bench.bridge import bench_bridge, format_report


def test_bench_bridge_smoke():
    result = bench_bridge(n=2, seconds=0.5, transports=("inproc", "tcp"), child_process=False)
    assert result["region"]["bytes"] == 2 * 22050 * 4
    assert set(result["job_ms"]) == set(result["overhead_ms"]) == set(result["transport_ms"]) == {"inproc", "tcp"}
    assert all(v > 0 for v in result["job_ms"].values()) and result["direct_ms"] > 0
    assert all(0 < v < result["job_ms"][t] + 50 for t, v in result["transport_ms"].items())
    assert "child_process" not in result
    assert "inproc" in format_report(result)
