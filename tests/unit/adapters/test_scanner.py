from __future__ import annotations

import errno
import hashlib
import os
import socket
import sys

import pytest
import yaml

from kubectl_gitops_run.adapters import scanner as snapshot
from kubectl_gitops_run.adapters.scanner import (
    DEFAULT_MAX_FILE_SIZE, check_yaml, ignore_rules, scan, watch_filter)
from kubectl_gitops_run.core.snapshot import revision
from kubectl_gitops_run.errors import SnapshotError


def write(root, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)


def keys(root, **kw) -> list[str]:
    return list(scan(root, **kw).entries)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- scan: keys, digests ---------------------------------------------------

def test_keys_and_md5s_of_a_small_tree(tmp_path):
    write(tmp_path, {"app.yaml": "kind: A\n", "sub/b.yaml": "kind: B\n",
                     "sub/deep/c.txt": b"\x00\x01binary"})
    snap = scan(tmp_path)
    assert list(snap.entries) == ["app.yaml", "sub/b.yaml", "sub/deep/c.txt"]
    e = snap.entries["sub/deep/c.txt"]
    assert e.key == "sub/deep/c.txt"
    assert e.path == str(tmp_path / "sub" / "deep" / "c.txt")
    assert e.size == 8 and e.md5 == md5(b"\x00\x01binary")
    assert snap.etags() == {"app.yaml": md5(b"kind: A\n"), "sub/b.yaml": md5(b"kind: B\n"),
                            "sub/deep/c.txt": md5(b"\x00\x01binary")}
    assert snap.total_bytes == 8 + 8 + 8
    assert snap.root == str(tmp_path)
    assert snap.revision == revision(snap.etags())


def test_scan_of_a_relative_root(tmp_path, monkeypatch):
    write(tmp_path, {"app/x.yaml": "a: 1\n"})
    monkeypatch.chdir(tmp_path)
    snap = scan("./app")
    assert list(snap.entries) == ["x.yaml"]
    assert snap.entries["x.yaml"].path == str(tmp_path / "app" / "x.yaml")


def test_large_file_is_hashed_in_chunks_correctly(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    write(tmp_path, {"blob.bin": data})
    assert scan(tmp_path).entries["blob.bin"].md5 == md5(data)


def test_only_regular_files_are_entries(tmp_path):
    write(tmp_path, {"a.yaml": "a: 1\n"})
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        assert keys(tmp_path) == ["a.yaml"]
    finally:
        sock.close()


# --- ignore rules ------------------------------------------------------------

def test_nested_gitignore_is_scoped_and_can_negate(tmp_path):
    write(tmp_path, {
        ".gitignore": "*.log\nlocal.yaml\n",
        "root.log": "x", "local.yaml": "a: 1\n", "keep.yaml": "a: 1\n",
        "sub/.gitignore": "!keep.log\n/anchored.yaml\nsecret.yaml\n",
        "sub/keep.log": "x", "sub/other.log": "x", "sub/anchored.yaml": "a: 1\n",
        "sub/deeper/anchored.yaml": "a: 1\n", "sub/deeper/secret.yaml": "a: 1\n",
        "secret.yaml": "a: 1\n",          # sub/.gitignore does not reach up here
        "other/keep.log": "x",            # the negation is scoped to sub/
    })
    assert keys(tmp_path) == ["keep.yaml", "secret.yaml", "sub/deeper/anchored.yaml",
                              "sub/keep.log"]


def test_deeper_rules_win_and_last_match_wins(tmp_path):
    write(tmp_path, {
        ".gitignore": "!*.yaml\n",
        "a/.gitignore": "*.yaml\n!want.yaml\n",
        "a/b/.gitignore": "!back.yaml\n",
        "a/x.yaml": "", "a/want.yaml": "", "a/b/back.yaml": "", "a/b/no.yaml": "",
    })
    assert keys(tmp_path) == ["a/b/back.yaml", "a/want.yaml"]


def test_sourceignore_at_root_and_nested(tmp_path):
    write(tmp_path, {
        ".sourceignore": "docs/\n*.md\n",
        "docs/x.yaml": "", "README.md": "", "app.yaml": "",
        "sub/.sourceignore": "tmp-*\n!NOTES.md\n",
        "sub/tmp-1.yaml": "", "sub/NOTES.md": "", "sub/real.yaml": "", "tmp-2.yaml": "",
    })
    assert keys(tmp_path) == ["app.yaml", "sub/NOTES.md", "sub/real.yaml", "tmp-2.yaml"]


def test_sourceignore_overrides_gitignore_in_the_same_directory(tmp_path):
    write(tmp_path, {".gitignore": "gen.yaml\nother.yaml\n", ".sourceignore": "!gen.yaml\n",
                     "gen.yaml": "", "other.yaml": ""})
    assert keys(tmp_path) == ["gen.yaml"]


def test_negation_cannot_reach_into_an_excluded_directory(tmp_path):
    write(tmp_path, {".gitignore": "build/\n", "build/.gitignore": "!*\n",
                     "build/out.yaml": "", "app.yaml": ""})
    assert keys(tmp_path) == ["app.yaml"]


def test_directory_only_patterns(tmp_path):
    write(tmp_path, {".sourceignore": "build/\n", "build/out.yaml": "",
                     "sub/build/out.yaml": "", "other/build": "a file named build"})
    assert keys(tmp_path) == ["other/build"]


def test_default_excludes(tmp_path):
    write(tmp_path, {
        "app.yaml": "", "logo.png": b"\x89PNG", "sub/pic.JPEG.txt": "",
        "sub/photo.jpg": "", "bundle.tar.gz": "", "x.zip": "",
        ".github/workflows/ci.yaml": "", "sub/.github/x.yaml": "", ".circleci/config.yml": "",
        ".git/config": "", ".git/HEAD": "", "vendor/.git/HEAD": "",
        ".gitmodules": "", ".gitattributes": "", ".travis.yml": "",
        "sub/.sops.yaml": "", ".flux.yaml": "", "deep/er/.goreleaser.yml": "",
        "cloudbuild.yaml": "", "sub/cloudbuild.yaml": "",
    })
    assert keys(tmp_path) == ["app.yaml", "sub/pic.JPEG.txt"]


def test_sourceignore_can_reinclude_a_default_exclude_but_not_git(tmp_path):
    write(tmp_path, {".sourceignore": "!logo.png\n!.git/\n!.gitignore\n",
                     "logo.png": b"\x89PNG", ".git/HEAD": "", ".gitignore": ""})
    assert keys(tmp_path) == ["logo.png"]


def test_ignore_files_are_not_in_the_snapshot(tmp_path):
    write(tmp_path, {".gitignore": "", ".sourceignore": "", "sub/.gitignore": "",
                     "sub/.sourceignore": "", "sub/app.yaml": ""})
    assert keys(tmp_path) == ["sub/app.yaml"]


def test_ignore_rules_as_a_watcher_callback(tmp_path):
    write(tmp_path, {".gitignore": "build/\n*.log\n", "build/x.yaml": "",
                     "build/.gitignore": "!x.yaml\n", "app.yaml": "", "logs/a.log": ""})
    rules = watch_filter(str(tmp_path))
    assert rules("build/") and rules("build")          # trailing '/' or the file system
    assert rules("build/x.yaml")                      # under an ignored directory
    assert rules("logs/a.log") and rules("gone.log")  # a path that no longer exists
    assert not rules("app.yaml") and not rules("logs") and not rules(".")
    assert rules(".git/") and rules("sub/.git/") and rules(".sourceignore")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "build").write_text("a file named build")
    assert not rules("other/build")
    assert ignore_rules(str(tmp_path)).ignored("other/build", True)


# --- symlinks ------------------------------------------------------------------

def test_symlink_to_a_file_inside_the_tree_is_included(tmp_path):
    write(tmp_path, {"real/a.yaml": "a: 1\n"})
    (tmp_path / "link.yaml").symlink_to("real/a.yaml")
    snap = scan(tmp_path)
    assert list(snap.entries) == ["link.yaml", "real/a.yaml"]
    assert snap.entries["link.yaml"].md5 == md5(b"a: 1\n")
    assert open(snap.entries["link.yaml"].path, "rb").read() == b"a: 1\n"


def test_escaping_and_dangling_symlinks_are_skipped(tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: 1\n")
    root = tmp_path / "root"
    write(root, {"a.yaml": ""})
    (root / "out.yaml").symlink_to(outside)
    (root / "rel-out.yaml").symlink_to("../outside.yaml")
    (root / "dangling.yaml").symlink_to("nowhere.yaml")
    (root / "self.yaml").symlink_to("self.yaml")   # a loop
    assert keys(root) == ["a.yaml"]


def test_symlinked_directories_are_not_followed(tmp_path):
    write(tmp_path, {"root/real/a.yaml": "", "elsewhere/b.yaml": ""})
    root = tmp_path / "root"
    (root / "alias").symlink_to("real", target_is_directory=True)
    (root / "loop").symlink_to(".", target_is_directory=True)        # a cycle
    (root / "real" / "up").symlink_to("..", target_is_directory=True)
    (root / "out").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert keys(root) == ["real/a.yaml"]


def test_root_reached_through_a_symlink(tmp_path):
    write(tmp_path, {"real/a.yaml": ""})
    (tmp_path / "real" / "b.yaml").symlink_to("a.yaml")
    (tmp_path / "via").symlink_to("real", target_is_directory=True)
    assert keys(tmp_path / "via") == ["a.yaml", "b.yaml"]


# --- errors --------------------------------------------------------------------

def test_size_limit(tmp_path):
    write(tmp_path, {"big/blob.bin": b"x" * 150, "ok.bin": b"x" * 100})
    with pytest.raises(SnapshotError) as err:
        scan(tmp_path, max_file_size=100)
    assert str(err.value) == ("big/blob.bin is 150 B, over the 100 B limit (raise it with "
                              "--max-file-size, or list the file in .sourceignore)")
    (tmp_path / "big" / "blob.bin").unlink()
    assert keys(tmp_path, max_file_size=100) == ["ok.bin"]   # at the limit is fine


def test_size_limit_in_mib(tmp_path):
    assert DEFAULT_MAX_FILE_SIZE == 10 * 1024 * 1024
    with open(tmp_path / "huge.bin", "wb") as f:   # sparse: no real 12 MiB written
        f.truncate(12 * 1024 * 1024 + 512 * 1024)
    with pytest.raises(SnapshotError, match=r"^huge\.bin is 12\.5 MiB, over the 10\.0 MiB limit"):
        scan(tmp_path)
    with open(tmp_path / "huge.bin", "r+b") as f:  # rounds to the limit: say bytes
        f.truncate(DEFAULT_MAX_FILE_SIZE + 1)
    with pytest.raises(SnapshotError, match=r"is 10485761 B, over the 10485760 B limit"):
        scan(tmp_path)


def test_missing_root_file_root_and_empty_tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SnapshotError, match=r"^directory \./app does not exist$"):
        scan("./app")
    (tmp_path / "app").write_text("")
    with pytest.raises(SnapshotError, match=r"^\./app is not a directory$"):
        scan("./app")
    (tmp_path / "app").unlink()
    write(tmp_path, {"app/.sourceignore": "*.yaml\n", "app/x.yaml": "", "app/.git/HEAD": "",
                     "app/empty/.gitignore": ""})
    with pytest.raises(SnapshotError) as err:
        scan("./app")
    assert str(err.value) == "./app has no files to sync (after .sourceignore/.gitignore rules)"


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="root can read anything")
def test_unreadable_file(tmp_path):
    write(tmp_path, {"secret.yaml": "a: 1\n"})
    (tmp_path / "secret.yaml").chmod(0)
    with pytest.raises(SnapshotError, match=r"^secret\.yaml: permission denied"):
        scan(tmp_path)


# --- check_yaml ------------------------------------------------------------------

@pytest.mark.parametrize("loader", ["C", "pure"])
def test_invalid_yaml_names_file_line_and_column(tmp_path, monkeypatch, loader):
    if loader == "pure":   # the fallback when libyaml is missing
        monkeypatch.setattr(snapshot, "_YAML_LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    write(tmp_path, {"deploy/app.yaml": "a: 1\nb:\n  c: d: e\n", "z/bad.yaml": "a: [\n"})
    with pytest.raises(SnapshotError) as err:
        check_yaml(scan(tmp_path))
    # libyaml says "... allowed in this context", PyYAML "... allowed here"
    assert str(err.value).startswith("deploy/app.yaml: invalid YAML at line 3, column 7: "
                                     "mapping values are not allowed ")
    assert "\n" not in str(err.value)


def test_yml_files_are_checked_too(tmp_path):
    write(tmp_path, {"a.yaml": "a: 1\n", "b.yml": "key: [unclosed\n"})
    with pytest.raises(SnapshotError, match=r"^b\.yml: invalid YAML at line 2"):
        check_yaml(scan(tmp_path))


def test_skipped_files_are_not_yaml_checked(tmp_path):
    """A Helm chart's templates hold Go templates, not YAML."""
    write(tmp_path, {"Chart.yaml": "name: x\n", "templates/cm.yaml": "a: {{ .b }}: c\n"})
    docs = check_yaml(scan(tmp_path), skip=lambda key: key.startswith("templates/"))
    assert set(docs) == {"Chart.yaml"}
    with pytest.raises(SnapshotError, match=r"^templates/cm\.yaml: invalid YAML"):
        check_yaml(scan(tmp_path))


def test_multi_document_yaml_is_fine_and_every_document_is_parsed(tmp_path):
    write(tmp_path, {"all.yaml": "---\nkind: A\n---\nkind: B\n...\n---\n", "empty.yaml": ""})
    check_yaml(scan(tmp_path))
    write(tmp_path, {"all.yaml": "---\nkind: A\n---\nkind: B\n---\nx: {\n"})
    with pytest.raises(SnapshotError, match=r"^all\.yaml: invalid YAML at line"):
        check_yaml(scan(tmp_path))


def test_non_yaml_files_are_not_parsed(tmp_path):
    write(tmp_path, {"notes.txt": "a: b: c\n", "kustomization.json": "{[", "ok.yaml": "a: 1\n"})
    check_yaml(scan(tmp_path))


def test_yaml_must_be_utf8(tmp_path):
    write(tmp_path, {"latin1.yaml": "a: 1\nname: caf\xe9\n".encode("latin-1")})
    with pytest.raises(SnapshotError, match=r"^latin1\.yaml: not valid UTF-8 at line 2"):
        check_yaml(scan(tmp_path))


# --- revision --------------------------------------------------------------------

# --- cache -----------------------------------------------------------------------

def age(path, seconds=60):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


def test_cache_gives_the_same_result_and_is_used(tmp_path):
    write(tmp_path, {"a.yaml": "a: 1\n", "b/c.yaml": "c: 1\n"})
    for p in ("a.yaml", "b/c.yaml"):
        age(tmp_path / p)
    cache: dict = {}
    first = scan(tmp_path, cache=cache)
    assert first == scan(tmp_path)
    path = str(tmp_path / "a.yaml")
    assert cache[path][4] == md5(b"a: 1\n") and len(cache) == 2
    # Prove a hit skips reading: a forged digest with the same stat comes back.
    cache[path] = (*cache[path][:4], "f" * 32, "")
    assert scan(tmp_path, cache=cache).entries["a.yaml"].md5 == "f" * 32


def test_cache_notices_changes(tmp_path):
    write(tmp_path, {"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"})
    age(tmp_path / "a.yaml", 120)
    age(tmp_path / "b.yaml", 120)
    cache: dict = {}
    scan(tmp_path, cache=cache)
    # a different size
    (tmp_path / "a.yaml").write_text("a: 22\n")
    age(tmp_path / "a.yaml", 120)
    assert scan(tmp_path, cache=cache).entries["a.yaml"].md5 == md5(b"a: 22\n")
    # the same size, other content, and only the mtime moved (set explicitly)
    st = os.stat(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").write_text("b: 2\n")
    os.utime(tmp_path / "b.yaml", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    snap = scan(tmp_path, cache=cache)
    assert snap.entries["b.yaml"].md5 == md5(b"b: 2\n")
    assert snap == scan(tmp_path)
    # files that are gone leave the cache
    (tmp_path / "b.yaml").unlink()
    scan(tmp_path, cache=cache)
    assert list(cache) == [str(tmp_path / "a.yaml")]


def test_cache_skips_files_written_just_now(tmp_path):
    # Within the timestamp tick a file can change without its mtime moving.
    write(tmp_path, {"a.yaml": "a: 1\n"})
    cache: dict = {}
    scan(tmp_path, cache=cache)
    assert cache == {}
    (tmp_path / "a.yaml").write_text("a: 2\n")   # same size, maybe the same mtime
    assert scan(tmp_path, cache=cache).entries["a.yaml"].md5 == md5(b"a: 2\n")


# --- Flux's selection: defaults only without .sourceignore patterns -----------------

def test_a_sourceignore_pattern_anywhere_drops_fluxs_default_excludes(tmp_path):
    # source-controller's archiver applies its default excludes only to a
    # repository whose .sourceignore files hold no pattern
    write(tmp_path, {"app.yaml": "", "logo.png": b"\x89PNG", ".github/ci.yaml": "",
                     ".gitmodules": "", "docs/.sourceignore": "# only a comment\n"})
    assert keys(tmp_path) == ["app.yaml"]
    write(tmp_path, {"docs/.sourceignore": "*.md\n"})
    assert keys(tmp_path) == [".github/ci.yaml", "app.yaml", "logo.png"]


def test_gitignore_cannot_bring_back_a_default_exclude(tmp_path):
    # .gitignore says what is committed; Flux still leaves the image out
    write(tmp_path, {".gitignore": "!logo.png\n", "logo.png": b"\x89PNG", "app.yaml": ""})
    assert keys(tmp_path) == ["app.yaml"]


def test_a_default_excluded_file_is_not_read(tmp_path):
    write(tmp_path, {"app.yaml": "", "bundle.zip": b"x" * 200})
    assert keys(tmp_path, max_file_size=100) == ["app.yaml"]    # no "over the limit"


# --- ignore files that would hang or never end ---------------------------------------

@pytest.mark.timeout(20)
def test_a_fifo_ignore_file_is_not_read(tmp_path):
    write(tmp_path, {"app.yaml": "", "sub/x.yaml": ""})
    os.mkfifo(tmp_path / ".gitignore")       # opening it would wait for a writer forever
    os.mkfifo(tmp_path / "sub" / ".sourceignore")
    assert keys(tmp_path) == ["app.yaml", "sub/x.yaml"]
    assert not watch_filter(str(tmp_path))("app.yaml")


@pytest.mark.timeout(20)
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_an_ignore_file_linked_to_a_device_is_not_read(tmp_path):
    write(tmp_path, {"app.yaml": ""})
    (tmp_path / ".gitignore").symlink_to("/dev/zero")    # reading it never ends
    (tmp_path / ".sourceignore").symlink_to(tmp_path)    # a directory
    assert keys(tmp_path) == ["app.yaml"]


def test_an_ignore_file_over_the_cap_is_an_error(tmp_path):
    write(tmp_path, {"app.yaml": "", "sub/x.yaml": ""})
    with open(tmp_path / "sub" / ".gitignore", "wb") as f:   # sparse: nothing really written
        f.truncate(snapshot.IGNORE_FILE_LIMIT + 1)
    with pytest.raises(SnapshotError) as err:
        scan(tmp_path)
    assert str(err.value) == ("sub/.gitignore is larger than 1.0 MiB, the limit for an "
                              "ignore file; is it really one?")
    with open(tmp_path / "sub" / ".gitignore", "r+b") as f:
        f.truncate(snapshot.IGNORE_FILE_LIMIT)    # at the cap is fine
    assert keys(tmp_path) == ["app.yaml", "sub/x.yaml"]


# --- depth -------------------------------------------------------------------------

def chain(top, name: str, depth: int) -> None:
    """Directories top/name/name/... `depth` deep, made one level at a time."""
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            fd, old = os.open(name, os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        with open(os.open("x.yaml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("a: 1\n")
    finally:
        os.close(fd)


def unchain(top, name: str) -> None:
    """Remove what chain() made, a level at a time (Python 3.11's rmtree recurses)."""
    while (top / name / name).is_dir():
        os.rename(top / name / name, top / "next")
        os.rmdir(top / name)
        os.rename(top / "next", top / name)
    (top / name / "x.yaml").unlink()
    (top / name).rmdir()


def test_a_tree_deeper_than_pythons_stack_is_scanned(tmp_path):
    chain(tmp_path, "d", 1500)                    # 3000 characters: within PATH_MAX
    try:
        (tmp_path / ".gitignore").write_text("*.log\n")
        assert keys(tmp_path) == ["d/" * 1500 + "x.yaml"]
    finally:
        unchain(tmp_path, "d")


def test_a_tree_deeper_than_path_max_is_one_error(tmp_path):
    write(tmp_path, {"app.yaml": ""})
    chain(tmp_path, "dd", 2200)                   # 'dd/' * 2200: past PATH_MAX (4096)
    try:
        too_long = (r"^cannot read (directory )?dd/dd/dd/dd/\.\.\./(dd|\.gitignore|\.sourceignore)"
                    r" \(\d{4} directories deep\): File name too long; list a directory above "
                    r"it in \.sourceignore, e\.g\. dd/$")
        with pytest.raises(SnapshotError, match=too_long):
            scan(tmp_path)
        (tmp_path / ".sourceignore").write_text("dd/\n")     # the way out it names
        assert keys(tmp_path) == ["app.yaml"]
    finally:
        unchain(tmp_path, "dd")


@pytest.mark.parametrize("loader", ["C", "pure"])
def test_deeply_nested_yaml_is_one_error(tmp_path, monkeypatch, loader):
    if loader == "pure":
        monkeypatch.setattr(snapshot, "_YAML_LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    write(tmp_path, {"deep.yaml": "[" * 100_000 + "]" * 100_000 + "\n",
                     "blocks.yaml": "- " * 5000 + "x\n"})
    with pytest.raises(SnapshotError, match=r"^blocks\.yaml: invalid YAML"):
        check_yaml(scan(tmp_path))
    (tmp_path / "blocks.yaml").unlink()
    with pytest.raises(SnapshotError, match=r"^deep\.yaml: invalid YAML"):
        check_yaml(scan(tmp_path))


# --- roots that are never an app -------------------------------------------------------

def test_the_file_system_root_is_refused():
    # max_file_size=0: were it not refused, the first file would fail at once
    with pytest.raises(SnapshotError) as err:
        scan("/", max_file_size=0)
    assert str(err.value) == ("refusing to sync /: it is the root of the file system; pass "
                              "the directory that holds your app's manifests")


def test_the_home_directory_is_refused(tmp_path, monkeypatch):
    write(tmp_path, {"home/app/x.yaml": ""})
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(SnapshotError, match=r"^refusing to sync .*/home: it is your home dir"):
        scan(tmp_path / "home")
    monkeypatch.chdir(tmp_path / "home" / "app")
    with pytest.raises(SnapshotError, match=r"^refusing to sync \.\.: it is your home directory"):
        scan("..")
    assert keys(tmp_path / "home" / "app") == ["x.yaml"]


# --- key material --------------------------------------------------------------------

KEY_FILES = {
    ".env": "PASSWORD=x\n", "sub/.env.production": "", "id_rsa": "", "keys/id_ed25519": "",
    "tls/server.pem": "", "tls/tls.key": "", "sops/age.agekey": "", "keys.txt": "",
    "kubeconfig": "", "dev.kubeconfig": "", "terraform.tfstate": "{}",
    "terraform.tfstate.backup": "{}", "certs/client.p12": b"\x30", "win.pfx": b"\x30",
    ".netrc": "", ".npmrc": "",
}
KEPT = {"app.yaml": "kind: A\n", ".env.example": "PASSWORD=\n", "id_rsa.pub": "ssh-rsa AAAA\n",
        "keys.yaml": "", "tls/README": ""}


def test_key_files_are_left_out_and_named(tmp_path):
    write(tmp_path, {**KEY_FILES, **KEPT})
    skipped: list[str] = []
    assert list(scan(tmp_path, skipped=skipped).entries) == sorted(KEPT)
    assert skipped == sorted(KEY_FILES)
    everything = scan(tmp_path, include_keys=True, skipped=(none := []))
    assert list(everything.entries) == sorted({**KEY_FILES, **KEPT}) and none == []


KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    server: https://prod.example.com
  name: prod
contexts: []
kind: Config
users:
- name: admin
  user:
    token: s3cr3t
"""
SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: tls
stringData:
  tls.key: |
    -----BEGIN PRIVATE KEY-----
    MIIE...
    -----END PRIVATE KEY-----
"""


def test_files_that_are_keys_are_known_by_their_content(tmp_path):
    write(tmp_path, {
        "cluster/config": KUBECONFIG, "deploy/prod.yaml": KUBECONFIG,
        "ssh/deploy": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n",
        "sops/age": "# created: 2026-01-01\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQ\n",
        "secret.yaml": SECRET, "app.yaml": "kind: Config\n",    # manifests that only look close
    })
    cache: dict = {}
    skipped: list[str] = []
    assert list(scan(tmp_path, cache=cache, skipped=skipped).entries) == ["app.yaml",
                                                                          "secret.yaml"]
    assert skipped == ["cluster/config", "deploy/prod.yaml", "sops/age", "ssh/deploy"]
    for p in ("cluster/config", "sops/age"):
        age(tmp_path / p)
    scan(tmp_path, cache=cache)
    assert cache[str(tmp_path / "sops" / "age")][5] == "age key"   # remembered with the digest
    skipped.clear()
    scan(tmp_path, cache=cache, skipped=skipped)
    assert skipped == ["cluster/config", "deploy/prod.yaml", "sops/age", "ssh/deploy"]


def test_a_tree_of_keys_only_says_so(tmp_path):
    write(tmp_path, {"id_rsa": "", ".env": ""})
    with pytest.raises(SnapshotError) as err:
        scan(tmp_path)
    assert str(err.value) == (
        f"{tmp_path} has no files to sync (after .sourceignore/.gitignore rules and leaving out "
        f"files that may hold keys: .env, id_rsa); pass --include-secrets to upload them")
    assert list(scan(tmp_path, include_keys=True).entries) == [".env", "id_rsa"]


def test_nothing_to_sync_names_a_few_key_files():
    assert snapshot.nothing_to_sync("app", []) == (
        "app has no files to sync (after .sourceignore/.gitignore rules)")
    assert snapshot.nothing_to_sync("app", ["a", "b", "c", "d", "e"]).endswith(
        "may hold keys: a, b, c and 2 more); pass --include-secrets to upload them")


# --- what cannot be read: the way out ------------------------------------------------

@pytest.mark.parametrize("err, way_out", [
    (errno.EACCES, "fix its permissions, or list it in .sourceignore"),
    (errno.EIO, "fix it, or list it in .sourceignore"),
])
def test_cannot_read_says_the_way_out(err, way_out):
    e = OSError(err, os.strerror(err))
    assert snapshot.cannot_read("directory ", "locked", e) == (
        f"cannot read directory locked: {os.strerror(err)}; {way_out}")


def test_a_path_too_long_is_shown_by_its_first_directories():
    e = OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
    assert snapshot.cannot_read("", "top/" + "d/" * 3000 + ".gitignore", e) == (
        "cannot read top/d/d/d/.../.gitignore (3001 directories deep): File name too long; "
        "list a directory above it in .sourceignore, e.g. top/")
    assert snapshot.cannot_read("directory ", "a/b/c/d/e", e).startswith(
        "cannot read directory a/b/c/d/e: ")     # short enough to show whole


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_an_unreadable_directory_says_the_way_out(tmp_path):
    write(tmp_path, {"app.yaml": "", "locked/x.yaml": ""})
    (tmp_path / "locked").chmod(0)
    try:
        with pytest.raises(SnapshotError, match=r"^cannot read directory locked: Permission "
                                                r"denied; fix its permissions, or list it in "
                                                r"\.sourceignore$"):
            scan(tmp_path)
        (tmp_path / ".sourceignore").write_text("locked/\n")
        assert keys(tmp_path) == ["app.yaml"]
    finally:
        (tmp_path / "locked").chmod(0o755)


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names are UTF-8")
def test_a_file_name_that_is_not_utf8_is_shown_escaped_with_the_way_out(tmp_path):
    write(tmp_path, {"app.yaml": ""})
    with open(os.path.join(os.fsencode(tmp_path), b"sub\xff\xfe.yaml"), "w"):
        pass
    with pytest.raises(SnapshotError) as err:
        scan(tmp_path)
    assert str(err.value) == ('"sub\\xff\\xfe.yaml": file name is not valid UTF-8 (Flux needs '
                              'UTF-8 names); rename it, or list it in .sourceignore')
    (tmp_path / ".sourceignore").write_bytes(b"sub\xff\xfe.yaml\n")
    assert keys(tmp_path) == ["app.yaml"]


# --- the memo between scans --------------------------------------------------

def test_a_memo_gives_the_same_snapshot_as_a_fresh_scan_whatever_changed(tmp_path):
    """The memo holds each directory's verdicts while its names and ignore
    files stay the same: every change below must still be seen."""
    write(tmp_path, {"app.yaml": "kind: A\n", "sub/b.yaml": "kind: B\n", "sub/c.log": "x"})
    memo, skipped = snapshot.Memo(), []
    assert keys(tmp_path, memo=memo) == ["app.yaml", "sub/b.yaml", "sub/c.log"]
    changes = [
        {"sub/.gitignore": "*.log\n"},                    # same names below, new rules
        {".gitignore": "sub/b.yaml\n"},                  # a rule from the directory above
        {"sub/id_rsa": "not a key by content"},           # a new name, a key file's
        {"sub/logo.png": "png"},                          # one of Flux's default excludes
        {".sourceignore": "nothing-here\n"},             # ... which a .sourceignore turns off
    ]
    for change in changes:
        write(tmp_path, change)
        with_memo = scan(tmp_path, memo=memo, skipped=skipped)
        assert list(with_memo.entries) == keys(tmp_path), change
    assert list(with_memo.entries) == ["app.yaml", "sub/logo.png"]
    assert "sub/id_rsa" in skipped


def test_a_memo_forgets_the_directories_that_are_gone(tmp_path):
    write(tmp_path, {"a/x.yaml": "kind: A\n", "b/y.yaml": "kind: B\n"})
    memo = snapshot.Memo()
    scan(tmp_path, memo=memo)
    assert set(memo.dirs) == {"", "a/", "b/"}
    (tmp_path / "b" / "y.yaml").unlink()
    (tmp_path / "b").rmdir()
    scan(tmp_path, memo=memo)
    assert set(memo.dirs) == {"", "a/"}
