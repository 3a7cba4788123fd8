"""The pure parts of the control-plane build (devcluster/build.py): which
replace directives of a program's go.mod carry over into the throwaway module
that builds it, that every pin in versions.toml has a build step whose cache key
no other pin moves, what the build says while it runs, and that the plugin
itself never needs tomllib (Python 3.10)."""
import ast
from pathlib import Path

from devcluster import build
from devcluster.build import PROGRAMS, STEP_PINS, STEPS, _published_replaces, _staging_replaces, pins
from devcluster.progress import Progress

PACKAGE = Path(__file__).resolve().parents[2] / "kubectl_gitops_run"

GOMOD = """module example.com/ctl

go 1.26.0

replace github.com/example/ctl/api => ./api

replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.2022

replace (
	// pinned for a reason
	sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
	go.etcd.io/etcd/api/v3 => ../api
	gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1
)

require k8s.io/api v0.0.0
"""


def test_published_replaces_keep_module_targets_and_drop_local_paths():
    assert _published_replaces(GOMOD) == [
        "sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1",
        "gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1",
        "github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.2022",
    ]


def test_staging_modules_map_to_their_published_twins():
    gomod = ("replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n"
             "\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n"
             "\tk8s.io/klog/v2 => k8s.io/klog/v2 v2.130.1\n)\n")
    assert _staging_replaces(gomod, "36", "3") == [
        "k8s.io/api => k8s.io/api v0.36.3",
        "k8s.io/client-go => k8s.io/client-go v0.36.3",
    ]


def test_every_pin_is_built_and_krew_is_found_as_a_kubectl_plugin():
    assert set(pins()) == set(STEPS) == set(STEP_PINS)
    # `kubectl krew` runs the executable named kubectl-krew on PATH.
    assert {"kubectl-krew", "validate-krew-manifest"} <= set(PROGRAMS)
    assert pins()["krew"]["commands"] == ["cmd/krew", "cmd/validate-krew-manifest"]
    # Helm chart sessions and the SOPS tests.
    assert {"helm-controller", "sops", "age-keygen"} <= set(PROGRAMS)


def test_a_new_step_leaves_the_cache_keys_of_the_others_alone():
    """Adding a pin must not rebuild what is cached: each key covers its own pins."""
    p = pins()
    before = {name: build.step_dir(name, p) for name in STEPS}
    more = dict(p, newtool={"module": "example.com/newtool", "version": "v1.0.0"})
    assert {name: build.step_dir(name, more) for name in STEPS} == before
    bumped = dict(p, sops=dict(p["sops"], version="v0.0.1"))
    changed = [name for name in STEPS if build.step_dir(name, bumped) != before[name]]
    assert changed == ["sops"]


def test_tool_steps_build_each_command_into_the_bin_dir(tmp_path, monkeypatch):
    got = []

    def fake_get(work, name, pin, pkgs, log):
        got.append((name, pkgs))
        return {}, work / name
    monkeypatch.setattr(build, "_get", fake_get)
    p = pins()
    plan = build.build_age(p, tmp_path, tmp_path / "bin", None)
    assert got == [("age", ["filippo.io/age/cmd/age-keygen"])]
    assert plan.dir == tmp_path / "age"
    # age-keygen reads its version from the link, not from a dependency's build info.
    assert plan.builds == [["build", "-trimpath", f"-ldflags=-s -w -X main.Version={p['age']['version']}",
                            "-o", f"{tmp_path / 'bin'}/", "filippo.io/age/cmd/age-keygen"]]
    assert build.build_sops(p, tmp_path, tmp_path / "bin", None).builds[0][-1] == \
        "github.com/getsops/sops/v3/cmd/sops"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_plugin_runs_on_python_3_10_without_tomllib():
    assert "tomllib" in imported_modules(Path(build.__file__))  # the scan sees a guarded import
    files = sorted(PACKAGE.rglob("*.py"))
    assert files
    assert [str(f.relative_to(PACKAGE)) for f in files if "tomllib" in imported_modules(f)] == []


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_step_says_how_long_it_took_and_where_the_time_went(capsys):
    clock = Clock()
    progress = Progress(clock=clock)
    with progress.step("etcd") as st:
        clock.now += 20
        st.enter("waiting to compile")
        clock.now += 0.2  # too short to mention
        st.enter("compiling")
        clock.now += 145
    assert capsys.readouterr().err == "built etcd in 165 s (fetching 20 s, compiling 145 s)\n"


def test_running_steps_report_their_time_so_far_and_a_failure_is_said_at_once(capsys):
    clock = Clock()
    progress = Progress(clock=clock)
    try:
        with progress.step("kubernetes") as k, progress.step("kwok"):
            clock.now += 60
            k.enter("compiling")
            progress.report()
            raise build.BuildError("go get failed")
    except build.BuildError:
        pass
    assert capsys.readouterr().err.splitlines() == [
        "  kubernetes: 60 s, compiling ...", "  kwok: 60 s, fetching ...",
        "failed kwok after 60 s: go get failed", "failed kubernetes after 60 s: go get failed"]
    progress.report()
    assert capsys.readouterr().err == ""


def test_quiet_progress_says_nothing(capsys):
    with Progress(quiet=True).step("etcd"):
        pass
    assert capsys.readouterr().err == ""


def test_compiles_at_once_follow_memory_and_the_override(monkeypatch):
    monkeypatch.setenv("GITOPS_RUN_BUILD_JOBS", "3")
    assert build.compile_slots() == 3
    monkeypatch.delenv("GITOPS_RUN_BUILD_JOBS")
    assert 1 <= build.compile_slots() <= 2


def test_steps_fetch_then_compile_and_are_marked_done(tmp_path, monkeypatch, capsys):
    """Without Go: a fake step and a fake `go` record what would run."""
    ran = []

    def fake_go(args, cwd, log, compiling=False):
        ran.append((args[0], compiling))
        if compiling:
            Path(args[args.index("-o") + 1]).write_text("binary")
        return ""

    def fetch_tool(p, work, out, log):
        build._go(["get", "example.com/tool@v1"], work, log)
        return build.Compile(work, [build._go_build(str(out / "tool"), ["example.com/tool"])])

    monkeypatch.setenv("GITOPS_RUN_E2E_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "_go", fake_go)
    monkeypatch.setitem(build.STEPS, "tool", fetch_tool)
    monkeypatch.setitem(build.STEP_PINS, "tool", [])
    build._run_steps(["tool"], {}, Progress())
    sd = build.step_dir("tool", {})
    assert ran == [("get", False), ("build", True)]
    assert (sd / ".done").exists() and (sd / "bin" / "tool").read_text() == "binary"
    assert not (sd / "work").exists()
    assert "built tool in 0 s" in capsys.readouterr().err
