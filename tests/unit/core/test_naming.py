"""Naming rules: session and namespace names, labels, selectors, annotations."""
from __future__ import annotations

import random
import re
import string

import pytest

from kubectl_gitops_run.core import naming as n
from kubectl_gitops_run.core import resources
from kubectl_gitops_run.errors import UsageError

MANAGED = ("app.kubernetes.io/managed-by", "kubectl-gitops-run")
SESSION = "kubectl-gitops-run.io/session"
LIMIT = 63 - len("gitops-run-")             # 52: "gitops-run-<name>" is a DNS-1035 label
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


# -- names ----------------------------------------------------------------------

def test_max_name_fits_a_dns_label():
    assert n.MAX_NAME == LIMIT == 52
    assert n.object_name("web") == "gitops-run-web"


@pytest.mark.parametrize("name", ["a", "web", "my-app-2", "a1", "a--b", "x" * LIMIT])
def test_validate_name_accepts(name):
    assert n.validate_name(name) == name


@pytest.mark.parametrize("name", [
    "", "x" * (LIMIT + 1), "Web", "my_app", "1app", "9", "app-", "-app", "a.b", "a b", "ä",
])
def test_validate_name_rejects_with_the_rule(name):
    with pytest.raises(UsageError) as e:
        n.validate_name(name)
    text = str(e.value)
    assert repr(name) in text
    assert f"at most {LIMIT}" in text and "lower-case" in text and "starting with a letter" in text
    assert e.value.code == 2


@pytest.mark.parametrize("basename, expected", [
    ("My_App", "my-app"),
    ("web", "web"),
    ("123", "app"),
    ("---", "app"),
    ("", "app"),
    ("2048-game", "game"),
    ("_hidden", "hidden"),
    ("Hello World!", "hello-world"),
    ("a" * 60, "a" * LIMIT),
    ("a" * (LIMIT - 1) + "_b", "a" * (LIMIT - 1)),      # cut at the '-', which is dropped
])
def test_name_from_dir(basename, expected):
    assert n.name_from_dir(basename) == expected


def test_name_from_dir_always_valid():
    rnd = random.Random(1234)
    alphabet = string.ascii_letters + string.digits + "-_. ~äß" + "0" * 5 + "-" * 5
    names = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 80))) for _ in range(3000)]
    names += ["-" * 70, "9" * 70, "a" + "-" * 70 + "b", "x" * (LIMIT - 1) + "-yz", "ÄÖÜ"]
    for basename in names:
        name = n.name_from_dir(basename)
        assert n.validate_name(name) == name, basename
        assert len(name) <= LIMIT and DNS_1035.match(name), basename


# -- labels, selectors, annotations ------------------------------------------

def test_labels():
    assert n.labels("web") == {MANAGED[0]: MANAGED[1], SESSION: "web"}
    assert n.labels("web", "bucket-server") == {
        MANAGED[0]: MANAGED[1], SESSION: "web", "app.kubernetes.io/component": "bucket-server"}


def test_selector():
    every = "app.kubernetes.io/managed-by=kubectl-gitops-run,kubectl-gitops-run.io/session"
    assert n.selector(None) == every
    assert n.selector() == every
    assert n.selector("web") == \
        "app.kubernetes.io/managed-by=kubectl-gitops-run,kubectl-gitops-run.io/session=web"
    assert n.selector(None, "team=a") == every + ",team=a"
    assert n.selector("web", "team=a,tier!=db") == \
        "app.kubernetes.io/managed-by=kubectl-gitops-run,kubectl-gitops-run.io/session=web," \
        "team=a,tier!=db"


@pytest.mark.parametrize("labels, expected", [
    ({MANAGED[0]: MANAGED[1], SESSION: "web"}, True),
    ({MANAGED[0]: MANAGED[1], SESSION: "web", "extra": "x"}, True),
    ({MANAGED[0]: MANAGED[1], SESSION: "other"}, False),
    ({MANAGED[0]: MANAGED[1]}, False),
    ({SESSION: "web"}, False),
    ({MANAGED[0]: "helm", SESSION: "web"}, False),
    ({}, False),
    (None, False),
])
def test_owns(labels, expected):
    assert n.owns({"metadata": {"name": "gitops-run-web", "labels": labels}}, "web") is expected


def test_owns_without_object_or_metadata():
    assert n.owns(None, "web") is False
    assert n.owns({}, "web") is False


def test_annotations_and_fact_round_trip():
    ann = n.annotations(source="/src/web", files=12, bytes=0, last_sync=None, target_namespace="t")
    assert ann == {"kubectl-gitops-run.io/source": "/src/web",
                   "kubectl-gitops-run.io/files": "12",
                   "kubectl-gitops-run.io/bytes": "0",
                   "kubectl-gitops-run.io/target-namespace": "t"}
    obj = {"metadata": {"annotations": ann}}
    assert n.fact(obj, "source") == "/src/web"
    assert n.fact(obj, "files") == "12"
    assert n.fact(obj, "target-namespace") == "t"
    assert n.fact(obj, "last-sync") is None
    assert n.fact(None, "source") is None
    assert n.fact({"metadata": {}}, "source") is None
    assert n.fact({"metadata": {"annotations": None}}, "source") is None


@pytest.mark.parametrize("name", ["abc\n", "web\n", " web", "web ", "a b", "Web", "-web"])
def test_validate_name_refuses_whitespace_and_newlines(name):
    with pytest.raises(UsageError, match="invalid session name"):
        n.validate_name(name)


@pytest.mark.parametrize("ns", ["default", "dev", "a", "team-1", "0abc", "x" * 63])
def test_validate_namespace_accepts(ns):
    assert n.validate_namespace(ns) == ns


@pytest.mark.parametrize("ns", ["a b", "Dev", "dev\n", "../x", "a/b", "x" * 64, "", "-a", "a-",
                                "a%2Fb", "a?b"])
def test_validate_namespace_refuses(ns):
    with pytest.raises(UsageError, match=r"invalid namespace .* for --target-namespace"):
        n.validate_namespace(ns, "--target-namespace")


@pytest.mark.parametrize("path, expected", [
    ("", ""), (".", ""), ("deploy", "deploy"), ("deploy/", "deploy"), ("./a/./b", "a/b"),
    ("a//b", "a/b"),
])
def test_confined_path(path, expected):
    assert n.confined_path(path) == expected


@pytest.mark.parametrize("path", ["/etc", "../..", "a/../../b", "..", "\\windows", "a/.."])
def test_confined_path_refuses_escapes(path):
    with pytest.raises(UsageError, match="must be a directory inside DIR"):
        n.confined_path(path)


def test_api_paths_quote_what_they_are_given():
    assert resources.path("Pod", "a b", "x/y") == "/api/v1/namespaces/a%20b/pods/x%2Fy"


def test_lease_name_and_identity():
    assert n.lease_name("web") == "gitops-run-web-sync"
    assert n.identity("ana", "laptop") == "ana@laptop"
    assert n.bucket_pods_selector("web").endswith(",app.kubernetes.io/component=bucket-server")


@pytest.mark.parametrize("name, good", [
    ("deployer", True), ("ci.bot-1", True), ("a" * 253, False), ("Bad", False),
    ("a..b", False), ("a b", False), ("-a", False)])
def test_validate_object_name(name, good):
    if good:
        assert n.validate_object_name(name, "--service-account") == name
    else:
        with pytest.raises(UsageError, match="for --service-account"):
            n.validate_object_name(name, "--service-account")


def test_owned_objects_end_with_the_identity_flux_prunes_as():
    kinds = [k for k, _ in n.owned_objects("web", "dev")]
    # the deployers go first: Flux prunes, helm-controller uninstalls, as the ServiceAccount
    assert kinds[:2] == ["HelmRelease", "Kustomization"] and kinds[-1] == "ServiceAccount"
    assert ("ClusterRoleBinding", "gitops-run-web-dev") in n.owned_objects("web", "dev")
    assert ("Secret", "gitops-run-web-reader") in n.owned_objects("web", "dev")


@pytest.mark.parametrize("text", [
    "app=web", "app==web", "app!=web", "!canary", "canary", "tier in (web,api)",
    "tier notin (a)", "a=b,c!=d", "example.com/app=x", "app.kubernetes.io/name=web-1", "a=",
    " a = b ", "x>5", "a in (b, c),d", ""])
def test_validate_selector_accepts_what_the_api_server_parses(text):
    assert n.validate_selector(text) == text


@pytest.mark.parametrize("text", [
    "===", "tier in (web", "a b=c", "a=b,", "a=b c", "a=-x", "=x", "a in b", "a==b==c",
    "a" * 64 + "=b", "a=" + "b" * 64])
def test_validate_selector_refuses_before_any_request(text):
    with pytest.raises(UsageError, match=r"invalid label selector .* for -l: .*e\.g\. -l app=web"):
        n.validate_selector(text)
