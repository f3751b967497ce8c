"""stemlink: a DAW bridge backed by a local stem-aware inference engine."""

from stemlink.paths import PROJECT_ROOT, exports_dir, presets_dir

__version__ = "0.1.0"

__all__ = ["__version__", "PROJECT_ROOT", "exports_dir", "presets_dir"]
