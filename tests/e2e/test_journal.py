"""Slot journals on the real bucket server and Flux (issue 13): each filled
slot describes itself in one object that source-controller does not index,
and a slot without one is listed, so whatever it really holds is repaired
before Flux is pointed at it (docs/architecture.md, invariant 1)."""
from __future__ import annotations

import hashlib

from kubectl_gitops_run.adapters.bucketserver import BucketServer
from kubectl_gitops_run.adapters.scanner import scan
from kubectl_gitops_run.core import journal
from kubectl_gitops_run.core.manifests import other_slot
from kubectl_gitops_run.core.snapshot import revision
from tests.e2e.test_live_loop import configmap, session  # noqa: F401 - a fixture
from tests.e2e.test_plugin import get, ok


def started(cluster, namespace, session):
    """The session of test_live_loop with both slots filled: `up`, then one sync."""
    kube, tree = session
    (tree / "keep0.yaml").write_text(configmap("keep0", "1"))
    ok(cluster, "sync", "live", "-n", namespace)
    return tree, kube


def slots(kubectl, namespace) -> tuple[str, str]:
    active = get(kubectl, "bucket", "gitops-run-live", namespace)["spec"]["bucketName"]
    return active, other_slot(active)


def test_each_filled_slot_has_a_journal_that_flux_does_not_index(cluster, kubectl, namespace,
                                                                  session):
    tree, kube = started(cluster, namespace, session)
    with BucketServer(kube, namespace, "live") as server:
        s3 = server.s3()
        held = {}
        for slot in slots(kubectl, namespace):
            listing = s3.list(slot)
            assert journal.KEY in listing, slot
            held[slot] = journal.indexed(listing)
            assert journal.decode(s3.get(slot, journal.KEY)) == held[slot]
    active, _ = slots(kubectl, namespace)
    assert set(scan(tree).entries) <= set(held[active])
    # the revision Flux computed from the active slot leaves the journal out
    bucket = get(kubectl, "bucket", "gitops-run-live", namespace)
    assert bucket["status"]["artifact"]["revision"] == revision(held[active])


def test_a_slot_without_its_journal_is_listed_and_repaired(cluster, kubectl, namespace,
                                                          session):
    tree, kube = started(cluster, namespace, session)
    _, idle = slots(kubectl, namespace)
    with BucketServer(kube, namespace, "live") as server:
        s3 = server.s3()
        # what a sync killed half way leaves: no journal, a stray file, a file gone
        s3.delete(idle, [journal.KEY, "keep2.yaml"])
        stray = configmap("stray", "x").encode()
        s3.put(idle, "stray.yaml", stray, hashlib.md5(stray).hexdigest())
    (tree / "keep1.yaml").write_text(configmap("keep1", "2"))
    res = ok(cluster, "sync", "live", "-n", namespace)
    assert slots(kubectl, namespace)[0] == idle, res.stdout
    with BucketServer(kube, namespace, "live") as server:
        s3 = server.s3()
        held = journal.indexed(s3.list(idle))
        assert journal.decode(s3.get(idle, journal.KEY)) == held
    assert "stray.yaml" not in held and "keep2.yaml" in held
    assert set(scan(tree).entries) <= set(held)
    assert get(kubectl, "bucket", "gitops-run-live", namespace)["status"]["artifact"][
        "revision"] == revision(held)
    assert get(kubectl, "configmap", "stray", namespace) is None
    assert get(kubectl, "configmap", "keep1", namespace)["data"]["v"] == "2"


def test_a_remembered_journal_is_used_only_while_the_server_holds_it(cluster, kubectl,
                                                                    namespace, session):
    """`sync --watch` keeps each slot's journal between syncs and asks the server
    whether it changed (If-None-Match); a slot emptied by hand is still listed."""
    from kubectl_gitops_run import ops
    from kubectl_gitops_run.ops.publish import Syncer
    tree, kube = started(cluster, namespace, session)
    scanner = ops.scanner(str(tree), 10 << 20)
    with BucketServer(kube, namespace, "live") as server:
        syncer, s3 = Syncer(kube, namespace, "live", server), server.s3()
        (tree / "keep1.yaml").write_text(configmap("keep1", "3"))
        syncer.sync(scanner)
        active, _ = slots(kubectl, namespace)
        etag, held = syncer.journals[active]
        assert s3.get_if_changed(active, journal.KEY, etag) == (None, etag)
        assert s3.get_if_changed(active, journal.KEY, "0" * 32)[0] is not None
        assert held == journal.decode(s3.get(active, journal.KEY))
        # emptied by hand: the journal goes with the rest
        s3.delete(active, [journal.KEY, "keep1.yaml"])
        syncer.sync(scanner)
        active, _ = slots(kubectl, namespace)
        assert "keep1.yaml" in s3.list(active)
    assert get(kubectl, "configmap", "keep1", namespace)["data"]["v"] == "3"
