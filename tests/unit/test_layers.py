"""The layers of docs/architecture.md hold by construction: this test reads
every module's imports (lazy ones inside functions too) and its uses of the
terminal, and fails on the first that breaks a rule."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kubectl_gitops_run"
ROOT = "kubectl_gitops_run"
# What each layer may import from the package (errors and the version are everyone's).
ALLOWED = {
    "core": {"core"},
    "adapters": {"core", "adapters"},
    "ops": {"core", "adapters", "ops"},
    "cli": {"core", "adapters", "ops", "cli"},
}
IMPURE = {"kubernetes", "requests", "urllib3", "socket", "subprocess", "aiohttp", "websocket"}
KUBE_MODULE = f"{ROOT}.adapters.kube"


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def imports(name: str, tree: ast.Module) -> set[str]:
    """Every module `name` imports, with relative imports made absolute."""
    package = name if tree_is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def tree_is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


MODULES = modules()


def test_every_module_is_in_a_layer():
    loose = [m for m in MODULES if layer(m) is None
             and m not in (ROOT, f"{ROOT}.__main__", f"{ROOT}.errors")]
    assert not loose, f"modules outside core/adapters/ops/cli: {loose}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if layer(m)))
def test_imports_go_down_only(name):
    mine = layer(name)
    for target in imports(name, MODULES[name]):
        theirs = layer(target) if target.startswith(ROOT + ".") else None
        assert theirs is None or theirs in ALLOWED[mine], \
            f"{name} ({mine}) imports {target} ({theirs})"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if layer(m) == "core"))
def test_core_is_pure(name):
    bad = {t for t in imports(name, MODULES[name]) if t.split(".")[0] in IMPURE}
    assert not bad, f"{name} is core and imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_kube_module_imports_kubernetes(name):
    if name == KUBE_MODULE:
        return
    bad = {t for t in imports(name, MODULES[name]) if t.split(".")[0] == "kubernetes"}
    assert not bad, f"{name} imports {sorted(bad)}: go through {KUBE_MODULE}"


def terminal_uses(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("print", "input"):
            found.append(f"{node.func.id}() at line {node.lineno}")
        elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr", "echo", "secho") \
                and isinstance(node.value, ast.Name) and node.value.id in ("sys", "click"):
            found.append(f"{node.value.id}.{node.attr} at line {node.lineno}")
    return found


@pytest.mark.parametrize("name", sorted(m for m in MODULES if layer(m) != "cli"))
def test_nothing_below_cli_writes_to_the_terminal(name):
    uses = terminal_uses(MODULES[name])
    assert not uses, f"{name} writes to the terminal: {uses}; report through ops.report"


def test_the_rules_catch_a_breach():
    """The checks above can fail: each finds its breach in a made-up module."""
    bad = ast.parse("import sys\nfrom ..adapters import kube\nfrom kubernetes import client\n"
                    "def f():\n    print('x')\n    sys.stderr.write('y')\n")
    found = imports(f"{ROOT}.core.fake", bad)
    assert f"{ROOT}.adapters.kube" in found and "kubernetes" in found
    assert len(terminal_uses(bad)) == 2
