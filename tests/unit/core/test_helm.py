"""helm: a chart directory, its HelmRelease, and reading helm-controller's progress.

The statuses below are shaped like those of helm-controller v1.6.4 and
source-controller v1.9.3 on the dev cluster."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import flux, helm, manifests
from kubectl_gitops_run.core.flux import DONE, FAILED, WAITING
from kubectl_gitops_run.errors import UsageError

REV = "sha256:615b2624a5184f4e989886cb691a6b49c138eb05a70656acd42462f3f9f1c355"
VERSION = "0.1.0+615b2624a518.1"
OLD_VERSION = "0.1.0+24d61eb95cad.1"
SPEC = manifests.Spec(name="web", namespace="dev", source="/src/web", host="h", user="u")
TEMPLATE = {"chart": "./", "reconcileStrategy": "Revision", "valuesFiles": ["values.yaml"],
            "sourceRef": {"kind": "Bucket", "name": "gitops-run-web"}}


# -- the chart directory ------------------------------------------------------------

def test_a_chart_is_a_chart_yaml_at_the_applied_path():
    keys = {"Chart.yaml", "templates/cm.yaml", "sub/Chart.yaml", "sub/values.yaml"}
    assert helm.is_chart(keys, "") and helm.is_chart(keys, "sub")
    assert not helm.is_chart(keys, "templates")
    assert not helm.is_chart({"deploy/Chart.yaml"}, "")
    assert helm.deployer(keys, "") == "HelmRelease"
    assert helm.deployer({"cm.yaml"}, "") == "Kustomization"


@pytest.mark.parametrize("key, path, template", [
    ("templates/cm.yaml", "", True),
    ("templates/sub/cm.yaml", "", True),
    ("charts/db/templates/sts.yaml", "", True),      # a subchart's
    ("values.yaml", "", False),
    ("crds/crd.yaml", "", False),                     # plain YAML
    ("chart/templates/cm.yaml", "chart", True),
    ("chart/values.yaml", "chart", False),
    ("templates/cm.yaml", "chart", False),            # not under the chart
    ("other/templates/cm.yaml", "chart", False),
    ("chartx/templates/cm.yaml", "chart", False),
])
def test_templates_of_the_chart(key, path, template):
    assert helm.is_template(key, path) is template


@pytest.mark.parametrize("name", ["web", "web-1", "a.b", "x" * 53])
def test_release_names(name):
    assert helm.validate_release_name(name) == name


@pytest.mark.parametrize("name", ["Web", "-web", "web-", "x" * 54, "a_b", "a..b"])
def test_bad_release_names(name):
    with pytest.raises(UsageError, match="--release-name"):
        helm.validate_release_name(name)


# -- values files ---------------------------------------------------------------------

@pytest.mark.parametrize("relative, key", [
    ("values-prod.yaml", "values-prod.yaml"), ("./chart//prod.yaml", "chart/prod.yaml"),
    ("env\\prod.yaml", "env/prod.yaml")])
def test_values_key(relative, key):
    assert helm.values_key(relative, "x") == key


@pytest.mark.parametrize("relative", ["../prod.yaml", "a/../../b.yaml", "/etc/x.yaml", "", "."])
def test_values_outside_dir_are_a_usage_error(relative):
    with pytest.raises(UsageError, match="--values given: not a file inside DIR"):
        helm.values_key(relative, "given")


def test_values_files_put_the_charts_own_first():
    keys = {"chart/Chart.yaml", "chart/values.yaml", "chart/values-prod.yaml", "env.yaml"}
    assert helm.values_files("chart", keys, ["chart/values-prod.yaml", "env.yaml"]) == [
        "chart/values.yaml", "chart/values-prod.yaml", "env.yaml"]
    # said once, and nothing at all without --values (the chart's own apply anyway)
    assert helm.values_files("chart", keys, ["chart/values.yaml"]) == ["chart/values.yaml"]
    assert helm.values_files("chart", keys, []) == []
    # a chart without values.yaml
    assert helm.values_files("", {"Chart.yaml", "prod.yaml"}, ["prod.yaml"]) == ["prod.yaml"]


def test_values_file_left_out_of_the_upload():
    with pytest.raises(UsageError, match="--values secret.yaml: not in the upload"):
        helm.values_files("", {"Chart.yaml"}, ["secret.yaml"])


# -- the HelmRelease ----------------------------------------------------------------

def test_release_manifest():
    r = helm.release(SPEC)
    assert (r["apiVersion"], r["kind"]) == ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
    assert r["metadata"]["name"] == "gitops-run-web" and r["metadata"]["namespace"] == "dev"
    assert r["metadata"]["labels"]["kubectl-gitops-run.io/session"] == "web"
    assert r["metadata"]["annotations"]["kubectl-gitops-run.io/source"] == "/src/web"
    spec = r["spec"]
    assert spec["chart"]["spec"] == {"chart": "./", "reconcileStrategy": "Revision",
                                     "sourceRef": {"kind": "Bucket", "name": "gitops-run-web"},
                                     "interval": manifests.FLUX_INTERVAL}
    # the HelmChart helm-controller makes from it carries the session's labels
    assert spec["chart"]["metadata"]["labels"] == r["metadata"]["labels"]
    assert spec["releaseName"] == "web" and spec["targetNamespace"] == "dev"
    assert spec["serviceAccountName"] == "gitops-run-web"


def test_release_manifest_options():
    spec = manifests.Spec(name="web", namespace="dev", source="/s", host="h", user="u",
                          path="deploy/chart/", target_namespace="prod", service_account="ci")
    r = helm.release(spec, "site", ["deploy/chart/values.yaml", "prod.yaml"])["spec"]
    assert r["chart"]["spec"]["chart"] == "./deploy/chart"
    assert r["chart"]["spec"]["valuesFiles"] == ["deploy/chart/values.yaml", "prod.yaml"]
    assert (r["releaseName"], r["targetNamespace"], r["serviceAccountName"]) == (
        "site", "prod", "ci")


def test_chart_name():
    assert helm.chart_name("dev", "gitops-run-web") == "dev-gitops-run-web"


# -- the HelmChart ------------------------------------------------------------------

def cond(kind, status, reason="", message="", generation=1):
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation}


def helm_chart(observed=REV, version=VERSION, conditions=None, generation=1,
               template=TEMPLATE):
    status = {"observedSourceArtifactRevision": observed, "observedGeneration": generation,
              "conditions": conditions if conditions is not None else [
                  cond("Ready", "True", "ChartPackageSucceeded", f"packaged {version}")]}
    if version:
        status["artifact"] = {"revision": version}
    return {"metadata": {"name": "dev-gitops-run-web", "generation": generation},
            "spec": {**template, "interval": "1h0m0s", "version": "*"}, "status": status}


def test_chart_built_from_our_revision():
    chart = helm_chart()
    assert helm.chart_progress(chart, REV, TEMPLATE).state == DONE
    assert helm.chart_version(chart) == VERSION


def test_chart_not_made_yet():
    p = helm.chart_progress(None, REV, TEMPLATE)
    assert p.state == WAITING and "helm-controller" in p.message


def test_chart_with_an_older_template_is_not_done():
    """`up` with other --values: helm-controller has not copied them over yet."""
    chart = helm_chart(template={**TEMPLATE, "valuesFiles": ["values.yaml", "old.yaml"]})
    p = helm.chart_progress(chart, REV, TEMPLATE)
    assert p.state == WAITING and "not updated" in p.message


def test_chart_of_another_revision_is_not_done():
    assert helm.chart_progress(helm_chart(observed="sha256:" + "0" * 64), REV,
                               TEMPLATE).state == WAITING


def test_chart_mid_reconcile_keeps_the_old_artifact():
    """source-controller records the new source revision before it has built
    the new artifact (seen on the dev cluster): not done yet."""
    assert helm.chart_progress(helm_chart(version=OLD_VERSION), REV, TEMPLATE).state == WAITING
    assert helm.chart_progress(helm_chart(version=None), REV, TEMPLATE).state == WAITING


def test_chart_build_failed():
    failing = [cond("Ready", "False", "ValuesFilesError", "no values file found"),
               cond("BuildFailed", "True", "ValuesFilesError", "no values file found")]
    p = helm.chart_progress(helm_chart(conditions=failing, version=OLD_VERSION), REV, TEMPLATE)
    assert (p.state, p.message) == (FAILED, "no values file found")
    # a verdict on an older spec of the HelmChart is none
    stale = helm_chart(conditions=failing, generation=1)
    stale["metadata"]["generation"] = 2
    assert helm.chart_progress(stale, REV, TEMPLATE).state == WAITING
    # a failure to fetch is retried by source-controller: keep waiting, say why
    fetch = [cond("Ready", "False", "ArtifactFailed", "fetch failed")]
    p = helm.chart_progress(helm_chart(conditions=fetch), REV, TEMPLATE)
    assert (p.state, p.message) == (WAITING, "fetch failed")


@pytest.mark.parametrize("version, ok", [
    (VERSION, True), ("0.1.0+615b2624a518", True), ("1.2.3-rc.1+615b2624a518.4", True),
    (OLD_VERSION, False), ("0.1.0", False), (None, False), ("0.1.0+615b2624a5", False)])
def test_built_from(version, ok):
    assert helm.built_from(version, REV) is ok


# -- the HelmRelease's progress -----------------------------------------------------

def helm_release(ready="True", reason="InstallSucceeded", message="Helm install succeeded",
                 history=((VERSION, "deployed", 1),), attempted=VERSION, generation=1,
                 attempted_generation=1, extra=()):
    return {"metadata": {"name": "gitops-run-web", "generation": generation},
            "status": {"observedGeneration": 1, "lastAttemptedGeneration": attempted_generation,
                       "lastAttemptedRevision": attempted,
                       "conditions": [cond("Ready", ready, reason, message), *extra],
                       "history": [{"chartVersion": v, "status": s, "version": n,
                                    "name": "web"} for v, s, n in history],
                       "inventory": {"entries": [{"id": "dev_web__ConfigMap", "v": "v1"}]}}}


def test_release_deployed():
    r = helm_release()
    assert helm.release_progress(r, VERSION).state == DONE
    assert flux.applied_count(r) == 1       # helm-controller keeps an inventory too


def test_release_deployed_older_version_is_not_done():
    r = helm_release(history=((OLD_VERSION, "deployed", 1),), attempted=OLD_VERSION)
    assert helm.release_progress(r, VERSION).state == WAITING


def test_release_with_a_newer_spec_is_not_done():
    assert helm.release_progress(helm_release(generation=2), VERSION).state == WAITING


def test_release_in_progress():
    r = helm_release(ready="Unknown", reason="Progressing",
                     message="Running 'upgrade' action with timeout of 2m0s",
                     history=((OLD_VERSION, "deployed", 1),),
                     extra=[cond("Reconciling", "True", "Progressing", "Running 'upgrade'")])
    assert helm.release_progress(r, VERSION) == helm.Progress(WAITING)


def test_release_failed_names_helms_message():
    """helm-controller retries a failed upgrade with Reconciling True: the
    Ready=False of the attempted version is the verdict all the same."""
    msg = ("Helm upgrade failed for release dev/web with chart hello@0.1.0+615b2624a518.1: "
           "hello/templates/bad.yaml:6:15\n  executing \"hello/templates/bad.yaml\"")
    r = helm_release(ready="False", reason="UpgradeFailed", message=msg,
                     history=((OLD_VERSION, "deployed", 2),),
                     extra=[cond("Reconciling", "True", "Progressing", "Running 'upgrade'")])
    p = helm.release_progress(r, VERSION)
    assert p.state == FAILED
    assert p.message.startswith("Helm upgrade failed for release dev/web") and "\n" not in p.message


def test_release_failure_of_another_version_or_spec_is_no_verdict():
    failed = dict(ready="False", reason="UpgradeFailed", message="boom")
    assert helm.release_progress(helm_release(**failed, attempted=OLD_VERSION),
                                 VERSION).state == WAITING
    assert helm.release_progress(helm_release(**failed, generation=2),
                                 VERSION).state == WAITING


def test_release_deleted():
    assert helm.release_progress(None, VERSION).state == FAILED

