"""Codec family end to end on the debug preset (synthetic audio, seconds): training writes a
resumable run, the export pair loads through the registry with parity, the engine's CodecModel
round-trips exact lengths, the evaluation baselines behave as their definitions say."""

from __future__ import annotations

import argparse

import pytest
import torch

from stemlink.engine.registry import ModelRegistry
from stemlink.errors import InvalidInput, PresetError
from stemlink.lab.eval.codec import identity_round_trip, mel_griffin_lim, score_codec
from stemlink.lab.export.codec import export_codec, load_codec
from stemlink.lab.train.codec import load_codec_preset
from stemlink.lab.train.codec import train as train_codec
from stemlink.lab.train.codec_data import CodecAugment, submix


def _args(out, **kw) -> argparse.Namespace:
    base = dict(
        preset="codec-debug",
        data=None,
        out=str(out),
        resume=False,
        init=None,
        max_steps=4,
        max_minutes=None,
        device="cpu",
        seed=0,
        threads=1,
    )
    return argparse.Namespace(**{**base, **kw})


def test_train_resume_export_and_serve(tmp_path):
    run = tmp_path / "run"
    train_codec(_args(run))
    train_codec(_args(run, resume=True, max_steps=6))
    codec, config, state = load_codec(run / "last.pt")
    assert state["step"] == 6 and config.sample_rate == 8000
    exports = tmp_path / "exports"
    results = export_codec(run / "last.pt", exports, name="tiny-codec", formats=("onnx", "torchscript"))
    assert all(p <= 1e-3 for r in results.values() for p in r.parity.values())
    registry = ModelRegistry(exports, device="cpu", threads=1)
    enc, dec = registry.get("tiny-codec.encoder", "torchscript"), registry.get("tiny-codec.decoder", "onnx")
    audio = torch.randn(1, 2, 3001) * 0.1
    latent = enc.encode(audio)
    assert latent.shape == (1, config.latent_dim, codec.latent_frames(3001))
    with torch.no_grad():
        want = codec(audio)
    got = dec.decode(latent, 3001)
    assert got.shape == (1, 2, 3001) and (got - want).abs().max() < 1e-3
    with pytest.raises(InvalidInput, match="codec encoder"):
        enc.decode(latent, 10)
    with pytest.raises(InvalidInput, match="length"):
        dec.decode(latent, latent.shape[-1] * config.samples_per_latent + 1)
    # the export pair continues training (--init NAME.encoder.pt reads its decoder too)
    cont = train_codec(_args(tmp_path / "cont", init=str(exports / "tiny-codec.encoder.pt"), max_steps=1))
    assert cont is not None


def test_preset_errors_name_the_table():
    with pytest.raises(PresetError, match=r"objective"):
        load_codec_preset_with(tmp_objective={"window": 10})


def load_codec_preset_with(tmp_objective):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bad.toml"
        path.write_text("[objective]\n" + "".join(f"{k} = {v}\n" for k, v in tmp_objective.items()))
        return load_codec_preset(str(path))


def test_submix_skips_silence_and_levels_the_rest():
    rng = __import__("numpy").random.default_rng(0)
    assert submix(torch.zeros(4, 2, 1000), rng, CodecAugment()) is None
    stems = torch.zeros(4, 2, 1000)
    stems[1] = torch.randn(2, 1000)
    x = submix(stems, rng, CodecAugment(rms_db=(-20.0, -20.0)))
    assert x is not None and abs(float(20 * torch.log10(x.pow(2).mean().sqrt())) + 20.0) < 0.01


def test_identity_is_the_floor_and_mel_griffin_lim_is_worse():
    t = torch.arange(44100) / 44100
    x = torch.stack((torch.sin(2 * torch.pi * 220 * t), torch.sin(2 * torch.pi * 330 * t) * 0.5)) * 0.1
    ident = score_codec("identity", identity_round_trip(), [x], 44100, 88200)
    mel = score_codec("mel", mel_griffin_lim(44100, iterations=8), [x], 44100, 22050)
    assert ident.stft_distance < 0.05 and ident.si_sdr > 60
    assert mel.stft_distance > ident.stft_distance and mel.mel_distance > ident.mel_distance


def test_decoder_only_continuation_keeps_the_latent_space(tmp_path):
    import json

    from stemlink.paths import presets_dir

    run = tmp_path / "run"
    train_codec(_args(run, max_steps=2))
    exports = tmp_path / "exports"
    export_codec(run / "last.pt", exports, name="tiny-codec")
    before = {m["name"]: m["sha256"] for m in json.loads((exports / "manifest.json").read_text())["models"]}
    preset = tmp_path / "codec-decoder.toml"
    preset.write_text((presets_dir() / "train" / "codec-debug.toml").read_text() + "freeze_encoder = true\n")  # [objective] is last
    with pytest.raises(PresetError, match="freeze_encoder needs --init"):
        train_codec(_args(tmp_path / "nope", preset=str(preset)))
    cont = train_codec(_args(tmp_path / "dec", preset=str(preset), init=str(exports / "tiny-codec.encoder.pt"), max_steps=3))
    original, _, _ = load_codec(run / "last.pt")
    for a, b in zip(original.encoder.state_dict().values(), cont.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the encoder did not move
    assert any(
        not torch.equal(a, b) for a, b in zip(original.decoder.state_dict().values(), cont.decoder.state_dict().values(), strict=True)
    )
    export_codec(tmp_path / "dec" / "last.pt", exports, name="tiny-codec", parts=("decoder",))
    after = {m["name"]: m["sha256"] for m in json.loads((exports / "manifest.json").read_text())["models"]}
    assert after["tiny-codec.encoder"] == before["tiny-codec.encoder"] and after["tiny-codec.decoder"] != before["tiny-codec.decoder"]
