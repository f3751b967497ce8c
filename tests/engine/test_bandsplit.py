"""Band-split mask separator: masks sum to 1, stems sum to the mix, silence gives zeros, a
1-sample region is defined, ONNX/TorchScript parity, and the served path (registry + apply
layer) keeps exact lengths and mixture consistency at host rates and channel counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stemlink.contract import TaskRequest
from stemlink.engine.models.bandsplit import BandSplitModel
from stemlink.engine.registry import ModelRegistry
from stemlink.engine.spectral import apply_masks, as_channels, istft, stft
from stemlink.engine.tasks import run_task
from stemlink.errors import InvalidInput
from stemlink.lab.export.bandsplit import export_network_of
from stemlink.lab.nn.bandsplit import CORES, BandSplitConfig, BandSplitNet, band_edges


def tiny(core: str = "conv", seed: int = 0) -> tuple[BandSplitNet, BandSplitConfig]:
    torch.manual_seed(seed)
    config = BandSplitConfig(sample_rate=8000, window=4096, n_fft=256, hop=64, bands=8, dim=16, layers=1, core=core, heads=2)
    return BandSplitNet(config).eval(), config


def noise(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, length, generator=torch.Generator().manual_seed(seed)) * 0.1


def test_band_edges_cover_every_bin_once():
    edges = band_edges(4096, 44100, 32)
    assert edges[0] == 0 and edges[-1] == 2049 and len(edges) == 33
    assert all(b < e for b, e in zip(edges[:-1], edges[1:], strict=True))
    with pytest.raises(InvalidInput, match="bands"):
        BandSplitConfig(n_fft=64, hop=16, bands=40)


def test_stft_round_trip():
    x = noise(2, 3001)
    assert torch.allclose(istft(stft(x, 256, 64), 256, 64, 3001), x, atol=1e-6)


@pytest.mark.parametrize("core", CORES)
def test_masks_sum_to_one_and_stems_to_the_mix(core):
    net, cfg = tiny(core)
    x = noise(2, 4096)
    spec = stft(x, cfg.n_fft, cfg.hop)
    with torch.no_grad():
        masks = net(as_channels(spec))
        stems = apply_masks(spec, masks, cfg.n_fft, cfg.hop, x.shape[-1])
    assert masks.shape == (2, 4, cfg.bins, spec.shape[-1]) and float(masks.min()) >= 0
    assert torch.allclose(masks.sum(1), torch.ones(()), atol=1e-5)
    assert torch.allclose(stems.sum(1), x, atol=1e-5)
    assert float((stems - stems[:, :1]).abs().max()) > 1e-4  # the stems differ: the masks depend on the input


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("bandsplit-exports")
    net, cfg = tiny("transformer")
    result = export_network_of(net, cfg, root, name="bandsplit-tiny", default_for=("separate",))
    return root, result


def test_export_parity_and_manifest(exports):
    root, result = exports
    assert set(result.parity) == {"onnx", "torchscript"} and max(result.parity.values()) < 1e-4
    registry = ModelRegistry(root, device="cpu")
    assert registry.default_for("separate") == "bandsplit-tiny"
    spec = registry.spec("bandsplit-tiny")
    assert spec.family == "bandsplit" and set(spec.tasks) == {"separate", "extract", "remove"}
    assert spec.config["n_fft"] == 256 and spec.config["hop"] == 64


def test_formats_agree_on_a_length_they_were_not_traced_with(exports):
    root, _ = exports
    registry = ModelRegistry(root, device="cpu")
    x = noise(3, 5000, seed=3)
    out = {}
    for fmt in ("onnx", "torchscript"):
        model = registry.get("bandsplit-tiny", fmt)
        assert isinstance(model, BandSplitModel)
        out[fmt] = model.separate(x, params=None, generator=torch.Generator(), callback=lambda d, t: None)
        assert out[fmt].shape == (3, 4, 5000)
        assert torch.allclose(out[fmt].sum(1), x, atol=1e-5)
    assert torch.allclose(out["onnx"], out["torchscript"], atol=1e-4)


def test_silence_gives_exact_zeros_and_one_sample_is_defined(exports):
    root, _ = exports
    model = ModelRegistry(root, device="cpu").get("bandsplit-tiny", "onnx")
    quiet = model.separate(torch.zeros(1, 4096), params=None, generator=torch.Generator(), callback=lambda d, t: None)
    assert float(quiet.abs().max()) == 0.0
    one = model.separate(torch.full((1, 1), 0.5), params=None, generator=torch.Generator(), callback=lambda d, t: None)
    assert one.shape == (1, 4, 1) and abs(float(one.sum()) - 0.5) < 1e-5


def test_takes_no_parameters(exports):
    root, _ = exports
    model = ModelRegistry(root, device="cpu").get("bandsplit-tiny")
    with pytest.raises(InvalidInput, match="no parameters"):
        model.parse_params("separate", {"steps": 4})
    with pytest.raises(InvalidInput, match="does not serve"):
        model.parse_params("accompany", {})


@pytest.mark.parametrize(("rate", "channels", "frames"), [(44100, 2, 30011), (48000, 6, 9001), (8000, 1, 4096 * 3 + 5)])
def test_served_stems_have_exact_lengths_and_sum_to_the_mix(exports, rate, channels, frames):
    root, _ = exports
    model = ModelRegistry(root, device="cpu").get("bandsplit-tiny")
    mix = (np.random.default_rng(1).standard_normal((channels, frames)) * 0.1).astype(np.float32)
    result = run_task(model, TaskRequest(task="separate", sample_rate=rate, inputs={"mix": mix}, seed=0))
    assert list(result.stems) == ["bass", "drums", "guitar", "piano"]
    total = sum(result.stems.values())
    assert all(s.shape == (channels, frames) for s in result.stems.values())
    np.testing.assert_allclose(total, mix, atol=2e-5)


def test_served_silence_is_silence(exports):
    root, _ = exports
    model = ModelRegistry(root, device="cpu").get("bandsplit-tiny")
    mix = np.zeros((2, 88200), dtype=np.float32)
    result = run_task(model, TaskRequest(task="separate", sample_rate=44100, inputs={"mix": mix}, seed=0))
    assert all(float(np.abs(s).max()) == 0.0 for s in result.stems.values())


def test_extract_and_remove(exports):
    root, _ = exports
    model = ModelRegistry(root, device="cpu").get("bandsplit-tiny")
    mix = (np.random.default_rng(2).standard_normal((2, 20000)) * 0.1).astype(np.float32)
    ext = run_task(model, TaskRequest(task="extract", sample_rate=44100, inputs={"mix": mix}, stems=("drums",), seed=0))
    assert list(ext.stems) == ["drums", "residual"]
    np.testing.assert_allclose(ext.stems["drums"] + ext.stems["residual"], mix, atol=2e-5)
    rem = run_task(model, TaskRequest(task="remove", sample_rate=44100, inputs={"mix": mix}, stems=("drums",), seed=0))
    np.testing.assert_allclose(rem.stems["mix"], ext.stems["residual"], atol=2e-5)
