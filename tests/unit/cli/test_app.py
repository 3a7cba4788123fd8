"""cli: flag types, exit codes and error lines of main(); and the pure helpers whose
words reach the terminal: kube's context check and API paths, watch's cycle line."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import click
import pytest

import kubectl_gitops_run
from kubectl_gitops_run.cli.app import main
from kubectl_gitops_run.cli.output import cycle_line
from kubectl_gitops_run.cli.params import Duration, Size
from kubectl_gitops_run.core.snapshot import Plan
from kubectl_gitops_run.ops.publish import Result

REV = "sha256:" + "3f2a9c1e" + "0" * 56


# -- flag types ------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2", 2), ("1.5s", 1.5), ("0", 0),
    ("500ms", 0.5), ("1h", 3600), ("2m30s", 150), (" 10s ", 10), ("0.5h", 1800),
])
def test_duration(text, seconds):
    assert Duration().convert(text, None, None) == pytest.approx(seconds)


def test_duration_passes_numbers_through():
    assert Duration().convert(7, None, None) == 7
    assert Duration().convert(2.5, None, None) == 2.5


@pytest.mark.parametrize("text", ["5x", "", "s", "m5", "5 m", "1h 30m", "-5s", "5m3", "abc",
                                  "1d"])
def test_duration_rejects(text):
    with pytest.raises(click.BadParameter) as e:
        Duration().convert(text, None, None)
    assert repr(text) in e.value.format_message()


@pytest.mark.parametrize("text, size", [
    ("10Mi", 10 * 1024 ** 2), ("500k", 500_000), ("1G", 1_000_000_000), ("123", 123),
    ("512Ki", 512 * 1024), ("2Gi", 2 * 1024 ** 3), ("3M", 3_000_000), ("0", 0),
    ("10MiB", 10 * 1024 ** 2), ("7b", 7),
])
def test_size(text, size):
    assert Size().convert(text, None, None) == size


def test_size_passes_ints_through():
    assert Size().convert(4096, None, None) == 4096


@pytest.mark.parametrize("text", ["ten", "", "1.5Mi", "10Ti", "-1", "Mi", "10 Mi B x"])
def test_size_rejects(text):
    with pytest.raises(click.BadParameter) as e:
        Size().convert(text, None, None)
    assert repr(text) in e.value.format_message()


# -- main(): exit codes and one error line ---------------------------------------------------

@pytest.fixture(autouse=True)
def no_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_flag_is_a_usage_error(capsys):
    code, out, err = run(capsys, "ls", "--bogus")
    assert code == 2 and out == ""
    assert "--bogus" in one_error_line(err)


def test_unknown_command_is_a_usage_error(capsys):
    code, _, err = run(capsys, "bogus")
    assert code == 2
    assert "bogus" in one_error_line(err)


def test_bad_flag_values_are_usage_errors(capsys):
    for args in (["up", ".", "--timeout", "5x"], ["up", ".", "--max-file-size", "ten"],
                 ["ls", "-o", "xml"]):
        code, _, err = run(capsys, *args)
        assert code == 2, args
        one_error_line(err)


def test_up_missing_directory(capsys):
    code, out, err = run(capsys, "up", "/nonexistent")
    assert code == 1 and out == ""
    assert one_error_line(err) == "error: directory /nonexistent does not exist"


def test_up_bad_name(capsys, tmp_path):
    code, _, err = run(capsys, "up", str(tmp_path), "--name", "Bad_Name")
    assert code == 2
    assert "'Bad_Name'" in one_error_line(err)


@pytest.mark.parametrize("args", [["down"], ["down", "web", "--all"]])
def test_down_needs_names_or_all(capsys, args):
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "--all" in one_error_line(err)


def test_missing_kubeconfig_is_one_line(capsys):
    code, _, err = run(capsys, "ls")
    assert code == 1
    assert "kubeconfig" in one_error_line(err)


def test_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0 and err == ""
    assert out == f"kubectl gitops-run version v{kubectl_gitops_run.__version__}\n"


def test_get_is_ls(capsys):
    code, out, _ = run(capsys, "get", "--help")
    assert code == 0
    assert "Usage: kubectl gitops-run ls" in out
    assert "--all-namespaces" in out and "--selector" in out
    assert run(capsys, "list", "-h")[1] == out


def test_up_help_has_examples(capsys):
    code, out, _ = run(capsys, "up", "--help")
    assert code == 0
    assert "Examples:" in out and "kubectl gitops-run up ./deploy" in out


def test_help_does_not_import_kubernetes():
    code = ("import sys; from kubectl_gitops_run.cli import main; rc = main(['up', '--help']); "
            "assert rc == 0; assert 'kubernetes' not in sys.modules, 'kubernetes imported'")
    env = {**os.environ, "KUBECONFIG": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_no_arguments_prints_help_not_an_error(capsys):
    code, out, err = run(capsys)
    assert not err.startswith("error: Usage")
    assert "Commands:" in out + err


def test_missing_choice_argument_is_one_line(capsys):
    code, _, err = run(capsys, "completion")
    assert code == 2
    one_error_line(err)


def test_a_command_line_gone_wrong_points_at_the_help(capsys):
    assert one_error_line(run(capsys, "ls", "--bogus")[2]).endswith(
        "; see `kubectl gitops-run ls --help`")
    assert one_error_line(run(capsys, "frobnicate")[2]).endswith(
        "; see `kubectl gitops-run --help`")
    assert "--help" in one_error_line(run(capsys, "ls", "-o")[2])
    # a bad value says already what would do
    assert "--help" not in one_error_line(run(capsys, "ls", "-o", "xml")[2])


def test_a_multi_line_message_is_one_error_line(capsys, tmp_path):
    garbage = tmp_path / "kubeconfig"
    garbage.write_text("{{{ not: [yaml")       # PyYAML's message spans lines
    code, _, err = run(capsys, "ls", "--kubeconfig", str(garbage))
    assert code == 1
    assert "cannot use the kubeconfig" in one_error_line(err)


def test_a_bad_selector_is_a_usage_error_before_any_request(capsys):
    code, _, err = run(capsys, "ls", "-l", "===")      # no kubeconfig needed to say so
    assert code == 2
    assert "invalid label selector '===' for -l" in one_error_line(err)


def test_the_contexts_namespace_is_checked_as_n_is(capsys, tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text("""\
apiVersion: v1
kind: Config
current-context: dev
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: dev, context: {cluster: c, user: u, namespace: "Bad NS"}}]
""")
    code, _, err = run(capsys, "ls", "--kubeconfig", str(kc))
    assert code == 1
    assert one_error_line(err) == (
        "error: context 'dev' sets namespace 'Bad NS', which Kubernetes does not accept; "
        "fix the kubeconfig, or pass -n NAMESPACE")


# -- watch mode: one line per cycle -------------------------------------------------------

WHEN = datetime(2026, 11, 24, 9, 5, 7)


def test_cycle_line_error():
    assert cycle_line(None, "Kustomization failed: bad", WHEN) == \
        "09:05:07 error: Kustomization failed: bad"


def test_cycle_line_up_to_date():
    result = Result(plan=Plan([], [], []), revision=REV, files=3, bytes=10, applied=4)
    assert cycle_line(result, None, WHEN) == "09:05:07 up to date, revision sha256:3f2a9c1e"


def test_cycle_line_summary():
    result = Result(plan=Plan(["a.yaml", "b.yaml"], ["c.yaml"], ["d.yaml"]), revision=REV,
                    files=3, bytes=10, applied=5, elapsed=1.24)
    assert cycle_line(result, None, WHEN) == \
        "09:05:07 +2 ~1 -1 files, revision sha256:3f2a9c1e, applied 5 objects in 1.2s"
    one = Result(plan=Plan([], ["c.yaml"], []), revision=REV, files=1, bytes=1, applied=1,
                 elapsed=0.3)
    assert cycle_line(one, None, WHEN) == \
        "09:05:07 +0 ~1 -0 files, revision sha256:3f2a9c1e, applied 1 object in 0.3s"


def test_cycle_line_slot_flip_is_not_up_to_date():
    result = Result(plan=Plan([], [], []), revision=REV, files=3, bytes=10, applied=2,
                    elapsed=2.0, flipped=True)
    assert cycle_line(result, None, WHEN) == \
        "09:05:07 +0 ~0 -0 files, revision sha256:3f2a9c1e, applied 2 objects in 2.0s"


# -- bugs of issue 9, each with the test that caught it ------------------------------------

def test_python_dash_m_passes_the_exit_status_on():
    res = subprocess.run([sys.executable, "-m", "kubectl_gitops_run", "down"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res
    assert res.stderr.startswith("error: name the sessions to remove")


def test_last_resort_handler_survives_a_failed_import(capsys, monkeypatch, tmp_path):
    # a module the command imports lazily cannot be imported: the handler must
    # still print one line, without importing anything itself
    monkeypatch.delitem(sys.modules, "kubectl_gitops_run.ops", raising=False)
    monkeypatch.delattr(kubectl_gitops_run, "ops", raising=False)
    for name in [m for m in sys.modules if m.startswith("kubectl_gitops_run.ops.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kubectl_gitops_run.adapters.kube", None)   # ls needs it
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    code, _, err = run(capsys, "ls")
    assert code == 1
    assert "ImportError" in one_error_line(err) or "ModuleNotFoundError" in err


# -- names are checked before any request (issue 12, item 8) --------------------------------

@pytest.mark.parametrize("args, what", [
    (["up", ".", "--name", "abc\n"], "invalid session name"),
    (["ls", "-n", "a b"], "invalid namespace 'a b' for -n"),
    (["-n", "../x", "ls"], "invalid namespace '../x' for -n"),
    (["down", "Bad_Name"], "invalid session name 'Bad_Name'"),
    (["sync", "web/../x"], "invalid session name"),
    (["up", ".", "--target-namespace", "x y"], "for --target-namespace"),
])
def test_bad_names_are_usage_errors_before_any_request(capsys, monkeypatch, tmp_path, args, what):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))    # a request would say so
    code, _, err = run(capsys, *args)
    assert code == 2
    assert what in one_error_line(err)


@pytest.mark.parametrize("path", ["/etc", "../..", "a/../../b"])
def test_path_outside_dir_is_a_usage_error(capsys, monkeypatch, tmp_path, path):
    (tmp_path / "app.yaml").write_text("a: 1\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    code, _, err = run(capsys, "up", str(tmp_path), "--path", path)
    assert code == 2
    assert "must be a directory inside DIR" in one_error_line(err)


@pytest.mark.parametrize("extra, what", [
    (["--values", "../outside.yaml"], "--values ../outside.yaml: not a file inside DIR"),
    (["--values", "missing.yaml"], "--values missing.yaml: no such file"),
    (["--release-name", "Bad_Name"], "invalid --release-name 'Bad_Name'"),
])
def test_chart_options_are_checked_before_any_request(capsys, monkeypatch, tmp_path, extra,
                                                      what):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("a: {{ .b }}: c\n")      # not YAML
    (tmp_path / "outside.yaml").write_text("a: 1\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))    # a request would say so
    code, _, err = run(capsys, "up", str(chart), *extra)
    assert code == 2
    assert what in one_error_line(err)


def test_ui_help_does_not_load_the_page_or_its_server():
    code = ("import sys; from kubectl_gitops_run.cli import main; rc = main(['ui', '--help']); "
            "assert rc == 0; loaded = [m for m in ('kubectl_gitops_run.cli.ui', "
            "'kubectl_gitops_run.ops.ui', 'kubectl_gitops_run.adapters.webserver', "
            "'http.server', 'kubernetes') if m in sys.modules]; assert not loaded, loaded")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": "/nonexistent"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
