"""A user's BS-RoFormer checkpoint + MSST-style YAML config (random weights) served through the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.byo_fixtures import UserFamilyContract, make_roformer_files

pytest.importorskip("bs_roformer", reason="the roformer family needs the byo extra: pip install 'stemlink[byo]'")


class TestRoformer(UserFamilyContract):
    family = "roformer"
    stems = ("vocals", "instrumental")

    def make(self, folder: Path) -> tuple[Path, list[str]]:
        weights, config = make_roformer_files(folder)
        return weights, ["--config", str(config)]

    def test_the_config_is_pinned_in_the_manifest(self, added, echo_exports):
        from stemlink.engine.registry import ModelRegistry

        file, flags = added
        Path(flags[1]).unlink()  # the parsed arguments live in the manifest: the config file may go
        spec = ModelRegistry(echo_exports).spec("mine")
        assert spec.window == 12800 and spec.config["arch"] == "bs-roformer" and spec.config["complement"] is True
        assert spec.config["kwargs"]["freqs_per_bands"] == [64, 65]
        assert ModelRegistry(echo_exports).get("mine").stems == ("vocals", "instrumental")


def test_a_config_for_another_implementation_is_refused(tmp_path, monkeypatch):
    from stemlink.engine.models.roformer import RoformerOptions
    from stemlink.engine.user_models import add_user_model
    from stemlink.errors import ModelLoadError

    monkeypatch.setenv("STEMLINK_USER_MODELS", str(tmp_path / "models.json"))
    weights, config = make_roformer_files(tmp_path)
    config.write_text(config.read_text().replace("  dim: 16\n", "  dim: 16\n  linear_transformer_depth: 0\n"))
    with pytest.raises(ModelLoadError, match=r"takes no \['linear_transformer_depth'\]"):
        add_user_model(weights, "roformer", RoformerOptions(config=config), exports_dir=tmp_path)
