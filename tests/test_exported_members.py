"""Each package's ``__all__`` is sorted and matches its public names (httpx style)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["llm", "tts", "output", "pipeline"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_matches_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not (isinstance(value, type(importlib)) and attr != attr.upper())
        and attr != "annotations"
    }
    assert public == set(exported), (
        f"{name}: public names not in __all__: {sorted(public - set(exported))}; "
        f"in __all__ but missing: {sorted(set(exported) - public)}"
    )


@pytest.mark.parametrize("name", ["llm", "tts"])
def test_leaf_packages_import_nothing_of_ours(name: str) -> None:
    """Layering: llm and tts import nothing of speakstream; output only tts."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / name
    others = {"llm", "tts", "output", "pipeline"} - {name}
    pattern = re.compile(r"^\s*(?:from|import)\s+(" + "|".join(others) + r")\b", re.M)
    offenders = [
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_output_imports_only_tts() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "output"
    pattern = re.compile(r"^\s*(?:from|import)\s+(llm|pipeline)\b", re.M)
    offenders = [p.name for p in root.rglob("*.py") if pattern.search(p.read_text("utf-8"))]
    assert offenders == []
