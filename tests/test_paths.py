"""Shipped files are found from the environment, else the checkout; without either the error says what to set."""

from __future__ import annotations

import pytest

from stemlink import cli, paths
from stemlink.errors import ModelLoadError, PresetError


@pytest.fixture
def no_settings(monkeypatch):
    monkeypatch.delenv("STEMLINK_EXPORTS", raising=False)
    monkeypatch.delenv("STEMLINK_PRESETS", raising=False)
    return monkeypatch


def test_the_checkout_is_the_default(no_settings):
    root = paths.checkout_root()
    assert root is not None and (root / "stemlink" / "paths.py").is_file()
    assert paths.exports_dir() == root / "exports" and (paths.exports_dir() / "manifest.json").is_file()
    assert paths.presets_dir() == root / "presets" and any(paths.presets_dir().glob("*.toml"))


def test_settings_win_even_for_a_folder_still_to_be_made(no_settings, tmp_path):
    no_settings.setenv("STEMLINK_EXPORTS", str(tmp_path / "new-exports"))
    no_settings.setenv("STEMLINK_PRESETS", str(tmp_path / "mine"))
    assert paths.exports_dir() == tmp_path / "new-exports"  # an exporter creates it
    assert paths.presets_dir() == tmp_path / "mine"


def test_an_installed_copy_without_settings_says_what_to_set(no_settings, tmp_path):
    no_settings.setattr(paths, "PROJECT_ROOT", tmp_path / "site-packages")  # no pyproject.toml: not a checkout
    assert paths.checkout_root() is None
    with pytest.raises(ModelLoadError, match=r"set STEMLINK_EXPORTS=DIR or pass --exports DIR") as exc:
        paths.exports_dir()
    assert exc.value.field == "STEMLINK_EXPORTS" and "not running from a source checkout" in exc.value.message
    with pytest.raises(PresetError, match=r"set STEMLINK_PRESETS=DIR"):
        paths.presets_dir()


def test_a_checkout_missing_a_folder_names_it(no_settings, tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "presets").mkdir()
    no_settings.setattr(paths, "PROJECT_ROOT", tmp_path)
    assert paths.presets_dir() == tmp_path / "presets"
    with pytest.raises(ModelLoadError, match=f"{tmp_path / 'exports'} does not exist"):
        paths.exports_dir()


def test_the_cli_prints_the_setting_as_one_error_line(no_settings, tmp_path, capsys):
    no_settings.setattr(paths, "PROJECT_ROOT", tmp_path)
    assert cli.main(["presets"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no presets folder: set STEMLINK_PRESETS=DIR")
