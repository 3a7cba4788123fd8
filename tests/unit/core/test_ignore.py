"""Ignore rules (core.ignore, core.gitignore) against git's own verdicts, and
source-controller's default excludes. The rules are pure: a dict stands in
for the tree's ignore files; git, where it runs, reads the same files from disk."""
from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from kubectl_gitops_run.core.ignore import DEFAULT_EXCLUDES, IgnoreRules, flux_counts_patterns

# pattern -> (paths it ignores, paths it leaves), as `git check-ignore` says
# (test_table_is_what_git_says). A trailing '/' marks a directory.
TABLE = {
    "foo": (["foo", "x/foo", "y/foo/", "x/y/foo/"], ["foox", "xfoo", "x/foox"]),
    "/foo": (["foo"], ["x/foo", "y/foo/"]),
    "foo/": (["foo/", "x/foo/"], ["y/foo", "x/y/foo"]),
    "foo/bar": (["foo/bar"], ["x/foo/bar", "foo/x/bar"]),
    "foo/*": (["foo/bar", "foo/x/"], ["foo/", "foox/bar"]),
    "foo/**": (["foo/bar", "foo/x/y"], ["foo/", "foox/bar"]),
    "**/foo": (["foo", "x/foo", "x/y/foo"], ["xfoo", "x/xfoo"]),
    "**/foo/bar": (["foo/bar", "x/y/foo/bar"], ["x/foo/baz"]),
    "foo/**/bar": (["foo/bar", "foo/x/bar", "foo/x/y/bar"], ["x/foo/bar", "foo/xbar"]),
    "*.txt": (["a.txt", "x/a.txt", ".txt"], ["a.txt.bak", "a.TXT"]),
    "*.tar.gz": (["a.tar.gz", "x/a.tar.gz"], ["a.gz"]),
    "a*b": (["ab", "aXb", "aXXb", "x/ab"], ["a/b", "abc"]),
    "a**b": (["aXb"], ["a/b"]),
    "x/a**/b": (["x/a/b", "x/ab", "x/aY/b", "x/a/Z/b"], ["x/aZ"]),
    "a?c": (["abc"], ["ac", "abbc", "a/c"]),
    "a[bc]d": (["abd", "acd"], ["aad"]),
    "a[!b]d": (["acd"], ["abd"]),
    "a[^b]d": (["acd"], ["abd"]),
    "a[a-c]d": (["abd"], ["add"]),
    "a[]]d": (["a]d"], ["abd"]),
    "a[]-]d": (["a]d", "a-d"], ["abd"]),
    "a[[:digit:]]": (["a5"], ["ab"]),
    "a[[:foo:]]": ([], ["a5", "a["]),
    "a[b": ([], ["a[b", "ab"]),
    "\\*": (["*"], ["a"]),
    "\\!foo": (["!foo"], ["foo"]),
    "\\#foo": (["#foo"], ["foo"]),
    "#foo": ([], ["#foo"]),
    "a\\ ": (["a "], ["a"]),
    "a  ": (["a"], ["a "]),
    "*": (["a", "x/", "x/y"], []),
    "/*": (["a", "x/"], []),
    "*/bar": (["x/bar"], ["bar", "x/y/bar"]),
    "**/**/bar": (["bar", "x/bar", "x/y/bar"], ["xbar"]),
    "d/foo**/bar": (["d/foobar", "d/foo/bar", "d/fooX/Y/bar"], ["d/fo/bar"]),
    "é": (["é"], ["e"]),
    "?": (["a", "x/b"], ["ab", "é"]),
    "*a*a*a*a*a*a*a*a*a*a*a*a*a*b": (["a" * 14 + "b", "abababababababababababababab"],
                                     ["a" * 30, "a" * 12 + "b"]),
}


def fixtures(pattern: str) -> list[tuple[str, bool, bool]]:
    """(path, is_dir, ignored) for one row of TABLE."""
    hits, misses = TABLE[pattern]
    rows = [(p.rstrip("/"), p.endswith("/"), ignored)
            for ignored, paths in ((True, hits), (False, misses)) for p in paths]
    # one tree holds a row for git: no path may be a file and a directory
    dirs = {path for path, is_dir, _ in rows if is_dir} | \
        {path.rsplit("/", i)[0] for path, _, _ in rows for i in range(1, path.count("/") + 1)}
    assert not [path for path, is_dir, _ in rows if not is_dir and path in dirs], pattern
    return rows


def rules_of(files: dict[str, str]) -> IgnoreRules:
    """Rules over ignore files given as {'dir/.gitignore': text}."""
    return IgnoreRules(lambda base, name: files.get(f"{base}/{name}" if base else name))


@pytest.mark.parametrize("pattern", sorted(TABLE))
def test_table(pattern):
    rules = rules_of({".gitignore": pattern + "\n"})
    for path, is_dir, ignored in fixtures(pattern):
        assert rules.ignored(path, is_dir) is ignored, (pattern, path, is_dir)


# ---- git's verdicts -------------------------------------------------------------

def git_ignored(root, ignore_files: dict[str, str], paths: dict[str, bool]) -> set[str]:
    """The paths ({path: is_dir}) that `git check-ignore --no-index` calls
    ignored in a tree holding them and `ignore_files`."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for path, is_dir in paths.items():
        os.makedirs(root / path if is_dir else (root / path).parent, exist_ok=True)
        if not is_dir:
            (root / path).touch()
    for path, text in ignore_files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(text.encode("utf-8", "surrogateescape"))
    env = {**os.environ, "HOME": str(root), "XDG_CONFIG_HOME": str(root),
           "GIT_CONFIG_NOSYSTEM": "1"}    # no user's or system's excludes
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    out = subprocess.run(["git", "-C", str(root), "-c", "core.ignorecase=false",
                          "check-ignore", "--no-index", "--stdin", "-z"],
                         input=b"\0".join(p.encode() for p in paths) + b"\0",
                         capture_output=True, env=env, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    return {p.decode() for p in out.stdout.split(b"\0") if p}


def per_pattern_tree(patterns: list[str], paths: dict[str, bool]):
    """One directory per pattern, each with its .gitignore and all the paths."""
    files = {f"p{i:04d}/.gitignore": p + "\n" for i, p in enumerate(patterns)}
    every = {f"p{i:04d}/{path}": is_dir
             for i in range(len(patterns)) for path, is_dir in paths.items()}
    return files, every


def with_parents(paths: dict[str, bool]) -> dict[str, bool]:
    out = dict(paths)
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = True
    return out


def disagreements(tmp_path, files: dict[str, str], paths: dict[str, bool]) -> list:
    paths = with_parents(paths)
    by_git = git_ignored(tmp_path, files, paths)
    rules = rules_of(files)
    return [(path, is_dir, path in by_git) for path, is_dir in sorted(paths.items())
            if rules.ignored(path, is_dir) != (path in by_git)]


def test_table_is_what_git_says(tmp_path):
    rows = {p: fixtures(p) for p in sorted(TABLE)}
    files = {f"p{i:04d}/.gitignore": p + "\n" for i, p in enumerate(rows)}
    paths = {f"p{i:04d}/{path}": is_dir for i, p in enumerate(rows) for path, is_dir, _ in rows[p]}
    by_git = git_ignored(tmp_path, files, with_parents(paths))
    for i, p in enumerate(rows):
        for path, _, ignored in rows[p]:
            assert (f"p{i:04d}/{path}" in by_git) is ignored, (p, path)


PIECES = ["a", "b", "/", "*", "**", "?", "[ab]", "[!a]", "\\*", "ab", "/**/", "**/", "[a-b]"]
NAMES = ["a", "b", "ab", "ba", "aa", "bab", "*", "aab", "a b"]


def random_pattern(rnd: random.Random) -> str:
    p = "".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 7)))
    return ("/" if rnd.random() < 0.1 else "") + p + ("/" if rnd.random() < 0.15 else "")


def random_paths(rnd: random.Random, count: int) -> dict[str, bool]:
    paths: set[str] = set()
    while len(paths) < count:
        paths.add("/".join(rnd.choice(NAMES) for _ in range(rnd.randint(1, 4))))
    dirs = {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}
    return {p: p in dirs for p in sorted(paths)}


def test_generated_patterns_match_as_in_git(tmp_path):
    rnd = random.Random(20261203)
    patterns = sorted({random_pattern(rnd) for _ in range(160)})
    files, paths = per_pattern_tree(patterns, random_paths(rnd, 60))
    assert disagreements(tmp_path, files, paths) == []


def test_nested_ignore_files_and_negations_as_in_git(tmp_path):
    rnd = random.Random(7)
    paths = random_paths(rnd, 150)
    dirs = [""] + sorted(p for p, is_dir in with_parents(paths).items() if is_dir)
    files = {}
    for d in rnd.sample(dirs, 12):
        lines = [("!" if rnd.random() < 0.35 else "") + random_pattern(rnd) for _ in range(4)]
        files[f"{d}/.gitignore" if d else ".gitignore"] = "\n".join(lines) + "\n"
    assert disagreements(tmp_path, files, paths) == []


def test_ignore_file_syntax_as_in_git(tmp_path):
    files = {".gitignore": "\ufeff# comment\r\n*.log\r\n\n  \nspace\\ \\ \ntrail   \n"
                           "!keep.log\nd/\n\\#hash\n"}
    paths = {"a.log": False, "keep.log": False, "space  ": False, "space ": False,
             "trail": False, "trail   ": False, "d": True, "x/d": False, "#hash": False,
             "# comment": False}
    assert disagreements(tmp_path, files, paths) == []
    rules = rules_of(files)
    assert [p for p in paths if rules.ignored(p, paths[p])] == \
        ["a.log", "space  ", "trail", "d", "#hash"]



def test_character_classes_as_in_git(tmp_path):
    classes = ["alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
               "space", "upper", "xdigit"]
    names = {"a" + chr(c): False for c in range(1, 128) if chr(c) not in "/\n"}
    files, paths = per_pattern_tree([f"a[[:{c}:]]" for c in classes] + ["a[!-~]"], names)
    assert disagreements(tmp_path, files, paths) == []


def test_the_order_of_mixed_patterns_as_in_git(tmp_path):
    # literal names, '*.ext', 'prefix*' and the rest are looked up apart: the last still wins
    lines = ["*.log", "!keep.log", "keep*", "!keep.txt", "x.log/", "!*.log", "debug.log",
             "**/tmp", "!tmp/", "a/**/b.log", "!a/b.log", "build*", "!build-keep", "/root.log"]
    names = ["keep.log", "keep.txt", "keep.md", "x.log", "debug.log", "other.log", "tmp",
             "a/b.log", "a/x/b.log", "build-1", "build-keep", "root.log", "sub/root.log",
             "sub/debug.log", "sub/keep.txt", "d/x.log/f"]
    paths = {n: False for n in names} | {"dirs/tmp/f": False, "dirs/x.log/f": False}
    assert disagreements(tmp_path, {".gitignore": "\n".join(lines) + "\n"}, paths) == []


# ---- the walk's view: scoping, precedence, depth ------------------------------

def test_rules_are_scoped_to_their_directory_and_the_deepest_wins():
    rules = rules_of({".gitignore": "*.yaml\n/top.txt\n", "a/.gitignore": "!keep.yaml\ntop.txt\n",
                      "a/b/.sourceignore": "keep.yaml\n"})
    assert rules.ignored("x.yaml", False) and rules.ignored("a/x.yaml", False)
    assert not rules.ignored("a/keep.yaml", False) and rules.ignored("keep.yaml", False)
    assert rules.ignored("a/b/keep.yaml", False)
    assert rules.ignored("top.txt", False) and rules.ignored("a/top.txt", False)
    assert not rules.ignored("b/top.txt", False)


def test_deep_paths_need_no_recursion():
    deep = "/".join(["d"] * 5000)
    rules = rules_of({".gitignore": "x\n"})
    assert not rules.ignored(deep, True)
    assert rules.ignored(deep + "/x", False)
    assert rules_of({".gitignore": "d/\n"}).ignored(deep + "/f", False)


# ---- source-controller's defaults -----------------------------------------------

def test_defaults_are_fluxs_lists():
    # fluxcd/pkg sourceignore v0.18.0: ExcludeExt, ExcludeCI, ExcludeExtra
    assert ",".join(DEFAULT_EXCLUDES) == ",".join([
        "*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,*.zip",
        ".github/,.circleci/,.travis.yml,.gitlab-ci.yml,appveyor.yml,.drone.yml,"
        "cloudbuild.yaml,codeship-services.yml,codeship-steps.yml",
        "**/.goreleaser.yml,**/.sops.yaml,**/.flux.yaml"])


def test_default_excludes_cover_files_and_directories():
    rules = rules_of({})
    for rel in ("logo.png", "a/b/photo.jpg", ".github/workflows/ci.yaml", "x/.circleci/c.yml",
                "deep/.sops.yaml", "cloudbuild.yaml", "x.zip/inner.yaml"):
        assert rules.default_excluded(rel), rel
    for rel in ("app.yaml", "png", "a.png.txt", ".github", "github/x.yaml"):
        assert not rules.default_excluded(rel), rel


def test_defaults_apply_only_without_sourceignore_patterns():
    comments = rules_of({"sub/.sourceignore": "# nothing\n\n   \n"})
    comments.ignored("sub/.sourceignore", False)
    assert comments.flux_defaults
    some = rules_of({".gitignore": "*.log\n", "sub/.sourceignore": "*.tmp\n"})
    assert some.flux_defaults
    some.ignored("sub/.sourceignore", False)     # read as the walk meets it
    assert not some.flux_defaults
    assert flux_counts_patterns("#x\n!\n") and not flux_counts_patterns("#x\n \t\r\n#y\x0cz")


def test_vcs_files_are_out_unless_re_included():
    rules = rules_of({"a/.sourceignore": "!.gitmodules\n"})
    assert rules.ignored(".gitmodules", False) and rules.ignored("x/.gitattributes", False)
    assert not rules.ignored("a/.gitmodules", False)
    assert rules.ignored(".git", True) and rules.ignored("a/.git/HEAD", False)
    assert rules.ignored("a/.sourceignore", False) and rules.ignored(".gitignore", False)
