"""The one-way architecture of docs/architecture.md, checked on every import statement of the code.

Layers, bottom to top (a module may import its own layer and the layers below, never above):

    common -> encoders -> data_prep signals -> pretext.tasks -> data_prep label stage -> pretext training
    -> finetune -> avpretext main job / report / synthetic, experiments, benchmarks

Function-local imports count too: a cycle hidden inside a function is still a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("avpretext", "encoders", "data_prep", "pretext", "finetune", "experiments", "benchmarks")
# Modules of data_prep that run the label stage; the rest of data_prep is the signal layer under the tasks.
LABEL_STAGE = {"data_prep.label", "data_prep.label.stage", "data_prep.label.config", "data_prep.label.audit",
               "data_prep.label.audit_report", "data_prep.label.cli", "data_prep.__main__"}
LAYER_NAMES = ["common", "encoders", "data_prep signals", "pretext.tasks", "data_prep label stage",
               "pretext training", "finetune", "main job, experiments, benchmarks"]


def layer_of(module: str) -> int | None:
    """The layer index of a dotted module name, or None for a module outside the project (numpy, torch, ...)."""
    top = module.split(".")[0]
    if top not in PACKAGES:
        return None
    if module == "avpretext" or module.startswith("avpretext.common"):
        return 0  # the package __init__ imports nothing, so importing it costs nothing
    if top == "encoders":
        return 1
    if top == "data_prep":
        return 4 if module in LABEL_STAGE else 2
    if module.startswith("pretext.tasks"):
        return 3
    if top == "pretext":
        return 5
    if top == "finetune":
        return 6
    return 7


def project_modules() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            out.append((".".join(parts), path))
    return out


def imported_modules(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in the file, relative ones resolved."""
    is_package = path.name == "__init__.py"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
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


def test_every_import_points_down_the_layers():
    violations = []
    for module, path in project_modules():
        own = layer_of(module)
        for line, target in imported_modules(module, path):
            other = layer_of(target)
            if other is not None and other > own:
                violations.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYER_NAMES[own]}) imports "
                                  f"{target} ({LAYER_NAMES[other]})")
    assert not violations, "imports that point up the layers:\n" + "\n".join(violations)


def test_the_checker_sees_an_upward_import(tmp_path):
    # The check must be able to fail: a signal-layer module importing the label stage is caught.
    fake = tmp_path / "signals.py"
    fake.write_text("def f():\n    from .label.stage import label_corpus\n")
    (line, target), = imported_modules("data_prep.signals", fake)
    assert target == "data_prep.label.stage" and layer_of(target) > layer_of("data_prep.signals")


@pytest.mark.parametrize("module", ["data_prep.segments", "data_prep.signals", "pretext.tasks"])
def test_lower_layers_import_without_the_label_stage(module):
    # The lazy data_prep package: importing a lower layer must not execute the label stage.
    import subprocess
    import sys
    code = (f"import sys, {module}; bad = sorted(m for m in sys.modules if m in {sorted(LABEL_STAGE)!r}); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
