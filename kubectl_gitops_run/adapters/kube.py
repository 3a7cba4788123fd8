"""Kubernetes access: the kubeconfig, a small JSON REST layer, errors in words.

The one module that imports `kubernetes` (docs/architecture.md, "Layers"), and
as little of it as the plugin uses: the kubeconfig loader and `Configuration`,
and `kubernetes.stream` once a port-forward opens. Requests go over
`adapters.transport` (the standard library), not the client's urllib3 pool.
Objects travel as plain dicts (no generated models). Every failure is worded
once, here, by `explain` and `transport_error` (docs/architecture.md,
"Errors"): one line that says what happened and what to do (invariant 6).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, NamedTuple
from urllib.parse import urlencode

from .. import __version__
from ..core.naming import FIELD_MANAGER
from ..core.resources import KINDS, path
from ..errors import ApiError, Cancelled, UserError
from .transport import TLS, Pool, TransportError

log = logging.getLogger(__name__)

TIMEOUT = (5, 30)        # (connect, read) seconds for each API request
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
RETRY_PAUSES = (0.2, 0.5, 1.0)   # before each retry of a 429 or 5xx
RETRY_AFTER_MAX = 3.0            # the most of a Retry-After we honour, in seconds
RETRIED = {429, 500, 502, 503, 504}
WATCH_SLACK = 10                 # read timeout beyond a watch's own timeoutSeconds
CANCEL_TICK = 0.05               # how often a watch looks at its cancel Event


# -- importing little of kubernetes ------------------------------------------

def _shallow(name: str, **attrs) -> None:
    """Register package `name` without running its __init__ (kubernetes' own
    imports every API and model, ~770 modules). The first lookup of a name it
    lacks runs the __init__ then, so code that wants the whole package (tests,
    the dev cluster) still gets it in the same process."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    lock = threading.Lock()

    def complete(attr: str):
        if attr.startswith("__") and attr not in ("__version__", "__all__"):
            raise AttributeError(attr)      # import machinery probing, not a user
        with lock:
            if "__getattr__" in module.__dict__:
                del module.__getattr__
                spec.loader.exec_module(module)
        return getattr(module, attr)

    module.__getattr__ = complete
    module.__dict__.update(attrs)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def _api_client(*args, **kwargs):
    # kube_config builds an ApiClient only to refresh an OIDC token: import it then
    from kubernetes.client.api_client import ApiClient
    return ApiClient(*args, **kwargs)


def _oauth2_session(*args, **kwargs):
    # kube_config makes one only to refresh an OIDC token: import OAuth2 then
    module = sys.modules["requests_oauthlib"]
    if module.__dict__.get("OAuth2Session") is _oauth2_session:
        del module.OAuth2Session        # the lookup runs the package's __init__
    return module.OAuth2Session(*args, **kwargs)


def _client():
    """(configuration, kube_config, ConfigException), importing only those."""
    _shallow("kubernetes")
    _shallow("kubernetes.client")
    # both import urllib3 at the top for its basic-auth header alone (~110 ms)
    _shallow("urllib3")
    # Configuration() asks it for the CPU count alone (~20 ms of imports)
    _shallow("multiprocessing", cpu_count=os.cpu_count)
    # kube_config imports OAuth2 at the top for OIDC refreshes alone (~30 ms)
    _shallow("oauthlib")
    _shallow("oauthlib.oauth2")
    _shallow("requests_oauthlib", OAuth2Session=_oauth2_session)
    # `import a.b.c`, as `from a.b import c` would look c up on the shallow a.b
    with _debug_level_only():
        import kubernetes.client.configuration
    client = kubernetes.client
    configuration = client.configuration
    if "__getattr__" in client.__dict__:      # still shallow: give kube_config its names
        client.Configuration, client.ApiClient = configuration.Configuration, _api_client
    from kubernetes.config import exec_provider, kube_config
    from kubernetes.config.config_exception import ConfigException
    # the client runs an exec credential plugin and waits for it without end
    exec_provider.subprocess = types.SimpleNamespace(Popen=_PluginProcess, PIPE=subprocess.PIPE)
    kube_config.yaml = _libyaml(kube_config.yaml)
    return configuration, kube_config, ConfigException


@contextmanager
def _debug_level_only():
    """Configuration imports http.client (and its email parser, ~10 ms) to set
    its HTTPConnection.debuglevel alone, which no request of ours reads
    (adapters.transport speaks HTTP itself): it gets a stand-in while it
    imports; six.moves still gives everyone else the real module."""
    import six
    if "http_client" in vars(six.moves):     # resolved already: nothing to spare
        yield
        return
    six.moves.http_client = types.SimpleNamespace(
        HTTPConnection=types.SimpleNamespace(debuglevel=0))
    try:
        yield
    finally:
        del six.moves.http_client


def _libyaml(yaml):
    """PyYAML reading with libyaml where it is built: the pure-Python scanner
    takes ~10 ms over a kubeconfig's base64 certificates, libyaml under 1."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return yaml
    return types.SimpleNamespace(safe_load=lambda stream: yaml.load(stream, Loader=loader),
                                 safe_dump=yaml.safe_dump)


# -- failures in words (pure) ------------------------------------------------

class Target(NamedTuple):
    """What an API path names: group ("" for core), resource (with its
    subresource), namespace and name."""
    group: str
    resource: str
    namespace: str | None
    name: str | None

    def resource_name(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def phrase(self) -> str:
        text = self.resource_name() or "the API"
        if self.name:
            text += f' "{self.name}"'
        return text + (f' in namespace "{self.namespace}"' if self.namespace else "")


def target(url: str) -> Target:
    parts = url.split("?")[0].strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) > 1:
        group, rest = parts[1], parts[3:]
    else:
        return Target("", "", None, None)
    namespace = None
    if len(rest) > 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = "/".join(rest[:1] + rest[2:3])
    return Target(group, resource, namespace, rest[1] if len(rest) > 1 else None)


def rbac_verb(method: str, url: str, watch: bool = False) -> str:
    """The RBAC verb the API server checks for a request."""
    if watch:
        return "watch"
    named = target(url).name is not None
    if method == "GET":
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


_RBAC = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
                   r'(?: in API group "(?P<group>[^"]*)")?')
_UNSAID = re.compile(r"is forbidden: *$")
_NO_NAMESPACE = re.compile(r'namespaces "(?P<ns>[^"]+)" not found')


def explain(status: int, message: str, verb: str, url: str, *, context: str = "",
            tries: int = 1) -> str:
    """One line for a failed API call: what happened and what to do."""
    t = target(url)
    what = f"{verb} {t.phrase()}"
    if status == 401:
        return (f"unauthorized: the API server of context {context!r} rejected our credentials "
                f"({message}); log in again or check the user of the context in the kubeconfig")
    if status == 403:
        return _forbidden(message, verb, t)
    no_namespace = _NO_NAMESPACE.search(message) if status == 404 else None
    if no_namespace and t.resource != "namespaces":
        ns = no_namespace["ns"]
        return (f'namespace "{ns}" not found: create it (kubectl create namespace {ns}) or pick '
                f"another with -n")
    if status == 409:
        return f"conflict: cannot {what}: {message}; it changed meanwhile: run the command again"
    if status == 422:
        return f"invalid: cannot {what}: {message}"
    after = f" (after {tries} tries)" if tries > 1 else ""
    if status == 429:
        return (f"the API server of context {context!r} is throttling us: cannot {what}: "
                f"{message}{after}; try again in a minute")
    if status >= 500:
        return (f"the API server of context {context!r} failed to {what}: HTTP {status}: "
                f"{message}{after}; try again, or check the health of the control plane")
    return f"cannot {what}: HTTP {status}: {message}"


def _forbidden(message: str, verb: str, t: Target) -> str:
    """A 403 as the Role rule to ask for. The rule names the verb the API server
    checked and the one we asked for, as both are needed when they differ (an
    apply that creates: patch and create; a websocket tunnel: get and create)."""
    m = _RBAC.search(message)
    if m is not None:
        user, checked, resource = f'user "{m["user"]}" ', m["verb"], m["resource"]
        group = m["group"] if m["group"] is not None else t.group
    elif _UNSAID.search(message):       # a second check that says no more than "no"
        user, checked, resource, group = "", verb, t.resource, t.group
    else:               # not RBAC: admission, a namespace being deleted, a quota
        way_out = quota_way_out(message, t.namespace)
        return f"forbidden: cannot {verb} {t.phrase()}: {message}" + (f"; {way_out}" if way_out
                                                                        else "")
    verbs = [checked] + ([verb] if verb != checked and resource == t.resource else [])
    name = f"{resource}.{group}" if group else resource
    scope, kind = (f' in namespace "{t.namespace}"', "Role") if t.namespace else \
        (" at the cluster scope", "ClusterRole")
    listed = ", ".join(f'"{v}"' for v in verbs)
    return (f"forbidden: {user}cannot {checked} {name}{scope}; ask for a {kind} rule: "
            f'apiGroups ["{group}"], resources ["{resource}"], verbs [{listed}]')


_QUOTA = re.compile(r"exceeded quota: (?P<quota>[^,\s]+)")


def quota_way_out(message: str, namespace: str | None) -> str | None:
    """What to do about a ResourceQuota that refused something, or None when
    `message` is not about a quota."""
    m = _QUOTA.search(message)
    if m is None:
        return None
    where = f" -n {namespace}" if namespace else ""
    return (f"free some of what quota {m['quota']!r} counts, or ask an admin to raise the quota "
            f"(see `kubectl describe resourcequota {m['quota']}{where}`)")


def _chain(e: BaseException) -> Iterator[BaseException]:
    """e, then what it wraps: a `reason` (websocket's, urllib3's), then causes
    and contexts."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        inner = getattr(e, "reason", None)
        e = inner if isinstance(inner, BaseException) else (e.__cause__ or e.__context__)


def _root_cause(e: BaseException) -> str:
    return str(list(_chain(e))[-1])


def transport_error(e: BaseException, server: str, context: str) -> str:
    """One line for a request that got no HTTP answer."""
    import ssl
    where = f"the Kubernetes API server at {server} (context {context!r})"
    names = {type(x).__name__ for x in _chain(e)}
    cause = _root_cause(e)
    if _hung_up(e):
        return (f"cannot reach {where}: it closed the connection during the TLS handshake; is "
                f"the cluster running, and is the server in the kubeconfig its API server?")
    if any(isinstance(x, ssl.SSLError) for x in _chain(e)) or "SSLError" in names:
        hint = ("check the certificate-authority of the cluster in the kubeconfig"
                if "CERTIFICATE_VERIFY_FAILED" in cause or "certificate verify failed" in cause
                else "check the TLS settings of the cluster and user in the kubeconfig")
        return f"TLS failure talking to {where}: {cause}; {hint}"
    read_timeout = any(isinstance(x, TransportError) and x.phase == "read"
                       and isinstance(x.__cause__, TimeoutError) for x in _chain(e))
    if read_timeout or "WebSocketTimeoutException" in names:
        return f"timed out waiting for an answer from {where}: {cause}; is it overloaded? try again"
    return f"cannot reach {where}: {cause}; is the cluster running?"


def _hung_up(e: BaseException) -> bool:
    """Did the server close the connection before TLS was set up? That is a
    server gone (or not the API server), not a TLS setting to fix."""
    import ssl
    return any(isinstance(x, (ssl.SSLEOFError, ssl.SSLZeroReturnError))
               or "UNEXPECTED_EOF_WHILE_READING" in str(x) for x in _chain(e))


KUBECONFIG_WAY_OUT = "fix it, or pass another with --kubeconfig"


def kubeconfig_problem(docs: list[tuple[str, bytes]], context: str | None) -> str | None:
    """What makes the kubeconfig files `docs` (name, content), merged as the
    client merges them, unusable with `context` (None: their current-context);
    None if nothing we know of."""
    names, current = [], None
    for name, data in docs:
        cfg, problem = _kubeconfig_shape(data)
        if problem:
            return f"cannot use the kubeconfig {name}: {problem}; {KUBECONFIG_WAY_OUT}"
        names += [c.get("name") for c in cfg.get("contexts") or []]
        current = cfg.get("current-context", current)   # the last file to set it wins
    files = os.pathsep.join(name for name, _ in docs)
    wanted = context or current
    if not wanted:
        return (f"the kubeconfig {files} sets no current-context; pick a context with --context "
                f"(see `kubectl config get-contexts`)")
    if wanted in names:
        return None
    listed = ", ".join(str(n) for n in names) or "none"
    whose = "" if context else "its current-context; "
    return (f"context {wanted!r} not found in the kubeconfig {files} ({whose}contexts: {listed}); "
            f"pick one with --context (see `kubectl config get-contexts`)")


def _kubeconfig_shape(data: bytes) -> tuple[dict, str | None]:
    """A kubeconfig file's mapping, or what keeps it from being one."""
    import yaml
    try:
        cfg = yaml.safe_load(data)
    except yaml.YAMLError as e:
        from .scanner import yaml_problem
        return {}, yaml_problem(e)
    if cfg is None:
        return {}, "the file is empty"
    if not isinstance(cfg, dict):
        kind = {list: "a list", str: "a string"}.get(type(cfg), "a single value")
        return {}, f"not a kubeconfig (a mapping of clusters, contexts and users) but {kind}"
    contexts = cfg.get("contexts") or []
    if not isinstance(contexts, list) or not all(isinstance(c, dict) for c in contexts):
        return {}, "its contexts are not a list of mappings"
    return cfg, None


def _pause(planned: float, retry_after: str | None) -> float:
    """How long to wait before a retry: the plan, or the server's Retry-After
    (seconds) if longer, up to RETRY_AFTER_MAX."""
    try:
        asked = float(retry_after) if retry_after else 0.0
    except ValueError:
        asked = 0.0        # an HTTP date: the API server sends seconds
    return min(max(planned, asked), max(planned, RETRY_AFTER_MAX))


def _api_message(body) -> str:
    try:
        return json.loads(body)["message"]
    except (ValueError, TypeError, KeyError):
        return (body.decode(errors="replace") if isinstance(body, bytes) else str(body or ""))[:300]


# -- credential plugins --------------------------------------------------------

class _PluginErrors(logging.Filter):
    """kube_config logs a failed exec credential plugin (rather than raising) and
    goes on without credentials. On the root logger, this filter keeps such
    records off stderr and hands them to the call that ran the plugin."""

    def __init__(self):
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        caught = getattr(self.local, "caught", None)
        if caught is None or record.module != "kube_config" or record.levelno < logging.ERROR:
            return True
        caught.append(record.getMessage())
        return False

    @contextmanager
    def catch(self):
        logging.getLogger().addFilter(self)     # once: addFilter ignores a second add
        self.local.caught = caught = []
        try:
            yield caught
        finally:
            self.local.caught = None


_PLUGIN_ERRORS = _PluginErrors()


PLUGIN_TIME_LIMIT = 10         # s for a credential plugin that cannot ask anyone
PLUGIN_TIME_LIMIT_TTY = 120    # s when it has the terminal: a person may be logging in


def plugin_timeout(command: str, context: str, seconds: float) -> str:
    return (f"credential plugin {command!r} (context {context!r}) did not answer within "
            f"{seconds:g}s; run it yourself to see why (it may be waiting for a login), "
            f"then retry")


class _PluginTimeout(BaseException):
    """A credential plugin ran out of time. Not an Exception: the client's
    `except Exception` would log it and go on without credentials."""

    def __init__(self, command: str, seconds: float):
        super().__init__(command, seconds)
        self.command, self.seconds = command, seconds

    def error(self, context: str) -> ApiError:
        return ApiError(plugin_timeout(self.command, context, self.seconds), 401)


class _PluginProcess(subprocess.Popen):
    """The client's Popen for a credential plugin, with a time limit on the
    wait for its answer (the client sets none). The client hands the plugin
    its stdin only when it may ask a person (a terminal): then it gets longer."""

    def __init__(self, args, **kwargs):
        self.may_ask = kwargs.get("stdin") is not None
        super().__init__(args, **kwargs)

    def communicate(self, input=None, timeout=None):
        limit = timeout or (PLUGIN_TIME_LIMIT_TTY if self.may_ask else PLUGIN_TIME_LIMIT)
        try:
            return super().communicate(input, limit)
        except subprocess.TimeoutExpired:
            self.kill()
            super().communicate()
            raise _PluginTimeout(str(self.args[0]), limit) from None


def _plugin_failed(command: str | None, context: str, errors: list[str]) -> ApiError:
    plugin = f"credential plugin {command!r}" if command else "credential plugin"
    return ApiError(f"the {plugin} of context {context!r} failed: {errors[-1]}; log in again "
                    f"(or run the plugin yourself to see why) and retry", 401)


# -- the client ----------------------------------------------------------------

@dataclass
class Kube:
    config: object          # kubernetes.client.Configuration
    pool: Pool
    context: str
    server: str
    namespace: str          # the context's namespace, or "default"
    kubeconfig: str | None
    plugin: str | None = None   # the exec credential plugin's command, if any

    # -- plumbing ----------------------------------------------------------

    def _auth(self) -> dict:
        """The Authorization header, refreshing an expired token first."""
        with _PLUGIN_ERRORS.catch() as failed:
            try:
                token = self.config.get_api_key_with_prefix("BearerToken", alias="authorization")
            except _PluginTimeout as e:
                raise e.error(self.context) from None
            except Exception as e:  # noqa: BLE001 - an OIDC refresh, say: it raises anything
                raise ApiError(f"cannot refresh the credentials of context {self.context!r}: "
                               f"{_root_cause(e)}; log in again", 401) from e
        if failed:
            raise _plugin_failed(self.plugin, self.context, failed)
        return {"authorization": token} if token else {}

    def _send(self, method: str, url: str, body=None, *, query: dict | None = None,
              headers: dict | None = None, timeout=TIMEOUT, stream: bool = False):
        """One API call, retried on 429 and 5xx; the transport.Response of a
        2xx (unread if `stream`), else an ApiError in words."""
        if query:
            url += "?" + urlencode(query)
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        for tries, pause in enumerate((*RETRY_PAUSES, None), 1):
            resp = self._urlopen(method, url, data, headers or {}, timeout, stream)
            if resp.status < 300:
                return resp
            text = _api_message(resp.data)
            if resp.status in RETRIED and pause is not None:
                log.debug("%s %s: HTTP %s, retrying", method, url, resp.status)
                time.sleep(_pause(pause, resp.headers.get("Retry-After")))
                continue
            verb = rbac_verb(method, url, watch=bool(query and query.get("watch")))
            raise ApiError(explain(resp.status, text, verb, url, context=self.context,
                                   tries=tries), resp.status)

    def _urlopen(self, method, url, data, headers, timeout, stream):
        headers = {"User-Agent": f"kubectl-gitops-run/{__version__}", **headers, **self._auth()}
        try:
            resp = self.pool.request(method, url, data, headers, timeout)
            if not stream:
                resp.data       # read it all here, where a cut body is worded
            return resp
        except TransportError as e:
            raise ApiError(transport_error(e, self.server, self.context)) from e

    def request(self, method: str, url: str, body=None, *, query: dict | None = None,
                content_type: str | None = None, accept: str = "application/json",
                timeout=TIMEOUT):
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        data = self._send(method, url, body, query=query, headers=headers, timeout=timeout).data
        return json.loads(data) if data else {}

    def _unless(self, statuses: tuple, instead, method: str, url: str, body=None, **kw):
        """request(), or `instead` when it fails with one of `statuses`."""
        try:
            return self.request(method, url, body, **kw)
        except ApiError as e:
            if e.status in statuses:
                return instead
            raise

    # -- objects -----------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = None, *,
            timeout=TIMEOUT) -> dict | None:
        return self._unless((404,), None, "GET", path(kind, namespace or self.namespace, name),
                            timeout=timeout)

    def collection(self, kind: str, namespace: str | None, selector: str | None = None, *,
                   fields: str | None = None, metadata_only: bool = False) -> dict:
        """The List of a kind in one namespace (all when None), with its
        resourceVersion; each item gets back the kind and apiVersion a List drops."""
        query = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", fields)) if v}
        doc = self.request("GET", path(kind, namespace), query=query or None,
                           accept=METADATA_ONLY if metadata_only else "application/json")
        for item in doc.get("items") or []:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", KINDS[kind][0])
        return doc

    def list(self, kind: str, namespace: str | None, selector: str | None = None, *,
             metadata_only: bool = False) -> list[dict]:
        """Objects of a kind in one namespace, or in all when namespace is None;
        `metadata_only` (for Secrets) leaves their contents on the server."""
        try:
            doc = self.collection(kind, namespace, selector, metadata_only=metadata_only)
        except ApiError as e:
            if e.status == 404 and KINDS[kind][0] != "v1":
                return []        # the API is not served (Flux not installed)
            raise
        return doc.get("items") or []

    def create(self, obj: dict, *, timeout=TIMEOUT) -> dict | None:
        """Create obj; None if an object of that name exists already."""
        meta = obj["metadata"]
        return self._unless((409,), None, "POST", path(obj["kind"], meta.get("namespace")), obj,
                            timeout=timeout)

    def replace(self, obj: dict, *, timeout=TIMEOUT) -> dict | None:
        """Replace obj if it is still at its metadata.resourceVersion; None if it
        changed meanwhile (409) or is gone (404)."""
        meta = obj["metadata"]
        return self._unless((404, 409), None, "PUT",
                            path(obj["kind"], meta.get("namespace"), meta["name"]), obj,
                            timeout=timeout)

    def apply(self, obj: dict) -> dict:
        """Server-side apply: create or repair to exactly our fields."""
        meta = obj["metadata"]
        return self.request("PATCH", path(obj["kind"], meta.get("namespace"), meta["name"]), obj,
                            query={"fieldManager": FIELD_MANAGER, "force": "true"},
                            content_type="application/apply-patch+yaml")

    def patch(self, kind: str, name: str, patch: dict, namespace: str | None = None) -> dict:
        return self.request("PATCH", path(kind, namespace or self.namespace, name), patch,
                            content_type="application/merge-patch+json")

    def delete(self, kind: str, name: str, namespace: str | None = None,
               uid: str | None = None) -> bool:
        """Delete (in the background) one object; only the one with `uid` when
        given. False if it was already gone, or replaced by one not ours."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        url = path(kind, namespace or self.namespace, name)
        return self._unless((404, 409), False, "DELETE", url, body) is not False

    def served(self, group_version: str) -> list[str]:
        """Resource names served under a group/version; [] when not served."""
        doc = self._unless((404,), {}, "GET", f"/apis/{group_version}")
        return [r["name"] for r in doc.get("resources") or []]

    # -- streams -----------------------------------------------------------

    def watch(self, kind: str, namespace: str, *, resource_version: str, timeout: float,
              name: str | None = None, selector: str | None = None,
              cancel: threading.Event | None = None,
              url: str | None = None) -> Iterator[tuple[str, dict]]:
        """The (type, object) events of one watch request from resource_version
        (BOOKMARKs included), until the API server ends it after `timeout` s.
        An expired resource_version raises ApiError with status 410; `cancel`
        raises errors.Cancelled within CANCEL_TICK s, even while it blocks.
        `url`: the collection of a kind not in core.resources (adapters.discovery)."""
        seconds = max(1, math.ceil(timeout))
        query = {"watch": "true", "resourceVersion": resource_version,
                 "allowWatchBookmarks": "true", "timeoutSeconds": str(seconds)}
        if name:
            query["fieldSelector"] = f"metadata.name={name}"
        if selector:
            query["labelSelector"] = selector
        url = url or path(kind, namespace)
        resp = self._send("GET", url, query=query, headers={"Accept": "application/json"},
                          timeout=(TIMEOUT[0], seconds + WATCH_SLACK), stream=True)
        clean = False
        try:
            with _shutdown_on(cancel, resp):
                for line in _lines(resp.chunks()):
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        raise self._watch_error(event.get("object") or {}, url)
                    yield event["type"], event["object"]
            clean = True
        except Exception as e:  # noqa: BLE001 - the stream was cut: by cancel, or midway
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"stopped watching {target(url).phrase()}") from e
            if isinstance(e, ApiError):
                raise
            # the connection broke after the watch began: end it, and let the caller
            # watch again from the last resourceVersion (a dead server fails that)
            log.debug("watch of %s ended early: %s", url, e)
        finally:
            if not clean:           # a stream read halfway cannot serve another request
                resp.close()
            resp.release()
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"stopped watching {target(url).phrase()}")

    def _watch_error(self, status: dict, url: str) -> ApiError:
        code = status.get("code") or 500
        return ApiError(explain(code, status.get("message") or "", "watch", url,
                                context=self.context), code)

    def open_portforward(self, namespace: str, pod: str, port: int):
        """A tunnel to a pod's port: a kubernetes.stream PortForward whose
        socket(port) is the pod's end. Each call opens its own websocket and
        shares no state, so tunnels may open from many threads at once."""
        from kubernetes.stream import ws_client
        from websocket import WebSocketBadStatusException
        url = path("Pod", namespace, pod) + "/portforward"
        ws_url = ws_client.get_websocket_url(self.server + url, [("ports", str(port))])
        try:
            sock = ws_client.create_websocket(self.config, ws_url, self._auth())
        except WebSocketBadStatusException as e:
            message = _api_message(e.resp_body) if e.resp_body else str(e.status_message or e)
            raise ApiError(explain(e.status_code, message, "create", url, context=self.context),
                           e.status_code) from e
        except Exception as e:  # noqa: BLE001 - network, TLS and websocket's own errors
            raise ApiError(transport_error(e, self.server, self.context)) from e
        return ws_client.PortForward(sock, [int(port)])


def _lines(chunks) -> Iterator[bytes]:
    """Whole lines from a stream of chunks (a watch sends one JSON event a line;
    a line the stream ended in the middle of is dropped)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())


@contextmanager
def _shutdown_on(cancel: threading.Event | None, resp):
    """While inside, a thread shuts `resp` down as soon as `cancel` is set.
    It looks every CANCEL_TICK s, as it must also notice the block ending."""
    if cancel is None:
        yield
        return
    done = threading.Event()

    def guard():
        while not done.is_set():
            if cancel.wait(CANCEL_TICK) and not done.is_set():
                resp.shutdown()     # close() would not wake the blocked read
                return

    thread = threading.Thread(target=guard, daemon=True, name="gitops-run watch cancel")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def connect(kubeconfig: str | None = None, context: str | None = None,
            namespace: str | None = None) -> Kube:
    """Load the kubeconfig as kubectl does (--kubeconfig, else $KUBECONFIG, else
    ~/.kube/config) and pick the context and namespace."""
    configuration, kube_config, ConfigException = _client()
    files = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if not any(os.path.isfile(f) for f in files.split(os.pathsep) if f):
        raise UserError(f"no kubeconfig found at {files}: pass --kubeconfig, set KUBECONFIG, "
                        f"or try the local cluster with `eval \"$(make -s dev-cluster)\"`")
    try:
        # the loader itself (a private helper, there since v10): one parse, and
        # the user's exec plugin at hand for messages
        loader = kube_config._get_kube_config_loader(filename=files, persist_config=False,
                                                     active_context=context)
    except Exception as e:  # noqa: BLE001 - ConfigException, YAML errors, TypeError on a list
        raise UserError(_unusable(files, context, e)) from e
    chosen = loader.current_context
    plugin = _plugin_command(loader)
    cfg = configuration.Configuration()
    try:
        with _PLUGIN_ERRORS.catch() as failed:
            loader.load_and_set(cfg)
    except ConfigException as e:
        raise UserError(f"cannot use the kubeconfig {files}: {e}; {KUBECONFIG_WAY_OUT}") from e
    except _PluginTimeout as e:
        raise e.error(chosen["name"]) from None
    except Exception as e:  # noqa: BLE001 - an OIDC refresh at load raises anything
        raise ApiError(f"cannot load the credentials of context {chosen['name']!r}: "
                       f"{_root_cause(e)}; log in again", 401) from e
    if failed:
        raise _plugin_failed(plugin, chosen["name"], failed)
    if not log.isEnabledFor(logging.DEBUG):
        # Configuration() sets urllib3's logger to WARNING: no retry chatter on stderr
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    ns = namespace or (chosen.get("context") or {}).get("namespace") or "default"
    tls = TLS(verify=cfg.verify_ssl, ca_file=cfg.ssl_ca_cert, cert_file=cfg.cert_file,
              key_file=cfg.key_file, server_name=getattr(cfg, "tls_server_name", None))
    return Kube(cfg, Pool(cfg.host, tls), chosen["name"], cfg.host, ns, kubeconfig, plugin)


def _unusable(files: str, context: str | None, e: Exception) -> str:
    """Why the loader refused the kubeconfig, found again in its files (only
    now, as it failed), or what the loader said."""
    docs = []
    for name in (f for f in files.split(os.pathsep) if f):
        try:
            with open(os.path.expanduser(name), "rb") as f:
                docs.append((name, f.read()))
        except OSError:
            continue        # the loader skips a file that is not there, so do we
    return kubeconfig_problem(docs, context) or \
        f"cannot use the kubeconfig {files}: {e}; {KUBECONFIG_WAY_OUT}"


def _plugin_command(loader) -> str | None:
    user = getattr(loader, "_user", None)       # the loader's ConfigNode of the user
    plugin = user.safe_get("exec") if user is not None else None
    return plugin.get("command") if isinstance(plugin, dict) else None
