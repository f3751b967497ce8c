"""Training caches resample with the serving resampler: the cache's audio equals, window for
window, what the engine's apply layer feeds a model from the same file."""

from __future__ import annotations

import numpy as np
import pytest

from stemlink.audio.files import FileSource, MidSource, write_flac
from stemlink.audio.resample import fingerprint, resample_span
from stemlink.lab.data.cache import cache_folder, load_track_audio
from stemlink.lab.data.corpus import Track


@pytest.fixture
def song(tmp_path):
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal((2, 44100 + 123))).astype(np.float32)
    write_flac(tmp_path / "bass.flac", x, 44100)
    return Track(id="t", split="train", stems={"bass": (tmp_path / "bass.flac",)})


@pytest.mark.parametrize("model_rate", [16000, 22050, 44100])
def test_cached_audio_equals_the_serving_resampler(song, model_rate):
    _, stereo = load_track_audio(song, model_rate, channels=2)
    _, mono = load_track_audio(song, model_rate, channels=1)
    with FileSource(song.stems["bass"][0]) as source:
        assert stereo.shape[-1] == -(-source.frames * model_rate // 44100)
        for start in (0, 777, stereo.shape[-1] - 4096):  # the apply layer's windows: resample_span of the file
            served = resample_span(source.read, 44100, model_rate, start, 4096)
            np.testing.assert_array_equal(stereo[0, :, start : start + 4096], served)  # per channel (separation)
            mid = resample_span(MidSource(source).read, 44100, model_rate, start, 4096)
            np.testing.assert_allclose(mono[0, :, start : start + 4096], mid, atol=1e-6)  # the mid (accompaniment)


def test_cache_folder_is_named_after_the_resampler(tmp_path):
    class Corpus:
        cache_dir = tmp_path

    assert cache_folder(Corpus(), 16000, True).name == f"16000hz-mono-{fingerprint()}"  # type: ignore[arg-type]
