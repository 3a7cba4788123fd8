"""Shell completion: the scripts, and the engine behind them.

kubectl 1.26+ completes `kubectl gitops-run ...` by running the executable
`kubectl_complete-gitops_run` (found on PATH) with the words after the plugin
name, the last one being the word under the cursor (maybe empty). It prints
candidates, one per line, then `:<directive>`: the bits of cobra's
ShellCompDirective (1 error, 2 no space, 4 no file completion, 8 filter file
extensions, 16 filter directories, 32 keep order). The scripts from `script()`
use the same helper to complete the bare `kubectl-gitops_run` command.

`complete(words)` is the engine. Nothing is hard-coded: it walks the click
command tree of `kubectl_gitops_run.cli.app` (subcommands, aliases, options and
arguments as declared there) and chooses candidates by each parameter's type and
name: choices, session names (from the cluster), namespaces (from the cluster),
contexts (from the kubeconfig), directories or files. Lookups in the cluster are
bounded by LOOKUP_TIMEOUT and quiet on failure: completion never prints errors.
Importing this module does not import `kubernetes`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterable, List, Optional, Sequence, Tuple

import click

PROG = "kubectl-gitops_run"
HELPER = "kubectl_complete-gitops_run"
SHELLS = ("bash", "zsh", "fish")
LOOKUP_TIMEOUT = 2.0

# cobra.ShellCompDirective
ERROR = 1
NO_SPACE = 2
NO_FILE = 4
FILTER_EXT = 8
FILTER_DIRS = 16

# What a parameter's values are, by its name (click's `param.name`).
SESSION_PARAMS = {"name", "names", "session", "sessions"}
NAMESPACE_PARAMS = {"namespace", "target_namespace"}
CONTEXT_PARAMS = {"context", "allow_context"}
DIR_PARAMS = {"dir", "directory", "source", "source_dir", "path"}
FILE_PARAMS = {"kubeconfig", "file", "filename"}


# ---------------------------------------------------------------------------
# The command tree


def root_command() -> click.Command:
    """The top-level click command of the CLI (the one no other command holds)."""
    from . import app as cli

    groups = [v for v in vars(cli).values() if isinstance(v, click.Group)]
    held = {id(c) for g in groups for c in g.commands.values()}
    tops = [g for g in groups if id(g) not in held]
    if not tops:
        commands = [v for v in vars(cli).values() if isinstance(v, click.Command)]
        if not commands:
            raise RuntimeError("kubectl_gitops_run.cli.app defines no click command")
        return commands[0]
    # Several unrelated groups: take the one with the most subcommands.
    return max(tops, key=lambda g: len(g.commands))


def _ctx(cmd: click.Command, name: str, parent: Optional[click.Context] = None) -> click.Context:
    # the command's own settings (help option names): click caches the help
    # option of a command by the first context that asks for it
    settings = {**cmd.context_settings, "resilient_parsing": True}
    return click.Context(cmd, info_name=name, parent=parent, **settings)


def _takes_value(param: click.Parameter) -> bool:
    return isinstance(param, click.Option) and not param.is_flag and not param.count


def _options(ctx: click.Context) -> List[click.Option]:
    return [p for p in ctx.command.get_params(ctx) if isinstance(p, click.Option)]


def _find_option(ctx: Optional[click.Context], name: str) -> Optional[click.Option]:
    """The option spelled `name` on this command, or else on its parents."""
    while ctx is not None:
        for opt in _options(ctx):
            if name in opt.opts or name in opt.secondary_opts:
                return opt
        ctx = ctx.parent
    return None


class Parsed:
    """Where the words before the cursor leave us."""

    def __init__(self, ctx: click.Context):
        self.ctx = ctx
        self.values: dict = {}          # option name -> value seen (last wins)
        self.positionals: List[str] = []
        self.pending: Optional[click.Option] = None  # option waiting for its value
        self.options_ended = False      # after `--`


def parse(root: click.Command, words: Sequence[str]) -> Parsed:
    """Walk the complete words (not the one under the cursor) down the tree."""
    state = Parsed(_ctx(root, PROG))
    for word in words:
        if state.pending is not None:
            state.values[state.pending.name] = word
            state.pending = None
            continue
        if not state.options_ended and word == "--":
            state.options_ended = True
            continue
        if not state.options_ended and word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            opt = _find_option(state.ctx, name)
            if opt is None and not name.startswith("--") and len(name) > 2:
                opt = _find_option(state.ctx, name[:2])  # -nfoo: short option with value
                if opt is not None and _takes_value(opt):
                    state.values[opt.name] = name[2:]
                continue
            if opt is not None and _takes_value(opt):
                if eq:
                    state.values[opt.name] = value
                else:
                    state.pending = opt
            continue
        cmd = state.ctx.command
        if isinstance(cmd, click.Group) and not state.positionals:
            sub = cmd.get_command(state.ctx, word)
            if sub is not None:
                state.ctx = _ctx(sub, word, state.ctx)
                state.options_ended = False
                continue
        state.positionals.append(word)
    return state


# ---------------------------------------------------------------------------
# Candidates


def complete(words: Sequence[str], root: Optional[click.Command] = None) -> Tuple[List[str], int]:
    """Candidates and directive for `kubectl gitops-run WORDS...`; the last word
    is the one being completed (empty for a new word)."""
    words = list(words) or [""]
    root = root or root_command()
    state = parse(root, words[:-1])
    current = words[-1]
    if state.pending is not None:
        return _values(state.pending, current, state)
    if not state.options_ended and current.startswith("-"):
        name, eq, value = current.partition("=")
        if eq:
            opt = _find_option(state.ctx, name)
            if opt is None or not _takes_value(opt):
                return [], NO_FILE
            return _values(opt, value, state)
        names = []
        for opt in _options(state.ctx):
            if not getattr(opt, "hidden", False):
                names += [n for n in opt.opts + opt.secondary_opts]
        return _matching(names, current), NO_FILE
    cmd = state.ctx.command
    if isinstance(cmd, click.Group) and not state.positionals:
        names = [n for n in cmd.list_commands(state.ctx)
                 if not getattr(cmd.get_command(state.ctx, n), "hidden", False)]
        return _matching(names, current), NO_FILE
    args = [p for p in cmd.get_params(state.ctx) if isinstance(p, click.Argument)]
    arg = _argument_at(args, len(state.positionals))
    if arg is None:
        return [], NO_FILE
    cands, directive = _values(arg, current, state)
    if arg.nargs == -1 and arg.name in SESSION_PARAMS:
        cands = [c for c in cands if c not in state.positionals]  # `down a b`: no repeats
    return cands, directive


def _argument_at(args: List[click.Argument], index: int) -> Optional[click.Argument]:
    for arg in args:
        if arg.nargs == -1:
            return arg
        if index < arg.nargs:
            return arg
        index -= arg.nargs
    return None


def _matching(cands: Iterable[str], prefix: str) -> List[str]:
    seen, out = set(), []
    for c in cands:
        if c.startswith(prefix) and c not in seen:
            seen.add(c)
            out.append(c)
    return out


def _values(param: click.Parameter, current: str, state: Parsed) -> Tuple[List[str], int]:
    """Candidates for the value of one option or argument."""
    ptype = param.type
    name = param.name or ""
    if isinstance(ptype, click.Choice):
        return _matching([str(c) for c in ptype.choices], current), NO_FILE
    if name in NAMESPACE_PARAMS:
        return _matching(namespaces(state.values), current), NO_FILE
    if name in CONTEXT_PARAMS:
        return _matching(contexts(state.values), current), NO_FILE
    if name in SESSION_PARAMS:
        return _matching(sessions(state), current), NO_FILE
    if isinstance(ptype, click.Path):
        if ptype.dir_okay and not ptype.file_okay:
            return [], FILTER_DIRS
        return [], 0
    if name in DIR_PARAMS:
        return [], FILTER_DIRS
    if name in FILE_PARAMS:
        return [], 0
    return [], NO_FILE


# ---------------------------------------------------------------------------
# Lookups (bounded, quiet)


def _run(cmd: List[str], env: Optional[dict] = None) -> List[str]:
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env,
                             timeout=LOOKUP_TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return []
    if res.returncode != 0:
        return []
    return [line.strip() for line in res.stdout.splitlines() if line.strip()]


def _kubeconfig_files(values: dict) -> List[str]:
    if values.get("kubeconfig"):
        return [os.path.expanduser(values["kubeconfig"])]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def contexts(values: dict) -> List[str]:
    """Context names from the kubeconfig file(s), as kubectl merges them."""
    import yaml

    names: List[str] = []
    for path in _kubeconfig_files(values):
        try:
            with open(path) as f:
                doc = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError):
            continue
        for ctx in doc.get("contexts") or []:
            if isinstance(ctx, dict) and ctx.get("name") and ctx["name"] not in names:
                names.append(str(ctx["name"]))
    return names


def _kubectl_flags(values: dict) -> List[str]:
    flags = []
    if values.get("kubeconfig"):
        flags += ["--kubeconfig", values["kubeconfig"]]
    if values.get("context"):
        flags += ["--context", values["context"]]
    return flags


def namespaces(values: dict) -> List[str]:
    """Namespace names from the cluster, through kubectl (as kubectl completes them)."""
    out = _run(["kubectl", *_kubectl_flags(values), "get", "namespaces", "-o", "name",
                f"--request-timeout={int(LOOKUP_TIMEOUT)}s"])
    return [line.split("/", 1)[-1] for line in out]


def self_command() -> List[str]:
    """How to run this plugin's CLI again, from the same installation."""
    archive = os.environ.get("KUBECTL_GITOPS_RUN_SELF")  # set by the zipapp bootstrap
    if archive and os.path.isfile(archive):
        return [sys.executable, archive]
    return [sys.executable, "-c",
            "import sys; from kubectl_gitops_run.cli.completion import _run_cli; _run_cli()"]


def _run_cli() -> None:
    root = root_command()
    root.main(args=sys.argv[1:], prog_name=PROG)


def sessions(state: Parsed) -> List[str]:
    """Session names in the chosen context and namespace: `ls -o name`."""
    root = state.ctx.find_root()
    ls_cmd = root.command.get_command(root, "ls") if isinstance(root.command, click.Group) else None
    if ls_cmd is None:
        return []
    ls_ctx = _ctx(ls_cmd, "ls", root)
    before: List[str] = []
    after: List[str] = ["ls", "-o", "name"]
    for key in ("kubeconfig", "context", "namespace"):
        value = state.values.get(key)
        if not value:
            continue
        for ctx, dest in ((ls_ctx, after), (root, before)):
            opt = next((o for o in ctx.command.get_params(ctx)
                        if isinstance(o, click.Option) and o.name == key), None)
            if opt is not None:
                dest += [max(opt.opts, key=len), value]
                break
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        [pkg_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("KUBECTL_GITOPS_RUN_COMPLETE", None)
    out = _run([*self_command(), *before, *after], env=env)
    return [line.split("/", 1)[1] for line in out if line.startswith("session/")]


# ---------------------------------------------------------------------------
# Entry point of kubectl_complete-gitops_run


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print candidates, one per line, then `:<directive>`; always exit 0."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "__complete":  # cobra-style callers
        words = words[1:]
    try:
        cands, directive = complete(words)
    except Exception:  # completion must never show a traceback
        cands, directive = [], ERROR
    out = "".join(f"{c}\n" for c in cands) + f":{directive}\n"
    sys.stdout.write(out)
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------
# Shell scripts (for the bare `kubectl-gitops_run` command; kubectl's own
# completion covers `kubectl gitops-run` once the helper is on PATH)

_HEADER = """\
{comment} {shell} completion for {prog} (kubectl gitops-run)
{comment} Generated by `kubectl gitops-run completion {shell}`; do not edit.
{comment}
{comment} `kubectl gitops-run <TAB>` needs only the helper {helper} on PATH
{comment} (kubectl 1.26+ runs it). This script adds completion for the bare
{comment} `{prog}` command, using the same helper.
{comment}
{comment} Install: {install}
"""

_BASH = r"""
__kubectl_gitops_run_complete() {
    local -a words
    local line cur out directive c prefix=""
    # The words up to the cursor, split at blanks only (bash's COMP_WORDS is
    # also split at "=" and ":").
    if [[ -n ${COMP_LINE+set} ]]; then
        line=${COMP_LINE:0:${COMP_POINT:-${#COMP_LINE}}}
        read -r -a words <<< "$line"
        [[ $line == *[[:space:]] ]] && words+=("")
        words=("${words[@]:1}")
    else
        words=("${COMP_WORDS[@]:1:COMP_CWORD}")
    fi
    [[ ${#words[@]} -gt 0 ]] || words=("")
    out=$(@HELPER@ "${words[@]}" 2>/dev/null) || return 0
    directive=${out##*:}
    if [[ $out == *$'\n'* ]]; then out=${out%$'\n'*}; else out=""; fi
    [[ $directive =~ ^[0-9]+$ ]] || directive=0
    (( directive & 1 )) && return 0
    cur=${words[${#words[@]}-1]}
    [[ $cur == -*=* ]] && cur=${cur#*=}   # bash completes only what follows "="
    COMPREPLY=()
    if (( directive & 16 )); then
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        COMPREPLY=($(compgen -d -- "$cur"))
        return 0
    fi
    # A value holding ":" (e.g. an EKS context): bash replaces only its last part.
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then prefix=${cur%"${cur##*:}"}; fi
    local IFS=$'\n'
    for c in $out; do
        c=${c%%$'\t'*}
        [[ $c == "$cur"* ]] && COMPREPLY+=("${c#"$prefix"}")
    done
    (( directive & 2 )) && compopt -o nospace 2>/dev/null
    if [[ ${#COMPREPLY[@]} -eq 0 ]] && ! (( directive & 4 )); then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
}
complete -F __kubectl_gitops_run_complete @PROG@
"""

_ZSH = r"""#compdef @PROG@

__kubectl_gitops_run_complete() {
    local -a args lines cands
    local out directive cur flag_prefix=""
    args=("${(@)words[2,CURRENT]}")
    out=$(@HELPER@ "${args[@]}" 2>/dev/null) || return 1
    lines=("${(@f)out}")
    directive=${lines[-1]#:}
    lines=("${(@)lines[1,-2]}")
    [[ $directive == <-> ]] || directive=0
    (( directive & 1 )) && return 1
    cur=${words[CURRENT]}
    if [[ $cur == -*=* ]]; then
        flag_prefix="${cur%%=*}="
    fi
    if (( directive & 16 )); then
        _path_files -/
        return
    fi
    local c
    for c in "${lines[@]}"; do
        [[ -n $c ]] && cands+=("${c%%$'\t'*}")
    done
    if (( ${#cands} )); then
        if (( directive & 2 )); then
            compadd -Q -S '' -P "$flag_prefix" -- "${cands[@]}"
        else
            compadd -Q -P "$flag_prefix" -- "${cands[@]}"
        fi
        return
    fi
    (( directive & 4 )) || _files
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    __kubectl_gitops_run_complete "$@"
else
    compdef __kubectl_gitops_run_complete @PROG@
fi
"""

_FISH = r"""
function __kubectl_gitops_run_complete
    set -l args (commandline -opc)[2..-1] (commandline -ct)
    set -l out (@HELPER@ $args 2>/dev/null)
    or return
    set -l directive (string replace -r '^:' '' -- $out[-1])
    set -e out[-1]
    string match -qr '^[0-9]+$' -- $directive; or set directive 0
    test (math "bitand($directive, 1)") -ne 0; and return
    set -l cur (commandline -ct)
    if test (math "bitand($directive, 16)") -ne 0
        __fish_complete_directories $cur
        return
    end
    set -l prefix ''
    if string match -qr -- '^-[^=]*=' $cur
        set prefix (string replace -r -- '=.*' '=' $cur)
    end
    for c in $out
        test -n "$c"; and printf '%s%s\n' $prefix $c
    end
    if test (count $out) -eq 0; and test (math "bitand($directive, 4)") -eq 0
        __fish_complete_path $cur
    end
end

complete -c @PROG@ -e
complete -c @PROG@ -f -a '(__kubectl_gitops_run_complete)'
"""

_INSTALL = {
    "bash": "source <(kubectl gitops-run completion bash)  # e.g. in ~/.bashrc",
    "zsh": "kubectl gitops-run completion zsh > \"${fpath[1]}/_kubectl-gitops_run\"",
    "fish": "kubectl gitops-run completion fish > ~/.config/fish/completions/kubectl-gitops_run.fish",
}
_BODY = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}


def script(shell: str) -> str:
    """The completion script for one shell (bash, zsh or fish)."""
    if shell not in _BODY:
        raise ValueError(f"unsupported shell {shell!r}: choose one of {', '.join(SHELLS)}")
    body = _BODY[shell].replace("@PROG@", PROG).replace("@HELPER@", HELPER)
    header = _HEADER.format(comment="#", shell=shell, prog=PROG, helper=HELPER,
                            install=_INSTALL[shell])
    if body.startswith("#compdef"):  # zsh wants #compdef on the first line
        first, rest = body.split("\n", 1)
        return f"{first}\n{header}{rest}"
    return header + body


if __name__ == "__main__":
    sys.exit(main())
