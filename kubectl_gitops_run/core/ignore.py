"""Which paths of a tree are left out of a snapshot (pure): `.git/` and the
ignore files always, then Flux's default excludes, then each directory's
.gitignore and .sourceignore scoped to that directory.
"""
from __future__ import annotations

from typing import Callable

import pathspec

IGNORE_FILES = (".gitignore", ".sourceignore")   # read in this order: the last match wins

# fluxcd/pkg/sourceignore: VCS files, then its default excludes for sources.
DEFAULT_EXCLUDES = (
    ".git/", ".gitignore", ".gitmodules", ".gitattributes",
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml",
    ".drone.yml", "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
)
_DEFAULT_SPEC = pathspec.GitIgnoreSpec.from_lines(DEFAULT_EXCLUDES)


class IgnoreRules:
    """Which paths of a tree are left out: `.git/` and the ignore files always,
    then Flux's default excludes, then each directory's .gitignore and
    .sourceignore scoped to that directory, the deepest definite answer winning.
    Ignore files are read lazily, once, so make new rules when they change."""

    def __init__(self, read: Callable[[str, str], str | None]):
        """`read(directory, name)` returns an ignore file's text, or None if the
        directory has none ('' is the root)."""
        self._read = read
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}
        self._dirs: dict[str, bool] = {}

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether `rel` ('/'-separated, relative to the root) is left out."""
        rel = rel.strip("/")
        if rel in ("", "."):
            return False
        if not is_dir:
            return self._check(rel, False)
        if rel not in self._dirs:   # asked again for every path below it
            self._dirs[rel] = self._check(rel, True)
        return self._dirs[rel]

    def _check(self, rel: str, is_dir: bool) -> bool:
        # A path under an ignored directory stays out, whatever deeper files say.
        parent = rel.rpartition("/")[0]
        return bool(parent and self.ignored(parent, True)) or self._match(rel, is_dir)

    def _match(self, rel: str, is_dir: bool) -> bool:
        parent, _, name = rel.rpartition("/")
        if (name == ".git") if is_dir else (name in IGNORE_FILES):
            return True
        # Shallowest first, so the deepest matcher with an answer has the last word.
        result = _DEFAULT_SPEC.check_file(rel + "/" if is_dir else rel).include
        parts = parent.split("/") if parent else []
        for depth in range(len(parts) + 1):
            base = "/".join(parts[:depth])
            spec = self._spec(base)
            if spec is None:
                continue
            sub = rel[len(base) + 1:] if base else rel
            hit = spec.check_file(sub + "/" if is_dir else sub).include
            if hit is not None:
                result = hit
        return bool(result)

    def _spec(self, base: str) -> pathspec.GitIgnoreSpec | None:
        if base not in self._specs:
            lines: list[str] = []
            for name in IGNORE_FILES:
                lines += (self._read(base, name) or "").splitlines()
            self._specs[base] = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        return self._specs[base]
