"""A tiny job for the executors' tests, in a module of its own: spawned pool workers import it by name, and
importing the test module itself (which imports the command line, hence torch) would take each worker seconds."""
from __future__ import annotations


def process(state: str, item) -> dict:
    if item.id == "bad":
        raise ValueError(f"{item.id}: cannot be read")
    return {"state": state, "id": item.id}


def init() -> str:
    return "model"


def init_fails() -> str:
    raise OSError("face model missing")
