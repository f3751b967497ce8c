"""Package layout: the design card's top-level folders are subpackages of `stemlink`.

`engine/` -> `stemlink.engine`, `bridge/` -> `stemlink.bridge`, `plugin_host/` ->
`stemlink.plugin_host`, `stemlink/` (CLI and version) -> `stemlink`. One import namespace,
no collision with other distributions that ship a top-level `engine` or `bridge`.
Everything else lives in pyproject.toml.
"""
from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "stemlink": "stemlink",
    "stemlink.engine": "engine",
    "stemlink.bridge": "bridge",
    "stemlink.plugin_host": "plugin_host",
}


def _packages() -> list[str]:
    packages = []
    for package, folder in PACKAGE_DIRS.items():
        packages.append(package)
        packages += [f"{package}.{sub}" for sub in find_packages(folder)]
    return packages


setup(packages=_packages(), package_dir=PACKAGE_DIRS, package_data={"stemlink.bridge": ["PROTOCOL.md"]})
