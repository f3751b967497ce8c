"""The user manifest (`stemlink models add/remove`) and the registry serving it next to the shipped exports."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from stemlink.cli import main
from stemlink.engine.registry import ModelRegistry, spec_from_dict, spec_to_dict
from stemlink.engine.user_models import USER_FAMILIES, add_user_model, remove_user_model
from stemlink.errors import ModelLoadError, UnknownModel
from stemlink.paths import user_models_path
from tests.engine.byo_fixtures import make_mdx_file


@pytest.fixture
def manifest(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "user" / "models.json"
    monkeypatch.setenv("STEMLINK_USER_MODELS", str(path))
    return path


@pytest.fixture
def exports(echo_exports, tmp_path) -> Path:
    return Path(shutil.copytree(echo_exports, tmp_path / "exports"))


@pytest.fixture
def graph(tmp_path) -> Path:
    (tmp_path / "studio").mkdir()
    return make_mdx_file(tmp_path / "studio" / "my vocals.onnx")


def add(graph: Path, exports: Path, **kw):
    from stemlink.engine.models.mdx_onnx import MdxOptions

    return add_user_model(graph, "mdx-onnx", MdxOptions(stem="vocals", n_fft=2048), exports_dir=exports, **kw)


def test_the_user_manifest_lives_outside_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("STEMLINK_USER_MODELS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_models_path() == tmp_path / "xdg" / "stemlink" / "models.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_models_path() == tmp_path / "home" / ".config" / "stemlink" / "models.json"
    monkeypatch.setenv("STEMLINK_USER_MODELS", str(tmp_path / "m.json"))
    assert user_models_path() == tmp_path / "m.json"


def test_the_command_knows_the_user_families():
    from stemlink.commands import models
    from stemlink.engine.models import FAMILIES

    assert models.USER_FAMILIES == USER_FAMILIES and set(USER_FAMILIES) <= set(FAMILIES)


def test_add_names_from_the_file_and_serves_next_to_shipped(graph, exports, manifest):
    added = add(graph, exports)
    assert added.manifest == manifest and added.spec.name == "my-vocals" and added.spec.file == str(graph.resolve())
    registry = ModelRegistry(exports)
    assert registry.names() == ["echo", "echo-sep", "my-vocals"]
    assert registry.default_for("separate") == "echo"  # user models never displace a shipped default
    assert registry.get("my-vocals").stems == ("vocals", "other")
    assert "my-vocals" not in ModelRegistry(exports, user_models=False).names()


def test_user_entries_need_absolute_paths_and_shipped_ones_relative(graph, exports, manifest):
    entry = spec_to_dict(add(graph, exports).spec)
    with pytest.raises(ModelLoadError, match="relative path inside the exports folder"):
        spec_from_dict(entry)
    with pytest.raises(ModelLoadError, match="an absolute path"):
        spec_from_dict({**entry, "file": "my vocals.onnx"}, user=True)


def test_a_hand_written_user_entry_with_a_shipped_name_is_shadowed(graph, exports, manifest):
    entry = spec_to_dict(add(graph, exports).spec)
    data = json.loads(manifest.read_text())
    data["models"].append({**entry, "name": "echo"})
    data["models"].append({**entry, "name": "rel", "file": "relative.onnx"})
    manifest.write_text(json.dumps(data))
    registry = ModelRegistry(exports)
    assert registry.spec("echo").family == "echo" and "shadowed" in registry.broken["echo (user)"]
    with pytest.raises(ModelLoadError, match="absolute path"):
        registry.spec("rel")
    assert registry.get("my-vocals").name == "my-vocals"


def test_a_damaged_user_manifest_hides_no_shipped_model(exports, manifest):
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{not json")
    registry = ModelRegistry(exports)
    assert registry.names() == ["echo", "echo-sep"] and "not a readable JSON manifest" in registry.broken[str(manifest)]


def test_a_file_replaced_by_a_link_or_gone_is_refused(graph, exports, manifest, tmp_path):
    add(graph, exports)
    moved = tmp_path / "elsewhere.onnx"
    shutil.move(graph, moved)
    with pytest.raises(ModelLoadError, match="file is missing"):
        ModelRegistry(exports).get("my-vocals")
    os.symlink(moved, graph)  # same bytes, same sha256, but no longer the pinned file
    with pytest.raises(ModelLoadError, match="not the pinned file"):
        ModelRegistry(exports).get("my-vocals")


def test_remove_leaves_the_file_alone(graph, exports, manifest, capsys):
    add(graph, exports)
    assert main(["models", "remove", "my-vocals"]) == 0
    assert graph.is_file() and json.loads(manifest.read_text())["models"] == []
    assert "my-vocals" not in ModelRegistry(exports).names()
    with pytest.raises(UnknownModel, match="not a user model"):
        remove_user_model("my-vocals")
    assert main(["models", "remove", "my-vocals"]) == 2 and "not a user model" in capsys.readouterr().err


def test_add_refuses_a_missing_file_and_a_bad_name(exports, manifest, tmp_path, capsys):
    assert main(["models", "--exports", str(exports), "add", str(tmp_path / "none.onnx"), "--family", "mdx-onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err
    graph = make_mdx_file(tmp_path / "g.onnx")
    argv = ["models", "--exports", str(exports), "add", str(graph), "--family", "mdx-onnx", "--stem", "vocals", "--n-fft", "2048"]
    assert main([*argv, "--name", "no spaces"]) == 2
    assert "--name 'no spaces'" in capsys.readouterr().err
    assert not manifest.exists()


def test_models_lists_user_models_through_the_embedded_engine(graph, exports, manifest, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    monkeypatch.setenv("STEMLINK_STATE_DIR", str(tmp_path / "state"))  # discover no engine of the machine's
    add(graph, exports)
    capsys.readouterr()
    assert main(["models", "--exports", str(exports)]) == 0
    out = capsys.readouterr().out
    assert "my-vocals" in out and "mdx-onnx" in out and "echo" in out
