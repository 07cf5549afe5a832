"""The README's Reliability table is generated from the suite's own fault table,
and every fault in it is injected by at least one test of this suite."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from tests.faults.table import FAULTS, render

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"


def declared_faults() -> dict[str, list[str]]:
    """fault key -> the tests of tests/faults/ marked ``@fault(key)``."""
    found: dict[str, list[str]] = {}
    for path in sorted(HERE.glob("test_*.py")):
        module = importlib.import_module(f"tests.faults.{path.stem}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_"):
                continue
            for mark in getattr(function, "pytestmark", []):
                if mark.name == "fault":
                    found.setdefault(mark.args[0], []).append(f"{path.stem}::{name}")
    return found


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Reliability\n") + 1
    end = text.find("\n## ", start)
    return text[start : end + 1 if end != -1 else len(text)]


def test_every_fault_in_the_table_is_injected_by_a_test() -> None:
    declared = declared_faults()
    assert sorted(declared) == sorted(FAULTS), (
        f"untested: {sorted(set(FAULTS) - set(declared))}, "
        f"undeclared: {sorted(set(declared) - set(FAULTS))}"
    )


def test_the_readme_reliability_section_is_the_rendered_table() -> None:
    assert readme_section() == render() + "\n", (
        "README.md's Reliability section is stale: paste `python -m tests.faults.table`"
    )
