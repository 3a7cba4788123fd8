"""The gitignore pattern engine (core.gitignore): matching time bounded by the
name's length, whatever the pattern; its NFA agrees with a regular expression."""
from __future__ import annotations

import random
import re
import time

import pytest

from kubectl_gitops_run.core import gitignore
from kubectl_gitops_run.core.gitignore import compile_tokens, parse, parse_lines, tokenize

PATHOLOGICAL = [
    ("*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 10_000, False),
    ("*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 9_999 + "b", True),
    ("*a*a*a*a*a*a*a*a*a*a*a*a*a*[b]", "a" * 10_000, False),    # no literal tail to rule it out
    ("*a*?*a*?*a*?*a*?*a*?*a*?*a*?*c", "a" * 10_000, False),
    ("**/*a*a*a*a*a*a*a*a*a*a*a*a*a*[b]", "a/" * 2_000 + "a" * 6_000, False),
    ("a/**/a/**/a/**/a/**/a/**/a/**/[b]", "a/" * 5_000 + "c", False),
    ("a/**/a/**/a/**/a/**/a/**/a/**/[b]", "a/" * 5_000 + "b", True),
]


@pytest.mark.parametrize("pattern, name, matches", PATHOLOGICAL)
def test_pathological_patterns_take_linear_time(pattern, name, matches):
    p = parse(pattern.encode())
    start = time.perf_counter()
    assert p.match(name.encode()) is matches
    assert time.perf_counter() - start < 1.0


def as_regex(tokens: list) -> re.Pattern:
    return re.compile(b"".join(map(gitignore._regex, tokens)), re.DOTALL)


TOKENS = [ord("a"), ord("b"), ord("/"), gitignore.ANY, gitignore.STAR, gitignore.STAR_ALL,
          gitignore.OPT_DIRS, frozenset(b"ab")]


def test_nfa_agrees_with_a_regular_expression():
    rnd = random.Random(42)
    names = [bytes(rnd.choice(b"ab/") for _ in range(rnd.randint(0, 9))) for _ in range(300)]
    for _ in range(400):
        tokens = [rnd.choice(TOKENS) for _ in range(rnd.randint(2, 7))]
        if sum(t in gitignore._STARS for t in tokens if isinstance(t, str)) < 2:
            continue       # what the NFA is used for
        nfa, regex = gitignore._Nfa(tokens), as_regex(tokens)
        for name in names:
            assert nfa.match(name) is bool(regex.fullmatch(name)), (tokens, name)


@pytest.mark.parametrize("body, tokens", [
    (b"**/x", [gitignore.OPT_DIRS, ord("x")]),
    (b"a/**/b", [ord("a"), ord("/"), gitignore.OPT_DIRS, ord("b")]),
    (b"a/**", [ord("a"), ord("/"), gitignore.STAR_ALL]),
    (b"a**b", [ord("a"), gitignore.STAR, ord("b")]),           # unbounded '**' is '*'
    (b"a/**\\/b", [ord("a"), ord("/"), gitignore.STAR_ALL, ord("/"), ord("b")]),
    (b"[]a]", [frozenset(b"]a")]),
    (b"[!a]", [frozenset(range(1, 256)) - {ord("a"), ord("/")}]),
    (b"[a-c]", [frozenset(b"abc")]),
    (b"\\*", [ord("*")]),
])
def test_tokens(body, tokens):
    assert tokenize(body) == tokens


def test_literal_prefix_bounds_a_double_star_as_git_does():
    # git matches the part before the first wildcard literally, then the rest
    # as a pattern of its own, where a leading '**' counts as bounded
    p = parse(b"d/foo**/bar")
    assert [p.match(n) for n in (b"d/foobar", b"d/fooX/Y/bar", b"d/fo/bar")] == [True, True, False]


@pytest.mark.parametrize("body", [b"a[b", b"[[:nope:]]", b"x\\", b"[]"])
def test_malformed_patterns_never_match(body):
    p = parse(body)
    assert not any(p.match(n) for n in (body, b"a", b"ab", b"x", b"[", b"]"))


def test_match_helpers_agree_with_the_regex_they_stand_for():
    for body, names in [(b"*.yaml", [b"a.yaml", b".yaml", b"a/b.yaml", b"yaml"]),
                        (b"*/x", [b"a/x", b"a/b/x", b"x", b"/x"]),
                        (b"abc", [b"abc", b"abcd", b""])]:
        tokens = tokenize(body)
        regex = as_regex(tokens)
        for name in names:
            assert compile_tokens(tokens)(name) is bool(regex.fullmatch(name)), (body, name)


def test_lines():
    patterns = parse_lines("# c\n\n!a/\nb\\ \r\n  \n/\n!\n")
    assert [(p.text, p.negated, p.dir_only, p.basename) for p in patterns] == [
        ("!a/", True, True, True), ("b\\ ", False, False, True)]
