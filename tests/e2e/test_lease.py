"""SyncLease against the real API server: serialized holders, crashed holders, races, renewal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kubectl_gitops_run.adapters.kube import connect
from kubectl_gitops_run.adapters.lease import SyncLease
from kubectl_gitops_run.core.naming import lease_name
from kubectl_gitops_run.errors import ApiError, LeaseHeld
from tests.e2e.test_kube import service_account_kube

REPO = Path(__file__).resolve().parents[2]
SESSION = "demo"


def lease_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("gitops-run-lease")}


@pytest.fixture
def make(cluster, namespace):
    """SyncLease factory; releases whatever a test leaves held and checks that no
    renewal thread outlives its lease."""
    before = lease_threads()
    made: list[SyncLease] = []

    kube = connect(str(cluster.kubeconfig), None, namespace)

    def new(duration: int = 15, cls=SyncLease, **kw) -> SyncLease:
        lease = cls(kube, namespace, SESSION, duration=duration, **kw)
        made.append(lease)
        return lease

    yield new
    for lease in made:
        lease.release()
    assert not (lease_threads() - before)


def get_lease(kubectl, namespace) -> dict:
    return json.loads(kubectl("get", "lease", lease_name(SESSION), "-n", namespace, "-o", "json"))


def test_lease_object_and_release(make, kubectl, namespace):
    lease = make()
    with lease:
        obj = get_lease(kubectl, namespace)
        assert obj["metadata"]["name"] == "gitops-run-demo-sync"
        assert obj["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "kubectl-gitops-run",
            "kubectl-gitops-run.io/session": "demo"}
        spec = obj["spec"]
        assert spec["holderIdentity"] == lease.identity
        assert f"@{os.uname().nodename} pid {os.getpid()}" in lease.identity
        assert spec["leaseDurationSeconds"] == 15
        assert spec["renewTime"] and spec["acquireTime"]
        assert lease.held and len(lease_threads()) >= 1
    assert not lease.held
    assert "holderIdentity" not in get_lease(kubectl, namespace)["spec"]
    # free again, for anyone, at once
    other = make()
    other.acquire(wait=False)
    assert get_lease(kubectl, namespace)["spec"]["leaseTransitions"] == 1


def test_second_holder_waits_until_release(make):
    first, second = make(), make()
    first.acquire()
    got = threading.Event()
    took = []

    def contender():
        t0 = time.monotonic()
        second.acquire(wait=True, timeout=30)
        took.append(time.monotonic() - t0)
        got.set()

    t = threading.Thread(target=contender)
    t.start()
    assert not got.wait(1.5), "second holder got the lease while the first held it"
    released_at = time.monotonic()
    first.release()
    assert got.wait(5)
    t.join()
    assert second.held
    # it waited for the release, and took it soon after (one poll)
    assert time.monotonic() - released_at < 1.5
    assert took[0] >= 1.5


def test_no_wait_names_the_holder(make):
    holder, other = make(duration=15), make()
    holder.acquire()
    t0 = time.monotonic()
    with pytest.raises(LeaseHeld) as err:
        other.acquire(wait=False)
    assert time.monotonic() - t0 < 2
    msg = str(err.value)
    assert holder.identity in msg and "expires at" in msg and "'demo'" in msg
    assert err.value.holder == holder.identity
    # waiting gives up after its timeout, with the same news
    t0 = time.monotonic()
    with pytest.raises(LeaseHeld, match="waited 1s"):
        other.acquire(wait=True, timeout=1)
    assert 0.9 <= time.monotonic() - t0 < 2.5
    assert not other.held


HOLD_AND_HANG = """
import sys, time
from kubectl_gitops_run.adapters.kube import connect
from kubectl_gitops_run.adapters.lease import SyncLease
lease = SyncLease(connect(sys.argv[1]), sys.argv[2], sys.argv[3], duration=int(sys.argv[4]))
lease.acquire(wait=False)
print(lease.identity, flush=True)
time.sleep(600)
"""


def test_killed_holder_blocks_only_until_expiry(make, cluster, namespace):
    duration = 3
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_HANG, str(cluster.kubeconfig), namespace, SESSION,
         str(duration)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        identity = proc.stdout.readline().strip()
        assert identity.endswith(f"pid {proc.pid}"), identity
        time.sleep(duration * 1.5)     # it keeps renewing past its first term
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    mine = make()
    with pytest.raises(LeaseHeld, match=f"pid {proc.pid}"):
        mine.acquire(wait=False)
    mine.acquire(wait=True, timeout=30)
    took = time.monotonic() - killed_at
    # its last renewal was at most duration/3 s before the kill
    assert duration - duration / 3 - 0.5 <= took <= duration + 1.5, took


class Counting(SyncLease):
    """Counts the writes the API server refused as stale: proof that the race happened."""
    refused = 0

    def _write(self, base, holder=""):
        written = super()._write(base, holder)
        if written is None:
            Counting.refused += 1
        return written


def test_racing_acquirers_one_holder_at_a_time(make, kubectl, namespace):
    contenders, rounds = 6, 3
    leases = [make(cls=Counting) for _ in range(contenders)]
    lock = threading.Lock()
    holding: set[str] = set()
    violations, turns = [], []
    start = threading.Barrier(contenders)

    def run(lease: SyncLease):
        start.wait()
        for _ in range(rounds):
            lease.acquire(wait=True, timeout=60)
            with lock:
                if holding:
                    violations.append((lease.identity, set(holding)))
                holding.add(lease.identity)
            on_server = lease._read()["spec"].get("holderIdentity")
            if on_server != lease.identity:
                violations.append((lease.identity, on_server))
            time.sleep(0.05)
            with lock:
                holding.discard(lease.identity)
                turns.append(lease.identity)
            lease.release()

    threads = [threading.Thread(target=run, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not violations
    print(f"refused {Counting.refused} stale writes")
    assert Counting.refused >= 1        # the API server did refuse a racer
    assert len(turns) == contenders * rounds
    assert len(set(turns)) == contenders
    assert len({lease.identity for lease in leases}) == contenders   # distinct per instance


def test_renewal_keeps_a_long_holder(make, kubectl, namespace):
    duration = 2
    holder, other = make(duration=duration), make()
    holder.acquire()
    renewals = set()
    t_end = time.monotonic() + duration * 3
    while time.monotonic() < t_end:
        with pytest.raises(LeaseHeld):
            other.acquire(wait=False)
        renewals.add(get_lease(kubectl, namespace)["spec"]["renewTime"])
        time.sleep(0.3)
    assert len(renewals) >= 4         # renewed every duration/3 s
    assert holder.held and not holder.lost
    holder.release()
    other.acquire(wait=False)


def test_already_ours_is_taken_back_at_once(make):
    first = make(identity="me@here pid 1")
    first.acquire()
    first._stop.set()                 # as if it had died without releasing
    again = make(identity="me@here pid 1")
    t0 = time.monotonic()
    again.acquire(wait=False)
    assert time.monotonic() - t0 < 2 and again.held


def test_lost_lease_is_noticed(make, kubectl, namespace):
    holder = make(duration=3)
    holder.acquire()
    # someone (a clock far ahead, an admin) takes it over behind our back
    obj = get_lease(kubectl, namespace)
    obj["spec"]["holderIdentity"] = "intruder@elsewhere pid 9"
    kubectl("replace", "-f", "-", input=json.dumps(obj))
    deadline = time.monotonic() + 5
    while not holder.lost:
        assert time.monotonic() < deadline, "the renewer never noticed"
        time.sleep(0.1)
    assert not holder.held
    holder.release()                  # not ours: left alone
    assert get_lease(kubectl, namespace)["spec"]["holderIdentity"] == "intruder@elsewhere pid 9"


@pytest.mark.parametrize("rules, verb", [([], "get"), (["--verb=get --resource=leases"], "create")])
def test_a_lease_the_user_may_not_touch_is_one_line_that_says_what_to_ask_for(
        cluster, kubectl, namespace, tmp_path, rules, verb):
    """Issue 9: a Lease API error other than 404 reached the user as a raw
    multi-line ApiException, HTTP headers and all."""
    kube = service_account_kube(cluster, kubectl, namespace, tmp_path, "syncer", rules)
    with pytest.raises(ApiError) as err:
        SyncLease(kube, namespace, SESSION).acquire(wait=False)
    assert err.value.status == 403
    assert str(err.value) == (
        f'forbidden: user "system:serviceaccount:{namespace}:syncer" cannot {verb} '
        f'leases.coordination.k8s.io in namespace "{namespace}"; ask for a Role rule: apiGroups '
        f'["coordination.k8s.io"], resources ["leases"], verbs ["{verb}"]')
