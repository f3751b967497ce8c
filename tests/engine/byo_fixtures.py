"""Same-format user model files with RANDOM weights (no downloads), and the shared contract every
"bring your own" family passes (`UserFamilyContract`, subclassed per family in test_byo_*.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stemlink.cli import main
from stemlink.contract import TaskRequest
from stemlink.engine.registry import ModelRegistry
from stemlink.engine.tasks import run_task
from stemlink.errors import ModelLoadError

RATE = 44100
FRAMES = 44100 + 2_001  # odd: every window plan has a partial last window


def make_demucs_file(path: Path, klass: str = "HTDemucs", *, half: bool = False) -> Path:
    """A tiny HTDemucs (or waveform Demucs) with 4 stereo sources and a 0.25 s segment, saved in demucs's own format."""
    import fractions

    import torch
    from demucs.demucs import Demucs
    from demucs.htdemucs import HTDemucs
    from demucs.states import serialize_model
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    common = dict(sources=["drums", "bass", "other", "vocals"], audio_channels=2, channels=4, depth=2, dconv_mode=0, samplerate=RATE)
    if klass == "HTDemucs":
        model = HTDemucs(**common, growth=2, nfft=512, t_layers=1, t_heads=2, bottom_channels=0, segment=fractions.Fraction(1, 4))
    else:
        model = Demucs(**common, lstm_layers=0, segment=0.25)
    torch.save(serialize_model(model, OmegaConf.create({}), half=half), path)
    return path


MDX = {"n_fft": 2048, "hop": 1024, "dim_f": 256, "dim_t": 16}  # window 1024 * 15 = 15360


def make_mdx_file(path: Path, *, dim_f: int = MDX["dim_f"], dim_t: int = MDX["dim_t"]) -> Path:
    """A tiny MDX-Net-signature graph: (1, 4, dim_f, dim_t) -> same (a random 1x1 conv + tanh mask), static shape as UVR's."""
    import warnings

    import torch

    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.sigmoid(self.conv(x))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Tiny().eval(),
            (torch.randn(1, 4, dim_f, dim_t),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["output"],
        )
    return path


ROFORMER_YAML = """\
audio:
  chunk_size: 12800
  sample_rate: 44100
model:
  dim: 16
  depth: 1
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  freqs_per_bands: !!python/tuple [64, 65]
  dim_head: 8
  heads: 2
  stft_n_fft: 256
  stft_hop_length: 64
  stft_win_length: 256
  num_residual_streams: 1
  mask_estimator_depth: 1
training:
  instruments: [vocals, instrumental]
  target_instrument: vocals
"""


def make_roformer_files(folder: Path) -> tuple[Path, Path]:
    """A tiny stereo BS-RoFormer (one stem): its state dict and its MSST-style YAML config."""
    import torch
    from bs_roformer import BSRoformer

    torch.manual_seed(0)
    config = folder / "tiny-roformer.yaml"
    config.write_text(ROFORMER_YAML)
    kwargs = dict(
        dim=16,
        depth=1,
        stereo=True,
        num_stems=1,
        time_transformer_depth=1,
        freq_transformer_depth=1,
        freqs_per_bands=(64, 65),
        dim_head=8,
        heads=2,
        stft_n_fft=256,
        stft_hop_length=64,
        stft_win_length=256,
        num_residual_streams=1,
        mask_estimator_depth=1,
    )
    weights = folder / "tiny-roformer.ckpt"
    torch.save(BSRoformer(**kwargs).state_dict(), weights)
    return weights, config


def stereo_mix(frames: int = FRAMES, channels: int = 2, seed: int = 0) -> np.ndarray:
    """(channels, frames) float32: decorrelated tones + noise, about -12 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / RATE
    tones = np.stack([np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)])
    return (0.2 * tones + 0.05 * rng.standard_normal((channels, frames))).astype(np.float32)


class UserFamilyContract:
    """Every user family: add through the CLI, served by the registry, stems of exactly the
    input length summing to the input, a changed file / bad file / taken name refused."""

    family: str
    stems: tuple[str, ...]
    channels = 2

    def make(self, folder: Path) -> tuple[Path, list[str]]:
        """The model file and the family's `models add` flags."""
        raise NotImplementedError

    @pytest.fixture
    def manifest(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        path = tmp_path / "config" / "stemlink" / "models.json"
        monkeypatch.setenv("STEMLINK_USER_MODELS", str(path))
        return path

    @pytest.fixture
    def added(self, tmp_path: Path, manifest: Path, echo_exports: Path) -> tuple[Path, list[str]]:
        file, flags = self.make(tmp_path)
        assert main(["models", "--exports", str(echo_exports), "add", str(file), "--family", self.family, "--name", "mine", *flags]) == 0
        return file, flags

    def test_add_pins_the_file_in_the_user_manifest(self, added, manifest, echo_exports):
        file, _ = added
        before = file.read_bytes()
        entry = json.loads(manifest.read_text())["models"][0]
        assert entry["name"] == "mine" and entry["family"] == self.family and entry["file"] == str(file.resolve())
        assert tuple(entry["stems"]) == self.stems and entry["config"]["channels"] == self.channels
        registry = ModelRegistry(echo_exports)
        assert "mine" in registry.names() and "echo" in registry.names()
        assert registry.is_user(registry.spec("mine")) and not registry.is_user(registry.spec("echo"))
        assert file.read_bytes() == before and not any(p.name == file.name for p in echo_exports.iterdir())

    @pytest.mark.parametrize("channels", [2, 1, 3])
    def test_separation_keeps_the_length_and_sums_to_the_input(self, added, echo_exports, channels):
        model = ModelRegistry(echo_exports).get("mine")
        assert model.channels == self.channels
        mix = stereo_mix(channels=channels)
        result = run_task(model, TaskRequest(task="separate", sample_rate=RATE, inputs={"mix": mix}))
        assert list(result.stems) == list(self.stems)
        stems = np.stack(list(result.stems.values()))
        assert stems.shape == (len(self.stems), channels, FRAMES) and np.isfinite(stems).all()
        assert np.allclose(stems.sum(axis=0), mix, atol=1e-5)
        assert result.model_sha256 == model.spec.sha256

    def test_extract_and_remove_go_through_the_same_apply_layer(self, added, echo_exports):
        model = ModelRegistry(echo_exports).get("mine")
        mix = stereo_mix(seed=1)
        target = self.stems[0]
        sep = run_task(model, TaskRequest(task="separate", sample_rate=RATE, inputs={"mix": mix}))
        ext = run_task(model, TaskRequest(task="extract", sample_rate=RATE, inputs={"mix": mix}, stems=(target,)))
        rem = run_task(model, TaskRequest(task="remove", sample_rate=RATE, inputs={"mix": mix}, stems=(target,)))
        np.testing.assert_allclose(ext.stems[target], sep.stems[target], atol=1e-6)
        np.testing.assert_allclose(ext.stems["residual"] + ext.stems[target], mix, atol=1e-5)
        np.testing.assert_allclose(rem.stems["mix"], mix - sep.stems[target], atol=1e-5)

    def test_a_changed_file_is_refused_at_load(self, added, echo_exports):
        file, _ = added
        with open(file, "ab") as fh:
            fh.write(b"\0")
        with pytest.raises(ModelLoadError, match="file changed since `stemlink models add`: re-add it") as info:
            ModelRegistry(echo_exports).get("mine")
        assert info.value.field == "sha256"

    def test_a_bad_file_is_refused_with_one_line(self, tmp_path, manifest, echo_exports, capsys):
        _, flags = self.make(tmp_path)
        bad = tmp_path / "garbage.bin"
        bad.write_bytes(b"not a model at all" * 100)
        assert main(["models", "--exports", str(echo_exports), "add", str(bad), "--family", self.family, *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: not added:") and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not manifest.exists()

    def test_a_taken_name_is_refused(self, added, manifest, echo_exports, capsys):
        file, flags = added
        argv = ["models", "--exports", str(echo_exports), "add", str(file), "--family", self.family, *flags]
        assert main([*argv, "--name", "echo"]) == 2
        assert "taken by a shipped model" in capsys.readouterr().err
        assert main([*argv, "--name", "mine"]) == 2
        assert "already a user model" in capsys.readouterr().err
        assert main([*argv, "--name", "mine", "--replace"]) == 0
        assert [m["name"] for m in json.loads(manifest.read_text())["models"]] == ["mine"]
