"""Each package's ``__all__`` is sorted and matches its public names (httpx style)."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

PACKAGES = ["llm", "tts", "output", "pipeline", "pipeline.daemon"]


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


PROJECT = ("llm", "tts", "output", "pipeline")
# `from X._y import ...`, `import X._y`, `from X import _y`, with X another package.
_PRIVATE = re.compile(
    r"^\s*(?:from\s+(?P<a>llm|tts|output|pipeline)\._\w+[\w.]*\s+import"
    r"|import\s+(?P<b>llm|tts|output|pipeline)\._\w+"
    r"|from\s+(?P<c>llm|tts|output|pipeline)\s+import\s+\(?[^)\n]*\b_\w+)",
    re.M,
)


def private_imports(root: pathlib.Path, own: str | None) -> list[str]:
    """``path: line`` of every import of another package's private module under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for match in _PRIVATE.finditer(path.read_text(encoding="utf-8")):
            package = match.group("a") or match.group("b") or match.group("c")
            if package != own:
                found.append(f"{path.relative_to(root.parent)}: {match.group(0).strip()}")
    return found


@pytest.mark.parametrize("name", [*PROJECT, "bench"])
def test_nobody_imports_another_packages_private_modules(name: str) -> None:
    """Layering: across packages only public names (each ``__init__``'s ``__all__``)."""
    root = pathlib.Path(__file__).resolve().parents[1] / name
    assert private_imports(root, own=name) == []


def test_the_private_import_check_catches_each_form(tmp_path: pathlib.Path) -> None:
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "a.py").write_text("from tts._audio import pcm_to_wav\n", encoding="utf-8")
    (pkg / "b.py").write_text("import output._formats as f\n", encoding="utf-8")
    (pkg / "c.py").write_text("from llm import _base\n", encoding="utf-8")
    (pkg / "d.py").write_text("from ._run import StreamRun\nfrom tts import TTSEngine\n",
                              encoding="utf-8")
    (pkg / "e.py").write_text("from pipeline._run import X\n", encoding="utf-8")  # its own
    found = private_imports(pkg, own="pipeline")
    assert [line.split(":")[0] for line in found] == [
        "pipeline/a.py", "pipeline/b.py", "pipeline/c.py"
    ]
