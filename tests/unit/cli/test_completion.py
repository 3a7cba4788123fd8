"""The completion engine and scripts (kubectl_gitops_run/cli/completion.py), no cluster.

The engine is tested on a small click tree built here (so each rule has a
case), then on the real command tree of kubectl_gitops_run.cli.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from kubectl_gitops_run.cli import completion as comp

ROOT = Path(__file__).resolve().parents[3]


class AliasGroup(click.Group):
    aliases = {"get": "ls"}

    def get_command(self, ctx, name):
        return super().get_command(ctx, self.aliases.get(name, name))


def tree() -> click.Group:
    @click.group(cls=AliasGroup)
    @click.option("--kubeconfig", type=click.Path(dir_okay=False))
    @click.option("--context")
    @click.option("-n", "--namespace")
    @click.option("-v", "--verbose", count=True)
    @click.version_option("1.2.3")
    def root(**_):
        pass

    @root.command()
    @click.argument("dir", required=False, type=click.Path(file_okay=False))
    @click.option("--name")
    @click.option("--allow-context")
    @click.option("--target-namespace")
    @click.option("--no-wait", is_flag=True)
    @click.option("--timeout")
    def up(**_):
        pass

    @root.command(name="ls")
    @click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml", "name"]))
    @click.option("-A", "--all-namespaces", is_flag=True)
    def ls(**_):
        pass

    @root.command()
    @click.argument("names", nargs=-1)
    @click.option("--all", "all_", is_flag=True)
    def down(**_):
        pass

    @root.command(hidden=True)
    def secret():
        pass

    @root.command()
    @click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
    def completion(shell):
        pass

    return root


@pytest.fixture
def lookups(monkeypatch):
    """Fake cluster lookups; records what they were asked."""
    seen = {}

    def sessions(state):
        seen["sessions"] = dict(state.values)
        return ["hello", "help-me", "other"]

    def namespaces(values):
        seen["namespaces"] = dict(values)
        return ["default", "dev", "kube-system"]

    monkeypatch.setattr(comp, "sessions", sessions)
    monkeypatch.setattr(comp, "namespaces", namespaces)
    return seen


def c(*words):
    return comp.complete(list(words), tree())


def test_subcommands_at_the_top_without_hidden_ones(lookups):
    assert c("") == (["completion", "down", "ls", "up"], comp.NO_FILE)
    assert c("d") == (["down"], comp.NO_FILE)


def test_global_options_are_skipped_with_their_values(lookups):
    assert c("-n", "dev", "--context=x", "-vv", "l") == (["ls"], comp.NO_FILE)
    assert c("--kubeconfig", "/tmp/k", "up", "--") [0] == \
        ["--name", "--allow-context", "--target-namespace", "--no-wait", "--timeout", "--help"]


def test_flags_of_the_current_command(lookups):
    cands, directive = c("ls", "-")
    assert cands == ["-o", "--output", "-A", "--all-namespaces", "--help"]
    assert directive == comp.NO_FILE
    assert c("-")[0] == ["--kubeconfig", "--context", "-n", "--namespace", "-v", "--verbose",
                         "--version", "--help"]


def test_alias_resolves_to_its_command(lookups):
    assert c("get", "-o", "") == (["wide", "json", "yaml", "name"], comp.NO_FILE)


def test_choice_values_in_both_forms(lookups):
    assert c("ls", "-o", "j") == (["json"], comp.NO_FILE)
    assert c("ls", "--output=y") == (["yaml"], comp.NO_FILE)
    assert c("completion", "") == (["bash", "zsh", "fish"], comp.NO_FILE)
    assert c("completion", "bash", "") == ([], comp.NO_FILE)  # no second argument


def test_directories_for_up(lookups):
    assert c("up", "") == ([], comp.FILTER_DIRS)
    assert c("up", "--no-wait", "ex") == ([], comp.FILTER_DIRS)


def test_files_for_kubeconfig(lookups):
    assert c("--kubeconfig", "") == ([], 0)
    assert c("--kubeconfig=~/") == ([], 0)


def test_free_text_values_offer_nothing(lookups):
    assert c("up", "--timeout", "") == ([], comp.NO_FILE)


def test_sessions_with_the_context_and_namespace_given(lookups):
    assert c("--context", "kind-a", "-n", "dev", "down", "he") == (["hello", "help-me"],
                                                                     comp.NO_FILE)
    assert lookups["sessions"] == {"context": "kind-a", "namespace": "dev"}
    # A name already on the line is not offered again.
    assert c("down", "hello", "") == (["help-me", "other"], comp.NO_FILE)


def test_namespaces_for_namespace_options(lookups):
    assert c("-n", "d") == (["default", "dev"], comp.NO_FILE)
    assert c("--namespace=k") == (["kube-system"], comp.NO_FILE)
    assert c("up", "--target-namespace", "") == (["default", "dev", "kube-system"], comp.NO_FILE)


def test_contexts_from_merged_kubeconfigs(tmp_path, monkeypatch, lookups):
    a = tmp_path / "a"
    a.write_text("contexts:\n- name: kind-a\n- name: prod\n")
    b = tmp_path / "b"
    b.write_text("contexts:\n- name: kind-b\n- name: prod\n")
    monkeypatch.setenv("KUBECONFIG", f"{a}:{tmp_path / 'missing'}:{b}")
    assert c("--context", "") == (["kind-a", "prod", "kind-b"], comp.NO_FILE)
    assert c("up", "--allow-context", "p") == (["prod"], comp.NO_FILE)
    # --kubeconfig on the line wins over $KUBECONFIG.
    assert c("--kubeconfig", str(b), "--context", "kind") == (["kind-b"], comp.NO_FILE)


def test_broken_kubeconfig_is_quiet(tmp_path, monkeypatch, lookups):
    bad = tmp_path / "bad"
    bad.write_text("contexts: [\n")
    monkeypatch.setenv("KUBECONFIG", str(bad))
    assert c("--context", "") == ([], comp.NO_FILE)


def test_lookups_are_bounded_and_quiet(monkeypatch):
    monkeypatch.setattr(comp, "LOOKUP_TIMEOUT", 0.5)
    assert comp._run([sys.executable, "-c", "import time; time.sleep(5)"]) == []
    assert comp._run([sys.executable, "-c", "import sys; print('x', file=sys.stderr); sys.exit(3)"]) == []
    assert comp._run(["/nonexistent/kubectl"]) == []
    assert comp._run([sys.executable, "-c", "print('a\\n\\nb')"]) == ["a", "b"]


def test_main_prints_candidates_then_directive(capsys, monkeypatch):
    monkeypatch.setattr(comp, "root_command", tree)
    assert comp.main(["__complete", "ls", "-o", "n"]) == 0
    assert capsys.readouterr().out == "name\n:4\n"


def test_main_never_fails(capsys, monkeypatch):
    def boom():
        raise RuntimeError("no cli")
    monkeypatch.setattr(comp, "root_command", boom)
    assert comp.main([""]) == 0
    assert capsys.readouterr().out == ":1\n"


# --- the real command tree --------------------------------------------------


@pytest.fixture
def real_root():
    pytest.importorskip("kubectl_gitops_run.cli")
    return comp.root_command()


def test_real_tree_subcommands(real_root):
    ctx = click.Context(real_root, info_name=comp.PROG)
    want = [n for n in real_root.list_commands(ctx)
            if not real_root.get_command(ctx, n).hidden]
    cands, directive = comp.complete([""], real_root)
    assert cands == want and directive == comp.NO_FILE
    for name in ("up", "sync", "ls", "down", "completion"):
        assert name in cands


def test_real_tree_every_command_offers_its_flags(real_root):
    ctx = click.Context(real_root, info_name=comp.PROG)
    for name in real_root.list_commands(ctx):
        cands, _ = comp.complete([name, "--"], real_root)
        assert "--help" in cands, name


def test_real_tree_up_completes_directories(real_root):
    assert comp.complete(["up", ""], real_root) == ([], comp.FILTER_DIRS)


def test_real_tree_completion_shells(real_root):
    assert comp.complete(["completion", ""], real_root)[0] == list(comp.SHELLS)


def test_real_tree_get_is_ls(real_root):
    assert comp.complete(["get", "--"], real_root) == comp.complete(["ls", "--"], real_root)


def test_importing_completion_does_not_import_kubernetes():
    pytest.importorskip("kubectl_gitops_run.cli")
    code = ("import sys, kubectl_gitops_run.cli.completion as c; c.root_command(); "
            "print('kubernetes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# --- the scripts -----------------------------------------------------------


@pytest.mark.parametrize("shell", comp.SHELLS)
def test_script_names_the_program_and_helper(shell):
    text = comp.script(shell)
    assert comp.PROG in text and comp.HELPER in text
    assert "@" + "PROG@" not in text and "@" + "HELPER@" not in text


def test_zsh_script_starts_with_compdef():
    assert comp.script("zsh").startswith("#compdef kubectl-gitops_run\n")


def test_unknown_shell():
    with pytest.raises(ValueError, match="bash, zsh, fish"):
        comp.script("powershell")


def test_committed_scripts_are_current():
    """completions/ holds what script() prints: run `make completions` if not."""
    res = subprocess.run([sys.executable, str(ROOT / "packaging" / "completions.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("shell,check", [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]),
                                         ("fish", ["fish", "--no-execute"])])
def test_scripts_parse(shell, check, tmp_path):
    if shutil.which(check[0]) is None:
        pytest.skip(f"SKIPPED: {check[0]} is not installed (`make completion-shells`)")
    path = tmp_path / f"script.{shell}"
    path.write_text(comp.script(shell))
    res = subprocess.run([*check, str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_helper_is_executable_and_parses():
    helper = ROOT / "completions" / comp.HELPER
    assert helper.stat().st_mode & 0o111
    assert helper.read_text().startswith("#!/usr/bin/env python3\n")
    compile(helper.read_text(), str(helper), "exec")
