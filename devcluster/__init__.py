"""The local control plane: a Docker-free Kubernetes + Flux on 127.0.0.1.

A tool for users (`make dev-cluster`) and the ground the end-to-end tests and
benchmarks run on:

- build.py builds the programs, pinned in versions.toml, from the Go module proxy;
- cluster.py starts and stops them (`python -m devcluster.cluster up|down|status`);
- runtime.py runs the real bucket server for the pods of its image.

It is not part of the plugin: nothing under kubectl_gitops_run/ imports it.
"""
