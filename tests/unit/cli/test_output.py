"""printers: HumanDuration, kubectl table layout, and each -o format."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
import yaml

from kubectl_gitops_run.cli import output as p

NOW = datetime(2026, 11, 24, 20, 0, 0, tzinfo=timezone.utc)
HOME = "/home/u"
REV = "sha256:" + "3f2a9c1e" + "0" * 56
M, H, D, Y = 60, 3600, 86400, 365 * 86400


@pytest.mark.parametrize("seconds, expected", [
    (-2, "<invalid>"), (-1.9, "0s"), (-1, "0s"), (-0.5, "0s"), (0, "0s"), (0.9, "0s"),
    (45, "45s"), (119, "119s"), (119.99, "119s"),
    (120, "2m"), (121, "2m1s"), (330, "5m30s"), (300, "5m"), (599, "9m59s"),
    (600, "10m"), (659, "10m"), (3 * H - 1, "179m"),
    (3 * H, "3h"), (3 * H + 20 * M, "3h20m"), (3 * H + 20 * M + 59, "3h20m"), (8 * H - 1, "7h59m"),
    (8 * H, "8h"), (47 * H + 59 * M, "47h"),
    (48 * H, "2d"), (2 * D + 3 * H, "2d3h"), (8 * D - 1, "7d23h"),
    (8 * D, "8d"), (2 * Y - 1, "729d"),
    (2 * Y, "2y"), (2 * Y + 45 * D, "2y45d"), (8 * Y - 1, "7y364d"),
    (8 * Y, "8y"), (20 * Y + 100 * D, "20y"),
])
def test_human_duration_boundaries(seconds, expected):
    assert p.human_duration(seconds) == expected


def test_age():
    assert p.age("2026-11-24T19:59:15Z", NOW) == "45s"
    assert p.age("2026-11-24T16:40:00Z", NOW) == "3h20m"
    assert p.age("2026-11-24T20:40:00+01:00", NOW) == "20m"
    assert p.age("2026-11-24T20:00:05Z", NOW) == "<invalid>"
    assert p.age(None, NOW) == "<unknown>"
    assert p.age("", NOW) == "<unknown>"
    assert p.age("yesterday", NOW) == "<unknown>"


def test_table_layout():
    out = p.table(["name", "status", "age"], [["a", "", "5m"], ["longer-name", "Ready", "45s"]])
    assert out == ("NAME          STATUS   AGE\n"
                   "a             <none>   5m\n"
                   "longer-name   Ready    45s\n")
    assert all(line == line.rstrip() for line in out.splitlines())
    assert out.endswith("\n")


def test_table_no_headers_and_kubectl_min_width():
    out = p.table(["NAME", "FILES"], [["x", "3"], ["yy", None]], no_headers=True)
    # kubectl's tabwriter keeps each column at least 6 wide, padding included.
    assert out == "x     3\nyy    <none>\n"
    assert p.table(["NAME"], [], no_headers=True) == ""
    assert p.table(["name"], []) == "NAME\n"


def test_home_relative():
    assert p.home_relative("/home/u/app", HOME) == "~/app"
    assert p.home_relative("/home/u", HOME) == "~"
    assert p.home_relative("/home/u/", HOME + "/") == "~"
    assert p.home_relative("/home/user2/app", HOME) == "/home/user2/app"
    assert p.home_relative("/srv/app", HOME) == "/srv/app"
    assert p.home_relative(None, HOME) == "<none>"


def test_short_revision():
    assert p.short_revision(REV) == "sha256:3f2a9c1e"
    assert p.short_revision(None) == ""


def session(name, namespace="dev", **kw):
    s = {"name": name, "namespace": namespace, "source": f"{HOME}/{name}", "path": ".",
         "targetNamespace": None, "host": "laptop", "user": "u",
         "created": "2026-11-24T19:54:30Z", "lastSync": "2026-11-24T19:59:15Z", "revision": REV,
         "files": 12, "bytes": 4096, "ready": "True", "status": "Applied revision",
         "bucketPod": f"{name}-bucket-0", "objectsApplied": 7, "kind": "Kustomization"}
    s.update(kw)
    return s


SESSIONS = [session("web", "prod"), session("api", lastSync=None, revision=None, files=None,
                                           ready=None, status=None, objectsApplied=None,
                                           kind="HelmRelease",
                                           source="/srv/api")]


def test_sessions_table_default():
    out = p.sessions_table(SESSIONS, now=NOW, home=HOME)
    assert out == (
        "NAME   SOURCE     FILES    REVISION          READY    STATUS             LAST SYNC   AGE\n"
        "api    /srv/api   <none>   <none>            <none>   <none>             <none>      5m30s\n"
        "web    ~/web      12       sha256:3f2a9c1e   True     Applied revision   45s         5m30s\n")


def test_sessions_table_all_namespaces_wide_column_order():
    out = p.sessions_table(SESSIONS, wide=True, all_namespaces=True, now=NOW, home=HOME)
    header, *rows = out.splitlines()
    assert re.split(" {3,}", header) == ["NAMESPACE", "NAME", "SOURCE", "FILES", "REVISION", "READY",
                                   "STATUS", "LAST SYNC", "AGE", "KIND", "HOST",
                                   "TARGET NAMESPACE", "BUCKET POD", "OBJECTS", "FORWARDS"]
    # sorted by (namespace, name): dev/api before prod/web
    assert [r.split()[:2] for r in rows] == [["dev", "api"], ["prod", "web"]]
    assert rows[1].split()[-6:-1] == ["Kustomization", "laptop", "<none>", "web-bucket-0", "7"]
    assert rows[0].split()[-6] == "HelmRelease"
    assert rows[0].split()[-2] == "<none>"
    assert p.sessions_table(SESSIONS, no_headers=True, now=NOW, home=HOME).startswith("api ")


def test_status_collapsed_and_truncated():
    long = "kustomize build failed:\n  accumulating resources:   " + "x" * 80
    out = p.sessions_table([session("a", status=long)], now=NOW, home=HOME, no_headers=True)
    shown = "kustomize build failed: accumulating resources: " + "x" * 9 + "..."
    assert len(shown) == 60
    assert f"   {shown}   " in out
    assert "\n" not in out.rstrip("\n")
    short = p.sessions_table([session("a", status=" ok\n\tdone ")], now=NOW, home=HOME)
    assert "   ok done   " in short


def test_json_round_trip():
    doc = json.loads(p.sessions_json(SESSIONS))
    assert doc == {"apiVersion": "v1", "kind": "List", "items": [SESSIONS[1], SESSIONS[0]]}
    text = p.sessions_json(SESSIONS)
    assert text.endswith("}\n") and '\n    "kind": "List",' in text
    assert json.loads(p.sessions_json([])) == {"apiVersion": "v1", "kind": "List", "items": []}


def test_yaml_round_trip():
    text = p.sessions_yaml(SESSIONS)
    assert text.startswith("apiVersion: v1\nkind: List\nitems:\n")
    assert yaml.safe_load(text)["items"] == [SESSIONS[1], SESSIONS[0]]
    assert list(yaml.safe_load(text)["items"][0]) == list(SESSIONS[1])  # field order kept


def test_names():
    assert p.sessions_names(SESSIONS) == "session/api\nsession/web\n"
    assert p.sessions_names([]) == ""


def test_render_dispatch():
    kw = dict(all_namespaces=False, no_headers=False, now=NOW, home=HOME)
    assert p.render(SESSIONS, None, **kw) == p.sessions_table(SESSIONS, now=NOW, home=HOME)
    assert p.render(SESSIONS, "wide", **kw) == p.sessions_table(SESSIONS, wide=True, now=NOW, home=HOME)
    assert p.render(SESSIONS, "json", **kw) == p.sessions_json(SESSIONS)
    assert p.render(SESSIONS, "yaml", **kw) == p.sessions_yaml(SESSIONS)
    assert p.render(SESSIONS, "name", **kw) == p.sessions_names(SESSIONS)
    assert p.render(SESSIONS, None, **{**kw, "all_namespaces": True}).startswith("NAMESPACE   NAME")
    with pytest.raises(ValueError, match='"xml"'):
        p.render(SESSIONS, "xml", **kw)


def test_summary_line():
    assert (p.summary_line("+2 ~1 -1", REV, 7, 1.44)
            == "+2 ~1 -1 files, revision sha256:3f2a9c1e, applied 7 objects in 1.4s")
    assert (p.summary_line("+2 ~1 -1", REV, None, 0.3)
            == "+2 ~1 -1 files, revision sha256:3f2a9c1e, uploaded in 0.3s")
    assert p.summary_line("+1", REV, 1, 2).endswith("applied 1 object in 2.0s")


def test_status_shortens_digests():
    row = p.sessions_table([session("web", status="Applied revision: " + REV)], now=NOW,
                           home="/home/u").splitlines()[1]
    assert "Applied revision: sha256:3f2a9c1e " in row + " " and REV not in row


def test_escape_shows_terminal_controls_as_kubectl_does():
    assert p.escape("a\x1b[31mred\x1b[0m") == "a^[[31mred^[[0m"
    assert p.escape("over\rwrite") == "over\\rwrite"
    assert p.escape("bell\x07 csi\x9b del\x7f") == "bell\\x07 csi\\x9b del\\x7f"
    assert p.escape("tab\tand\nnewline stay; ünïcode too") == "tab\tand\nnewline stay; ünïcode too"


def test_table_cells_are_escaped():
    out = p.table(["name"], [["evil\x1b]0;title\x07"]])
    assert "\x1b" not in out and "^[]0;title\\x07" in out


def test_removal_lines():
    from kubectl_gitops_run.core.inventory import Ref
    from kubectl_gitops_run.ops.down import Removal
    r = Removal(objects=[{"kind": "Kustomization"}, {"kind": "Bucket"}],
                pruned=[Ref("dev", "hello", "", "v1", "ConfigMap")],
                kept=[(Ref("", "dev", "", "v1", "Namespace"), "a Namespace is never pruned")])
    assert p.removal_lines("web", "dev", r, False, True) == [
        "session web would be removed (Kustomization, Bucket)",
        "  would prune ConfigMap dev/hello",
        "  kept Namespace dev: a Namespace is never pruned"]
    assert p.removal_lines("web", "dev", r, False, False)[0] == \
        "session web removed and what it deployed (Kustomization, Bucket)"
    helm = Removal(objects=[{"kind": "HelmRelease"}, {"kind": "Bucket"}])
    assert p.removal_lines("web", "dev", helm, False, False)[0] == \
        "session web removed and what it deployed (HelmRelease, Bucket)"
    two = Removal(objects=[{"kind": "Secret"}, {"kind": "Secret"}, {"kind": "Lease"}])
    assert p.removal_lines("web", "dev", two, False, False)[0] == \
        "session web removed (Secret, Lease)"
    assert p.removal_lines("web", "dev", Removal(), False, False) == [
        "session web not found in namespace dev: nothing to remove"]


def test_dry_run_lines_list_each_file_under_a_summary():
    from kubectl_gitops_run.core.snapshot import Plan
    from kubectl_gitops_run.ops.publish import Result
    result = Result(Plan(["new.yaml"], ["cm.yaml"], ["old.yaml"]), "sha256:" + "ab" * 32, 3, 10)
    assert p.dry_run_lines(result) == [
        "would sync +1 ~1 -1 files, revision sha256:abababab (dry run: nothing uploaded)",
        "+ new.yaml", "~ cm.yaml", "- old.yaml"]
    same = Result(Plan([], [], []), "sha256:" + "cd" * 32, 3, 10)
    assert p.dry_run_lines(same) == ["up to date, revision sha256:cdcdcdcd (dry run)"]
    assert '"dryRun": true' in p.result_json(result, dry_run=True)
