"""`ivr.compiled`: which modules run compiled, and which compiled modules are older than their
source (the test suite refuses to run those)."""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from ivr import compiled


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A package `cpkg` with a plain module and one with an extension beside its source."""
    pkg = tmp_path / "cpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plain.py").write_text("X = 1\n")
    (pkg / "fast.py").write_text("X = 1\n")
    (pkg / f"fast{EXTENSION_SUFFIXES[0]}").write_bytes(b"")  # found, never loaded
    sys.path.insert(0, str(tmp_path))
    try:
        yield pkg
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("cpkg", None)


def _age(path: Path, seconds: float) -> None:
    st = path.stat()
    os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))


def test_an_extension_newer_than_its_source_is_compiled_and_current(tree: Path) -> None:
    _age(tree / "fast.py", 60)
    build = compiled.build(["cpkg.plain", "cpkg.fast"], tree)
    assert build.compiled == ["cpkg.fast"]
    assert build.stale == []
    assert build.summary == "1 of 2 call-path modules compiled with mypyc"


def test_a_source_edited_after_its_extension_is_stale(tree: Path) -> None:
    _age(tree / f"fast{EXTENSION_SUFFIXES[0]}", 60)
    build = compiled.build(["cpkg.plain", "cpkg.fast"], tree)
    assert build.stale == ["cpkg.fast"]
    assert build.summary == "stale compiled modules (run `make compile`): cpkg.fast"


def test_no_extension_is_pure_python(tree: Path) -> None:
    (tree / f"fast{EXTENSION_SUFFIXES[0]}").unlink()
    build = compiled.build(["cpkg.plain", "cpkg.fast"], tree)
    assert build.compiled == build.stale == []
    assert build.summary == "pure Python (no compiled modules)"


def test_an_extension_for_a_module_no_longer_listed_is_stale(tree: Path) -> None:
    _age(tree / "fast.py", 60)
    (tree / f"hot__mypyc{EXTENSION_SUFFIXES[0]}").write_bytes(b"")  # the shared library
    build = compiled.build(["cpkg.plain"], tree)
    assert build.compiled == []
    assert build.stale == ["cpkg.fast"]
    assert compiled.unlisted(["cpkg.plain"], tree) == {
        "cpkg.fast": tree / f"fast{EXTENSION_SUFFIXES[0]}"
    }
    assert compiled.unlisted(["cpkg.plain", "cpkg.fast"], tree) == {}


def test_the_build_lists_every_compiled_module_by_its_source() -> None:
    root = Path(compiled.__file__).parent.parent
    paths = compiled.source_paths()
    assert len(paths) == len(compiled.MODULES)
    assert all((root / p).is_file() for p in paths)


def _assigned(init: ast.FunctionDef) -> set[str]:
    """The attributes `__init__` sets: `self.x = ...` and `object.__setattr__(self, "x", ...)`."""
    names: set[str] = set()
    for node in ast.walk(init):
        if isinstance(node, ast.Assign):
            names.update(
                t.attr
                for t in node.targets
                if isinstance(t, ast.Attribute) and ast.unparse(t.value) == "self"
            )
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "object.__setattr__":
            name = node.args[1]
            assert isinstance(name, ast.Constant)
            names.add(name.value)
    return names


def test_hand_written_dataclass_inits_set_every_field() -> None:
    """A dataclass in a compiled module may write its `__init__` out (mypyc compiles that one);
    it must then set exactly the fields, or a field added later would be missing."""
    checked = []
    for source in compiled.source_paths():
        tree = ast.parse(Path(source).read_text())
        for cls in ast.walk(tree):
            if not isinstance(cls, ast.ClassDef) or not any(
                "dataclass" in ast.unparse(d) for d in cls.decorator_list
            ):
                continue
            inits = [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"]
            if not inits:
                continue
            fields = {
                f.target.id
                for f in cls.body
                if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)
            }
            assert _assigned(inits[0]) == fields, f"{source}: {cls.name}"
            checked.append(cls.name)
    assert {"StreamResult", "CallStart", "CallOutcome", "Watch"} <= set(checked)
