"""The lab's shared pieces: one checkpoint loader, one training-preset reader, one export path."""

from __future__ import annotations

import pytest
import torch

from stemlink.engine.registry import read_manifest
from stemlink.errors import InvalidInput, ModelLoadError, PresetError
from stemlink.lab.checkpoints import average_checkpoints, load_checkpoint, save_checkpoint
from stemlink.lab.export.echo import SIGNATURE, build_echo_export
from stemlink.lab.export.network import export_network
from stemlink.lab.nn.echo import EchoNet
from stemlink.lab.train.msdm import TrainConfig
from stemlink.lab.train.presets import read_train_preset, typed_table


def test_checkpoint_round_trip_and_family_check(tmp_path):
    path = save_checkpoint(tmp_path / "run" / "last.pt", family="msdm", step=3, model={"w": torch.ones(2)})
    assert load_checkpoint(path, family="msdm")["step"] == 3
    assert not list((tmp_path / "run").glob("*.tmp"))  # atomic: no temporary file left behind
    with pytest.raises(ModelLoadError, match="'msdm', not 'cocola'"):
        load_checkpoint(path, family="cocola")
    torch.save({"checkpoint_version": 99}, tmp_path / "old.pt")
    with pytest.raises(ModelLoadError, match="version 99"):
        load_checkpoint(tmp_path / "old.pt")


def test_average_of_snapshots_is_the_mean_of_their_weights(tmp_path):
    config = {"dim": 4}
    paths = []
    for step, value in ((10, 1.0), (20, 2.0), (30, 6.0)):
        ema = {"w": torch.full((2, 2), value), "count": torch.tensor(step)}
        paths.append(save_checkpoint(tmp_path / f"s{step}.pt", family="x", config=config, ema=ema, step=step, cpu_time=step * 1.5))
    avg = average_checkpoints(paths)
    assert torch.equal(avg["ema"]["w"], torch.full((2, 2), 3.0)) and avg["ema"]["count"] == 10  # integers: not averaged
    assert avg["step"] == 30 and avg["cpu_time"] == 45.0 and avg["averaged"] == [10, 20, 30] and avg["family"] == "x"
    other = save_checkpoint(tmp_path / "o.pt", family="x", config={"dim": 8}, ema={"w": torch.zeros(2, 2)}, step=40)
    with pytest.raises(ModelLoadError, match="same family and config"):
        average_checkpoints([paths[0], other])
    with pytest.raises(ModelLoadError, match="no checkpoints"):
        average_checkpoints([])


def test_training_preset_reader_names_what_is_wrong(tmp_path):
    bad_table = tmp_path / "x.toml"
    bad_table.write_text("[model]\n[optimizer]\nlr = 1\n")
    with pytest.raises(PresetError, match="optimizer"):
        read_train_preset(bad_table, tables=("model", "train"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    with pytest.raises(PresetError, match="cannot be read"):
        read_train_preset(broken, tables=("model",))
    with pytest.raises(PresetError, match="msdm-cpu"):  # the error lists what is available
        read_train_preset("no-such-preset", tables=("model",))
    name, tables = read_train_preset("msdm-debug", tables=("model", "train", "data", "augment"))
    assert name == "msdm-debug" and isinstance(tables["model"], dict)
    with pytest.raises(PresetError, match=r"x\[train\].*lr_typo"):
        typed_table(TrainConfig, {"lr_typo": 1.0}, "x[train]")


def test_export_parity_failure_registers_nothing(tmp_path):
    from stemlink.engine.models.base import ModelSpec

    spec = ModelSpec(
        name="echo",
        version="1",
        family="echo",
        tasks=("separate",),
        format="torchscript",
        file="",
        sha256="",
        sample_rate=8000,
        stems=("a", "b"),
        window=256,
    )
    example = (torch.randn(1, 256),)
    with pytest.raises(ModelLoadError, match="parity"):
        export_network(
            EchoNet((0.5, 0.5)), [example], tmp_path, spec, onnx=SIGNATURE, formats=("torchscript",), script=True, tolerance=-1.0
        )
    assert read_manifest(tmp_path)["models"] == []
    with pytest.raises(InvalidInput, match="tflite"):
        build_echo_export(tmp_path, formats=("tflite",))
