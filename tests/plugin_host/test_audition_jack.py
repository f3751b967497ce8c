"""`--play` through sounddevice over a real JACK server (jackd2, dummy driver): what is played is
what was written, from its first sample; a device at another rate gets the audio converted; no
device is one warning line and the job still succeeds.

The server runs without playback ports of its own (`-P 0`); a recorder client registers two
*physical* input ports before the player starts, so PortAudio's JACK host API auto-connects the
player's outputs to the recorder before its stream runs (pa_jack connects in StartStream, before
the first buffer): the recording holds every played sample, whatever the machine's load.
The player is a separate `stemlink` process (PortAudio lists JACK servers when it initializes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from pedalboard.io import AudioFile

from stemlink.lab.export.echo import build_echo_export
from stemlink.lab.nn.echo import ECHO_STEMS

jack = pytest.importorskip("jack", reason="JACK-Client is not installed (pip install -e .[test])")
pytestmark = pytest.mark.skipif(
    shutil.which("jackd") is None, reason="jackd (Debian jackd2) is not installed: `bash setup.sh test` installs it"
)


class Recorder:
    """A JACK server with no ports of its own and a client whose 2 physical inputs record."""

    def __init__(self, rate: int):
        self.name = f"stemlink-test-{uuid.uuid4().hex[:8]}"
        self.server = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy", "-r", str(rate), "-p", "1024", "-P", "0", "-C", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = None
        for _ in range(600):  # the server is up when a client can open (up to a minute on a busy machine)
            try:
                self.client = jack.Client("recorder", servername=self.name, no_start_server=True)
                break
            except jack.JackOpenError:
                if self.server.poll() is not None:
                    break
                time.sleep(0.1)
        assert self.client is not None, "jackd did not start"
        self.ports = [self.client.inports.register(f"in_{i + 1}", is_physical=True, is_terminal=True) for i in range(2)]
        self.chunks: list[np.ndarray] = []
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        self.chunks.append(np.stack([p.get_array().copy() for p in self.ports]))

    def recording(self) -> np.ndarray:
        """(2, N): everything from the first non-silent sample on."""
        y = np.concatenate(self.chunks, axis=1) if self.chunks else np.zeros((2, 0), np.float32)
        loud = np.flatnonzero(np.abs(y).sum(axis=0) > 0)
        return y[:, loud[0] :] if loud.size else y[:, :0]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
        self.server.terminate()
        self.server.wait(timeout=30)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    exports = build_echo_export(tmp_path / "exports", sample_rate=16000, window=8192, delay=3, formats=("torchscript",))
    env = {**os.environ, "STEMLINK_EXPORTS": str(exports), "STEMLINK_PRESETS": str(tmp_path / "presets")}
    env.pop("STEMLINK_ENGINE", None)
    return tmp_path, env


def write_mix(path, rate, seconds=1.0):
    x = (0.1 * np.random.default_rng(0).standard_normal((2, int(rate * seconds)))).astype(np.float32)
    with AudioFile(str(path), "w", rate, 2, bit_depth=32) as f:
        f.write(x)


def read(path):
    with AudioFile(str(path)) as f:
        return f.read(f.frames)


def separate_and_play(folder, env, server, rate):
    write_mix(folder / "mix.wav", rate)
    done = subprocess.run(
        [sys.executable, "-m", "stemlink", "separate", "mix.wav", "--model", "echo", "--out", "o", "--play"],
        cwd=folder,
        env={**env, "JACK_DEFAULT_SERVER": server},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    stems = [read(folder / "o" / f"mix_{stem}_0.wav") for stem in ECHO_STEMS]
    return np.sum(stems, axis=0), done.stderr


def record_play(workdir, file_rate, server_rate=48000):
    """(written mix, stemlink's stderr, what the JACK server got) for one `--play` run."""
    folder, env = workdir
    recorder = Recorder(server_rate)
    try:
        written, err = separate_and_play(folder, env, recorder.name, file_rate)
    finally:
        recorder.close()
    return written, err, recorder.recording()


def test_play_sends_exactly_the_written_stems(workdir):
    written, _, played = record_play(workdir, 48000)
    assert played.shape[1] >= written.shape[1]
    assert np.array_equal(played[:, : written.shape[1]], written)  # bit-exact, from the first sample
    assert not np.any(played[:, written.shape[1] :])


def test_play_converts_to_the_device_rate(workdir):
    from stemlink.audio.resample import resample_array

    written, err, played = record_play(workdir, 44100)
    assert "device runs at 48000 Hz" in err
    expected = resample_array(written, 44100, 48000)
    assert np.abs(played[:, : expected.shape[1]] - expected).max() < 1e-6


def test_no_device_is_one_warning_line_and_the_stems_stay(workdir):
    folder, env = workdir
    write_mix(folder / "mix.wav", 48000)
    done = subprocess.run(
        [sys.executable, "-m", "stemlink", "separate", "mix.wav", "--model", "echo", "--out", "o", "--play"],
        cwd=folder,
        env={**env, "JACK_DEFAULT_SERVER": f"absent-{uuid.uuid4().hex[:8]}", "JACK_NO_START_SERVER": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0
    lines = [line for line in done.stderr.splitlines() if "--play skipped" in line]
    assert len(lines) == 1 and "no audio output device" in lines[0] and "Traceback" not in done.stderr
    assert all((folder / "o" / f"mix_{stem}_0.wav").is_file() for stem in ECHO_STEMS)
