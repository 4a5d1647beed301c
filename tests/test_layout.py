"""The codebase's shape, checked: one namespace, imports that go one way, no cycles.

- The wheel installs ``dualres`` and nothing else at the top of site-packages.
- ``dualres.verifier`` imports nothing of the issuer or the wallet; the issuer's domain
  imports no Flask and nothing of the issuer's web layer.
- The module import graph of ``dualres`` has no cycle (counting imports made when a module
  loads, not those inside functions or under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import dualres

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "dualres"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    paths = [
        Path(folder) / name
        # The role folders are links inside dualres/: follow them (Path.rglob does not).
        for folder, _, files in os.walk(PKG, followlinks=True)
        for name in files
        if name.endswith(".py")
    ]
    for path in sorted(paths):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if "migrations" in parts:
            continue  # run by Alembic, not imported
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _top_level_imports(tree: ast.Module) -> Iterator[ast.stmt]:
    """Statements run when the module loads: not in functions, not under TYPE_CHECKING."""
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try):
            for child in ast.walk(node):
                if isinstance(child, ast.Import | ast.ImportFrom):
                    yield child


def _imports(module: str, *, load_time_only: bool) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = _top_level_imports(tree) if load_time_only else ast.walk(tree)
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES else target)
    return out


def _graph(*, load_time_only: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        # Only what a statement names: a package that a submodule's import initialises
        # first is already in sys.modules by then, which Python handles without a cycle.
        graph[module] = {
            t
            for t in _imports(module, load_time_only=load_time_only)
            if t in MODULES and t != module
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # A package importing its own submodules is no cycle of concern only when
            # the submodules do not import the package back; that is still reported.
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []
    # Not even through imports deferred into functions (kept lazy for start-up time, not to
    # hide a circle).
    assert _cycles(_graph(load_time_only=False)) == []


def _all_imports(prefix: str) -> dict[str, set[str]]:
    return {m: _imports(m, load_time_only=False) for m in MODULES if m.startswith(prefix)}


def test_verifier_imports_only_itself_and_the_standard_library() -> None:
    for module, targets in _all_imports("dualres.verifier").items():
        ours = {t for t in targets if t.startswith("dualres.")}
        assert all(
            t.startswith("dualres.verifier") or t.startswith("dualres.schemas") for t in ours
        ), (module, ours)
        assert not {t.split(".")[0] for t in targets} & {"flask", "sqlalchemy", "werkzeug"}


def test_issuer_domain_imports_no_web_layer_and_no_flask() -> None:
    domain = _all_imports("dualres.issuer.domain")
    assert domain, "no dualres.issuer.domain modules found"
    for module, targets in domain.items():
        assert not any(t.startswith("dualres.issuer.web") for t in targets), module
        assert not {t.split(".")[0] for t in targets} & {"flask", "werkzeug", "jinja2"}, module


def test_web_blueprints_do_not_import_the_app_factory() -> None:
    for module, targets in _all_imports("dualres.issuer.web").items():
        if module == "dualres.issuer.web.app":
            continue
        assert "dualres.issuer.web.app" not in targets, module


def test_no_private_module_imported_across_packages() -> None:
    for module in MODULES:
        own = module.split(".")[:2]
        for target in _imports(module, load_time_only=False):
            parts = target.split(".")
            if parts[:1] != ["dualres"] or parts[:2] == own:
                continue
            assert not any(p.startswith("_") and p != "__init__" for p in parts), (module, target)


def test_version_is_reported() -> None:
    from dualres.issuer import cli as issuer_cli
    from dualres.verifier import cli as verify_cli

    assert dualres.__version__.count(".") == 2
    for main in (verify_cli.main, issuer_cli.main):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; from {main.__module__} import main; sys.exit(main(['--version']))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert dualres.__version__ in proc.stdout


@pytest.mark.slow
def test_wheel_installs_only_the_dualres_namespace(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("dualres-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"dualres"}
    assert f"dualres-{dualres.__version__}.dist-info/METADATA" in names
    # The parts a user needs are in it: the verifier, the issuer's migrations and templates,
    # the schemas' data, the browser apps.
    for needed in (
        "dualres/verifier/py.typed",
        "dualres/schemas/data/lg_codes.csv",
        "dualres/issuer/migrations/env.py",
        "dualres/webapps/wallet/index.html",
    ):
        assert needed in names, needed
    assert any(n.startswith("dualres/issuer/web/console/templates/") for n in names)
