"""The services' interior keeps its shape (issue 22): handlers are thin, no function grows long,
and domain modules need no ``# type: ignore``. Measured on the source, so a long function fails
here before it is read by anyone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
HANDLER_LINES = 30
FUNCTION_LINES = 60


def functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def sources(pattern: str) -> list[Path]:
    return sorted(p for p in SERVICES.rglob(pattern) if "migrations" not in p.parts)


@pytest.mark.parametrize("path", sources("handlers*.py") + sources("handlers/*.py"), ids=lambda p: str(p.relative_to(ROOT)))
def test_handlers_are_thin(path):
    long = [f"{name} ({n} lines)" for name, n in functions(path) if n > HANDLER_LINES]
    assert long == [], f"handlers longer than {HANDLER_LINES} lines: {long}"


def test_no_function_in_the_services_is_long():
    long = [f"{name} ({n} lines)" for path in sources("*.py") for name, n in functions(path) if n > FUNCTION_LINES]
    assert long == [], f"functions longer than {FUNCTION_LINES} lines: {long}"


def test_domain_modules_need_no_type_ignore():
    domain = sources("domain.py") + sources("domain/*.py") + sources("rubrics.py")
    assert domain, "no domain modules found"
    ignored = [f"{p.relative_to(ROOT)}:{i}" for p in domain for i, line in enumerate(p.read_text().splitlines(), 1) if "type: ignore" in line]
    assert ignored == []
