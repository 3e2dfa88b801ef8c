"""Every package folder is one layer, and the folders import one way (docs/architecture.md).

The layer map is prefix rules on dotted module names; the longest matching prefix wins, so a module's layer is
its folder's (``data_prep/label/audit.py`` is the label stage, ``data_prep/store.py`` the signal layer):

    common        avpretext.common (and avpretext itself, whose __init__ imports nothing)
    encoders      encoders
    signals       data_prep
    tasks         pretext.tasks
    label stage   data_prep.label
    training      pretext
    finetune      finetune
    top           avpretext.synthetic, avpretext.pipeline, experiments, benchmarks

A module imports its own layer and the layers below, never above, and the folders of one layer import each
other without a cycle. Every import statement counts, function-local ones too: a cycle hidden inside a function
is still a cycle. Only the entry-point shims named in ENTRY_POINTS may import upward: they are a ``python -m``
path to a command that lives higher up.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["common", "encoders", "signals", "tasks", "label stage", "training", "finetune", "top"]
RULES = {
    "avpretext": "common",  # the package file only: its folders are the layers
    "avpretext.common": "common",
    "encoders": "encoders",
    "data_prep": "signals",
    "pretext.tasks": "tasks",
    "data_prep.label": "label stage",
    "pretext": "training",
    "finetune": "finetune",
    "avpretext.synthetic": "top",
    "avpretext.pipeline": "top",
    "experiments": "top",
    "benchmarks": "top",
}
PACKAGES = sorted({prefix.split(".")[0] for prefix in RULES})
# Modules that exist only so that `python -m NAME` finds a command defined in a higher layer.
ENTRY_POINTS = {"data_prep.__main__": "python -m data_prep", "avpretext.main_job": "python -m avpretext.main_job"}


def layer_of(module: str) -> int | None:
    """The layer index of a dotted module name by its longest matching prefix rule; None outside the project."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in RULES:
            return LAYERS.index(RULES[prefix])
    return None


def folder_of(module: str, path: Path) -> str:
    """The dotted folder of a module: a package's own __init__ belongs to its folder."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def project_modules() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out.append((".".join(parts), path))
    return out


def imported_modules(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in the file, relative ones resolved."""
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[:len(package_parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            # `from pkg import sub` may name a submodule: check the deepest name that is a module.
            for alias in node.names:
                candidate = f"{name}.{alias.name}"
                found.append((node.lineno, candidate if module_exists(candidate) else name))
    return found


def module_exists(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel.with_suffix(".py")).is_file() or (ROOT / rel / "__init__.py").is_file()


def import_edges(modules: list[tuple[str, Path]]) -> list[tuple[str, Path, int, str]]:
    """(module, its file, line, imported project module) of every project import, entry-point shims left out."""
    return [(module, path, line, target) for module, path in modules if module not in ENTRY_POINTS
            for line, target in imported_modules(module, path) if layer_of(target) is not None]


def upward_imports(modules: list[tuple[str, Path]]) -> list[str]:
    return [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: {module} "
            f"({LAYERS[layer_of(module)]}) imports {target} ({LAYERS[layer_of(target)]})"
            for module, path, line, target in import_edges(modules) if layer_of(target) > layer_of(module)]


def folder_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of the folder graph ``{folder: folders it imports}`` as [a, b, ..., a], or [] if none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if state.get(other) == "open":
                return stack[stack.index(other):] + [other]
            if other not in state and (cycle := visit(other)):
                return cycle
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def folder_graph(modules: list[tuple[str, Path]]) -> dict[str, set[str]]:
    paths = dict(modules)
    edges: dict[str, set[str]] = {}
    for module, path, _, target in import_edges(modules):
        target_path = paths.get(target) or ROOT / Path(*target.split(".")) / "__init__.py"
        source, dest = folder_of(module, path), folder_of(target, target_path)
        if source != dest:
            edges.setdefault(source, set()).add(dest)
    return edges


def test_every_import_points_down_the_layers():
    violations = upward_imports(project_modules())
    assert not violations, "imports that point up the layers:\n" + "\n".join(violations)


def test_no_cycle_between_folders():
    cycle = folder_cycle(folder_graph(project_modules()))
    assert not cycle, "folders that import each other: " + " -> ".join(cycle)


def test_every_top_level_package_is_in_the_layer_map():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(PACKAGES), f"packages without a layer rule: {sorted(packages - set(PACKAGES))}"


def test_a_package_above_its_subfolders_imports_nothing_of_the_project():
    # Importing pretext.tasks runs pretext/__init__.py first: a package file above one of its folders would
    # drag its own layer in under the lower one.
    modules = project_modules()
    for module, path in modules:
        if path.name != "__init__.py":
            continue
        below = [m for m, p in modules if p.name == "__init__.py" and m.startswith(module + ".")
                 and layer_of(m) < layer_of(module)]
        imports = [t for _, t in imported_modules(module, path) if layer_of(t) is not None]
        assert not (below and imports), f"{module}/__init__.py sits above {below} but imports {imports}"


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    # The checks must be able to fail: a signal-layer module importing the label stage is caught...
    fake = tmp_path / "signals.py"
    fake.write_text("def f():\n    from .label.stage import label_corpus\n")
    (violation,) = upward_imports([("data_prep.signals", fake)])
    assert "imports data_prep.label.stage (label stage)" in violation
    # ...a new module beside the label folder is the signal layer, whatever its name...
    assert layer_of("data_prep.label_x") == LAYERS.index("signals") < layer_of("data_prep.label.x")
    # ...and two folders of one layer importing each other are a cycle.
    assert folder_cycle({"experiments": {"benchmarks"}, "benchmarks": {"experiments"}}) == \
        ["benchmarks", "experiments", "benchmarks"]


def test_entry_point_shims_only_hand_over():
    # A shim is a docstring, one import and the __main__ guard: nothing of its own that could hide an upward use.
    for module in ENTRY_POINTS:
        tree = ast.parse((ROOT / Path(*module.split("."))).with_suffix(".py").read_text())
        kinds = [type(node).__name__ for node in tree.body]
        assert kinds == ["Expr", "ImportFrom", "If"], f"{module}: {kinds}"


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(ENTRY_POINTS))
def test_entry_point_shims_run_their_command(module):
    name = module.removesuffix(".__main__")
    done = subprocess.run([sys.executable, "-m", name, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("usage:"), done.stdout + done.stderr


@pytest.mark.parametrize("module", ["avpretext.common.io", "data_prep.signals", "data_prep.segments", "pretext.tasks"])
def test_a_lower_layer_imports_without_any_higher_one(module):
    # The same rule at run time: what an import actually loads, package files included.
    rules = {prefix: LAYERS.index(layer) for prefix, layer in RULES.items()}
    code = (f"import sys, {module}\n"
            f"rules = {rules!r}\n"
            "def layer(m):\n"
            "    parts = m.split('.')\n"
            "    return next((rules['.'.join(parts[:n])] for n in range(len(parts), 0, -1)\n"
            "                 if '.'.join(parts[:n]) in rules), None)\n"
            f"own = layer({module!r})\n"
            # Its own package files load first by necessity (checked above to import nothing).
            f"bad = sorted(m for m in sys.modules if layer(m) is not None and layer(m) > own\n"
            f"             and not {module!r}.startswith(m + '.'))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
