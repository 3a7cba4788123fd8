"""Kubernetes access: the kubeconfig, a small JSON REST layer, errors in words.

Objects travel as plain dicts (no generated models): every call goes through
`Kube.request`, which maps failures to one-line UserErrors that name the verb,
the resource and what to do. `kubernetes` is imported here only, and lazily,
so `--help` and completion never pay for it.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from ..core.naming import FIELD_MANAGER
from ..core.resources import KINDS, describe, path
from ..errors import ApiError, UserError

log = logging.getLogger(__name__)

TIMEOUT = (5, 30)        # (connect, read) seconds for each API request
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
def _api_message(body) -> str:
    try:
        return json.loads(body)["message"]
    except (ValueError, TypeError, KeyError):
        return (body.decode(errors="replace") if isinstance(body, bytes) else str(body or ""))[:300]


@dataclass
class Kube:
    api_client: object
    context: str
    server: str
    namespace: str          # the context's namespace, or "default"
    kubeconfig: str | None

    # -- plumbing ----------------------------------------------------------

    def request(self, method: str, url: str, body=None, *, query: dict | None = None,
                content_type: str | None = None, accept: str = "application/json",
                what: str = "", timeout=TIMEOUT):
        from kubernetes.client.exceptions import ApiException
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            resp = self.api_client.call_api(
                url, method, header_params=headers, body=body, auth_settings=["BearerToken"],
                _preload_content=False, _return_http_data_only=True, _request_timeout=timeout)
        except ApiException as e:
            raise self._error(e.status, _api_message(e.body), method, what) from e
        except Exception as e:  # noqa: BLE001 - urllib3 errors: the server is unreachable
            if isinstance(e, UserError):
                raise
            raise ApiError(f"cannot reach the Kubernetes API server at {self.server} "
                           f"(context {self.context!r}): {_root_cause(e)}; is the cluster "
                           f"running?") from e
        data = resp.data
        return json.loads(data) if data else {}

    def _error(self, status, message: str, method: str, what: str) -> ApiError:
        if status == 401:
            return ApiError(f"unauthorized: the API server of context {self.context!r} rejected "
                            f"our credentials ({message}); log in again or check the kubeconfig",
                            status)
        if status == 403:
            return ApiError(f"forbidden: {message}; ask for RBAC permission to "
                            f"{_verb(method)} {what}", status)
        return ApiError(f"{_verb(method)} {what}: {message}" if what else message, status)

    # -- objects -----------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        ns = namespace or self.namespace
        try:
            return self.request("GET", path(kind, ns, name), what=describe(kind, ns, name))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str | None, selector: str | None = None, *,
             metadata_only: bool = False) -> list[dict]:
        """Objects of a kind in one namespace, or in all when namespace is None;
        `metadata_only` (for Secrets) leaves their contents on the server."""
        query = {"labelSelector": selector} if selector else None
        accept = METADATA_ONLY if metadata_only else "application/json"
        try:
            return self.request("GET", path(kind, namespace), query=query, accept=accept,
                                what=describe(kind, namespace, None)).get("items") or []
        except ApiError as e:
            if e.status == 404 and KINDS[kind][0] != "v1":
                return []        # the API is not served (Flux not installed)
            raise

    def apply(self, obj: dict) -> dict:
        """Server-side apply: create or repair to exactly our fields."""
        meta = obj["metadata"]
        kind = obj["kind"]
        return self.request("PATCH", path(kind, meta.get("namespace"), meta["name"]), obj,
                            query={"fieldManager": FIELD_MANAGER, "force": "true"},
                            content_type="application/apply-patch+yaml",
                            what=describe(kind, meta.get("namespace"), meta["name"]))

    def patch(self, kind: str, name: str, patch: dict, namespace: str | None = None) -> dict:
        ns = namespace or self.namespace
        return self.request("PATCH", path(kind, ns, name), patch,
                            content_type="application/merge-patch+json",
                            what=describe(kind, ns, name))

    def delete(self, kind: str, name: str, namespace: str | None = None,
               uid: str | None = None) -> bool:
        """Delete (in the background) one object; only the one with `uid` when
        given. False if it was already gone."""
        ns = namespace or self.namespace
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", path(kind, ns, name), body, what=describe(kind, ns, name))
            return True
        except ApiError as e:
            if e.status in (404, 409):   # gone, or replaced by an object that is not ours
                return False
            raise

    def served(self, group_version: str) -> list[str]:
        """Resource names served under a group/version; [] when not served."""
        try:
            doc = self.request("GET", f"/apis/{group_version}", what=f"API {group_version}")
        except ApiError as e:
            if e.status == 404:
                return []
            raise
        return [r["name"] for r in doc.get("resources") or []]

    def wait_for(self, what: str, check, timeout: float, interval: float = 0.25):
        """Call check() until it returns something truthy; UserError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise UserError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(interval)


def _verb(method: str) -> str:
    return {"GET": "get", "PATCH": "update", "DELETE": "delete", "POST": "create",
            "PUT": "update"}.get(method, method.lower())


def _root_cause(e: BaseException) -> str:
    while True:
        inner = getattr(e, "reason", None)
        if isinstance(inner, BaseException):
            e = inner
            continue
        if e.__cause__ is not None:
            e = e.__cause__
            continue
        break
    text = str(e)
    # urllib3: "<urllib3.connection.HTTPSConnection object at 0x..>: Failed to establish ..."
    return text.split(": ", 1)[1] if text.startswith("<") and ": " in text else text


def connect(kubeconfig: str | None = None, context: str | None = None,
            namespace: str | None = None) -> Kube:
    """Load the kubeconfig as kubectl does (--kubeconfig, else $KUBECONFIG, else
    ~/.kube/config) and pick the context and namespace."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    files = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if not any(os.path.isfile(f) for f in files.split(os.pathsep) if f):
        raise UserError(f"no kubeconfig found at {files}: pass --kubeconfig, set KUBECONFIG, "
                        f"or try the local cluster with `eval \"$(make -s dev-cluster)\"`")
    try:
        contexts, current = config.list_kube_config_contexts(kubeconfig)
        chosen = current if context is None else next(
            (c for c in contexts if c["name"] == context), None)
        if chosen is None:
            names = ", ".join(c["name"] for c in contexts) or "none"
            raise UserError(f"context {context!r} not found in the kubeconfig (contexts: {names})")
        cfg = client.Configuration()
        config.load_kube_config(kubeconfig, context=chosen["name"], client_configuration=cfg,
                                persist_config=False)
    except ConfigException as e:
        raise UserError(f"cannot use the kubeconfig {files}: {e}") from e
    cfg.retries = 1
    if not log.isEnabledFor(logging.DEBUG):
        # Configuration() sets urllib3's logger to WARNING: no retry chatter on stderr
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    ns = namespace or (chosen.get("context") or {}).get("namespace") or "default"
    return Kube(client.ApiClient(cfg), chosen["name"], cfg.host, ns, kubeconfig)
