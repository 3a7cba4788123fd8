# The README's two commands are `eval "$(make -s dev-cluster)"` and `make test`.
# Everything they need is installed or built from here: a venv with the plugin
# and its test deps, and the control plane's programs (devcluster/build.py, into
# a cache outside the repo keyed by devcluster/versions.toml).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
CLUSTER_STATE ?=

.PHONY: venv e2e-bins dev-cluster dev-cluster-down test unit e2e bench clean

venv: $(STAMP)
$(STAMP):
	@rm -f $(VENV)/.installed-*
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) >&2
	@# compat mode: a path in a .pth, as a plain install puts the package on sys.path;
	@# the default mode imports a finder (pathlib and more) at every start (issue 13)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]' \
		--config-settings editable_mode=compat >&2
	@# an editable install leaves the package without bytecode (and the environment
	@# may set PYTHONDONTWRITEBYTECODE): compile it, as a pip install does (issue 13)
	@$(PY) -m compileall -q kubectl_gitops_run >&2
	@touch $@

e2e-bins: venv
	@$(PY) -m devcluster.build >/dev/null

# Last two lines on stdout: export KUBECONFIG=... and export PATH=...
dev-cluster: e2e-bins
	@$(PY) -m devcluster.cluster up $(if $(CLUSTER_STATE),--state-dir $(CLUSTER_STATE))

dev-cluster-down:
	@if [ -x $(PY) ]; then $(PY) -m devcluster.cluster down $(if $(CLUSTER_STATE),--state-dir $(CLUSTER_STATE)); \
	else $(PYTHON) -m devcluster.cluster down; fi

test: e2e-bins completion-shells ui-browser
	$(PY) -m pytest tests

unit: venv
	$(PY) -m pytest tests/unit

e2e: e2e-bins
	$(PY) -m pytest tests/e2e

clean:
	rm -rf $(VENV) build dist *.egg-info

# --- Packaging and shell completion (issue 5) ----------------------------------
# `make dist`: wheel, sdist, the zipapp dist/kubectl-gitops_run, the krew archive
# dist/kubectl-gitops-run_<version>.tar.gz and manifest dist/gitops-run.yaml.
# Set KREW_BASE_URL (release download URL; /v<version>/<archive> is appended) and
# KREW_HOMEPAGE for a real release.
# `make dist-check`: krew's own validate-krew-manifest on dist/gitops-run.yaml
# (krew is built from the Go module proxy with the control plane: e2e-bins).
# `make bench-packaging`: start-up times of the zipapp next to the pip install
# (bench/packaging.py; JSON on stdout).
# `make completions`: regenerate completions/ (a unit test checks they are current).
# `make completion-shells`: install zsh and fish, which the completion tests drive
# (they skip, loudly, without them).
KREW_BASE_URL ?=
KREW_HOMEPAGE ?=

.PHONY: dist dist-check bench-packaging completions completion-shells

dist: venv completions
	@$(PY) -m pip install -q --disable-pip-version-check build >&2
	$(PY) packaging/dist.py $(if $(KREW_BASE_URL),--base-url $(KREW_BASE_URL)) $(if $(KREW_HOMEPAGE),--homepage $(KREW_HOMEPAGE))

dist-check: e2e-bins
	@test -f dist/gitops-run.yaml || { echo "dist/gitops-run.yaml is missing: run make dist" >&2; exit 1; }
	@KREW_NO_UPGRADE_CHECK=1 "$$($(PY) -m devcluster.build --print-bin)/validate-krew-manifest" \
		-manifest dist/gitops-run.yaml -skip-install

bench-packaging: e2e-bins
	$(PY) -m bench.packaging $(if $(CLUSTER_STATE),--state-dir $(CLUSTER_STATE))

completions: venv
	@$(PY) packaging/completions.py

# Best effort: without them (or without root) their completion tests skip, loudly.
completion-shells:
	@command -v zsh >/dev/null && command -v fish >/dev/null || \
		{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zsh fish >&2; } || \
		echo "warning: could not install zsh and fish; their completion tests will skip" >&2
# --- end of packaging and shell completion --------------------------------------

# `make ui-browser`: Debian's chromium, which tests/e2e/test_ui.py drives with
# Playwright (no browser download). Best effort: without it those tests skip, loudly.
.PHONY: ui-browser
ui-browser:
	@command -v chromium >/dev/null || \
		{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2; } || \
		echo "warning: could not install chromium; the ui browser tests will skip" >&2
