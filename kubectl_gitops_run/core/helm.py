"""A Helm chart directory, deployed by a HelmRelease (pure).

When the applied path holds a Chart.yaml, a session deploys it with a
HelmRelease (helm.toolkit.fluxcd.io/v2) instead of a Kustomization. Its chart
comes from the session's Bucket with `reconcileStrategy: Revision`:
source-controller gives every Bucket revision its own chart version
(`<version>+<first 12 hex digits of the revision>`, then `.<generation>`
when there are values files), so every sync is an upgrade.

helm-controller makes the HelmChart `<namespace>-<name>` from the
HelmRelease's template. A sync is done once that HelmChart was built from
exactly our Bucket revision (its artifact revision is then the chart version)
and the HelmRelease is Ready with that chart version deployed.
"""
from __future__ import annotations

import posixpath
import re
from typing import Container, Iterable

from ..errors import UsageError
from . import flux
from .flux import DONE, FAILED, WAITING, Progress
from .manifests import FLUX_INTERVAL, Spec
from .naming import labels, object_name

KUSTOMIZATION, HELM_RELEASE = "Kustomization", "HelmRelease"
CHART_FILE = "Chart.yaml"
VALUES_FILE = "values.yaml"
# Helm's own rule for release names (helm.sh/helm/v3 pkg/chartutil ValidateReleaseName)
_RELEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_RELEASE_NAME = 53


def _key(path: str, name: str) -> str:
    return posixpath.join(path, name) if path else name


def is_chart(keys: Container[str], path: str) -> bool:
    """Does the applied path hold a Helm chart? (`keys`: the upload's)"""
    return _key(path, CHART_FILE) in keys


def deployer(keys: Container[str], path: str) -> str:
    """The kind that deploys the applied path."""
    return HELM_RELEASE if is_chart(keys, path) else KUSTOMIZATION


def is_template(key: str, path: str) -> bool:
    """Is `key` a template of the chart at `path`, or of one of its subcharts?
    Those hold Go templates, not YAML."""
    if path and not key.startswith(path + "/"):
        return False
    rel = key[len(path) + 1:] if path else key
    return "templates" in rel.split("/")[:-1]


def validate_release_name(name: str) -> str:
    if len(name) > MAX_RELEASE_NAME or not _RELEASE_NAME.fullmatch(name):
        raise UsageError(f"invalid --release-name {name!r}: use at most {MAX_RELEASE_NAME} "
                         f"lower-case letters, digits, '-' and '.', starting and ending with a "
                         f"letter or digit")
    return name


def values_key(relative: str, given: str) -> str:
    """A --values file as a key of the upload; `relative`: its path relative
    to DIR. Flux gets only what is in DIR."""
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or relative.startswith(("/", "\\")):
        raise UsageError(f"--values {given}: not a file inside DIR; Flux gets only what DIR "
                         f"holds, so copy it into the chart")
    return "/".join(parts)


def values_files(path: str, keys: Iterable[str], given: list[str]) -> list[str]:
    """spec.chart.spec.valuesFiles: the chart's values.yaml first (merged values
    replace the chart's defaults), then each --values file, as keys of the
    upload. Raises UsageError for one that is not uploaded."""
    keys = set(keys)
    for key in given:
        if key not in keys:
            raise UsageError(f"--values {key}: not in the upload (left out by .sourceignore, "
                             f".gitignore or as a file that may hold keys?)")
    own = [_key(path, VALUES_FILE)] if _key(path, VALUES_FILE) in keys and given else []
    return list(dict.fromkeys(own + given))


def release(spec: Spec, release_name: str = "", values: list[str] | None = None) -> dict:
    """The HelmRelease of a chart session. Its HelmChart carries the session's
    labels, so that `down` knows it for ours."""
    name = object_name(spec.name)
    chart = {"chart": spec.source_path, "sourceRef": {"kind": "Bucket", "name": name},
             "reconcileStrategy": "Revision", "interval": FLUX_INTERVAL}
    if values:
        chart["valuesFiles"] = list(values)
    return {"apiVersion": f"{flux.HELM_GROUP}/v2", "kind": HELM_RELEASE,
            "metadata": spec.meta(None),
            "spec": {"chart": {"metadata": {"labels": labels(spec.name)}, "spec": chart},
                     "releaseName": release_name or spec.name,
                     "targetNamespace": spec.target,
                     "serviceAccountName": spec.service_account or name,
                     "interval": FLUX_INTERVAL, "timeout": "2m"}}


def chart_name(namespace: str, release_name: str) -> str:
    """The HelmChart helm-controller makes for a HelmRelease (in its namespace)."""
    return f"{namespace}-{release_name}"


def chart_version(helm_chart: dict | None) -> str | None:
    return (((helm_chart or {}).get("status") or {}).get("artifact") or {}).get("revision")


def built_from(version: str | None, revision: str) -> bool:
    """Is chart `version` source-controller's build of the Bucket at `revision`?
    Its build metadata starts with the revision's first 12 hex digits
    (source-controller internal/controller/helmchart_controller.go)."""
    build = (version or "").partition("+")[2]
    return bool(build) and build.split(".")[0] == revision.partition(":")[2][:12]


def _template_applied(helm_chart: dict, template: dict) -> bool:
    """Has helm-controller copied the HelmRelease's chart template onto it?"""
    spec = helm_chart.get("spec") or {}
    return all(spec.get(k) == template.get(k) for k in ("chart", "valuesFiles"))


def chart_progress(helm_chart: dict | None, revision: str, template: dict) -> Progress:
    """Done once the HelmChart, made from `template` (the HelmRelease's
    spec.chart.spec), has built a chart from the Bucket at `revision`; failed
    when building that chart failed (a bad Chart.yaml, a missing values file)."""
    if helm_chart is None:
        return Progress(WAITING, "helm-controller has not made it yet; is Flux's "
                                 "helm-controller running?")
    if not _template_applied(helm_chart, template):
        return Progress(WAITING, "helm-controller has not updated it from the HelmRelease yet")
    status = helm_chart.get("status") or {}
    if status.get("observedSourceArtifactRevision") != revision:
        return Progress(WAITING)
    state = flux.ready(helm_chart)
    # mid-reconcile, the status names the new source revision beside the old artifact
    if state == "True" and flux.observed(helm_chart, None) \
            and built_from(chart_version(helm_chart), revision):
        return Progress(DONE)
    ready = flux.condition(helm_chart) or {}
    current = ready.get("observedGeneration", -1) >= helm_chart["metadata"].get("generation", 0)
    build_failed = (flux.condition(helm_chart, "BuildFailed") or {}).get("status") == "True"
    if state == "False" and current and build_failed:
        return Progress(FAILED, flux.message(helm_chart))
    return Progress(WAITING, flux.message(helm_chart) if state == "False" else "")


def latest(helm_release: dict | None) -> dict:
    """The newest Helm release of a HelmRelease ({} before the first)."""
    history = ((helm_release or {}).get("status") or {}).get("history") or [{}]
    return history[0] or {}


def release_progress(helm_release: dict | None, version: str) -> Progress:
    """Done once chart `version` is deployed and the HelmRelease Ready; failed
    once helm-controller tried that version with the current spec and said why
    it is not Ready (Helm's own message). It marks Ready Unknown in the same
    status patch that names a new attempted version, and keeps retrying a
    failed one (Reconciling stays True): a False after that is the verdict."""
    if helm_release is None:
        return Progress(FAILED, "the HelmRelease was deleted")
    status, state = helm_release.get("status") or {}, flux.ready(helm_release)
    now = latest(helm_release)
    if state == "True" and flux.observed(helm_release, None) \
            and now.get("chartVersion") == version and now.get("status") == "deployed":
        return Progress(DONE)
    generation = helm_release["metadata"].get("generation", 0)
    tried = status.get("lastAttemptedRevision") == version \
        and status.get("lastAttemptedGeneration", -1) >= generation
    if tried and state == "False":
        return Progress(FAILED, flux.message(helm_release))
    return Progress(WAITING, flux.message(helm_release) if state == "False" else "")

