"""kubectl gitops-run: a GitOps inner loop for any cluster that runs Flux."""

__version__ = "0.1.0"
