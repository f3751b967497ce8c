"""The STFT codec (issue 14 part 1, `stemlink/lab/nn/stft_codec.py`) on a tiny config: latent
shape and rate, exact output length for any input length, a decoder that can represent audio
(a few optimizer steps reduce the reconstruction error), config validation."""

from __future__ import annotations

import pytest
import torch

from stemlink.errors import InvalidInput
from stemlink.lab.nn.stft_codec import STFTCodec, STFTCodecConfig

TINY = STFTCodecConfig(n_fft=256, hop=64, dim=32, blocks=1, strides=(2, 2), latent_dim=8)


def test_default_config_is_music2latent2_compression():
    c = STFTCodecConfig()
    assert c.compression == 128 and abs(c.latent_rate - 10.77) < 0.01


@pytest.mark.parametrize("length", [1, 255, 256, 1000, 4097])
def test_any_length_round_trips_to_exactly_that_length(length):
    torch.manual_seed(0)
    codec = STFTCodec(TINY).eval()
    audio = torch.randn(2, 2, length) * 0.1
    with torch.no_grad():
        z = codec.encode(audio)
        out = codec.decode(z, length)
    assert z.shape == (2, 8, -(-(length + TINY.n_fft // 2) // TINY.samples_per_latent)) == (2, 8, codec.latent_frames(length))
    assert out.shape == (2, 2, length) and torch.isfinite(out).all()
    assert z.abs().max() <= 1.0


def test_the_codec_spectrum_represents_every_input_sample():
    """Encoder STFT -> decoder iSTFT is the identity on the input's samples (the dropped frame
    only overlaps padding): the decoder head can reconstruct exactly what the encoder saw."""
    codec = STFTCodec(TINY)
    audio = torch.randn(1, 2, 1000)
    padded = torch.nn.functional.pad(audio, (0, codec.padded_length(1000) - 1000))
    assert (codec.geometry.istft(codec.geometry.stft(padded), 1000) - audio).abs().max() < 1e-5


def test_training_steps_reduce_the_reconstruction_error():
    torch.manual_seed(0)
    codec = STFTCodec(TINY)
    t = torch.arange(4096) / 44100
    audio = torch.stack((torch.sin(2 * torch.pi * 440 * t), 0.5 * torch.sin(2 * torch.pi * 660 * t)))[None] * 0.3
    opt = torch.optim.Adam(codec.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        g = codec.geometry
        est, ref = g.stft(g.pad(codec(audio))), g.stft(g.pad(audio))
        return (est.abs() - ref.abs()).abs().mean()

    with torch.no_grad():
        first = float(loss())
    for _ in range(40):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    with torch.no_grad():
        assert float(loss()) < 0.5 * first


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(InvalidInput, match="strides"):
        STFTCodecConfig(strides=(3,))
    with pytest.raises(InvalidInput, match="unknown STFT codec config keys"):
        STFTCodecConfig.from_dict({"nfft": 1})
    with pytest.raises(InvalidInput, match="expected audio"):
        STFTCodec(TINY).encode(torch.zeros(1, 1, 100))
