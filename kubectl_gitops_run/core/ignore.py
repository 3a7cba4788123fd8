"""Which paths of a tree are left out of a snapshot (pure): what Flux would
archive from a Git repository of the same directory.

`.git/` and the ignore files are always left out. Each directory's
.gitignore and .sourceignore apply below it, with git's semantics
(core.gitignore), the deepest definite answer winning. Beneath them lie
source-controller's own excludes, as its archiver applies them.
"""
from __future__ import annotations

from typing import Callable

from .gitignore import PatternList, encode, parse_lines

IGNORE_FILES = (".gitignore", ".sourceignore")   # read in this order: the last match wins
SOURCEIGNORE = ".sourceignore"

# fluxcd/pkg sourceignore/sourceignore.go at sourceignore/v0.18.0 (the version
# source-controller v1.9.3 builds with; the lists are unchanged since 2022):
# ExcludeVCS, then ExcludeExt, ExcludeCI and ExcludeExtra, its DefaultPatterns.
VCS_EXCLUDES = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
DEFAULT_EXCLUDES = (
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml",
    ".drone.yml", "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
)
_VCS = PatternList(parse_lines("\n".join(VCS_EXCLUDES)))
_DEFAULTS = PatternList(parse_lines("\n".join(DEFAULT_EXCLUDES)))


def flux_counts_patterns(text: str) -> bool:
    """Whether source-controller finds a pattern in a .sourceignore
    (sourceignore.ReadPatterns: a line neither blank nor a '#' comment)."""
    return any(line.strip() and not line.startswith("#") for line in text.split("\n"))


class IgnoreRules:
    """Which paths of a tree are left out: `.git/` and the ignore files always,
    then each directory's .gitignore and .sourceignore scoped to that directory,
    the deepest definite answer winning, then Flux's VCS excludes.

    Flux's default excludes (`default_excluded`) apply only to a tree whose
    .sourceignore files hold no pattern at all: source-controller's archiver
    (fluxcd/pkg/artifact storage.SourceIgnoreFilter) drops them as soon as
    there is one. `flux_defaults` says which, once the tree has been walked.
    Ignore files are read lazily, once, so make new rules when they change."""

    def __init__(self, read: Callable[[str, str], str | None],
                 parsed: dict[tuple, PatternList] | None = None):
        """`read(directory, name)` returns an ignore file's text, or None if the
        directory has none ('' is the root). `parsed`, kept by the caller
        between rules, gives the same texts the same PatternList: a chain of
        unchanged files is then equal to the one before (see `chain`)."""
        self._read = read
        self._parsed = {} if parsed is None else parsed
        self._chains: dict[str, tuple[tuple[int, PatternList], ...]] = {}
        self._dirs: dict[str, bool] = {}
        self._default_dirs: dict[str, bool] = {}
        self._sourceignored = False

    @property
    def flux_defaults(self) -> bool:
        """True while no .sourceignore read so far holds a pattern."""
        return not self._sourceignored

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether `rel` ('/'-separated, relative to the root) is left out,
        Flux's default excludes aside."""
        rel = rel.strip("/")
        if rel in ("", "."):
            return False
        if is_dir:
            return _inherited(self._dirs, rel, lambda d: self._verdict(d, True))
        parent = rel.rpartition("/")[0]
        if parent and _inherited(self._dirs, parent, lambda d: self._verdict(d, True)):
            return True    # a path under an ignored directory stays out, whatever deeper files say
        return self._verdict(rel, False)

    def default_excluded(self, rel: str) -> bool:
        """Whether Flux's default excludes leave out the file `rel`."""
        parent = rel.rpartition("/")[0]
        if parent and _inherited(self._default_dirs, parent,
                                 lambda d: bool(_DEFAULTS.check(encode(d), True))):
            return True
        return bool(_DEFAULTS.check(encode(rel), False))

    def _verdict(self, rel: str, is_dir: bool) -> bool:
        """The rules' answer for `rel` itself, its directories being kept."""
        parent, _, name = rel.rpartition("/")
        if is_dir and name == ".git":
            return True
        chain = self.chain(parent)   # read even for an ignore file: see flux_defaults
        if not is_dir and name in IGNORE_FILES:
            return True
        path = encode(rel)
        for offset, patterns in reversed(chain):      # the deepest directory first
            hit = patterns.check(path[offset:], is_dir)
            if hit is not None:
                return hit
        return bool(_VCS.check(path, is_dir))

    def chain(self, directory: str) -> tuple[tuple[int, PatternList], ...]:
        """The ignore files that apply in `directory`, shallowest first, each as
        (where its directory's paths start in a path's bytes, its patterns).
        The verdicts on the entries of a kept directory depend on it alone,
        besides their names."""
        missing, d = [], directory
        while d not in self._chains:    # no recursion: trees may be deep
            missing.append(d)
            if not d:
                break
            d = d.rpartition("/")[0]
        chain = self._chains.get(d, ())
        for d in reversed(missing):
            patterns = self._load(d)
            if patterns:
                chain += ((len(encode(d)) + 1 if d else 0, patterns),)
            self._chains[d] = chain
        return chain

    def _load(self, directory: str) -> PatternList:
        texts = {name: self._read(directory, name) for name in IGNORE_FILES}
        if texts[SOURCEIGNORE] is not None and flux_counts_patterns(texts[SOURCEIGNORE]):
            self._sourceignored = True
        key = tuple(texts.values())
        if key not in self._parsed:
            self._parsed[key] = PatternList(
                [p for text in key if text is not None for p in parse_lines(text)])
        return self._parsed[key]


def _inherited(cache: dict[str, bool], rel: str, decide: Callable[[str], bool]) -> bool:
    """True if directory `rel` or one above it is left out by `decide`,
    asking each directory once (in `cache`), shallowest first, without recursion."""
    known = cache.get(rel)
    if known is not None:
        return known
    todo, parent = [rel], rel.rpartition("/")[0]
    while parent and parent not in cache:
        todo.append(parent)
        parent = parent.rpartition("/")[0]
    verdict = bool(parent) and cache[parent]
    for d in reversed(todo):
        verdict = verdict or decide(d)
        cache[d] = verdict
    return verdict
