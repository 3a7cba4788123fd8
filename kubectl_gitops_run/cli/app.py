"""The click app: parse flags, call one operation, print. Thin on purpose.

Nothing here talks to Kubernetes, and nothing below click is imported before a
command runs, so `--help` and shell completion stay fast.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import sys

import click

from .. import __version__
from ..errors import UsageError, UserError
from .output import FORMATS, escape
from .params import Duration, Size

PROG = "kubectl gitops-run"
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# click 8.2+ raises this for a bare `kubectl gitops-run`; older ones print help themselves
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class AliasGroup(click.Group):
    aliases = {"get": "ls", "list": "ls"}

    def get_command(self, ctx, name):
        return super().get_command(ctx, self.aliases.get(name, name))

    def resolve_command(self, ctx, args):
        _, cmd, rest = super().resolve_command(ctx, args)
        return cmd.name if cmd else None, cmd, rest


def kube_options(f):
    """The kubectl flags every cluster command takes, after the command name."""
    for decorator in reversed([
        click.option("--kubeconfig", type=click.Path(dir_okay=False),
                     help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", help="The kubeconfig context to use."),
        click.option("-n", "--namespace", help="Namespace of the session (default: the "
                     "context's namespace)."),
        click.option("-v", "--verbose", count=True, help="Debug logging (and tracebacks)."),
    ]):
        f = decorator(f)
    return f


def _connect(kubeconfig, context, namespace):
    from ..adapters.kube import connect
    return connect(kubeconfig, context, namespace)


def _setup_logging(verbose: int) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s",
                        level=logging.DEBUG if verbose else logging.WARNING)
    if verbose < 2:   # -vv for the HTTP client's own chatter
        for noisy in ("urllib3", "kubernetes", "websocket"):
            logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


KUBE_FLAGS = ("kubeconfig", "context", "namespace")


def command(group, *args, **kwargs):
    """A cluster command: kubectl flags given before the command name count too
    (`kubectl gitops-run -n dev ls`); logging is set up from -v first."""
    def wrap(f):
        @functools.wraps(f)
        def run(*a, verbose=0, **kw):
            before = click.get_current_context().find_root().params
            for flag in KUBE_FLAGS:
                if kw.get(flag) is None:
                    kw[flag] = before.get(flag)
            _validate_names(kw)
            _setup_logging(verbose or before.get("verbose") or 0)
            return f(*a, **kw)
        return group.command(*args, **kwargs)(run)
    return wrap


def _age_key(path: str | None) -> str | None:
    """The text of an age key file; a usage error for anything else."""
    if path is None:
        return None
    from ..core.manifests import is_age_key
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read(64 * 1024)
    if not is_age_key(text):
        raise UsageError(f"--decryption-key {path}: not an age key file (it holds no "
                         f"AGE-SECRET-KEY-1... line); make one with `age-keygen -o key.txt`")
    return text


def _validate_names(kw: dict) -> None:
    """Names and namespaces as Kubernetes accepts them, before any request."""
    from ..core import naming
    if kw.get("namespace") is not None:
        naming.validate_namespace(kw["namespace"])
    if kw.get("target_namespace"):
        naming.validate_namespace(kw["target_namespace"], "--target-namespace")
    if kw.get("flux_namespace"):
        naming.validate_namespace(kw["flux_namespace"], "--flux-namespace")
    if kw.get("service_account"):
        naming.validate_object_name(kw["service_account"], "--service-account")
    for name in [kw.get("name")] + list(kw.get("names") or ()):
        if name is not None:
            naming.validate_name(name)


@click.group(cls=AliasGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name=PROG,
                      message="%(prog)s version v%(version)s")
@kube_options
def cli(**_):
    """A GitOps inner loop for any cluster that runs Flux.

    \b
      kubectl gitops-run up ./app        start a session and deploy ./app through Flux
      kubectl gitops-run sync            push local changes, wait until Flux applied them
      kubectl gitops-run sync --watch    ... on every change
      kubectl gitops-run ls              list sessions
      kubectl gitops-run down app        remove the session and what it deployed
    """


@command(cli, epilog="""\b
Examples:
  kubectl gitops-run up ./deploy
  kubectl gitops-run up . --name web --path overlays/dev --target-namespace web-dev
  kubectl gitops-run up ./app --context staging --allow-context staging
""")
@click.argument("dir", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="Session name (default: DIR's basename as a DNS label).")
@click.option("--path", default="", help="Sub-directory of DIR that the Kustomization applies.")
@click.option("--target-namespace", default="", help="Namespace to apply into (default: the "
              "session namespace).")
@click.option("--timeout", type=Duration(), default="5m", show_default=True,
              help="How long to wait for each step.")
@click.option("--no-wait", is_flag=True, help="Return after the upload; do not wait for Flux.")
@click.option("--watch", "-w", is_flag=True, help="Then keep syncing on every change.")
@click.option("--bucket-image", default=None, help="Image of the bucket server (a mirror of "
              "the default).")
@click.option("--allow-context", multiple=True, help="Allow this non-local context.")
@click.option("--force", is_flag=True, help="Take over a session that records another source "
              "directory or host.")
@click.option("--service-account", default="", help="Apply as this ServiceAccount of the "
              "namespace (default: one of the session's, with your rights in the namespace).")
@click.option("--flux-namespace", default="", help="Namespace of Flux's source-controller, the "
              "only pods the bucket server admits (default: found, else flux-system).")
@click.option("--max-file-size", type=Size(), default="10Mi", show_default=True,
              help="Refuse files larger than this.")
@click.option("--include-secrets", is_flag=True, help="Upload files that may hold keys too "
              "(.env, id_rsa, *.pem, *.key, kubeconfigs...), which are left out by default.")
@click.option("--decryption-key", type=click.Path(exists=True, dir_okay=False),
              help="An age key file: Flux decrypts the SOPS-encrypted manifests with it (kept "
              "in a Secret of the session, never uploaded).")
@kube_options
def up(dir, name, path, target_namespace, timeout, no_wait, watch, bucket_image, allow_context,
       force, service_account, flux_namespace, max_file_size, include_secrets, decryption_key,
       kubeconfig, context, namespace):
    """Start (or repair) a session for DIR and deploy it through Flux.

    Creates, in the current context and namespace, a bucket server with random
    credentials, a Flux Bucket and a Flux Kustomization; uploads DIR and waits
    until Flux has applied exactly that revision. Running it again repairs the
    session and syncs.
    """
    from .. import ops
    from ..core import manifests, naming
    from . import output, terminal
    name = naming.validate_name(name) if name else naming.name_from_dir(
        os.path.basename(os.path.abspath(dir)))
    kube = None

    def connect():
        nonlocal kube
        kube = _connect(kubeconfig, context, namespace)
        return kube

    opts = ops.Options(timeout=timeout, wait=not no_wait, max_file_size=max_file_size,
                       report=terminal.reporter(), include_secrets=include_secrets)
    result = ops.up(connect, dir, name, path=path, target_namespace=target_namespace,
                    image=bucket_image or manifests.DEFAULT_IMAGE, allow_context=allow_context,
                    force=force, service_account=service_account,
                    flux_namespace=flux_namespace, decryption_key=_age_key(decryption_key),
                    opts=opts)
    click.echo(escape(output.up_line(name, kube.namespace, result)))
    if watch:
        ops.watch(kube, name, dir, opts, terminal.WatchScreen(), path=path)


@command(cli, epilog="""\b
Examples:
  kubectl gitops-run sync              # the session whose source holds this directory
  kubectl gitops-run sync web --watch
  kubectl gitops-run sync -o json | jq .revision
""")
@click.argument("name", required=False)
@click.option("--dir", "source_dir", type=click.Path(), help="Source directory (default: the "
              "one recorded by up).")
@click.option("--timeout", type=Duration(), default="5m", show_default=True)
@click.option("--no-wait", is_flag=True, help="Return after the upload; do not wait for Flux "
              "(nor for another sync of the session).")
@click.option("--watch", "-w", is_flag=True, help="Keep syncing on every change until Ctrl-C.")
@click.option("-o", "--output", type=click.Choice(["json"]), help="Print the result as JSON.")
@click.option("--max-file-size", type=Size(), default="10Mi", show_default=True)
@click.option("--force", is_flag=True, help="Sync a session that records another source "
              "directory or host.")
@click.option("--include-secrets", is_flag=True, help="Upload files that may hold keys too.")
@kube_options
def sync(name, source_dir, timeout, no_wait, watch, output, max_file_size, force,
         include_secrets, kubeconfig, context, namespace):
    """Push local changes of a session and wait until Flux applied them."""
    from .. import ops
    from ..adapters import localhost
    from . import output as out
    from . import terminal
    kube = _connect(kubeconfig, context, namespace)
    record = ops.resolve(kube, name, os.getcwd())
    source = ops.source_of(record, source_dir, localhost.host(), force)
    opts = ops.Options(timeout=timeout, wait=not no_wait, max_file_size=max_file_size,
                       report=terminal.reporter(progress=output is None),
                       include_secrets=include_secrets)
    path = record.get("path") or ""
    if watch:
        ops.watch(kube, record["name"], source, opts, terminal.WatchScreen(), path=path)
        return
    result = ops.sync(kube, record["name"], source, opts, path=path,
                      decrypts=record.get("decrypts", True))
    click.echo(out.result_json(result) if output == "json" else escape(out.result_line(result)))


@command(cli, name="ls", epilog="""\b
Examples:
  kubectl gitops-run ls
  kubectl gitops-run ls -A -o wide
  kubectl gitops-run get -o json
""")
@click.option("-A", "--all-namespaces", is_flag=True, help="List sessions in all namespaces.")
@click.option("-o", "--output", type=click.Choice(FORMATS), help="Output format.")
@click.option("--no-headers", is_flag=True, help="Do not print the header row.")
@click.option("-l", "--selector", help="Label selector to filter sessions on.")
@kube_options
def ls(all_namespaces, output, no_headers, selector, kubeconfig, context, namespace):
    """List sessions (alias: get)."""
    from datetime import datetime, timezone
    from .. import ops
    from . import output as printers
    kube = _connect(kubeconfig, context, namespace)
    records = ops.find_sessions(kube, None if all_namespaces else kube.namespace, selector)
    if not records and output not in ("json", "yaml"):
        where = "" if all_namespaces else f" in {kube.namespace} namespace"
        click.echo(f"No resources found{where}.", err=True)
        return
    click.echo(printers.render(records, output, all_namespaces=all_namespaces,
                               no_headers=no_headers, now=datetime.now(timezone.utc),
                               home=os.path.expanduser("~")), nl=False)


@command(cli, epilog="""\b
Examples:
  kubectl gitops-run down web
  kubectl gitops-run down --all -n dev
  kubectl gitops-run down web --keep-workloads
""")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Remove every session in the namespace.")
@click.option("--keep-workloads", is_flag=True, help="Leave what the session deployed in place.")
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted, and what kept.")
@click.option("--timeout", type=Duration(), default="5m", show_default=True)
@kube_options
def down(names, all_, keep_workloads, dry_run, timeout, kubeconfig, context, namespace):
    """Remove sessions and everything they deployed.

    Flux prunes what the session applied, except what the session did not
    create: Namespaces, CRDs, objects that existed before it, and objects
    annotated kustomize.toolkit.fluxcd.io/prune: disabled.
    """
    from .. import ops
    from . import output
    if bool(names) == all_:
        raise UsageError("name the sessions to remove, or pass --all")
    kube = _connect(kubeconfig, context, namespace)
    if all_:
        names = [r["name"] for r in ops.find_sessions(kube, kube.namespace)]
        if not names:
            click.echo(f"No resources found in {kube.namespace} namespace.", err=True)
    for name in names:
        removal = ops.down(kube, name, keep_workloads=keep_workloads, timeout=timeout,
                           dry_run=dry_run)
        for line in output.removal_lines(name, kube.namespace, removal, keep_workloads, dry_run):
            click.echo(escape(line))


@cli.command(epilog="""\b
Examples:
  source <(kubectl gitops-run completion bash)
  kubectl gitops-run completion zsh > "${fpath[1]}/_kubectl-gitops_run"
""")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script for SHELL."""
    from .completion import script
    click.echo(script(shell), nl=False)


def _quiet_thread_errors(args) -> None:
    # The kubernetes client's port-forward threads raise when a tunnel dies
    # (e.g. BrokenPipeError); the sync retries, so that is debug detail, not a traceback.
    logging.getLogger(__name__).debug("thread %s failed", args.thread.name if args.thread else "?",
                                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def main(argv=None) -> int:
    import threading
    args = sys.argv[1:] if argv is None else list(argv)
    verbose = any(re.fullmatch(r"-v+|--verbose", a) for a in args)
    threading.excepthook = _quiet_thread_errors
    try:
        # not cli.main(): it turns Ctrl-C into a bare Abort after printing a newline
        with cli.make_context(PROG, args) as ctx:
            cli.invoke(ctx)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except _NO_ARGS_IS_HELP as e:
        click.echo(e.ctx.get_help())
        return 0
    except click.ClickException as e:
        return _fail(" ".join(e.format_message().split()).rstrip("."), 2)
    except KeyboardInterrupt:
        return _fail("interrupted; run the same command again to finish, or `kubectl "
                     "gitops-run down NAME` to remove the session", 130)
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - people get one line; -v shows the traceback
        # nothing is imported here: this handler must work when an import failed
        if verbose:
            import traceback
            traceback.print_exc()
        if isinstance(e, UserError):
            return _fail(str(e), e.code)
        return _fail(f"{type(e).__name__}: {e} (run with -v for details)", 1)


def _fail(message: str, code: int) -> int:
    click.echo(f"error: {escape(message)}", err=True)
    return code

