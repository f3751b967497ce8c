"""A user's MDX-Net style ONNX graph (random weights, UVR's signature) served through the registry."""

from __future__ import annotations

from pathlib import Path

from tests.engine.byo_fixtures import MDX, UserFamilyContract, make_mdx_file


class TestMdxOnnx(UserFamilyContract):
    family = "mdx-onnx"
    stems = ("vocals", "other")

    def make(self, folder: Path) -> tuple[Path, list[str]]:
        return make_mdx_file(folder / "tiny-mdx.onnx"), ["--stem", "vocals", "--n-fft", str(MDX["n_fft"])]

    def test_dims_come_from_the_graph(self, added, echo_exports):
        from stemlink.engine.registry import ModelRegistry

        spec = ModelRegistry(echo_exports).spec("mine")
        assert spec.format == "onnx" and spec.window == MDX["hop"] * (MDX["dim_t"] - 1)
        assert {k: spec.config[k] for k in MDX} == MDX


def test_stem_is_required_and_dims_must_match_the_graph(tmp_path, monkeypatch, capsys):
    from stemlink.cli import main

    monkeypatch.setenv("STEMLINK_USER_MODELS", str(tmp_path / "models.json"))
    graph = make_mdx_file(tmp_path / "tiny.onnx")
    base = ["models", "--exports", str(tmp_path), "add", str(graph), "--family", "mdx-onnx", "--n-fft", "2048"]
    assert main(base) == 2
    assert "needs --stem NAME" in capsys.readouterr().err
    assert main([*base, "--stem", "vocals", "--dim-f", "128"]) == 2
    assert "the graph takes --dim-f 256, got --dim-f 128" in capsys.readouterr().err
    assert main([*base, "--stem", "vocals", "--config", "x.yaml"]) == 2
    assert "--config: for --family roformer only" in capsys.readouterr().err
    assert not (tmp_path / "models.json").exists()


def test_a_demucs_flag_mix_up_is_refused(tmp_path, monkeypatch, capsys):
    from stemlink.cli import main

    monkeypatch.setenv("STEMLINK_USER_MODELS", str(tmp_path / "models.json"))
    assert main(["models", "add", str(tmp_path / "x.th"), "--family", "demucs", "--stem", "vocals"]) == 2
    assert "--stem: for --family mdx-onnx only" in capsys.readouterr().err
