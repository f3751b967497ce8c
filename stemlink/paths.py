"""Where the project's shipped files live (exports/, presets/), overridable by environment."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def exports_dir() -> Path:
    """Folder holding shipped models and `manifest.json` (env STEMLINK_EXPORTS overrides)."""
    return Path(os.environ.get("STEMLINK_EXPORTS", PROJECT_ROOT / "exports"))


def presets_dir() -> Path:
    """Folder holding `*.toml` presets (env STEMLINK_PRESETS overrides)."""
    return Path(os.environ.get("STEMLINK_PRESETS", PROJECT_ROOT / "presets"))
