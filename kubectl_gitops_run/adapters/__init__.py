"""Adapters talk to the world: the Kubernetes API (kube is the one module that
imports `kubernetes`), the bucket server over S3, the local tree."""
