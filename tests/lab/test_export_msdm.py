"""Export of the MSDM denoiser: ONNX + TorchScript parity, manifest entries, registry load,
dynamic batch/time, and the same separation from the exported and the torch network."""

from __future__ import annotations

import json

import pytest
import torch

from stemlink.engine.models.msdm import MSDMModel
from stemlink.engine.registry import ModelRegistry, sha256_file
from stemlink.lab.export.msdm import export_denoiser
from tests.engine.msdm_fixtures import DEBUG_CONFIG, debug_spec, tiny_denoiser


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    result = export_denoiser(tiny_denoiser(), DEBUG_CONFIG, root, name="msdm-tiny", defaults={"steps": 10})
    return root, result.specs, result.parity


def test_parity_and_manifest(exported):
    root, specs, parity = exported
    assert set(parity) == {"onnx", "torchscript"} and max(parity.values()) < 1e-4
    manifest = json.loads((root / "manifest.json").read_text())
    entries = {m["format"]: m for m in manifest["models"]}
    assert set(entries) == {"onnx", "torchscript"}
    for entry in entries.values():
        assert entry["family"] == "msdm" and entry["sha256"] == sha256_file(root / entry["file"])
        assert entry["config"]["sigma_data"] == 0.2 and entry["window"] == DEBUG_CONFIG.window
        assert entry["defaults"] == {"steps": 10}
        assert (root / entry["file"]).stat().st_size < 30e6


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_dynamic_batch_and_time(exported, fmt):
    root, _, _ = exported
    model = ModelRegistry(root, device="cpu").get("msdm-tiny", fmt)
    x = torch.randn(3, 4, 2 * DEBUG_CONFIG.window) * 0.3
    sigma = torch.tensor([1.0, 0.1, 0.001])
    with torch.no_grad():
        expected = tiny_denoiser()(x, sigma)
    assert torch.allclose(model.network(x, sigma), expected, atol=1e-4)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_registry_model_separates_like_the_torch_model(exported, fmt):
    root, _, _ = exported
    served = ModelRegistry(root, device="cpu").get("msdm-tiny", fmt)
    assert isinstance(served, MSDMModel)
    reference = MSDMModel(debug_spec(defaults={"steps": 10}), tiny_denoiser())
    mix = torch.randn(1, DEBUG_CONFIG.window, generator=torch.Generator().manual_seed(0)) * 0.3
    outs = []
    for model in (served, reference):
        with torch.no_grad():
            outs.append(
                model.separate(
                    mix,
                    params=model.parse_params("separate", {"s_churn": 0.0}),
                    generator=torch.Generator().manual_seed(1),
                    callback=lambda d, t: None,
                )
            )
    assert torch.allclose(outs[0], outs[1], atol=1e-3)


@pytest.mark.timeout(180)
def test_engine_serves_exported_msdm_over_tcp(exported):
    """A tiny exported MSDM behind a real engine on a random loopback tcp port: separate a
    44.1 kHz stereo region (stems sum to it, exact length), accompany, generate, progress."""
    import numpy as np
    import zmq

    from stemlink.bridge.client import Client
    from stemlink.engine.server import Server, ServerConfig

    root, _, _ = exported
    server = Server(ServerConfig(bind="tcp://127.0.0.1:*", exports_dir=root, threads=1), context=zmq.Context.instance()).start()
    try:
        rng = np.random.default_rng(0)
        mix = (0.1 * rng.standard_normal((2, 3000))).astype(np.float32)
        seen = []
        with Client(server.address, timeout=60) as client:
            result = client.separate(
                mix, 44100, model="msdm-tiny", params={"steps": 8, "corrector_steps": 0, "s_churn": 0.0}, progress=lambda *a: seen.append(a)
            )
            assert sorted(result.stems) == ["bass", "drums", "guitar", "piano"]
            total = sum(result.stems.values())
            assert all(s.shape == mix.shape for s in result.stems.values())
            assert np.allclose(total, mix, atol=1e-4)
            assert seen, "no progress messages"
            again = client.separate(mix, 44100, model="msdm-tiny", params={"steps": 8, "corrector_steps": 0, "s_churn": 0.0})
            assert all(np.array_equal(result.stems[k], again.stems[k]) for k in result.stems)  # seeded
            acc = client.accompany(mix, 44100, context_stems=["drums"], stems=["bass", "piano"], model="msdm-tiny", params={"steps": 4})
            assert sorted(acc.stems) == ["bass", "piano"] and acc.stems["bass"].shape == mix.shape
            gen = client.generate(2000, 48000, channels=2, model="msdm-tiny", params={"steps": 4})
            assert all(s.shape == (2, 2000) for s in gen.stems.values())
    finally:
        server.stop()
