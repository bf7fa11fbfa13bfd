"""Invariant 1: only ownership.services changes Customer.owner. Scans the code base."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {Path("ownership/services.py")}
SKIP_PARTS = {".venv", "var", "tests", "migrations", "node_modules", "__pycache__", "bench"}
OWNER_NAMES = {"owner", "owner_id"}
WRITE_CALLS = {"update", "create", "bulk_create", "update_or_create", "get_or_create", "Customer"}


def _python_files() -> list[Path]:
    return [
        path
        for path in ROOT.rglob("*.py")
        if not SKIP_PARTS.intersection(path.relative_to(ROOT).parts)
    ]


def owner_writes(source: str) -> list[int]:
    """Line numbers that assign an owner: `x.owner = …`, `setattr(x, "owner", …)`, or
    `owner=…` passed to update/create/bulk_create/get_or_create/Customer(…)."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in OWNER_NAMES:
                    lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "setattr" and len(node.args) >= 2:
                field = node.args[1]
                if isinstance(field, ast.Constant) and field.value in OWNER_NAMES:
                    lines.append(node.lineno)
            if name in WRITE_CALLS and any(k.arg in OWNER_NAMES for k in node.keywords):
                lines.append(node.lineno)
    return lines


def test_only_the_ownership_writer_assigns_owner() -> None:
    offenders = []
    for path in _python_files():
        relative = path.relative_to(ROOT)
        if relative in ALLOWED:
            continue
        for line in owner_writes(path.read_text(encoding="utf-8")):
            offenders.append(f"{relative}:{line}")
    assert offenders == [], "owner assigned outside ownership.services: " + ", ".join(offenders)


def test_the_scanner_finds_each_kind_of_owner_write() -> None:
    # A scanner that finds nothing proves nothing: it must see every form it looks for.
    source = "\n".join(
        [
            "customer.owner = rep",
            "customer.owner_id = 3",
            "setattr(customer, 'owner', rep)",
            "Customer.objects.filter(pk=1).update(owner=rep)",
            "Customer.objects.create(display_name='x', owner=rep)",
            "Customer(display_name='x', owner_id=3)",
            "Customer.objects.filter(owner=rep)",  # a read: not a write
        ]
    )
    assert owner_writes(source) == [1, 2, 3, 4, 5, 6]


def test_the_writer_itself_is_seen_by_the_scanner() -> None:
    source = (ROOT / "ownership" / "services.py").read_text(encoding="utf-8")
    assert owner_writes(source), "the single writer must assign owner somewhere"
