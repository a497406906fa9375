"""The README's settings table names every environment variable the code reads, and no other.

What counts as read: every field of `tsapi.config.Settings`; in the Python of the service
and its scripts, every `TSAPI_*` string literal and every name looked up in `os.environ` /
`os.getenv` (or a mapping called `env`, as `tsapi/config.py` passes one around); every
`$TSAPI_*` the shell scripts and `compose.yaml` expand; and every `TSAPI_*` the tests look
up in the environment. The source is parsed (ast), so comments and docstrings do not count.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

from tsapi.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TSAPI_NAME = re.compile(r"TSAPI_[A-Z0-9_]+")
# $NAME and ${NAME…} in shell scripts and compose files.
SHELL_EXPANSION = re.compile(r"\$\{?(TSAPI_[A-Z0-9_]+)")
TABLE_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")
# Names that hold the process environment (or a copy passed to a function).
ENVIRON_NAMES = {"environ", "env"}


def service_python() -> list[Path]:
    """The service and everything that runs it: package, server config, scripts, migrations."""
    files = [ROOT / "gunicorn.conf.py", ROOT / "wsgi.py"]
    for folder in ("tsapi", "tools", "migrations"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def suite_python() -> list[Path]:
    return sorted((ROOT / "tests").rglob("*.py"))


def shell_sources() -> list[Path]:
    files = [ROOT / "tools" / "dev", ROOT / ".ci" / "run", ROOT / "compose.yaml"]
    files += sorted((ROOT / "tools").rglob("*.sh"))
    return files


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _is_environ(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):  # os.environ; a WSGI request's environ is not it
        return node.attr == "environ" and not (isinstance(node.value, ast.Name)
                                               and node.value.id == "request")
    return isinstance(node, ast.Name) and node.id in ENVIRON_NAMES


def _string(node: ast.AST, constants: dict[str, str]) -> str | None:
    """The string a node stands for: a literal, or a module-level constant's name."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def environment_reads(tree: ast.Module) -> set[str]:
    """Names looked up with os.environ.get / os.getenv / os.environ[...] / `in os.environ`."""
    constants = {
        target.id: node.value.value
        for node in tree.body if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets if isinstance(target, ast.Name)
    }
    names = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
            func = node.func
            if (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv":
                key = node.args[0]
        elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
              and _is_environ(node.value)):
            key = node.slice
        elif (isinstance(node, ast.Compare) and len(node.ops) == 1
              and isinstance(node.ops[0], ast.In | ast.NotIn)
              and _is_environ(node.comparators[0])):
            key = node.left
        name = _string(key, constants) if key is not None else None
        if name:
            names.add(name)
    return names


def tsapi_literals(tree: ast.Module) -> set[str]:
    """String literals (not docstrings) that are exactly a TSAPI_* name."""
    docstrings = _docstrings(tree)
    return {
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings and TSAPI_NAME.fullmatch(node.value)
    }


def variables_read() -> dict[str, set[str]]:
    """Every variable the code reads, with the files that read it."""
    where: dict[str, set[str]] = {}

    def note(names, source: str) -> None:
        for name in names:
            where.setdefault(name, set()).add(source)

    note((f.name for f in fields(Settings)), "tsapi/config.py (Settings)")
    for path in service_python():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        note(environment_reads(tree) | tsapi_literals(tree), str(path.relative_to(ROOT)))
    for path in suite_python():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        note({n for n in environment_reads(tree) if TSAPI_NAME.fullmatch(n)},
             str(path.relative_to(ROOT)))
    for path in shell_sources():
        note(SHELL_EXPANSION.findall(path.read_text(encoding="utf-8")),
             str(path.relative_to(ROOT)))
    return where


def settings_table(readme: str) -> set[str]:
    """The variables named in the first column of the table under "## Configuration"."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        first_cell = line.split("|")[1]
        names.update(TABLE_NAME.findall(first_cell))
    return names


def missing_rows(readme: str) -> dict[str, set[str]]:
    table = settings_table(readme)
    return {name: files for name, files in variables_read().items() if name not in table}


def test_every_variable_the_code_reads_has_a_row_in_the_readme_settings_table():
    missing = missing_rows(README.read_text(encoding="utf-8"))
    assert missing == {}, "add these to the README's Configuration table: " + "; ".join(
        f"{name} (read in {', '.join(sorted(files))})" for name, files in sorted(missing.items()))


def test_every_row_of_the_settings_table_names_a_variable_the_code_reads():
    stale = settings_table(README.read_text(encoding="utf-8")) - set(variables_read())
    assert stale == set(), f"the README documents variables nothing reads: {sorted(stale)}"


def test_the_scan_finds_each_kind_of_read():
    """If a reader moved and the scan lost it, the two tests above would pass vacuously."""
    found = variables_read()
    expected = {
        "TSAPI_AUTH": "tsapi/config.py (Settings)",
        "PROMETHEUS_MULTIPROC_DIR": "tsapi/api/monitoring.py",  # via a module constant
        "TSAPI_API_KEY": "tsapi/client.py",
        "GUNICORN_WORKERS": "gunicorn.conf.py",
        "DB_HOST": "tsapi/config.py",  # from the `env` mapping it is passed
        "TSAPI_PG_SOCKET_DIR": "tools/dev.d/00-common.sh",
        "TSAPI_DB_PASSWORD": "compose.yaml",
        "TSAPI_SOAK_SECONDS": "tests/test_soak.py",
    }
    for name, source in expected.items():
        assert source in found.get(name, set()), (name, source, found.get(name))
    # Names only mentioned in comments or docstrings are not reads.
    assert "TSAPI_AUTH" not in tsapi_literals(ast.parse('"""TSAPI_AUTH"""\n# TSAPI_AUTH\n'))


def test_a_variable_missing_from_the_table_is_reported():
    readme = README.read_text(encoding="utf-8")
    without = "\n".join(line for line in readme.splitlines()
                        if not line.startswith("| `TSAPI_API_KEY` |"))
    assert without != readme
    assert "TSAPI_API_KEY" in missing_rows(without)
    assert "TSAPI_API_KEY" not in missing_rows(readme)
