"""Shell completion end to end: bash, zsh and fish through their completion entry
points with the committed scripts, and kubectl (1.26+) through `kubectl
__complete gitops-run ...`, all using completions/kubectl_complete-gitops_run
and the real command tree. Namespaces and sessions come from the local cluster.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("kubectl_gitops_run.cli")

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = ROOT / "completions"
PROG = "kubectl-gitops_run"
HELPER = "kubectl_complete-gitops_run"


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        msg = f"SKIPPED: {shell} is not installed; `make completion-shells` installs zsh and fish"
        print(f"\n{'!' * 78}\n{msg}\n{'!' * 78}")
        pytest.skip(msg)
    return path


@pytest.fixture
def env(tmp_path) -> dict:
    """PATH with the helper and a `python3` that has this package; a kubeconfig
    with known contexts; a working directory with two directories and a file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    (bin_dir / HELPER).symlink_to(COMPLETIONS / HELPER)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Config
        contexts:
        - name: kind-one
          context: {cluster: c, user: u}
        - name: team:prod
          context: {cluster: c, user: u}
        clusters:
        - name: c
          cluster: {server: "https://127.0.0.1:1"}
        users:
        - name: u
          user: {token: t}
        current-context: kind-one
        """))
    work = tmp_path / "work"
    for d in ("apps", "apple", "zoo"):
        (work / d).mkdir(parents=True)
    (work / "app.txt").write_text("x")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("BASH_", "ZDOTDIR", "fish_"))}
    # the plugin installed as a user has it: its console script on PATH
    plugin_dir = Path(sys.executable).parent
    e.update(PATH=os.pathsep.join([str(bin_dir), str(plugin_dir), e["PATH"]]),
             KUBECONFIG=str(kubeconfig),
             HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"),
             XDG_DATA_HOME=str(tmp_path / "data"), TERM="dumb", PWD=str(work))
    e["_WORK"] = str(work)
    return e


def run(cmd, env, **kw):
    return subprocess.run(cmd, env=env, cwd=env["_WORK"], capture_output=True, text=True,
                          timeout=60, **kw)


# --- bash: COMP_WORDS / COMP_CWORD / COMP_LINE / COMP_POINT --------------------

BASH_DRIVER = r"""
source "$1"
line=$2
COMP_LINE=$line
COMP_POINT=${#line}
read -r -a COMP_WORDS <<< "$line"
[[ $line == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMPREPLY=()
complete -p kubectl-gitops_run >/dev/null || exit 3
__kubectl_gitops_run_complete
printf '%s\n' "${COMPREPLY[@]}"
"""


def bash_complete(env, line: str) -> list[str]:
    need("bash")
    res = run(["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "bash",
               str(COMPLETIONS / f"{PROG}.bash"), line], env)
    assert res.returncode == 0, res.stderr
    return [x for x in res.stdout.splitlines() if x]


# --- zsh: a real interactive zsh in a pty, compinit, TAB ------------------------

ZSH_DRIVER = r"""
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PROMPT='' RPROMPT='' PS2=''"
zpty -w z "fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  local -a __hits; local __h
  builtin compadd -A __hits "$@"
  for __h in $__hits; do print -r -- "<<HIT:$__h>>"; done
}'
zpty -w z "zstyle ':completion:*' list-grouped false"
zpty -w z "zstyle ':completion:*' insert-tab false"
zpty -w z "bindkey '^I' complete-word"
zpty -w z "__done () { print -r -- '<<DONE>>' }"
zpty -w z "comppostfuncs=(__done)"
zpty -w z "print -r -- '<<READY>>'"
zpty -r z line '*<<READY>>*'
zpty -r z line '*<<READY>>*'
zpty -w -n z "$2"$'\t'
integer deadline=$(( SECONDS + 30 ))
while (( SECONDS < deadline )); do
  zpty -r z line || break
  [[ $line == *'<<DONE>>'* ]] && break
  [[ $line == *'<<HIT:'* ]] && print -r -- "${${line##*<<HIT:}%%>>*}"
done
zpty -d z
"""


def zsh_complete(env, line: str) -> list[str]:
    need("zsh")
    fdir = Path(env["_WORK"]).parent / "zfunc"
    fdir.mkdir(exist_ok=True)
    shutil.copy(COMPLETIONS / f"_{PROG}", fdir / f"_{PROG}")
    res = run(["zsh", "-f", "-c", ZSH_DRIVER, "zsh", str(fdir), line], env)
    assert res.returncode == 0, res.stderr
    return [x for x in res.stdout.splitlines() if x]


# --- fish: `complete -C` -----------------------------------------------------


def fish_complete(env, line: str) -> list[str]:
    need("fish")
    script = COMPLETIONS / f"{PROG}.fish"
    res = run(["fish", "--no-config", "-c", f"source {script}; complete -C {line!r}"], env)
    assert res.returncode == 0, res.stderr
    return [x.split("\t")[0] for x in res.stdout.splitlines() if x]


SHELLS = {"bash": bash_complete, "zsh": zsh_complete, "fish": fish_complete}


@pytest.mark.parametrize("shell", SHELLS)
def test_subcommands(shell, env):
    got = SHELLS[shell](env, f"{PROG} ")
    for name in ("up", "sync", "ls", "down", "completion"):
        assert name in got, (shell, got)
    assert all(not c.startswith("-") for c in got)


@pytest.mark.parametrize("shell", SHELLS)
def test_subcommand_prefix(shell, env):
    assert SHELLS[shell](env, f"{PROG} do") == ["down"]


@pytest.mark.parametrize("shell", SHELLS)
def test_directories_for_up(shell, env):
    got = sorted(c.rstrip("/") for c in SHELLS[shell](env, f"{PROG} up ap"))
    assert got == ["apple", "apps"], (shell, got)


@pytest.mark.parametrize("shell", SHELLS)
def test_contexts_from_kubeconfig(shell, env):
    got = SHELLS[shell](env, f"{PROG} ls --context ")
    assert sorted(got) == ["kind-one", "team:prod"], (shell, got)
    got = SHELLS[shell](env, f"{PROG} ls --context te")
    if shell == "bash":  # bash replaces only what follows the ":" it split at
        assert got == ["team:prod"], got
    else:
        assert got == ["team:prod"], (shell, got)


@pytest.mark.parametrize("shell", SHELLS)
def test_flags_of_a_subcommand(shell, env):
    got = SHELLS[shell](env, f"{PROG} ls --")
    assert "--help" in got and "--output" in got, (shell, got)


@pytest.mark.parametrize("shell", SHELLS)
def test_choices(shell, env):
    assert sorted(SHELLS[shell](env, f"{PROG} completion ")) == ["bash", "fish", "zsh"]
    got = SHELLS[shell](env, f"{PROG} ls -o ")
    assert {"json", "yaml", "name", "wide"} <= set(got), (shell, got)


def test_bash_flag_with_equals(env):
    assert bash_complete(env, f"{PROG} ls --output=js") == ["json"]


def test_fish_flag_with_equals(env):
    assert fish_complete(env, f"{PROG} ls --output=js") == ["--output=json"]


# --- the helper itself, and kubectl -----------------------------------------------


def helper(env, *words) -> list[str]:
    res = run([HELPER, *words], env)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_helper_protocol(env):
    out = helper(env, "")
    assert out[-1] == ":4"
    assert "up" in out
    assert helper(env, "up", "") == [":16"]


def test_helper_without_the_package_finds_the_plugin_on_path(env, tmp_path):
    """A helper run by a python3 that cannot import the package (e.g. the system
    one, with a pip install in a venv) goes through the console script's interpreter."""
    plugin = Path(sys.executable).parent / PROG
    if not plugin.exists():
        pytest.skip(f"{PROG} console script is not installed next to {sys.executable}")
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    bin_dir = Path(env["PATH"].split(os.pathsep)[0])
    (bin_dir / "python3").unlink()
    (bin_dir / "python3").symlink_to(bare / "bin" / "python3")
    (bin_dir / PROG).symlink_to(plugin)
    e = dict(env, PYTHONPATH="")
    out = helper(e, "do")
    assert out == ["down", ":4"]


def kubectl_complete(cluster, env, *words) -> list[str]:
    e = dict(env)
    e["PATH"] = os.pathsep.join([env["PATH"].split(os.pathsep)[0], str(cluster.bin_dir),
                                 str(Path(sys.executable).parent), env["PATH"]])
    e["KUBECONFIG"] = str(cluster.kubeconfig)
    res = run(["kubectl", "__complete", "gitops-run", *words], e)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_kubectl_completes_the_plugin(cluster, env):
    out = kubectl_complete(cluster, env, "")
    assert out[-1] == ":4", out
    assert {"up", "sync", "ls", "down", "completion"} <= set(out)
    assert kubectl_complete(cluster, env, "up", "") == [":16"]
    out = kubectl_complete(cluster, env, "ls", "-o", "")
    assert "json" in out and out[-1] == ":4"


def test_kubectl_completes_namespaces_from_the_cluster(cluster, env, namespace):
    out = kubectl_complete(cluster, env, "ls", "-n", namespace[:-2])
    assert out == [namespace, ":4"]
    out = kubectl_complete(cluster, env, "ls", f"--namespace={namespace[:-2]}")
    assert out == [namespace, ":4"]


def test_kubectl_completes_contexts(cluster, env):
    out = kubectl_complete(cluster, env, "ls", "--context", "")
    assert cluster.context in out and out[-1] == ":4"


def test_session_lookup_is_quiet_and_bounded_on_a_dead_cluster(env):
    """The kubeconfig in `env` points at 127.0.0.1:1: nothing listens there."""
    import time
    t0 = time.monotonic()
    out = helper(env, "down", "")
    assert out == [":4"]
    assert time.monotonic() - t0 < 10


def test_kubectl_completes_session_names_from_the_cluster(cluster, env, namespace, tmp_path):
    from tests.e2e.conftest import run_plugin

    src = tmp_path / "app"
    src.mkdir()
    (src / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: completion-probe\ndata:\n  a: b\n")
    res = run_plugin(cluster, "up", str(src), "--name", "probe-one", "-n", namespace)
    assert res.returncode == 0, res.stderr
    try:
        out = kubectl_complete(cluster, env, "down", "-n", namespace, "")
        assert out == ["probe-one", ":4"], out
        out = kubectl_complete(cluster, env, "-n", namespace, "sync", "pro")
        assert out == ["probe-one", ":4"], out
        # Another namespace: not offered.
        assert kubectl_complete(cluster, env, "down", "-n", "default", "") == [":4"]
    finally:
        run_plugin(cluster, "down", "probe-one", "-n", namespace)
