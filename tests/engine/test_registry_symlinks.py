"""Symlinks in the exports folder: followed once, and only to a file inside the folder."""

from __future__ import annotations

import os
import shutil

import pytest

from stemlink.engine.registry import ModelRegistry
from stemlink.errors import ModelLoadError
from stemlink.lab.export.echo import build_echo_export


@pytest.fixture
def exports(tmp_path):
    return build_echo_export(tmp_path / "exports", formats=("torchscript",), window=1024)


def test_a_link_to_a_file_outside_the_exports_folder_is_refused(exports, tmp_path):
    outside = tmp_path / "elsewhere.pt"
    shutil.move(exports / "echo.pt", outside)
    os.symlink(outside, exports / "echo.pt")
    with pytest.raises(ModelLoadError, match="outside the exports folder") as info:
        ModelRegistry(exports).get("echo")
    assert info.value.field == "file"


def test_a_link_inside_the_exports_folder_is_followed(exports):
    (exports / "v1").mkdir()
    shutil.move(exports / "echo.pt", exports / "v1" / "echo.pt")
    os.symlink("v1/echo.pt", exports / "echo.pt")
    registry = ModelRegistry(exports)
    assert registry.resolve_file(registry.spec("echo")) == (exports / "v1" / "echo.pt").resolve()
    assert registry.get("echo").name == "echo"


def test_a_linked_exports_folder_is_fine(exports, tmp_path):
    os.symlink(exports, tmp_path / "linked")
    assert ModelRegistry(tmp_path / "linked").get("echo").name == "echo"


def test_a_dangling_link_is_a_missing_file(exports, tmp_path):
    (exports / "echo.pt").unlink()
    os.symlink(exports / "gone.pt", exports / "echo.pt")
    with pytest.raises(ModelLoadError, match="file is missing"):
        ModelRegistry(exports).get("echo")
