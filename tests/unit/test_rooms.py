"""The one-way doors between the rooms: rabbit/ imports nothing above it, lab/ no web framework and no pika,
web/ no pika (read from the sources, so a new import that breaks a door fails here)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BANNED = {
    "rabbit": {"lab", "web", "flask", "flask_socketio", "socketio", "engineio"},
    "lab": {"web", "flask", "flask_socketio", "socketio", "engineio", "pika"},
    "web": {"pika"},
}


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("room", sorted(BANNED))
def test_a_room_imports_only_through_its_doors(room):
    crossings = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / room).rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in BANNED[room]
    ]
    assert crossings == []


def test_nothing_outside_tests_imports_tests():
    outside = [p for p in ROOT.rglob("*.py") if not {"tests", ".venv", "node_modules"} & set(p.relative_to(ROOT).parts)]
    crossings = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in outside
        for name in imported_modules(path)
        if name.split(".")[0] == "tests"
    ]
    assert crossings == []
