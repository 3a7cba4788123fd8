"""Helm chart directories (issue 11, item 3), end to end on the dev cluster's
real helm-controller: a chart is deployed by a HelmRelease from the session's
Bucket, every sync upgrades it, a failed install says Helm's words, `down`
uninstalls; a directory of Flux's own HelmRelease objects stays a
Kustomization, applied as it would be from Git."""
from __future__ import annotations

import json

import yaml

from tests.e2e.test_plugin import failed, get, ok, wait_for

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
    "values.yaml": "message: one\ncolor: none\n",
    "values-prod.yaml": "message: prod\n",
    # Go templates, not YAML: the YAML check and the pre-flight must leave them alone
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hello\n"
        "data:\n  message: {{ .Values.message | quote }}\n"
        "  color: {{ .Values.color | quote }}\n"),
    "templates/NOTES.txt": "{{ .Release.Name }} is installed\n",
}

FLUX_OBJECTS = {
    "repository.yaml": (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\n"
        "metadata:\n  name: podinfo\nspec:\n  interval: 10m\n"
        "  url: https://charts.example.invalid/podinfo\n"),
    "release.yaml": (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n"
        "spec:\n  interval: 10m\n  chart:\n    spec:\n      chart: podinfo\n"
        "      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n"),
}


def write(root, files: dict[str, str]):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def configmap(kubectl, name, ns):
    return (get(kubectl, "configmap", name, ns) or {}).get("data")


def session(cluster, name, ns) -> dict:
    items = json.loads(ok(cluster, "ls", "-n", ns, "-o", "json").stdout)["items"]
    return next(i for i in items if i["name"] == name)


def test_chart_with_prod_values_installs_upgrades_and_uninstalls(cluster, kubectl, namespace,
                                                                   tmp_path):
    chart = write(tmp_path / "web", CHART)
    res = ok(cluster, "up", str(chart), "-n", namespace, "--values", "values-prod.yaml")
    assert f"session web ready in namespace {namespace}" in res.stdout
    assert "applied 1 object" in res.stdout
    # values.yaml first, then values-prod.yaml: prod wins where it says something
    assert configmap(kubectl, "web-hello", namespace) == {"message": "prod", "color": "none"}
    release = get(kubectl, "helmrelease", "gitops-run-web", namespace)
    assert release["spec"]["releaseName"] == "web"
    assert release["spec"]["chart"]["spec"]["valuesFiles"] == ["values.yaml", "values-prod.yaml"]
    assert get(kubectl, "kustomization", "gitops-run-web", namespace) is None
    assert session(cluster, "web", namespace)["kind"] == "HelmRelease"
    assert "HelmRelease" in ok(cluster, "ls", "-n", namespace, "-o", "wide").stdout

    # an edit to values.yaml and a sync: an upgrade, waited for
    (chart / "values.yaml").write_text("message: one\ncolor: blue\n")
    res = ok(cluster, "sync", "web", "-n", namespace)
    assert res.stdout.startswith("+0 ~1 -0 files") and "applied 1 object" in res.stdout
    assert configmap(kubectl, "web-hello", namespace) == {"message": "prod", "color": "blue"}
    history = get(kubectl, "helmrelease", "gitops-run-web", namespace)["status"]["history"]
    assert [h["version"] for h in history][:2] == [2, 1] and history[0]["status"] == "deployed"

    res = ok(cluster, "down", "web", "-n", namespace)
    assert "removed and what it deployed (HelmRelease," in res.stdout
    assert get(kubectl, "helmrelease", "gitops-run-web", namespace) is None
    assert get(kubectl, "helmchart", f"{namespace}-gitops-run-web", namespace) is None
    wait_for("the release's ConfigMap to be uninstalled",
             lambda: get(kubectl, "configmap", "web-hello", namespace) is None)


def test_values_and_release_name_are_checked_before_anything(cluster, namespace, tmp_path):
    chart = write(tmp_path / "app" / "chart", CHART)
    (tmp_path / "outside.yaml").write_text("message: outside\n")
    line = failed(cluster, "up", str(chart), "-n", namespace, "--values", "../../outside.yaml",
                  code=2)
    assert "--values ../../outside.yaml: not a file inside DIR" in line
    line = failed(cluster, "up", str(chart), "-n", namespace, "--values", "nope.yaml", code=2)
    assert "--values nope.yaml: no such file" in line
    line = failed(cluster, "up", str(chart), "-n", namespace, "--release-name", "Bad_Name",
                  code=2)
    assert "invalid --release-name 'Bad_Name'" in line
    plain = write(tmp_path / "plain", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"
                                                  "metadata:\n  name: a\n"})
    line = failed(cluster, "up", str(plain), "-n", namespace, "--values", "cm.yaml", code=2)
    assert "are for a Helm chart" in line and "holds no Chart.yaml" in line


def test_chart_under_path_with_release_name(cluster, kubectl, namespace, tmp_path):
    app = write(tmp_path / "app", {**{f"deploy/{k}": v for k, v in CHART.items()},
                                   "README.md": "# app\n", "env/prod.yaml": "message: env\n"})
    ok(cluster, "up", str(app), "-n", namespace, "--path", "deploy", "--release-name", "site",
       "--values", "env/prod.yaml")
    assert configmap(kubectl, "site-hello", namespace) == {"message": "env", "color": "none"}
    spec = get(kubectl, "helmrelease", "gitops-run-app", namespace)["spec"]
    assert spec["chart"]["spec"]["chart"] == "./deploy"
    assert spec["chart"]["spec"]["valuesFiles"] == ["deploy/values.yaml", "env/prod.yaml"]
    ok(cluster, "down", "app", "-n", namespace)


def test_failed_install_names_helms_message_and_a_fix_goes_through(cluster, kubectl, namespace,
                                                                    tmp_path):
    bad = dict(CHART)
    bad["templates/configmap.yaml"] = CHART["templates/configmap.yaml"].replace(
        ".Values.color", ".Values.missing.deeper")
    chart = write(tmp_path / "broken", bad)
    line = failed(cluster, "up", str(chart), "-n", namespace)
    assert f"HelmRelease {namespace}/gitops-run-broken: Helm install failed for release " \
           f"{namespace}/broken" in line
    assert "hello/templates/configmap.yaml" in line and "nil pointer" in line
    assert session(cluster, "broken", namespace)["ready"] == "False"
    write(chart, {"templates/configmap.yaml": CHART["templates/configmap.yaml"]})
    ok(cluster, "sync", "broken", "-n", namespace)
    assert configmap(kubectl, "broken-hello", namespace) == {"message": "one", "color": "none"}
    ok(cluster, "down", "broken", "-n", namespace)


def test_flux_helm_objects_are_applied_as_from_git(cluster, kubectl, namespace, tmp_path):
    """No Chart.yaml: a Kustomization applies the HelmRepository and HelmRelease
    themselves. The repository points nowhere, so they never become Ready, and
    the plugin says which object is not, and why."""
    objects = write(tmp_path / "releases", FLUX_OBJECTS)
    line = failed(cluster, "up", str(objects), "-n", namespace, "--timeout", "30s")
    assert f"waiting for Kustomization {namespace}/gitops-run-releases" in line
    assert f"not ready: HelmRelease.helm.toolkit.fluxcd.io {namespace}/podinfo" in line
    assert "charts.example.invalid" in line          # the HelmRepository's fetch error
    assert get(kubectl, "helmrepository", "podinfo", namespace)
    assert get(kubectl, "helmrelease", "podinfo", namespace)["metadata"]["labels"][
        "kustomize.toolkit.fluxcd.io/name"] == "gitops-run-releases"
    assert session(cluster, "releases", namespace)["kind"] == "Kustomization"
    ok(cluster, "down", "releases", "-n", namespace)
    assert get(kubectl, "helmrelease", "podinfo", namespace) is None


def test_missing_crd_names_the_kind_and_the_controller(cluster, namespace, tmp_path):
    """The dev cluster runs no image-reflector-controller: Flux fails at once."""
    policy = write(tmp_path / "images", {"policy.yaml": (
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\n"
        "metadata:\n  name: web\nspec:\n  imageRepositoryRef:\n    name: web\n"
        "  policy:\n    semver:\n      range: '>=1.0.0'\n")})
    line = failed(cluster, "up", str(policy), "-n", namespace)
    assert f"ImagePolicy/{namespace}/web dry-run failed: the cluster does not serve kind " \
           f"ImagePolicy (image.toolkit.fluxcd.io/v1beta2): install Flux's " \
           f"image-reflector-controller" in line
    ok(cluster, "down", "images", "-n", namespace)


def test_a_directory_that_becomes_a_chart_changes_kind(cluster, kubectl, namespace, tmp_path):
    """`up` repairs a session into the other kind: the old deployer goes first
    (Flux prunes), then Helm installs the same object; --keep-workloads keeps
    the release's objects and leaves no HelmChart behind."""
    app = write(tmp_path / "app", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"
                                               "metadata:\n  name: app-hello\ndata:\n  a: b\n"})
    ok(cluster, "up", str(app), "-n", namespace)
    (app / "cm.yaml").unlink()
    write(app, CHART)
    ok(cluster, "up", str(app), "-n", namespace, "--release-name", "app")
    assert get(kubectl, "kustomization", "gitops-run-app", namespace) is None
    assert configmap(kubectl, "app-hello", namespace) == {"message": "one", "color": "none"}
    res = ok(cluster, "down", "app", "-n", namespace, "--keep-workloads")
    assert "session app removed (HelmRelease," in res.stdout
    assert configmap(kubectl, "app-hello", namespace) == {"message": "one", "color": "none"}
    assert get(kubectl, "helmchart", f"{namespace}-gitops-run-app", namespace) is None


def test_a_chart_with_exactly_the_published_role(cluster, kubectl, namespace, tmp_path):
    """Helm keeps its release records in Secrets and updates them on every
    upgrade: the published Role (docs/rbac-role.yaml) is enough for a chart
    (of a Service: the Role has no ConfigMaps)."""
    from tests.e2e.test_rbac import ROLE, user_kubeconfig
    kc = str(user_kubeconfig(cluster, kubectl, namespace, tmp_path,
                             yaml.safe_load(ROLE.read_text())))
    chart = write(tmp_path / "site", {
        "Chart.yaml": CHART["Chart.yaml"], "values.yaml": "message: one\n",
        "templates/service.yaml": (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-web\n"
            "  annotations:\n    message: {{ .Values.message | quote }}\n"
            "spec:\n  ports: [{port: 80}]\n  selector: {app: web}\n")})

    def message():
        return get(kubectl, "service", "site-web", namespace)["metadata"]["annotations"][
            "message"]
    ok(cluster, "up", str(chart), "--kubeconfig", kc)
    assert message() == "one"
    (chart / "values.yaml").write_text("message: two\n")
    ok(cluster, "sync", "site", "--kubeconfig", kc)
    assert message() == "two"
    assert "HelmRelease" in ok(cluster, "ls", "-o", "wide", "--kubeconfig", kc).stdout
    ok(cluster, "down", "site", "--kubeconfig", kc)
    assert get(kubectl, "service", "site-web", namespace) is None
