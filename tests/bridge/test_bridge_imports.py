"""The bridge only speaks the protocol: importing it loads no torch and nothing of the engine or
the lab, in a fresh interpreter (what a DAW host or script pays to talk to an engine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
bad = sorted(m for m in sys.modules if m in ("torch", "onnxruntime") or m.startswith(("stemlink.engine", "stemlink.lab")))
print(json.dumps(bad))
"""


def loaded(*modules: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "modules",
    [
        ("stemlink.bridge", "stemlink.bridge.client"),
        ("stemlink.bridge.protocol", "stemlink.bridge.messages", "stemlink.contract", "stemlink.launcher"),
        ("stemlink.plugin_host.jobs", "stemlink.plugin_host.cli", "stemlink.plugin_host.presets"),
    ],
)
def test_bridge_contract_launcher_and_host_import_no_engine_and_no_torch(modules):
    assert loaded(*modules) == []


def test_the_probe_sees_the_engine_when_it_is_imported():
    """The probe itself works: importing the server does show up."""
    assert "stemlink.engine.server" in loaded("stemlink.bridge.client", "stemlink.engine.server")
