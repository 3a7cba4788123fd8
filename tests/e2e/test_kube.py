"""The Kubernetes access module and its one way to wait, against the real API server:
waits see changes and deletions, time out, stop at once when cancelled, survive an
expired resourceVersion, fall back to polling only where watching is refused, and a
quiet wait costs at most two requests."""
from __future__ import annotations

import threading
import time

import pytest
import requests
import yaml

from kubectl_gitops_run.adapters.kube import Kube, connect
from kubectl_gitops_run.adapters.waiting import until, until_list
from kubectl_gitops_run.errors import ApiError, Cancelled, WaitTimeout


def service_account_kube(cluster, kubectl, namespace, tmp_path, name: str = "nobody",
                         rules: list[str] | None = None) -> Kube:
    """A Kube that acts as a fresh ServiceAccount; `rules` are `kubectl create role`
    arguments (e.g. "--verb=get --resource=configmaps"), one Role each."""
    kubectl("create", "serviceaccount", name, "-n", namespace)
    for i, rule in enumerate(rules or []):
        kubectl("create", "role", f"{name}-{i}", "-n", namespace, *rule.split())
        kubectl("create", "rolebinding", f"{name}-{i}", "-n", namespace, f"--role={name}-{i}",
                f"--serviceaccount={namespace}:{name}")
    token = kubectl("create", "token", name, "-n", namespace).strip()
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg["users"] = [{"name": name, "user": {"token": token}}]
    cfg["contexts"][0]["context"]["user"] = name
    path = tmp_path / f"kubeconfig-{name}"
    path.write_text(yaml.safe_dump(cfg))
    return connect(str(path), None, namespace)


def counted(kube: Kube) -> list[tuple[str, str]]:
    """The (method, url) of every HTTP request `kube` sends from now on; a watch is one."""
    sent: list[tuple[str, str]] = []
    send = kube._urlopen

    def counting(method, url, *args):
        sent.append((method, url))
        return send(method, url, *args)

    kube._urlopen = counting
    return sent


@pytest.fixture
def kube(cluster, namespace) -> Kube:
    return connect(str(cluster.kubeconfig), None, namespace)


@pytest.fixture
def other(cluster, namespace) -> Kube:
    """A second client, for the changes a wait should see (its requests are not counted)."""
    return connect(str(cluster.kubeconfig), None, namespace)


def configmap(namespace: str, name: str = "cm", value: str = "1", **labels) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {"value": value}}


def later(seconds: float, action) -> threading.Thread:
    def run():
        time.sleep(seconds)
        action()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def value_is(value: str):
    return lambda obj: obj if obj is not None and obj["data"]["value"] == value else None


def test_create_replace_and_their_conflicts(kube, namespace):
    obj = kube.create(configmap(namespace))
    assert obj["metadata"]["resourceVersion"]
    assert kube.create(configmap(namespace)) is None               # exists already
    obj["data"]["value"] = "2"
    newer = kube.replace(obj)
    assert newer["data"]["value"] == "2"
    assert kube.replace(obj) is None                               # stale resourceVersion
    kube.delete("ConfigMap", "cm")
    assert kube.replace(newer) is None                             # gone


def test_returns_at_once_when_start_already_satisfies(kube, namespace):
    obj = kube.create(configmap(namespace))
    sent = counted(kube)
    t0 = time.monotonic()
    assert until(kube, "ConfigMap", namespace, value_is("1"), name="cm", timeout=10,
                 start=obj) is obj
    assert time.monotonic() - t0 < 0.1 and sent == []


def test_sees_a_change_made_by_another_thread(kube, other, namespace):
    kube.create(configmap(namespace))
    sent = counted(kube)
    later(0.5, lambda: other.patch("ConfigMap", "cm", {"data": {"value": "2"}}))
    t0 = time.monotonic()
    obj = until(kube, "ConfigMap", namespace, value_is("2"), name="cm", timeout=20)
    assert obj["data"]["value"] == "2"
    assert 0.4 < time.monotonic() - t0 < 2
    assert [m for m, _ in sent] == ["GET", "GET"], sent                # one LIST, one watch
    assert "fieldSelector=metadata.name%3Dcm" in sent[0][1] and "watch=true" in sent[1][1]


def test_sees_an_object_appear_and_its_deletion(kube, other, namespace):
    seen = []

    def gone(obj):
        seen.append(obj and obj["data"]["value"])
        return ("gone",) if obj is None and "1" in seen else None

    later(0.3, lambda: other.create(configmap(namespace)))
    later(0.8, lambda: other.delete("ConfigMap", "cm"))
    assert until(kube, "ConfigMap", namespace, gone, name="cm", timeout=20) == ("gone",)
    assert seen[0] is None and "1" in seen and seen[-1] is None, seen


def test_until_list_follows_a_selector(kube, other, namespace):
    kube.create(configmap(namespace, "a", app="x"))
    kube.create(configmap(namespace, "other", app="y"))
    later(0.3, lambda: other.create(configmap(namespace, "b", app="x")))

    def both(objs):
        names = sorted(o["metadata"]["name"] for o in objs)
        return names if names == ["a", "b"] else None

    assert until_list(kube, "ConfigMap", namespace, "app=x", both, timeout=20) == ["a", "b"]


def test_times_out(kube, namespace):
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout, match=f"timed out after 1.5s waiting for ConfigMap "
                                          f"{namespace}/cm"):
        until(kube, "ConfigMap", namespace, lambda obj: obj, name="cm", timeout=1.5)
    assert 1.5 <= time.monotonic() - t0 < 3


def test_check_may_abort(kube, namespace):
    kube.create(configmap(namespace))

    def hopeless(obj):
        raise RuntimeError("no use waiting")
    with pytest.raises(RuntimeError, match="no use waiting"):
        until(kube, "ConfigMap", namespace, hopeless, name="cm", timeout=10)


def test_cancel_is_prompt_while_the_watch_blocks(kube, namespace):
    cancel = threading.Event()
    later(1.0, cancel.set)
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        until(kube, "ConfigMap", namespace, lambda obj: obj, name="cm", timeout=60, cancel=cancel)
    took = time.monotonic() - t0
    assert 1.0 <= took < 1.3, took
    # the client still works: the cut stream's connection did not go back to the pool
    assert kube.get("ConfigMap", "cm") is None


def compact_etcd(cluster) -> None:
    """Compact etcd's history up to now, as the API server does every 5 minutes:
    older resourceVersions can no longer be watched from."""
    etcd = f"http://127.0.0.1:{cluster.handle.state.ports['etcd-client']}/v3/kv"
    revision = requests.post(f"{etcd}/range", json={"key": "AA=="}, timeout=10).json()[
        "header"]["revision"]
    requests.post(f"{etcd}/compaction", json={"revision": revision, "physical": True},
                  timeout=10).raise_for_status()


def event(namespace: str, message: str) -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": namespace},
            "involvedObject": {"kind": "ConfigMap", "name": "cm", "namespace": namespace},
            "reason": "Test", "message": message}


def test_an_expired_resource_version_lists_again(cluster, kube, other, namespace):
    # Events skip the API server's watch cache: a watch from a compacted
    # resourceVersion reaches etcd, which answers 410 Gone
    obj = kube.create(event(namespace, "1"))
    compact_etcd(cluster)
    stale = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}
    sent = counted(kube)
    later(0.5, lambda: other.patch("Event", "e", {"message": "2"}))
    found = until(kube, "Event", namespace, lambda e: e if e["message"] == "2" else None,
                  name="e", timeout=20, start=stale)
    assert found["message"] == "2"
    # the watch from "1" was refused as too old, then a LIST and a new watch
    assert "resourceVersion=1&" in sent[0][1], sent
    assert "watch=true" not in sent[1][1] and "watch=true" in sent[2][1], sent
    assert len(sent) == 3, sent


def test_a_quiet_wait_costs_at_most_two_requests(kube, namespace):
    sent = counted(kube)
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout):
        until(kube, "ConfigMap", namespace, lambda obj: obj, name="cm", timeout=5)
    took = time.monotonic() - t0
    print(f"a quiet {took:.1f}s wait sent {len(sent)} requests: {sent}")
    assert len(sent) <= 2, sent
    # with the object at hand, the LIST is saved too
    obj = kube.create(configmap(namespace))
    sent.clear()
    with pytest.raises(WaitTimeout):
        until(kube, "ConfigMap", namespace, value_is("2"), name="cm", timeout=3, start=obj)
    assert len(sent) == 1 and "watch=true" in sent[0][1], sent


def test_polls_only_where_watching_is_refused(cluster, kubectl, kube, namespace, tmp_path):
    # this user may get the ConfigMap but neither list nor watch it
    reader = service_account_kube(cluster, kubectl, namespace, tmp_path, "reader",
                                  ["--verb=get --resource=configmaps"])
    kube.create(configmap(namespace))
    sent = counted(reader)
    later(1.2, lambda: kube.patch("ConfigMap", "cm", {"data": {"value": "2"}}))
    obj = until(reader, "ConfigMap", namespace, value_is("2"), name="cm", timeout=20)
    assert obj["data"]["value"] == "2"
    gets = [u for _, u in sent if u.endswith("/configmaps/cm")]
    assert len(gets) >= 2 and len(sent) == len(gets) + 1, sent     # the refused LIST, then GETs
    # where even a read is forbidden, that is the error, in words
    nobody = service_account_kube(cluster, kubectl, namespace, tmp_path, "nobody")
    with pytest.raises(ApiError, match=r'cannot get configmaps in namespace .*verbs \["get"\]'):
        until(nobody, "ConfigMap", namespace, value_is("2"), name="cm", timeout=5)


def test_namespace_not_found_says_what_to_do(kube):
    with pytest.raises(ApiError) as err:
        kube.create(configmap("no-such-namespace"))
    assert str(err.value) == ('namespace "no-such-namespace" not found: create it (kubectl '
                              'create namespace no-such-namespace) or pick another with -n')
    assert err.value.status == 404


def test_invalid_object_carries_the_field_message(kube, namespace):
    bad = configmap(namespace, "Not_A_Name")
    with pytest.raises(ApiError) as err:
        kube.create(bad)
    assert err.value.status == 422
    assert str(err.value).startswith('invalid: cannot create configmaps in namespace')
    assert "metadata.name: Invalid value" in str(err.value)
