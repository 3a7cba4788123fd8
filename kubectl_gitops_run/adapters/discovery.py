"""API discovery: where an object of any group, version and kind lives.

The session's own kinds are in core.resources; what Flux applied for it can
be anything, so its API paths come from the API server's discovery documents
(one request per group/version, remembered for the command).
"""
from __future__ import annotations

from urllib.parse import quote

from ..errors import ApiError
from .kube import Kube


class Discovery:
    def __init__(self, kube: Kube):
        self.kube = kube
        self._kinds: dict[str, dict[str, tuple[str, bool]]] = {}

    def _resources(self, api_version: str) -> dict[str, tuple[str, bool]]:
        """kind -> (plural, namespaced) served under api_version."""
        if api_version not in self._kinds:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = self.kube.request("GET", base)
            except ApiError as e:
                if e.status != 404:
                    raise
                doc = {}
            self._kinds[api_version] = {
                r["kind"]: (r["name"], r.get("namespaced", False))
                for r in doc.get("resources") or [] if "/" not in r["name"]}
        return self._kinds[api_version]

    def collection(self, api_version: str, kind: str, namespace: str | None) -> str | None:
        """The URL path of a kind's objects in one namespace (None: in all), or
        None if the API server does not serve the kind."""
        found = self._resources(api_version).get(kind)
        if found is None:
            return None
        plural, namespaced = found
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        return f"{base}/{plural}"

    def path(self, api_version: str, kind: str, namespace: str, name: str) -> str | None:
        """The object's URL path, or None if the API server does not serve its kind."""
        base = self.collection(api_version, kind, namespace)
        return None if base is None else f"{base}/{quote(name, safe='')}"

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        path = self.path(api_version, kind, namespace, name)
        if path is None:
            return None
        try:
            return self.kube.request("GET", path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def patch(self, api_version: str, kind: str, namespace: str, name: str, patch: dict) -> None:
        path = self.path(api_version, kind, namespace, name)
        if path is not None:
            self.kube.request("PATCH", path, patch, content_type="application/merge-patch+json")
