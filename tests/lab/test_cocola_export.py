"""COCOLA export: ONNX and TorchScript parity, manifest entry, CocolaModel served by the registry."""

import pytest
import torch

from stemlink.lab.nn.cocola import build_cocola

TINY = dict(
    sample_rate=8000, clip_seconds=0.25, n_fft=256, hop_length=64, n_mels=32, backbone="test_efficientnet", dropout=0.0, embed_dim=32
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from stemlink.lab.export.cocola import export_cocola

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = build_cocola(**TINY).eval()
    with torch.no_grad():  # a non-symmetric W, so argument order matters
        net.similarity.weight.add_(0.05 * torch.randn(32, 32))
    out = tmp_path_factory.mktemp("exports")
    report = export_cocola(net, out, name="cocola-test", tolerance=1e-4)
    yield net, out, report
    torch.set_num_threads(before)


def test_parity_and_manifest(exported):
    net, out, report = exported
    assert set(report.parity) == {"onnx", "torchscript"}
    assert all(v <= 1e-4 for v in report.parity.values())
    from stemlink.engine.registry import ModelRegistry, sha256_file

    registry = ModelRegistry(out, device="cpu")
    assert registry.default_for("score") == "cocola-test"
    for spec in report.specs:
        assert spec.family == "cocola" and spec.tasks == ("score",) and spec.stems == ()
        assert spec.window == net.config.clip_samples == 2000 and spec.sample_rate == 8000
        assert spec.sha256 == sha256_file(out / spec.file)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_served_model_matches_torch(exported, fmt):
    net, out, _ = exported
    from stemlink.engine.models.cocola import CocolaModel
    from stemlink.engine.registry import ModelRegistry

    model = ModelRegistry(out, device="cpu").get("cocola-test", fmt)
    assert isinstance(model, CocolaModel)
    g = torch.Generator().manual_seed(1)
    a, b = 0.2 * torch.randn(2, 5, 2000, generator=g)
    ea, eb = model.embed(a), model.embed(b)
    with torch.no_grad():
        want_a, want_b = net.encoder(a), net.encoder(b)
        want = net.similarity(want_a, want_b)
    assert ea.shape == (5, 32)
    assert torch.allclose(ea, want_a, atol=1e-4) and torch.allclose(eb, want_b, atol=1e-4)
    assert torch.allclose(model.similarity(ea, eb), want, atol=1e-3)
    assert not torch.allclose(model.similarity(ea, eb), model.similarity(eb, ea), atol=1e-4)


def test_corrupt_export_is_refused(exported, tmp_path):
    import shutil

    from stemlink.engine.registry import ModelRegistry
    from stemlink.errors import ModelLoadError

    _, out, _ = exported
    copy = tmp_path / "exports"
    shutil.copytree(out, copy)
    with open(copy / "cocola-test.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="sha256"):
        ModelRegistry(copy, device="cpu").get("cocola-test", "onnx")


def test_cli_exports_a_training_checkpoint(tmp_path, capsys):
    """`stemlink export cocola --checkpoint CKPT --out DIR` registers what the trainer saved."""
    pytest.importorskip("onnxruntime")
    from stemlink.cli import main
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.train.cocola import DataConfig, TrainConfig, save

    torch.manual_seed(1)
    net = build_cocola(**TINY).eval()
    optimizer = torch.optim.Adam(net.parameters())
    save(tmp_path / "last.pt", net, optimizer, 7, TrainConfig(), DataConfig(), {})
    assert (
        main(["export", "cocola", "--checkpoint", str(tmp_path / "last.pt"), "--out", str(tmp_path / "exports"), "--name", "cocola-cli"])
        == 0
    )
    assert "cocola-cli onnx" in capsys.readouterr().out
    model = ModelRegistry(tmp_path / "exports", device="cpu").get("cocola-cli")
    assert model.spec.config["trained_steps"] == 7
    x = torch.randn(2, 2000) * 0.1
    with torch.no_grad():
        expected = net.encoder(x).numpy()
    assert (model.embed(x) - torch.from_numpy(expected)).abs().max() < 1e-4
