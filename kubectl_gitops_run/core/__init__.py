"""The pure core: naming, manifests, Flux status, sessions, snapshots and
ignore rules. No I/O here (docs/architecture.md, "Layers")."""
