"""The shape of phone_core, checked from its source: no import cycle, one writer per table."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "phone_core"
WRITES = {"insert", "update", "delete"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if "migrations" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every phone_core module ``name`` imports, at any depth (functions included)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _package_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # A module importing ``phone_core.x.y`` also runs ``phone_core.x``'s __init__.
    for deps in graph.values():
        for dep in list(deps):
            parent = dep.rsplit(".", 1)[0]
            if parent in known and parent != "phone_core":
                deps.add(parent)
    for name in graph:
        graph[name].discard(name)
        graph[name].discard("phone_core")
    return graph


def test_no_import_cycle_in_phone_core() -> None:
    graph = _package_graph()
    assert len(graph) > 20
    assert graph["phone_core.service"] >= {"phone_core.runs", "phone_core.credits"}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _table_writes(path: Path) -> set[str]:
    """Tables this module inserts into, updates or deletes from (``db.<table>`` and
    names bound to one, e.g. ``rr = db.run_records``)."""
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "db"
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    aliases[target.id] = node.value.attr
    written: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if fname in ("insert_ignore", "bulk_insert") and len(node.args) > 1:  # (conn, table, ..)
            arg = node.args[1]
        elif fname in WRITES:
            arg = node.args[0]
        else:
            continue
        if isinstance(arg, ast.Attribute) and getattr(arg.value, "id", "") == "db":
            written.add(arg.attr)
        elif isinstance(arg, ast.Name) and arg.id in aliases:
            written.add(aliases[arg.id])
    return written


def test_one_writer_per_table() -> None:
    writers: dict[str, set[str]] = defaultdict(set)
    for name, path in _modules().items():
        for table in _table_writes(path):
            writers[table].add(name)
    assert writers["runs"] == {"phone_core.runs"}
    assert writers["run_records"] == {"phone_core.runs"}
    assert writers["ledger"] == {"phone_core.credits"}
    assert writers["users"] == {"phone_core.users"}
    assert writers["install_secrets"] == {"phone_core.sessions"}
    assert writers["notifications"] == {"phone_core.notify"}
    assert writers["notify_settings"] == {"phone_core.preferences"}
    assert writers["purges"] == {"phone_core.retention"}
    assert writers["erasures"] == {"phone_core.erasure"}
    assert writers["run_webhooks"] == {"phone_core.notify"}
    assert writers["notification_attempts"] == {"phone_core.notify"}
    assert writers["persons"] == {"phone_core.persons"}
    assert writers["cache"] == {"phone_core.sources.cache"}
    assert writers["directory"] == {"phone_core.sources.directory"}
    assert writers["suppression_lists"] == {"phone_core.suppression"}
    assert writers["suppression_entries"] == {"phone_core.suppression"}
    assert writers["audit_log"] == {"phone_core.audit"}
    assert writers["vendor_jobs"] == {"phone_core.sources.vendor_jobs"}
    assert writers["vendor_job_records"] == {"phone_core.sources.vendor_jobs"}
    assert writers["vendor_settings"] == {"phone_core.vendor_config"}
    assert writers["source_calls"] == {"phone_core.source_stats"}
    shared = {t: sorted(m) for t, m in writers.items() if len(m) > 1}
    assert shared == {}
