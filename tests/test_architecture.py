"""The layer rules of docs/architecture.md, checked by walking every module's imports.

Each `import` / `from ... import` / literal `importlib.import_module("...")` in stemlink/ is read
with `ast` (nothing is imported to find them) and classified by where it sits:

- "module":   runs when the module is imported (top level, also inside try/if)
- "function": runs when a function or method is called (a lazy import)
- "type":     inside `if TYPE_CHECKING:`; never runs

Layer arrows (engine -> lab, bridge -> engine, ...) count every kind: a lazy or type-only import
is still a dependency a reader and the type checker follow. The torch-free rules (bridge, audio,
contract) count what runs: "module" and "function" imports in the layer's own files, plus torch
reached through the module-level imports of any stemlink module they import.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "stemlink"
TORCH = ("torch", "torchaudio")
RUNTIME = ("module", "function")
EVERY_KIND = ("module", "function", "type")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. "stemlink.engine.tasks"
    file: Path
    line: int
    target: str  # imported module, e.g. "stemlink.lab.export" or "torch.nn"
    kind: str  # "module" | "function" | "type"

    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}: imports {self.target} ({self.kind})"


def module_name(path: Path) -> str:
    """stemlink/engine/tasks.py -> stemlink.engine.tasks; stemlink/bridge/__init__.py -> stemlink.bridge."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Collector(ast.NodeVisitor):
    def __init__(self, source: str, file: Path, is_package: bool):
        self.source, self.file, self.is_package = source, file, is_package
        self.kinds = ["module"]
        self.found: list[Import] = []

    def _add(self, node: ast.AST, target: str) -> None:
        self.found.append(Import(self.source, self.file, node.lineno, target, self.kinds[-1]))  # type: ignore[attr-defined]

    def _in(self, kind: str, nodes: Iterable[ast.AST]) -> None:
        self.kinds.append(kind if self.kinds[-1] != "type" else "type")
        for node in nodes:
            self.visit(node)
        self.kinds.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        self._in("function", node.body)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._in("function", [node.body])

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._in("type", node.body)
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.source.split(".")
            if not self.is_package:
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        self._add(node, module)
        for alias in node.names:  # `from stemlink.engine import tasks` imports a module, too
            candidate = f"{module}.{alias.name}"
            if module.startswith("stemlink") and _module_file(candidate) is not None:
                self._add(node, candidate)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in ("import_module", "__import__") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self._add(node, arg.value)
        self.generic_visit(node)


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path) -> list[Import]:
    collector = _Collector(module_name(path), path, path.name == "__init__.py")
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return collector.found


ALL_IMPORTS: list[Import] = [imp for path in package_files() for imp in imports_of(path)]


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def arrows(layer: str, forbidden: Iterable[str], kinds: Iterable[str] = EVERY_KIND) -> list[Import]:
    forbidden, kinds = tuple(forbidden), tuple(kinds)
    return [i for i in ALL_IMPORTS if _under(i.source, (layer,)) and _under(i.target, forbidden) and i.kind in kinds]


def report(found: list[Import], rule: str) -> str:
    return f"{rule}: {len(found)} import(s)\n  " + "\n  ".join(i.where() for i in found)


# -- the layer arrows -------------------------------------------------------------------------


def test_engine_never_imports_lab_or_apps():
    found = arrows("stemlink.engine", ["stemlink.lab", "stemlink.apps"])
    assert not found, report(found, "the engine serves exported networks; making them is stemlink.lab's job")


def test_model_family_files_never_import_training_code():
    found = arrows("stemlink.engine.models", ["stemlink.lab"])
    assert not found, report(found, "a model-family file only wraps an exported network (no stemlink.lab)")


def test_bridge_only_speaks_the_protocol():
    found = arrows("stemlink.bridge", ["stemlink.engine", "stemlink.lab", "stemlink.apps", "stemlink.plugin_host"])
    assert not found, report(found, "stemlink.bridge must not import the engine, the lab, the apps or the host")


def test_host_reaches_the_engine_only_through_the_bridge():
    found = arrows("stemlink.plugin_host", ["stemlink.engine", "stemlink.lab"])
    assert not found, report(found, "stemlink.plugin_host must not import stemlink.engine or stemlink.lab")


def test_contract_and_audio_are_at_the_bottom():
    """Every layer may use the contract and the audio module; they use none of the layers."""
    above = ["stemlink.engine", "stemlink.lab", "stemlink.apps", "stemlink.bridge", "stemlink.plugin_host"]
    above += ["stemlink.commands", "stemlink.cli", "stemlink.launcher"]
    found = arrows("stemlink.contract", above) + arrows("stemlink.audio", above)
    assert not found, report(found, "stemlink.contract and stemlink.audio must not import the layers above them")


def test_apps_and_commands_are_on_top():
    """Nothing below imports an application (bench, demo, report) or a CLI command."""
    found = []
    for layer in ("stemlink.contract", "stemlink.audio", "stemlink.bridge", "stemlink.engine", "stemlink.lab", "stemlink.plugin_host"):
        found += arrows(layer, ["stemlink.apps", "stemlink.commands", "stemlink.cli"])
    assert not found, report(found, "only stemlink.commands / stemlink.cli (and apps themselves) may import stemlink.apps")


# -- torch-free layers ------------------------------------------------------------------------


def _module_level_graph() -> dict[str, list[Import]]:
    graph: dict[str, list[Import]] = {}
    for imp in ALL_IMPORTS:
        graph.setdefault(imp.source, [])
        if imp.kind == "module":
            graph[imp.source].append(imp)
    return graph


def _parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for n in range(1, len(parts)):
        yield ".".join(parts[:n])


def torch_chains(start: str) -> list[list[Import]]:
    """Every way importing `start` loads torch through module-level imports of stemlink modules."""
    graph = _module_level_graph()
    chains: list[list[Import]] = []
    seen: set[str] = set()
    todo: list[tuple[str, list[Import]]] = [(p, []) for p in _parents(start)] + [(start, [])]
    while todo:
        name, chain = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imp in graph.get(name, []):
            if _under(imp.target, TORCH):
                chains.append(chain + [imp])
            elif _under(imp.target, ("stemlink",)):
                for nxt in [*_parents(imp.target), imp.target]:
                    if nxt in graph:
                        todo.append((nxt, chain + [imp]))
    return chains


TORCH_FREE = ("stemlink.bridge", "stemlink.audio", "stemlink.contract")


def _layer_modules(layer: str) -> list[str]:
    return [module_name(p) for p in package_files() if _under(module_name(p), (layer,))]


def test_torch_free_layers_exist():
    missing = [layer for layer in TORCH_FREE if not _layer_modules(layer)]
    assert not missing, f"torch-free layers with no module under stemlink/: {missing} (the contract is stemlink/contract.py)"


def test_torch_free_layers_import_no_torch():
    problems: list[str] = []
    for layer in TORCH_FREE:
        problems += [i.where() for i in arrows(layer, TORCH, RUNTIME)]
        for module in _layer_modules(layer):
            for chain in torch_chains(module):
                if len(chain) > 1:  # direct imports are listed above
                    problems.append(f"{module} loads torch via " + " -> ".join(i.where() for i in chain))
    assert not problems, "stemlink.bridge, stemlink.audio and stemlink.contract must not load torch:\n  " + "\n  ".join(
        sorted(set(problems))
    )


def test_torch_free_layers_do_not_load_torch_when_imported():
    """The same rule, measured: import every module of the torch-free layers in a fresh interpreter."""
    modules = [m for layer in TORCH_FREE for m in _layer_modules(layer)]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n    assert 'torch' not in sys.modules, m\n"
    proc = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, f"importing {modules} loaded torch (or failed):\n{proc.stderr[-3000:]}"


# -- import path = file path ------------------------------------------------------------------


def _find_spec(name: str, cache: dict[str, ModuleSpec | None]) -> ModuleSpec | None:
    """What `import name` would find, asking sys.meta_path's finders (an editable install's
    finder included) as the import system does, but without running any package's __init__."""
    if name not in cache:
        parent, _, _ = name.rpartition(".")
        path = None
        if parent:
            parent_spec = _find_spec(parent, cache)
            path = list(parent_spec.submodule_search_locations or []) if parent_spec else None
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path) if find else None
            if spec is not None:
                break
        cache[name] = spec
    return cache[name]


def test_every_module_is_found_at_its_file_path():
    """No package-dir mapping: `stemlink.a.b` is stemlink/a/b.py (and nothing else answers for it)."""
    cache: dict[str, ModuleSpec | None] = {}
    wrong = []
    for path in package_files():
        name = module_name(path)
        spec = _find_spec(name, cache)
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        if origin != path.resolve():
            wrong.append(f"{name}: found at {origin}, file is {path.relative_to(ROOT)}")
    assert not wrong, "import path != file path:\n  " + "\n  ".join(wrong)


def test_no_package_dir_mapping():
    assert not (ROOT / "setup.py").exists(), "setup.py is gone: pyproject.toml describes the package"
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"].get("setuptools", {})
    assert "package-dir" not in setuptools, f"no package-dir mapping in pyproject.toml: {setuptools['package-dir']}"


def test_every_package_folder_has_an_init():
    folders = {p.parent for p in package_files()}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"folders with modules but no __init__.py (namespace packages by accident): {missing}"


def test_tests_import_helpers_by_their_full_path():
    """`from corpus_builders import ...` only works with a test folder on sys.path; use `tests.lab.data.corpus_builders`."""
    tests = ROOT / "tests"
    local = {p.stem for p in tests.rglob("*.py") if p.stem != "__init__"}
    found = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in local:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}")
    assert not found, "test helpers imported by a bare name:\n  " + "\n  ".join(found)


# -- the walker itself ------------------------------------------------------------------------


def test_walker_classifies_and_resolves_imports(tmp_path):
    pkg = tmp_path / "stemlink" / "engine"
    pkg.mkdir(parents=True)
    src = pkg / "demo.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import torch\n"
        "from ..lab import export\n"
        "if TYPE_CHECKING:\n"
        "    from stemlink.apps import demo\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('stemlink.lab.train')\n"
    )
    collector = _Collector("stemlink.engine.demo", src, is_package=False)
    collector.visit(ast.parse(src.read_text()))
    got = {(i.line, i.target, i.kind) for i in collector.found}
    assert (2, "torch", "module") in got
    assert (3, "stemlink.lab", "module") in got  # relative import resolved from the module's package
    assert (5, "stemlink.apps", "type") in got
    assert (7, "importlib", "function") in got and (8, "stemlink.lab.train", "function") in got


def test_test_modules_are_named_by_their_path():
    """pyproject: --import-mode=importlib + pythonpath ["."]: a spawned worker can import this module by name."""
    assert __name__ == "tests.test_architecture"
    assert importlib.import_module(__name__).__file__ == __file__
