"""The package's layout as README describes it: layers import only downwards, and no module-level import
cycle.  Imports are read from the source (every ``import`` statement, inside functions too)."""

import ast
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "gpu_depth"
#: Each top-level part of the package and its layer: a module imports only its own part and lower layers.
LAYERS = {
    "errors": 0,
    "limits": 1,
    "fileio": 1,
    "core": 2,
    "backends": 3,
    "containers": 3,
    "convert": 4,
    "api": 4,
    "depthmaps": 4,
    "datasets": 4,
    "verify": 4,
    "pipeline": 5,
    "cli": 6,
    "__init__": 7,
    "__main__": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, bool]]:
    """(imported gpu_depth module, whether the import is at module level) for each import of module ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body} | {
        id(child) for node in tree.body if isinstance(node, ast.If) for child in node.body
    }  # `if TYPE_CHECKING:` blocks count as module level
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base] if base else parents)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found += [(target, id(node) in top) for target in targets if target.split(".")[0] == "gpu_depth"]
    return found


def part(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_has_a_layer():
    assert {part(name) for name in MODULES} == set(LAYERS)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    if name == "gpu_depth":
        return
    own = part(name)
    upward = [
        target
        for target, _ in imports(name)
        if target != "gpu_depth" and part(target) != own and LAYERS[part(target)] >= LAYERS[own]
    ]
    assert not upward, f"{name} ({own}, layer {LAYERS[own]}) imports {upward}"


def test_no_import_cycle_at_module_level():
    graph = {name: {t for t, top in imports(name) if top and t in MODULES and t != name} for name in MODULES}
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                raise AssertionError(" -> ".join([*path[path.index(target) :], target]))
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_layout_test_sees_cycles_and_upward_imports(tmp_path, monkeypatch):
    """The checks have teeth: a core module importing a container, and two modules importing each other."""
    monkeypatch.setitem(MODULES, "gpu_depth.core.bad", tmp_path / "bad.py")
    (tmp_path / "bad.py").write_text("from ..containers.heic import plugin\nfrom . import worse\n")
    monkeypatch.setitem(MODULES, "gpu_depth.core.worse", tmp_path / "worse.py")
    (tmp_path / "worse.py").write_text("from . import bad\n")
    with pytest.raises(AssertionError, match="imports"):
        test_imports_go_down_the_layers("gpu_depth.core.bad")
    with pytest.raises(AssertionError, match=r"gpu_depth\.core\.bad -> gpu_depth\.core\.worse -> gpu_depth\.core\.bad"):
        test_no_import_cycle_at_module_level()


def test_every_package_ships_in_the_wheel():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert packages | {"gpu_depth.kernels"} == set(config["packages"])
