"""Model registry: manifest parsing, sha256 checks, typed errors naming the model, runtimes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from stemlink.engine.models.echo import EchoModel
from stemlink.engine.registry import MANIFEST, ModelRegistry, add_to_manifest, read_manifest, sha256_file
from stemlink.errors import ModelLoadError, UnknownModel, UnknownTask
from stemlink.lab.export.echo import build_echo_export
from stemlink.lab.nn.echo import ECHO_GAINS


@pytest.fixture(scope="module")
def echo_dir(tmp_path_factory):
    return build_echo_export(tmp_path_factory.mktemp("echo"), sample_rate=16000, window=4096, delay=3)


@pytest.fixture
def exports(echo_dir, tmp_path):
    """A private copy each test may damage."""
    return shutil.copytree(echo_dir, tmp_path / "exports")


def test_lists_both_formats_and_prefers_onnx(exports):
    reg = ModelRegistry(exports)
    assert sorted(s.format for s in reg.list()) == ["onnx", "torchscript"]
    assert reg.names() == ["echo"] and reg.has("echo") and not reg.has("nope")
    assert reg.spec("echo").format == "onnx"
    assert reg.spec("echo", "torchscript").format == "torchscript"
    assert reg.default_for("separate") == "echo"


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_loaded_network_computes_the_echo(exports, fmt):
    model = ModelRegistry(exports).get("echo", fmt)
    assert isinstance(model, EchoModel) and model.delay == 3 and model.window == 4096
    x = torch.randn(2, 4096)
    steps = []
    stems = model.separate(
        x, params=model.parse_params("separate", {"steps": 2}), generator=torch.Generator(), callback=lambda d, t: steps.append((d, t))
    )
    assert stems.shape == (2, 4, 4096) and steps == [(1, 2), (2, 2)]
    expected = torch.tensor(ECHO_GAINS)[None, :, None] * torch.nn.functional.pad(x, (3, 0))[None, :, :4096].transpose(0, 1)
    torch.testing.assert_close(stems, expected)


def test_onnx_and_torchscript_agree(exports):
    reg = ModelRegistry(exports)
    x = torch.randn(3, 4096)
    a = reg.get("echo", "onnx").network(x)
    b = reg.get("echo", "torchscript").network(x)
    assert (a - b).abs().max().item() < 1e-6


def test_get_is_cached(exports):
    reg = ModelRegistry(exports)
    assert reg.get("echo") is reg.get("echo")


def test_unknown_model_and_format_are_typed(exports):
    reg = ModelRegistry(exports)
    with pytest.raises(UnknownModel, match="'nope'.*available: echo") as info:
        reg.get("nope")
    assert info.value.field == "model"
    with pytest.raises(UnknownModel, match="'echo' has no 'tflite'"):
        reg.spec("echo", "tflite")
    with pytest.raises(UnknownTask):
        reg.default_for("dance")


def test_sha_mismatch_names_model_and_file(exports):
    with open(exports / "echo.onnx", "ab") as fh:
        fh.write(b"\x00")
    with pytest.raises(ModelLoadError, match=r"model 'echo' \(onnx, file .*echo.onnx.*sha256 mismatch") as info:
        ModelRegistry(exports).get("echo")
    assert info.value.field == "sha256"
    ModelRegistry(exports).get("echo", "torchscript")  # the other format is unaffected


def test_missing_file_names_model_and_file(exports):
    (exports / "echo.pt").unlink()
    with pytest.raises(ModelLoadError, match=r"model 'echo' \(torchscript, file .*echo.pt.*missing"):
        ModelRegistry(exports).get("echo", "torchscript")


def test_corrupt_file_with_matching_sha_is_a_load_error(exports):
    (exports / "echo.onnx").write_bytes(b"not an onnx graph")
    data = json.loads((exports / MANIFEST).read_text())
    for entry in data["models"]:
        if entry["format"] == "onnx":
            entry["sha256"] = sha256_file(exports / "echo.onnx")
    (exports / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="cannot load onnx file"):
        ModelRegistry(exports).get("echo", "onnx")


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("window", -3, "'window'"),
        ("format", "pickle", "'format'"),
        ("file", "../../etc/passwd", "'file'"),
        ("sha256", "abc", "'sha256'"),
        ("tasks", ["dance"], "'tasks'"),
        ("delay", 10**6, "'delay'"),
    ],
)
def test_bad_manifest_entry_is_reported_for_that_model_only(exports, field, value, fragment):
    data = json.loads((exports / MANIFEST).read_text())
    data["models"][0][field] = value
    (exports / MANIFEST).write_text(json.dumps(data))
    reg = ModelRegistry(exports)
    assert "echo" in reg.broken and fragment in reg.broken["echo"]
    assert [s.format for s in reg.list()] == ["torchscript"]  # the valid entry still loads
    reg.get("echo")


def test_unknown_family_is_a_load_error(exports):
    data = json.loads((exports / MANIFEST).read_text())
    for entry in data["models"]:
        entry["family"] = "nonesuch"
    (exports / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="family 'nonesuch'"):
        ModelRegistry(exports).get("echo")


def test_unreadable_manifest(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ModelLoadError, match="manifest"):
        ModelRegistry(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"version": 99, "models": []}))
    with pytest.raises(ModelLoadError, match="version"):
        ModelRegistry(tmp_path)


def test_empty_exports_folder(tmp_path):
    reg = ModelRegistry(tmp_path)
    assert reg.list() == []
    with pytest.raises(UnknownModel, match="serves task 'separate'"):
        reg.default_for("separate")


def test_add_to_manifest_replaces_same_name_and_format_atomically(exports):
    reg = ModelRegistry(exports)
    spec = reg.spec("echo", "onnx")
    from dataclasses import replace

    add_to_manifest(exports, replace(spec, version="2"), default_for=["score"])
    data = read_manifest(exports)
    assert [(m["format"], m["version"]) for m in data["models"]] == [("torchscript", "1"), ("onnx", "2")]
    assert data["defaults"] == {"score": "echo"}
    add_to_manifest(exports, replace(spec, name="other"))
    assert ModelRegistry(exports).names() == ["echo", "other"]
    assert not list(exports.glob(".manifest-*"))  # no temp files left
    with pytest.raises(ModelLoadError):
        add_to_manifest(exports, replace(spec, window=0))
    assert len(read_manifest(exports)["models"]) == 3  # refused entry not written


def test_manifest_defaults_choose_the_task_model(exports):
    from dataclasses import replace

    reg = ModelRegistry(exports)
    add_to_manifest(exports, replace(reg.spec("echo"), name="second"), default_for=["separate"])
    assert ModelRegistry(exports).default_for("separate") == "second"
    assert ModelRegistry(exports).default_for("generate") == "echo"


def test_shipped_exports_load_with_their_sha256():
    """Every entry of the shipped exports/ folder loads through the engine alone (no lab code)."""
    from pathlib import Path

    from stemlink.engine.models import FAMILIES

    shipped = Path(__file__).resolve().parents[2] / "exports"
    registry = ModelRegistry(shipped, device="cpu")
    specs = registry.list()
    assert {s.family for s in specs} <= set(FAMILIES) and len(specs) == len(read_manifest(shipped)["models"])
    for spec in specs:
        assert sha256_file(shipped / spec.file) == spec.sha256
        model = registry.get(spec.name, spec.format)
        assert model.spec == spec and model.window == spec.window
