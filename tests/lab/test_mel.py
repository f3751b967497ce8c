"""The exportable mel front end against torchaudio's reference implementation."""

import pytest
import torch

from stemlink.lab.nn.mel import MelFrontEnd, mel_filterbank

torchaudio = pytest.importorskip("torchaudio")


@pytest.mark.parametrize(
    "sr,n_fft,hop,win,n_mels,f_min,f_max",
    [
        (16000, 1024, 256, None, 64, 0.0, None),
        (8000, 512, 160, 400, 40, 30.0, 3800.0),
        (22050, 2048, 512, None, 128, 20.0, 11025.0),
    ],
)
def test_matches_torchaudio_melspectrogram(sr, n_fft, hop, win, n_mels, f_min, f_max):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, sr // 2, generator=g) * torch.linspace(0, 1, sr // 2)
    ours = MelFrontEnd(sr, n_fft, hop, win_length=win, n_mels=n_mels, f_min=f_min, f_max=f_max, log=False)(x)
    ref = torchaudio.transforms.MelSpectrogram(
        sr,
        n_fft=n_fft,
        win_length=win,
        hop_length=hop,
        f_min=f_min,
        f_max=f_max,
        n_mels=n_mels,
        power=2.0,
        center=True,
        pad_mode="reflect",
        norm=None,
        mel_scale="htk",
    )(x)
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max() / ref.abs().max()) < 1e-4


def test_filterbank_matches_torchaudio():
    ref = torchaudio.functional.melscale_fbanks(513, 0.0, 8000.0, 64, 16000, norm=None, mel_scale="htk")
    assert torch.allclose(mel_filterbank(513, 0.0, 8000.0, 64, 16000), ref, atol=2e-5)


def test_log_mel_and_frame_count():
    fe = MelFrontEnd(16000, 1024, 256, n_mels=64)
    x = torch.zeros(2, 32000)
    y = fe(x)
    assert y.shape == (2, 64, fe.frames(32000)) == (2, 64, 126)
    assert torch.allclose(y, torch.full_like(y, torch.log(torch.tensor(fe.log_eps))))


def test_sine_energy_lands_in_the_right_band():
    sr = 16000
    t = torch.arange(sr) / sr
    fe = MelFrontEnd(sr, 1024, 256, n_mels=64, log=False)
    low, high = fe(torch.sin(2 * torch.pi * 200 * t)[None]), fe(torch.sin(2 * torch.pi * 4000 * t)[None])
    assert int(low.mean(-1).argmax()) < int(high.mean(-1).argmax())


def test_rejects_bad_settings():
    with pytest.raises(ValueError):
        MelFrontEnd(16000, 512, 128, win_length=1024)
    with pytest.raises(ValueError):
        MelFrontEnd(16000, 512, 128, f_min=100.0, f_max=9000.0)
