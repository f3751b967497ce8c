"""The score task end to end: a tiny exported COCOLA served over a real tcp socket."""

import json

import numpy as np
import pytest
import torch
import zmq

from stemlink.lab.nn.cocola import build_cocola

TINY = dict(
    sample_rate=8000, clip_seconds=0.25, n_fft=256, hop_length=64, n_mels=32, backbone="test_efficientnet", dropout=0.0, embed_dim=32
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from stemlink.engine.server import Server, ServerConfig
    from stemlink.lab.export.cocola import export_cocola

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = build_cocola(**TINY).eval()
    with torch.no_grad():
        net.similarity.weight.add_(0.05 * torch.randn(32, 32))
    out = tmp_path_factory.mktemp("cocola-exports")
    export_cocola(net, out, name="cocola-test", formats=("torchscript",), tolerance=1e-4)
    server = Server(ServerConfig(bind="tcp://127.0.0.1:*", exports_dir=out), context=zmq.Context.instance()).start()
    yield net, server
    server.stop()
    torch.set_num_threads(before)


def _signals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    a = 0.3 * np.sin(2 * np.pi * 220 * t) * (rng.random(n) < 0.9) + 0.05 * rng.standard_normal(n)
    b = 0.2 * np.sign(np.sin(2 * np.pi * 330 * t)) + 0.05 * rng.standard_normal(n)
    return a[None].astype(np.float32), b[None].astype(np.float32)


def test_score_over_tcp_equals_windowed_mean(served):
    from stemlink.bridge import Client

    net, server = served
    a, b = _signals(3 * 2000, seed=0)  # 3 whole windows at the model rate: no resampling, no padding
    with Client(server.address, timeout=20) as client:
        result = client.score(a, b, 8000)
        reverse = client.score(b, a, 8000)
    assert result.task == "score" and result.model == "cocola-test" and len(result.model_sha256) == 64
    assert int(result.scores["windows"]) == 3
    with torch.no_grad():
        ha = net.encoder(torch.from_numpy(a[0].reshape(3, 2000)))
        hb = net.encoder(torch.from_numpy(b[0].reshape(3, 2000)))
        want = float(net.similarity(ha, hb).mean())
        want_reverse = float(net.similarity(hb, ha).mean())
    assert result.scores["score"] == pytest.approx(want, abs=1e-3)
    assert reverse.scores["score"] == pytest.approx(want_reverse, abs=1e-3)
    assert abs(want - want_reverse) > 1e-3  # the order (context, candidate) matters


def test_score_cli_over_tcp(served, tmp_path, capsys):
    from pedalboard.io import AudioFile

    from stemlink.cli import main

    _, server = served
    a, b = _signals(44100, seed=1)
    paths = []
    for name, x, rate in (("a.wav", a, 44100), ("b.flac", b, 22050)):
        path = tmp_path / name
        with AudioFile(str(path), "w", rate, num_channels=2) as f:
            f.write(np.repeat(x[:, : x.shape[1] * rate // 44100], 2, axis=0))
        paths.append(str(path))
    assert main(["score", *paths, "--engine", server.address, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == "cocola-test" and out["windows"] == 4 and np.isfinite(out["score"])
    assert main(["score", paths[0], str(tmp_path / "missing.wav"), "--engine", server.address]) == 2
