"""Resolve a plug-in task given as ``module:Class`` or ``path/to/file.py:Class``, the same for every entry point.

``python -m data_prep`` puts the current folder on ``sys.path``; a console script (``data_prep``,
``avpretext-pretrain``) and ``python pretext/train.py`` (what ``accelerate launch`` runs) put the script's own
folder there instead. So a plain import of a module beside the user would work under one and fail ("No module
named ...") under the others. Resolution here is independent of how the process started:

1. ``module:Class`` is imported normally when it can be (an installed package, or on ``PYTHONPATH``);
2. else, when its top-level package or module is in the current folder (``mypkg/`` or ``mypkg.py``), it is
   loaded from there by the standard path finder, and submodules follow through the package's ``__path__``
   (so relative imports inside the package work);
3. ``path/to/file.py:Class`` (any ``.py`` path, relative to the current folder or absolute) is loaded from
   that file.

``sys.path`` is never edited (a project rule: what a process imports must not depend on earlier calls).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path


def load_plugin_class(spec: str) -> type:
    """The class named by ``spec`` (``module:Class`` or ``path/to/file.py:Class``).

    Raises:
        ValueError: one line naming the spec and the reason (module or file not found, error while importing
            it, no such class).
    """
    where, _, class_name = spec.rpartition(":")
    if not where or not class_name:
        raise ValueError(f"plug-in {spec!r}: expected module:Class or path/to/file.py:Class")
    try:
        module = _load_file(Path(where)) if where.endswith(".py") else _load_module(where)
    except ValueError as err:
        raise ValueError(f"cannot load plug-in {spec!r}: {err}") from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ValueError(f"cannot load plug-in {spec!r}: {module.__name__} ({module.__file__}) has no "
                         f"{class_name!r}") from None


def _load_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        # Only a missing module of ``name`` itself falls back to the current folder: a plug-in that is found
        # but imports something missing reports that.
        if err.name is None or not (name == err.name or name.startswith(err.name + ".")):
            raise ValueError(f"{type(err).__name__}: {err}") from None
    top = name.partition(".")[0]
    if top in sys.modules:  # an imported package lacks the submodule: the current folder cannot replace it
        package = sys.modules[top]
        where = package.__file__ or ", ".join(getattr(package, "__path__", [])) or top
        raise ValueError(f"no module named {name!r} (package {top!r} is {where})")
    found = importlib.machinery.PathFinder.find_spec(top, [str(Path.cwd())])
    if found is None:
        raise ValueError(f"no module named {name!r}: not installed, not on PYTHONPATH and not in the current "
                         f"folder {Path.cwd()} (as {top}/ or {top}.py); or give path/to/file.py:Class")
    _execute(found)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        raise ValueError(f"{type(err).__name__}: {err} (looked in {Path.cwd()})") from None


def _load_file(path: Path):
    path = path.resolve()
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    # One module name per file, so that two plug-in files of the same name never replace each other.
    name = f"avpretext_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    return _execute(importlib.util.spec_from_file_location(name, path))


def _execute(spec):
    """Create, register (so that its own imports and pickling find it) and run the module of ``spec``."""
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[spec.name]
        raise ValueError(f"error while importing {spec.origin or spec.name}: {type(err).__name__}: {err}") from err
    return module
