"""Libraries are used through their public APIs: no code reaches into a `_private` attribute.

Private attributes (Flask-Caching's `_write_client`, Flask-Limiter's `_storage_dead`, ...)
change without notice between releases; code that leans on them breaks on an upgrade.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    p for p in [*ROOT.glob("*.py"), *(ROOT / "tsapi").rglob("*.py"),
                *(ROOT / "tests").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]
    if ".venv" not in p.parts
)
# Underscored by design to stay clear of field names, and documented as public.
PUBLIC_UNDERSCORED = {
    "_mapping",  # SQLAlchemy Row
    "_asdict", "_replace", "_fields", "_make",  # namedtuple, SQLAlchemy Row
}
FIRST_PARTY = {"tsapi"} | {p.stem for p in (ROOT / "tests").glob("*.py")}


def private_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name, owner = node.attr, node.value
            if not _private(name) or name in PUBLIC_UNDERSCORED:
                continue
            if isinstance(owner, ast.Name) and owner.id in {"self", "cls"}:
                continue  # a class's own attributes
            if (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name)
                    and owner.func.id == "super"):
                continue  # an override calling the hook it overrides
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in {"getattr", "setattr", "hasattr"} and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value)):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FIRST_PARTY:
                continue
            found.extend(f"line {node.lineno}: from {node.module} import {alias.name}"
                         for alias in node.names if _private(alias.name))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_check_sees_private_access_into_a_library():
    code = ("cache.cache._write_client.get('k')\n"
            "getattr(limiter, '_storage_dead')\n"
            "from flask_limiter.extension import _Limit\n")
    assert len(private_uses(ast.parse(code))) == 3
    assert private_uses(ast.parse("row._mapping; self._lock; super()._deserialize(v)")) == []


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_no_code_reaches_into_a_private_attribute(path):
    assert private_uses(ast.parse(path.read_text(), str(path))) == []
