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
    from ..core import naming
    kube = connect(kubeconfig, context, namespace)
    if namespace is None:   # the context's own goes into URLs too: checked as -n is
        try:
            naming.validate_namespace(kube.namespace)
        except UsageError:
            raise UserError(f"context {kube.context!r} sets namespace {kube.namespace!r}, which "
                            f"Kubernetes does not accept; fix the kubeconfig, or pass "
                            f"-n NAMESPACE") from None
    return kube


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


def port_forward_option(f):
    return click.option("--port-forward", "port_forward", multiple=True, metavar="SPEC",
                        help="Forward a local port to the app while the loop runs: "
                        "'[NAMESPACE/]TYPE/NAME [LOCAL:]REMOTE' as kubectl port-forward "
                        "takes it, e.g. 'svc/web 8080:80' (repeatable).")(f)


def _forward_specs(values, watch: bool) -> list:
    """--port-forward values, checked before anything starts."""
    from ..core import forwards
    if values and not watch:
        raise UsageError("--port-forward runs alongside the loop: add --watch, or run "
                         "`kubectl gitops-run forward` in another shell")
    specs = [s for v in values for s in forwards.parse(v)]
    forwards.check_unique(specs)
    return specs


def _forwarding(kube, name: str, specs: list):
    """The forwards of a session, their ports bound (a port in use fails here)."""
    from .. import ops
    from . import terminal
    return ops.Forwards(kube, name, specs, terminal.reporter()).bind()


def _with_forwards(forwards, loop) -> None:
    """Run loop() with the forwards alongside; they end (and release their
    ports) when it does."""
    if forwards is None:
        loop()
        return
    with forwards:
        forwards.check()
        forwards.start()
        loop()


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
    if kw.get("selector") is not None:
        naming.validate_selector(kw["selector"])
    if kw.get("release_name"):
        from ..core.helm import validate_release_name
        validate_release_name(kw["release_name"])
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
  kubectl gitops-run up ./chart --values values-prod.yaml --release-name web
""")
@click.argument("dir", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="Session name (default: DIR's basename as a DNS label).")
@click.option("--path", default="", help="Sub-directory of DIR that the Kustomization applies "
              "(or the Helm chart the HelmRelease installs).")
@click.option("--target-namespace", default="", help="Put every object in this namespace "
              "(default: objects that name none go to the session namespace, the others keep "
              "theirs).")
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
@click.option("--values", "values", multiple=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="For a Helm chart: a "
              "values file in the chart or DIR, merged over the chart's values.yaml "
              "(repeatable; later ones win).")
@click.option("--release-name", default="", help="For a Helm chart: the Helm release's name "
              "(default: the session name).")
@click.option("--dry-run", is_flag=True, help="Only print what the first sync would upload; "
              "create and touch nothing.")
@port_forward_option
@kube_options
def up(dir, name, path, target_namespace, timeout, no_wait, watch, bucket_image, allow_context,
       force, service_account, flux_namespace, max_file_size, include_secrets, decryption_key,
       values, release_name, dry_run, port_forward, kubeconfig, context, namespace):
    """Start (or repair) a session for DIR and deploy it through Flux.

    Creates, in the current context and namespace, a bucket server with random
    credentials, a Flux Bucket and a Flux Kustomization (a HelmRelease when the
    applied path holds a Chart.yaml); uploads DIR and waits until Flux has
    applied exactly that revision. Running it again repairs the session and
    syncs.
    """
    from .. import ops
    from ..core import manifests, naming
    from . import output, terminal
    name = naming.validate_name(name) if name else naming.name_from_dir(
        os.path.basename(os.path.abspath(dir)))
    kube = forwards = None
    specs = _forward_specs(port_forward, watch)
    if dry_run:
        return _dry_run_up(dir, name, path, max_file_size, include_secrets,
                           decryption_key is not None, (kubeconfig, context, namespace))

    def connect():
        nonlocal kube
        kube = kube or _connect(kubeconfig, context, namespace)
        return kube

    if specs:   # bound before anything starts: a port in use is one error line
        forwards = _forwarding(connect(), name, specs)

    opts = ops.Options(timeout=timeout, wait=not no_wait, max_file_size=max_file_size,
                       report=terminal.reporter(), include_secrets=include_secrets)
    result = ops.up(connect, dir, name, path=path, target_namespace=target_namespace,
                    image=bucket_image or manifests.DEFAULT_IMAGE, allow_context=allow_context,
                    force=force, service_account=service_account,
                    flux_namespace=flux_namespace, decryption_key=_age_key(decryption_key),
                    release_name=release_name, values=values,
                    opts=opts)
    click.echo(escape(output.up_line(name, kube.namespace, result)))
    if watch:
        _with_forwards(forwards, lambda: ops.watch(kube, name, dir, opts,
                                                   terminal.WatchScreen(), path=path))


def _dry_run_up(dir, name, path, max_file_size, include_secrets, decrypts, kube_flags) -> None:
    """`up --dry-run`: the checked scan, then what the first sync would upload
    into the session (all of it, for a new one)."""
    from .. import ops
    from ..core import naming
    from . import output, terminal
    kube = _connect(*kube_flags)
    opts = ops.Options(max_file_size=max_file_size, report=terminal.reporter(),
                       include_secrets=include_secrets)
    result = ops.preview(kube, name, dir, opts, path=naming.confined_path(path),
                         decrypts=decrypts)
    _echo_lines(output.dry_run_lines(result))


def _echo_lines(lines: list[str]) -> None:
    """Each line escaped for a terminal, a newline inside one shown as \\n."""
    click.echo("\n".join(escape(line).replace("\n", "\\n") for line in lines))


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
@click.option("--dry-run", is_flag=True, help="Only print what would be uploaded, changed and "
              "removed; touch nothing.")
@port_forward_option
@kube_options
def sync(name, source_dir, timeout, no_wait, watch, output, max_file_size, force,
         include_secrets, dry_run, port_forward, kubeconfig, context, namespace):
    """Push local changes of a session and wait until Flux applied them."""
    from .. import ops
    from ..adapters import localhost
    from . import output as out
    from . import terminal
    specs = _forward_specs(port_forward, watch)
    if dry_run and watch:
        raise UsageError("--dry-run and --watch do not go together; drop one")
    kube = _connect(kubeconfig, context, namespace)
    record = ops.resolve(kube, name, os.getcwd())
    source = ops.source_of(record, source_dir, localhost.host(), force)
    opts = ops.Options(timeout=timeout, wait=not no_wait, max_file_size=max_file_size,
                       report=terminal.reporter(progress=output is None),
                       include_secrets=include_secrets)
    path = record.get("path") or ""
    if watch:
        forwards = _forwarding(kube, record["name"], specs) if specs else None
        _with_forwards(forwards, lambda: ops.watch(kube, record["name"], source, opts,
                                                   terminal.WatchScreen(), path=path))
        return
    run = ops.preview if dry_run else ops.sync
    result = run(kube, record["name"], source, opts, path=path,
                 decrypts=record.get("decrypts", True))
    if output == "json":
        click.echo(out.result_json(result, dry_run))
    else:
        _echo_lines(out.dry_run_lines(result) if dry_run else [out.result_line(result)])


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


@command(cli, epilog="""\b
Examples:
  kubectl gitops-run ui
  kubectl gitops-run ui -A --no-browser
""")
@click.option("-A", "--all-namespaces", is_flag=True, help="Show sessions in all namespaces.")
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port on 127.0.0.1 (default: a free one).")
@click.option("--no-browser", is_flag=True, help="Only print the URL.")
@kube_options
def ui(all_namespaces, port, no_browser, kubeconfig, context, namespace):
    """Serve a live web page of the sessions on 127.0.0.1, until Ctrl-C."""
    from .ui import serve     # the page and its server load only for this command
    serve(_connect(kubeconfig, context, namespace), all_namespaces, port, not no_browser)


@command(cli, epilog="""\b
Examples:
  kubectl gitops-run forward svc/web 8080:80      # the session whose source holds this directory
  kubectl gitops-run forward web deploy/web :http
  kubectl gitops-run forward web svc/web 8080:80 svc/api 9090:http
""")
@click.argument("args", nargs=-1, required=True, metavar="[SESSION] TYPE/NAME [LOCAL:]REMOTE...")
@kube_options
def forward(args, kubeconfig, context, namespace):
    """Forward local ports to a session's app, following its pods, until Ctrl-C."""
    from .. import ops
    from ..core import forwards, naming
    name, groups = forwards.split_args(list(args))
    if name:
        naming.validate_name(name)
    specs = [s for target, ports in groups for s in forwards.specs(target, ports)]
    forwards.check_unique(specs)
    kube = _connect(kubeconfig, context, namespace)
    name = ops.resolve(kube, name, os.getcwd())["name"]
    try:
        _with_forwards(_forwarding(kube, name, specs), _until_interrupted)
    except KeyboardInterrupt:       # Ctrl-C is how a forward ends, even while it starts
        return


def _until_interrupted() -> None:
    import time
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return


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
    if any(a.startswith("--port-forward") for a in args):   # kubectl's words: svc/web 8080:80
        from ..core.forwards import join_words
        args = join_words(args)
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
        return _fail(e.format_message().rstrip(".") + _see_help(e), 2)
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
    # one line, whatever the message holds (a YAML parser's, say): invariant 6
    click.echo(f"error: {escape(' '.join(message.split()))}", err=True)
    return code


def _see_help(e: click.ClickException) -> str:
    """Where a command line went wrong in general (an unknown flag or command, a
    missing or extra argument), point at the help, as kubectl does; a bad value
    says already what would do."""
    if isinstance(e, click.BadParameter) or not isinstance(e, click.UsageError):
        return ""
    ctx = getattr(e, "ctx", None)   # the parser raises some without one
    return f"; see `{ctx.command_path if ctx else PROG} --help`"

