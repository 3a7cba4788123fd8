"""The pure parts of the control-plane build: which replace directives of a
program's go.mod carry over into the throwaway module that builds it, and
that every pin in versions.toml has a build step."""
from tests.e2e.build import PROGRAMS, STEP_PINS, STEPS, _published_replaces, _staging_replaces, pins

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
