"""A user's demucs checkpoint (demucs's own save format, random weights) served through the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.byo_fixtures import RATE, UserFamilyContract, make_demucs_file, stereo_mix

pytest.importorskip("demucs", reason="the demucs family needs the byo extra: pip install 'stemlink[byo]'")


class TestDemucs(UserFamilyContract):
    family = "demucs"
    stems = ("drums", "bass", "other", "vocals")

    def make(self, folder: Path) -> tuple[Path, list[str]]:
        return make_demucs_file(folder / "tiny-htdemucs.th"), []

    def test_rate_window_and_class_come_from_the_model(self, added, echo_exports):
        from stemlink.engine.registry import ModelRegistry

        spec = ModelRegistry(echo_exports).spec("mine")
        assert (spec.sample_rate, spec.window, spec.format) == (44100, 11025, "checkpoint")
        assert spec.config["class"] == "HTDemucs" and spec.tasks == ("separate", "extract", "remove")


def test_a_waveform_demucs_in_half_precision_is_padded_to_its_valid_length(tmp_path, monkeypatch):
    import numpy as np

    from stemlink.contract import TaskRequest
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.tasks import run_task
    from stemlink.engine.user_models import add_user_model

    monkeypatch.setenv("STEMLINK_USER_MODELS", str(tmp_path / "models.json"))
    file = make_demucs_file(tmp_path / "tiny-demucs.th", "Demucs", half=True)  # demucs saves half-precision states by default
    added = add_user_model(file, "demucs", exports_dir=tmp_path)
    assert added.spec.config["class"] == "Demucs" and added.spec.window == 11025
    model = ModelRegistry(tmp_path).get(added.spec.name)
    assert model.network.module.valid_length(model.window) != model.window  # the wrapper pads and trims as demucs.apply does
    mix = stereo_mix(frames=20_001)
    result = run_task(model, TaskRequest(task="separate", sample_rate=RATE, inputs={"mix": mix}))
    assert np.allclose(np.stack(list(result.stems.values())).sum(axis=0), mix, atol=1e-5)


def test_a_pickle_with_other_objects_is_refused(tmp_path, monkeypatch):
    """weights_only: a checkpoint holding anything but demucs classes is not unpickled."""
    import torch

    from stemlink.engine.user_models import add_user_model
    from stemlink.errors import ModelLoadError

    monkeypatch.setenv("STEMLINK_USER_MODELS", str(tmp_path / "models.json"))
    evil = tmp_path / "evil.th"
    torch.save({"klass": Path, "args": (), "kwargs": {}, "state": {}}, evil)
    with pytest.raises(ModelLoadError, match="not a demucs checkpoint"):
        add_user_model(evil, "demucs", exports_dir=tmp_path)
