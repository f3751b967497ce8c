"""MSDM training: a few steps, checkpoint contents, resume, presets, and 2-process DDP (gloo)."""

from __future__ import annotations

import argparse
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from stemlink.errors import PresetError
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.train.msdm import load_msdm_preset, preset_from_dict, train


def _args(out, **kw) -> argparse.Namespace:
    base = dict(preset="msdm-debug", data=None, out=str(out), resume=False, max_steps=3, max_minutes=None, device="cpu", seed=0, threads=1)
    base.update(kw)
    return argparse.Namespace(**base)


def test_train_three_steps_then_resume(tmp_path):
    model = train(_args(tmp_path))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["family"] == "msdm" and state["step"] == 3
    assert {"config", "model", "ema", "optimizer", "wall_time", "metrics", "preset"} <= set(state)
    assert torch.equal(state["model"]["backbone.conv_in.weight"], model.state_dict()["backbone.conv_in.weight"])
    first = [json.loads(line) for line in (tmp_path / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first if "loss" in r] == [1, 2, 3]

    resumed = train(_args(tmp_path, resume=True, max_steps=5))
    state2 = load_checkpoint(tmp_path / "last.pt")
    assert state2["step"] == 5 and state2["wall_time"] >= state["wall_time"]
    # the resumed run started from the saved weights, so its weights moved away from them
    assert not torch.equal(state2["model"]["backbone.conv_in.weight"], state["model"]["backbone.conv_in.weight"])
    assert torch.equal(state2["model"]["backbone.conv_in.weight"], resumed.state_dict()["backbone.conv_in.weight"])


def test_presets_load_and_bad_keys_are_named():
    for name in ("msdm-debug", "msdm-cpu", "msdm-paper"):
        preset = load_msdm_preset(name)
        assert preset.model.window % preset.model.hop == 0
    with pytest.raises(PresetError, match="lr_typo"):
        preset_from_dict("x", {"train": {"lr_typo": 1.0}})
    with pytest.raises(PresetError, match="window"):
        preset_from_dict("x", {"model": {"window": 1000}})
    with pytest.raises(PresetError, match="nonexistent"):
        load_msdm_preset("nonexistent")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    model = train(_args(out, max_steps=2))
    torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))


@pytest.mark.timeout(240)
def test_ddp_two_processes_gloo_stay_in_sync(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    init = load_checkpoint(tmp_path / "last.pt")
    assert init["step"] == 2
    # ranks draw different data; only gradient averaging keeps their weights identical
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    for key in a:  # rank 0's checkpoint holds those same weights
        assert torch.equal(a[key], init["model"][key]), key


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit deprecation notices
def test_init_from_checkpoint_and_from_export_and_mismatch(tmp_path):
    from stemlink.errors import ModelLoadError
    from stemlink.lab.export.msdm import load_denoiser
    from stemlink.lab.export.network import export_torchscript

    train(_args(tmp_path / "a", max_steps=2))
    ema_a, config, _ = load_denoiser(tmp_path / "a" / "last.pt")
    # zero steps from --init: the new run's weights are exactly the previous run's EMA weights
    warm = train(_args(tmp_path / "b", max_steps=0, init=str(tmp_path / "a" / "last.pt")))
    for key, value in ema_a.state_dict().items():
        assert torch.equal(warm.state_dict()[key], value), key
    assert load_checkpoint(tmp_path / "b" / "last.pt")["init"].startswith("checkpoint EMA weights")
    # from a TorchScript export (what exports/ ships)
    example = (torch.randn(1, len(config.stems), config.window), torch.tensor([0.5]))
    script = export_torchscript(ema_a, example, tmp_path / "a.pt")
    warm2 = train(_args(tmp_path / "c", max_steps=0, init=str(script)))
    for key, value in ema_a.state_dict().items():
        assert torch.equal(warm2.state_dict()[key], value), key
    # a file of another architecture is refused by name, not half-loaded
    other = torch.nn.Conv1d(2, 3, 5)
    torch.jit.save(torch.jit.script(other), str(tmp_path / "other.pt"))
    with pytest.raises(ModelLoadError, match="does not fit"):
        train(_args(tmp_path / "d", max_steps=0, init=str(tmp_path / "other.pt")))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="neither"):
        train(_args(tmp_path / "e", max_steps=0, init=str(tmp_path / "junk.pt")))
