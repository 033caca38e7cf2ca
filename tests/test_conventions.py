"""Architecture rules the code must keep: import boundaries and a pure core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
RULES = {  # third-party package -> where it may be imported (paths relative to bot/)
    "boto3": ("aws/",),
    "botocore": ("aws/",),
    "slack_bolt": ("slack/", "serve/app.py"),
    "slack_sdk": ("slack/", "serve/app.py"),
    "sqlalchemy": ("store/",),
    "alembic": ("store/",),
}


def _modules():
    for path in sorted(BOT.rglob("*.py")):
        yield path.relative_to(BOT).as_posix(), ast.parse(path.read_text(), str(path))


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("relative,tree", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_import_boundaries(relative, tree):
    for name in _imports(tree):
        top = name.split(".")[0]
        allowed = RULES.get(top)
        if allowed is not None:
            assert relative.startswith(allowed), f"{relative} imports {name}; only {allowed} may"


def test_checks_are_pure():
    for path in (BOT / "checks").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = _imports(tree)
        assert not {
            n
            for n in imported
            if n.split(".")[0] in {"os", "io", "socket", "requests", "logging"}
            and not (path.name == "credential_report.py" and n == "io")
        }, path.name
        assert not [
            n
            for n in imported
            if n.startswith("bot.") and not n.startswith(("bot.checks", "bot.models", "bot.timeutil"))
        ], path.name
        source = path.read_text()
        assert "datetime.now" not in source and "time.time" not in source and "open(" not in source, path.name


def _module_name(relative: str) -> str:
    name = "bot." + relative.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def _bot_imports(tree: ast.Module, known: set[str]) -> set[str]:
    """bot modules this module depends on, including imports deferred into functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("bot"):
            for alias in node.names:  # `from bot.scan import command` imports the module bot.scan.command
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("bot"))
    return found & known


def test_no_import_cycles():
    """A cycle (even through an import deferred into a function) hides which layer depends on which."""
    modules = {_module_name(relative): tree for relative, tree in _modules()}
    graph = {name: _bot_imports(tree, set(modules)) - {name} for name, tree in modules.items()}

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            assert target not in path, "import cycle: " + " -> ".join(path[path.index(target) :] + [target])
            visit(target, path + [target])

    for name in sorted(graph):
        visit(name, [name])
