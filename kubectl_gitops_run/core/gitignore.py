"""gitignore patterns, parsed and matched as git does (dir.c, wildmatch.c),
in time polynomial in the name: never by a backtracking search (pure).

Git compares bytes, so names and patterns are matched as UTF-8 bytes (`?`
is one byte, as in git). A pattern becomes a list of tokens; one with at
most one star is run as a regular expression, whose backtracking then costs
O(len(name) * len(pattern)); one with more stars is run as a bit-parallel
NFA, one step per byte of the name.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Callable

# Tokens besides literal bytes (ints) and byte classes (frozensets):
ANY = "?"                 # one byte but '/'
STAR = "*"                # any bytes but '/'
STAR_ALL = "**"           # any bytes ('**' at the end, or before an escaped slash)
OPT_DIRS = "**/"          # nothing, or any bytes ending in '/' ('**/' in wildmatch)
_STARS = (STAR, STAR_ALL, OPT_DIRS)
_SLASH = ord("/")
_SPECIAL = b"*?[\\"       # git's is_glob_special()


def _ascii(chars: str) -> frozenset[int]:
    return frozenset(chars.encode())


# wildmatch's [:name:] classes: git's ctype is ASCII-only, whatever the locale.
_CLASSES = {
    b"alnum": _ascii(string.ascii_letters + string.digits),
    b"alpha": _ascii(string.ascii_letters),
    b"blank": _ascii(" \t"),
    b"cntrl": frozenset(range(32)) | {127},
    b"digit": _ascii(string.digits),
    b"graph": frozenset(range(33, 127)),
    b"lower": _ascii(string.ascii_lowercase),
    b"print": frozenset(range(32, 127)),
    b"punct": _ascii(string.punctuation),
    b"space": _ascii(" \t\n\r"),          # git's isspace(): not \v or \f
    b"upper": _ascii(string.ascii_uppercase),
    b"xdigit": _ascii(string.hexdigits),
}


class _Never(Exception):
    """The pattern can never match (wildmatch's WM_ABORT_ALL): an unclosed
    '[', an unknown [:class:], or a trailing backslash."""


# How a PatternList finds a pattern: by the whole name, its end, its start, or by trying it.
LITERAL, SUFFIX, PREFIX, OTHER = "literal", "suffix", "prefix", "other"


@dataclass(frozen=True)
class Pattern:
    text: str                # the line as written, for messages
    negated: bool            # '!': re-include
    dir_only: bool           # trailing '/': directories only
    basename: bool           # matched against the last component only (no '/' in it)
    match: Callable[[bytes], bool]
    kind: str = OTHER
    literal: bytes = b""     # LITERAL: the name (or path); SUFFIX, PREFIX: its end, its start
    needle: bytes = b""      # bytes every match holds: a cheap test before `match`

    def matches(self, path: bytes, is_dir: bool, name: bytes | None = None) -> bool:
        """Does it match `path` ('/'-separated, relative to the pattern's
        directory; `name`: its last component, if known)?"""
        if self.dir_only and not is_dir:
            return False
        if self.basename:
            path = path.rpartition(b"/")[2] if name is None else name
        return self.needle in path and self.match(path)


class PatternList:
    """Patterns in the order written (one ignore file, or several in a row),
    the last match winning. Literal names and plain '*.ext' or 'prefix*'
    patterns are looked up rather than tried one by one: most lists are those."""

    def __init__(self, patterns: list[Pattern]):
        # a line written again makes its earlier copies moot: drop them
        last = {p.text: i for i, p in enumerate(patterns)}
        self.patterns = patterns = [p for i, p in enumerate(patterns) if last[p.text] == i]
        self._names: dict[bytes, list[int]] = {}
        self._paths: dict[bytes, list[int]] = {}
        groups: dict[str, list[int]] = {SUFFIX: [], PREFIX: [], OTHER: []}
        for i, p in enumerate(patterns):
            if p.kind == LITERAL:
                (self._names if p.basename else self._paths).setdefault(p.literal, []).append(i)
            else:
                groups[p.kind].append(i)
        self._suffixes = tuple(patterns[i].literal for i in groups[SUFFIX]), groups[SUFFIX][::-1]
        self._prefixes = tuple(patterns[i].literal for i in groups[PREFIX]), groups[PREFIX][::-1]
        self._others = groups[OTHER][::-1]
        # the bytes one of the others needs, all in one search: most names hold none
        needles = [patterns[i].needle for i in self._others]
        self._maybe = re.compile(b"|".join(map(re.escape, needles))).search \
            if all(needles) else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def check(self, path: bytes, is_dir: bool) -> bool | None:
        """True: ignored; False: re-included by a '!' pattern; None: no pattern matches."""
        name = path.rpartition(b"/")[2]
        best = -1
        if hits := self._names.get(name):
            best = self._last(hits, is_dir)
        if hits := self._paths.get(path):
            best = max(best, self._last(hits, is_dir))
        affixes, group = self._suffixes
        if affixes and name.endswith(affixes):     # one C call rules out the whole group
            best = self._first(group, best, path, name, is_dir)
        affixes, group = self._prefixes
        if affixes and name.startswith(affixes):
            best = self._first(group, best, path, name, is_dir)
        if self._others and (self._maybe is None or self._maybe(path)):
            best = self._first(self._others, best, path, name, is_dir)
        return None if best < 0 else not self.patterns[best].negated

    def _last(self, indexes: list[int], is_dir: bool) -> int:
        for i in reversed(indexes):
            if is_dir or not self.patterns[i].dir_only:
                return i
        return -1

    def _first(self, descending: list[int], best: int, path: bytes, name: bytes,
               is_dir: bool) -> int:
        """The highest index above `best` whose pattern matches, else `best`."""
        for i in descending:
            if i <= best:
                break
            if self.patterns[i].matches(path, is_dir, name):
                return i
        return best


def parse_lines(text: str | bytes) -> list[Pattern]:
    """The patterns of an ignore file's text (git's add_patterns_from_buffer)."""
    data = encode(text) if isinstance(text, str) else text
    data = data.removeprefix(b"\xef\xbb\xbf")       # a UTF-8 byte order mark
    patterns, parsed = [], {}
    for line in data.split(b"\n"):
        if line.startswith(b"#"):
            continue
        line = _trim_spaces(line.removesuffix(b"\r"))
        if line not in parsed:          # each distinct line is compiled once
            parsed[line] = parse(line)
        if parsed[line] is not None:
            patterns.append(parsed[line])
    return patterns


def encode(name: str) -> bytes:
    # surrogateescape: a name that is not UTF-8 keeps its own bytes
    return name.encode("utf-8", "surrogateescape")


def _trim_spaces(line: bytes) -> bytes:
    """Drop trailing spaces unless escaped with a backslash (git's trim_trailing_spaces)."""
    last_space, i = None, 0
    while i < len(line):
        c = line[i]
        if c == 0x20:
            last_space = i if last_space is None else last_space
        elif c == 0x5C:
            i += 1
            if i == len(line):
                return line
            last_space = None
        else:
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


def parse(line: bytes) -> Pattern | None:
    """One pattern (git's parse_path_pattern); None for an empty one."""
    text = line.decode("utf-8", "surrogateescape")
    negated = line.startswith(b"!")
    body = line[1:] if negated else line
    dir_only = body.endswith(b"/")
    body = body[:-1] if dir_only else body
    if not body:
        return None
    basename = b"/" not in body
    if not basename:
        # The rest is anchored to the pattern's directory. Git matches the part
        # before the first wildcard literally, then wildmatches the rest as a
        # pattern of its own: a '**' right there counts as bounded on the left.
        body = body.removeprefix(b"/")
    literal = len(body)
    for i, c in enumerate(body):
        if c in _SPECIAL:
            literal = i
            break
    try:
        tokens = tokenize(body, None if basename else literal)
    except _Never:
        return Pattern(text, negated, dir_only, basename, _never)
    if not basename and _anywhere(tokens):
        basename, tokens = True, tokens[1:]     # '**/name' is 'name'
    kind, fixed = _kind(tokens, basename)
    return Pattern(text, negated, dir_only, basename, compile_tokens(tokens), kind, fixed,
                   max(_literal_runs(tokens), key=len))


def _anywhere(tokens: list) -> bool:
    """Whether a path pattern is '**/' and then one component's pattern."""
    return tokens[:1] == [OPT_DIRS] and not any(
        t in (OPT_DIRS, STAR_ALL) if isinstance(t, str) else t == _SLASH
        for t in tokens[1:] if not isinstance(t, frozenset))


def _kind(tokens: list, basename: bool) -> tuple[str, bytes]:
    if all(isinstance(t, int) for t in tokens):
        return LITERAL, bytes(tokens)
    if basename and len(tokens) > 1:
        if tokens[0] == STAR and all(isinstance(t, int) for t in tokens[1:]):
            return SUFFIX, bytes(tokens[1:])
        if tokens[-1] == STAR and all(isinstance(t, int) for t in tokens[:-1]):
            return PREFIX, bytes(tokens[:-1])
    return OTHER, b""


def _literal_runs(tokens: list) -> list[bytes]:
    runs, run = [b""], bytearray()
    for t in tokens + [None]:
        if isinstance(t, int):
            run.append(t)
        else:
            runs.append(bytes(run))
            run.clear()
    return runs


def _never(_: bytes) -> bool:
    return False


def tokenize(body: bytes, bound_at: int | None = None) -> list:
    """wildmatch's reading of a pattern: literal bytes, classes and the wildcards
    above. A run of stars is '**' only when it has a '/' (or the pattern's
    start, or `bound_at`) on its left and a '/' (or the end) on its right."""
    out: list = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == 0x2A:                                         # '*'
            j = i
            while j < n and body[j] == 0x2A:
                j += 1
            left = i == 0 or body[i - 1] == _SLASH or i == bound_at
            if j - i > 1 and left and (j == n or body[j] == _SLASH):
                out.append(OPT_DIRS if j < n else STAR_ALL)
                j += j < n                                    # the '/' is part of it
            elif j - i > 1 and left and body[j:j + 2] == b"\\/":
                out.append(STAR_ALL)
            else:                                             # '**' elsewhere is '*'
                out.append(STAR)
            i = j
        elif c == 0x3F:                                       # '?'
            out.append(ANY)
            i += 1
        elif c == 0x5B:                                       # '['
            members, i = _bracket(body, i + 1)
            out.append(members)
        elif c == 0x5C:                                       # '\': the next byte as is
            if i + 1 == n:
                raise _Never()
            out.append(body[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return out


def _bracket(body: bytes, i: int) -> tuple[frozenset[int], int]:
    """A bracket expression starting after its '[': (the bytes it matches, the
    index after its ']'), as wildmatch reads one. It never matches '/'."""
    n = len(body)
    negated = i < n and body[i] in b"!^"
    i += negated
    members: set[int] = set()
    prev = 0                  # the byte a '-' makes a range from (0: none)
    while True:
        if i >= n:
            raise _Never()
        c = body[i]
        if c == 0x5C:                                          # '\x'
            i += 1
            if i >= n:
                raise _Never()
            c = body[i]
            members.add(c)
        elif c == 0x2D and prev and i + 1 < n and body[i + 1] != 0x5D:   # 'a-z'
            i += 1
            if body[i] == 0x5C:
                i += 1
                if i >= n:
                    raise _Never()
            members.update(range(prev, body[i] + 1))
            c = 0
        elif c == 0x5B and body[i + 1:i + 2] == b":":          # '[:name:]'
            c, i = _named_class(body, i, members)
        else:
            members.add(c)
        prev = c
        i += 1
        if i < n and body[i] == 0x5D:                           # ']'
            break
    if negated:
        members = set(range(1, 256)) - members
    return frozenset(members - {_SLASH}), i + 1


def _named_class(body: bytes, i: int, members: set[int]) -> tuple[int, int]:
    """'[:name:]' at body[i]: add its bytes; returns (prev, index of its last byte).
    Without a closing ':]' the '[' is an ordinary member."""
    end = body.find(b"]", i + 2)
    if end < 0:
        raise _Never()
    if end - (i + 2) < 1 or body[end - 1] != 0x3A:
        members.add(0x5B)
        return 0x5B, i
    name = body[i + 2:end - 1]
    if name not in _CLASSES:
        raise _Never()
    members.update(_CLASSES[name])
    return 0, end


# ---- matching -----------------------------------------------------------------

MAX_NAME = 4096       # PATH_MAX: no path the scan reads is longer


def compile_tokens(tokens: list) -> Callable[[bytes], bool]:
    """A matcher for the whole of a name: plain comparison when there is no
    wildcard, a regular expression for at most one star, else an NFA."""
    if sum(not isinstance(t, str) or t == ANY for t in tokens) > MAX_NAME:
        return _never      # it needs more bytes than any name has: skip building it
    if all(isinstance(t, int) for t in tokens):
        literal = bytes(tokens)
        return literal.__eq__
    stars = sum(t in _STARS for t in tokens if isinstance(t, str))
    if stars == 1 and tokens[0] == STAR and all(isinstance(t, int) for t in tokens[1:]):
        return _ends_with(bytes(tokens[1:]))                 # '*.yaml': git's ENDSWITH
    if stars <= 1:
        fullmatch = re.compile(b"".join(map(_regex, tokens)), re.DOTALL).fullmatch
        return lambda name: fullmatch(name) is not None
    return _Nfa(tokens).match


def _ends_with(suffix: bytes) -> Callable[[bytes], bool]:
    def match(name: bytes) -> bool:
        return name.endswith(suffix) and name.rfind(b"/", 0, len(name) - len(suffix)) < 0
    return match


def _regex(token) -> bytes:
    if isinstance(token, int):
        return re.escape(bytes([token]))
    if isinstance(token, frozenset):
        return _regex_class(token)
    return {ANY: rb"[^/]", STAR: rb"[^/]*", STAR_ALL: rb".*", OPT_DIRS: rb"(?:.*/)?"}[token]


def _regex_class(members: frozenset[int]) -> bytes:
    if not members:
        return rb"(?!)"
    return b"[" + b"".join(b"\\x%02x" % b for b in sorted(members)) + b"]"


class _Nfa:
    """Thompson's construction run bit-parallel: state k (bit k) means "the
    first k units matched"; every byte of the name is one step over all states
    at once, so a match costs O(len(name) * len(pattern)) at worst."""

    def __init__(self, tokens: list):
        units: list = []
        skip = 0    # OPT_DIRS = an entry, STAR_ALL and '/', the entry able to skip all three
        for t in tokens:
            if t == OPT_DIRS:
                skip |= 1 << len(units)
                units += [None, STAR_ALL, _SLASH]
            else:
                units.append(t)
        self.final = 1 << len(units)
        self.skip = skip
        masks: dict = {}                # unit -> the bits of the states before it
        for k, unit in enumerate(units):
            masks[unit] = masks.get(unit, 0) | 1 << k
        # A star's state loops, so it cannot be where a skip starts: hence the entry.
        self.free = masks.get(None, 0) | masks.get(STAR, 0) | masks.get(STAR_ALL, 0)
        # per byte: the states it moves past (advance) and the stars it stays in
        self.stay = [masks.get(STAR, 0) | masks.get(STAR_ALL, 0)] * 256
        self.stay[_SLASH] = masks.get(STAR_ALL, 0)
        self.advance = [masks.get(ANY, 0)] * 256
        self.advance[_SLASH] = 0
        for unit, mask in masks.items():
            if isinstance(unit, int):
                self.advance[unit] |= mask
            elif isinstance(unit, frozenset):
                for b in unit:
                    self.advance[b] |= mask
        runs = _literal_runs(tokens)
        self.head, self.tail = runs[1], runs[-1]     # what a match starts and ends with

    def _closure(self, states: int) -> int:
        while True:     # stars and entries may match nothing; an OPT_DIRS may be skipped
            more = states | (states & self.free) << 1 | (states & self.skip) << 3
            if more == states:
                return states
            states = more

    def match(self, name: bytes) -> bool:
        if not (name.startswith(self.head) and name.endswith(self.tail)):
            return False       # cheap, and most names fail here
        states = self._closure(1)
        advance, stay = self.advance, self.stay
        for b in name:
            states = self._closure((states & advance[b]) << 1 | (states & stay[b]))
            if not states:
                return False
        return bool(states & self.final)
