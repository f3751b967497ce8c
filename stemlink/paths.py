"""Where the shipped files live: exported models (exports/) and presets (presets/).

    STEMLINK_EXPORTS=DIR   models: DIR/manifest.json and the files it names (commands: --exports DIR)
    STEMLINK_PRESETS=DIR   presets: DIR/*.toml, training presets in DIR/train/
    STEMLINK_USER_MODELS=FILE  the user manifest of `stemlink models add` (default below)

Without a setting, the folders of the source checkout this package is imported from are used
(`exports/` and `presets/` next to `stemlink/`). An installed copy (a wheel, no checkout)
has no such folders: then the setting is required, and asking for the folder without it raises
an error saying what to set. A set variable is returned as given (an exporter creates it).
The user manifest is not shipped: it defaults to $XDG_CONFIG_HOME/stemlink/models.json
(~/.config/stemlink/models.json), outside any checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from stemlink.errors import ModelLoadError, PresetError

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout, when imported from one


def checkout_root() -> Path | None:
    """The source checkout holding this package (a folder with pyproject.toml next to stemlink/), else None."""
    return PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else None


def _shipped(env: str, folder: str, what: str, error: type[ModelLoadError] | type[PresetError], flag: str) -> Path:
    value = os.environ.get(env)
    if value:
        return Path(value)
    root = checkout_root()
    if root is not None and (root / folder).is_dir():
        return root / folder
    where = f"{root / folder} does not exist" if root is not None else f"stemlink is not running from a source checkout ({PROJECT_ROOT})"
    raise error(f"no {what} folder: set {env}=DIR{flag} ({where})", field=env)


def exports_dir() -> Path:
    """Folder holding shipped models and `manifest.json`: $STEMLINK_EXPORTS, else the checkout's exports/."""
    return _shipped("STEMLINK_EXPORTS", "exports", "exports (models + manifest.json)", ModelLoadError, " or pass --exports DIR")


def presets_dir() -> Path:
    """Folder holding `*.toml` presets: $STEMLINK_PRESETS, else the checkout's presets/."""
    return _shipped("STEMLINK_PRESETS", "presets", "presets", PresetError, "")


def user_models_path() -> Path:
    """The user manifest (models added with `stemlink models add`, kept outside the checkout):
    $STEMLINK_USER_MODELS, else $XDG_CONFIG_HOME/stemlink/models.json, else ~/.config/stemlink/models.json."""
    value = os.environ.get("STEMLINK_USER_MODELS")
    if value:
        return Path(value)
    config = os.environ.get("XDG_CONFIG_HOME")
    return (Path(config) if config else Path.home() / ".config") / "stemlink" / "models.json"
