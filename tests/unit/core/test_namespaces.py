"""Namespaces as the user means them: the files a session adds to its upload."""
from __future__ import annotations

import hashlib

import yaml

from kubectl_gitops_run.core import namespaces as ns
from kubectl_gitops_run.core.snapshot import Entry, Plan, Snapshot, revision

COMPONENT_KEY = ".gitops-run/namespace/kustomization.yaml"


def snapshot(*keys: str) -> Snapshot:
    return Snapshot("/src", {k: Entry(k, "/src/" + k, 1, "0" * 32) for k in keys})


def test_the_component_sets_only_missing_namespaces():
    comp = yaml.safe_load(ns.component("dev"))
    assert (comp["apiVersion"], comp["kind"]) == ("kustomize.config.k8s.io/v1alpha1", "Component")
    [inline] = comp["transformers"]
    transformer = yaml.safe_load(inline)
    assert transformer == {
        "apiVersion": "builtin", "kind": "NamespaceTransformer",
        "metadata": {"name": "gitops-run-namespace", "namespace": "dev"},
        "unsetOnly": True, "setRoleBindingSubjects": "none"}


def test_component_ref_is_relative_to_the_applied_path():
    assert ns.component_ref("") == ".gitops-run/namespace"
    assert ns.component_ref("k8s") == "../.gitops-run/namespace"
    assert ns.component_ref("/apps/web/") == "../../.gitops-run/namespace"


def test_a_subdirectory_path_gets_only_the_component():
    files = ns.session_files(["k8s/a.yaml", "README.md"], "k8s", "dev")
    assert list(files) == [COMPONENT_KEY]


def test_a_root_with_its_own_kustomization_gets_only_the_component():
    files = ns.session_files(["kustomization.yaml", "a.yaml"], "", "dev")
    assert list(files) == [COMPONENT_KEY]


def test_a_root_without_one_gets_what_kustomize_controller_would_generate():
    keys = ["a.yaml", "b/kustomization.yaml", "b/x.yaml", "b/c/kustomization.yaml",
            "b-x.yaml", "c/d.yml", ".hidden/e.yaml", "README.md", "chart.txt"]
    files = ns.session_files(keys, "", "dev")
    assert sorted(files) == [COMPONENT_KEY, "kustomization.yaml"]
    generated = yaml.safe_load(files["kustomization.yaml"])
    assert generated["kind"] == "Kustomization"
    # its walk order: names sorted in each directory; b/ is one resource, not entered
    assert generated["resources"] == ["./.hidden/e.yaml", "./a.yaml", "./b", "./b-x.yaml",
                                      "./c/d.yml"]


def test_odd_file_names_stay_one_yaml_string():
    files = ns.session_files(['we"ird: #name.yaml', "ünï.yaml"], "", "dev")
    assert yaml.safe_load(files["kustomization.yaml"])["resources"] == [
        './we"ird: #name.yaml', "./ünï.yaml"]


def test_an_empty_root_still_builds():
    files = ns.session_files(["README.md"], "", "dev")
    assert yaml.safe_load(files["kustomization.yaml"])["resources"] == []


def test_the_revision_covers_the_added_files():
    user = snapshot("a.yaml", "README.md")
    full = ns.with_session_files(user, "", "dev")
    assert set(full.entries) == {"a.yaml", "README.md", "kustomization.yaml", COMPONENT_KEY}
    added = full.entries[COMPONENT_KEY]
    assert added.md5 == hashlib.md5(added.data).hexdigest() and added.size == len(added.data)
    assert full.revision == revision(full.etags()) != user.revision
    assert ns.added_keys(full) == {"kustomization.yaml", COMPONENT_KEY}
    # the same tree and namespace give the same files: no change, no sync
    assert ns.with_session_files(user, "", "dev").revision == full.revision
    assert ns.with_session_files(user, "", "prod").revision != full.revision


def test_the_users_plan_leaves_the_session_files_out():
    full = ns.with_session_files(snapshot("a.yaml"), "", "dev")
    todo = Plan(added=["a.yaml", "kustomization.yaml", COMPONENT_KEY], changed=[],
                removed=[".gitops-run/old.yaml", "b.yaml"])
    shown = ns.users_plan(todo, full)
    assert (shown.added, shown.changed, shown.removed) == (["a.yaml"], [], ["b.yaml"])


def test_applied_path_from_the_annotation():
    assert [ns.applied_path(p) for p in (None, "", ".", "/", "k8s/", "/apps/web")] == [
        "", "", "", "", "k8s", "apps/web"]


def test_the_users_size_leaves_the_session_files_out():
    user = Snapshot("/src", {"a.yaml": Entry("a.yaml", "/src/a.yaml", 3, "0" * 32)})
    assert ns.users_size(ns.with_session_files(user, "", "dev")) == (1, 3)
