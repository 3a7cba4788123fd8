"""The pre-flight: kustomize-controller's verdict on a tree, predicted locally."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import preflight
from kubectl_gitops_run.core.preflight import Problem

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
COMPOSE = {"services": {"web": {"image": "nginx"}}}


def check(docs: dict, path: str = "", extra: tuple = ()):
    preflight.check(docs, set(docs) | set(extra), path)


def test_a_tidy_directory_passes():
    check({"k8s/cm.yaml": [CM], "k8s/deploy.yml": [DEPLOY, None]}, extra=("README.md",))


def test_a_compose_file_beside_the_manifests_fails_with_the_way_out():
    with pytest.raises(Problem) as e:
        check({"docker-compose.yml": [COMPOSE], "k8s/cm.yaml": [CM], "k8s/d.yaml": [DEPLOY]})
    text = str(e.value)
    assert text.startswith("docker-compose.yml is not a Kubernetes object: no apiVersion, kind")
    assert "--path k8s/" in text and "`/docker-compose.yml` to .sourceignore" in text


def test_applied_path_limits_what_is_checked():
    check({"docker-compose.yml": [COMPOSE], "k8s/cm.yaml": [CM]}, path="k8s")


def test_a_chart_is_left_to_helm_controller():
    chart = {"Chart.yaml": [{"apiVersion": "v2", "name": "web", "version": "0.1.0"}],
             "values.yaml": [{"replicas": 1}]}
    with pytest.raises(Problem):
        check(chart)
    preflight.check(chart, set(chart) | {"templates/cm.yaml"}, "", chart=True)


def test_generate_name_is_not_enough():
    gen = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "run-"}}
    with pytest.raises(Problem, match=r"job.yaml .*no metadata.name \(generateName is not"):
        check({"job.yaml": [gen]})


def test_duplicate_objects_conflict():
    with pytest.raises(Problem, match=r"b.yaml and a.yaml both define ConfigMap a; keep one"):
        check({"a.yaml": [CM], "b.yaml": [CM]})
    other_ns = {**CM, "metadata": {"name": "a", "namespace": "other"}}
    check({"a.yaml": [CM], "b.yaml": [other_ns]})


def test_a_nested_kustomization_is_one_resource_not_entered():
    check({"app/kustomization.yaml": [{"resources": ["cm.yaml"]}],
           "app/cm.yaml": [CM], "app/patch.yaml": [{"op": "replace"}], "top.yaml": [DEPLOY]})


def test_a_base_outside_the_upload_is_never_found():
    with pytest.raises(Problem, match=r"overlays/dev/kustomization.yaml refers to ../../../base"):
        check({"overlays/dev/kustomization.yaml": [{"resources": ["../../../base"]}]},
              path="overlays/dev")


def test_a_missing_resource_is_named():
    with pytest.raises(Problem, match=r"refers to gone.yaml, which is not in the upload"):
        check({"kustomization.yaml": [{"resources": ["cm.yaml", "gone.yaml"]}],
               "cm.yaml": [CM]})


def test_root_kustomization_leaves_plain_files_to_kustomize():
    check({"kustomization.yaml": [{"resources": ["cm.yaml", "https://example.com/x.yaml"]}],
           "cm.yaml": [CM], "values.yaml": [{"replicas": 2}]})


def test_generated_resources():
    keys = ["a.yaml", "b.txt", "sub/c.yml", "kz/kustomization.yaml", "kz/d.yaml", "k8s/e.yaml"]
    assert preflight.generated_resources(keys, "") == ["a.yaml", "k8s/e.yaml", "sub/c.yml"]
    assert preflight.generated_resources(keys, "k8s") == ["k8s/e.yaml"]


def test_a_kustomization_above_the_applied_path_does_not_hide_it():
    keys = ["kustomization.yaml", "apps/web/a.yaml", "apps/web/sub/b.yml"]
    assert preflight.generated_resources(keys, "apps/web") == ["apps/web/a.yaml",
                                                               "apps/web/sub/b.yml"]
    with pytest.raises(Problem, match=r"apps/web/x.yaml is not a Kubernetes object"):
        check({"kustomization.yaml": [{"resources": ["apps"]}], "apps/web/x.yaml": [COMPOSE]},
              path="apps/web")


def test_walked_resources_follow_the_controllers_walk():
    keys = ["b-x.yaml", "b/x.yaml", "a.yml", "kz/kustomization.yaml", "kz/in/kustomization.yaml",
            "kz/d.yaml", "notes.txt"]
    # names sorted in each directory (b/ before b-x.yaml); kz is one resource, not entered
    assert preflight.walked_resources(keys, "") == ["a.yml", "b/x.yaml", "b-x.yaml", "kz"]
    keys += ["apps/x.yaml", "apps/db/kustomization.yaml", "apps/db/y.yaml"]
    assert preflight.walked_resources(keys, "apps") == ["apps/db", "apps/x.yaml"]


def test_the_sessions_own_directory_is_reserved():
    with pytest.raises(Problem, match=r"^.gitops-run/x.yaml: the directory .gitops-run/ is kept "
                                      r"for the session's own files; .*`/.gitops-run/`"):
        check({"a.yaml": [CM], ".gitops-run/x.yaml": [CM]})


def test_no_namespace_and_default_are_one_object_to_kustomize():
    in_default = {**CM, "metadata": {"name": "a", "namespace": "default"}}
    with pytest.raises(Problem, match=r"b.yaml and a.yaml both define ConfigMap default/a"):
        check({"a.yaml": [CM], "b.yaml": [in_default]})


def test_namespaces_of_their_own_pass():
    team = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
            for n in ("team-a", "team-b")]
    cms = [{**CM, "metadata": {"name": "a", "namespace": n}} for n in ("team-a", "team-b")]
    check({"namespaces.yaml": team, "team-a/cm.yaml": [cms[0]], "team-b/cm.yaml": [cms[1]],
           "cm.yaml": [CM]})


def test_a_base_outside_names_the_directory_to_run_from():
    docs = {"kustomization.yaml": [{"resources": ["../../base", "/etc/app"]}]}
    with pytest.raises(Problem, match=r"refers to ../../base, outside the uploaded directory, "
                                      r"which Flux never gets; run `up /src/app --path "
                                      r"overlays/dev` instead$"):
        preflight.check(docs, set(docs), "", root="/src/app/overlays/dev")
    docs = {"kustomization.yaml": [{"resources": ["/etc/app"]}]}
    with pytest.raises(Problem, match=r"refers to /etc/app, .* make it relative"):
        preflight.check(docs, set(docs), "", root="/src/app")
