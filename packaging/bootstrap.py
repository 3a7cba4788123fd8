# The zipapp's __main__.py, written into the archive by packaging/zipapp.py,
# which fills in the three constants below.
#
# Importing `kubernetes` straight from a zip costs seconds on every run (no
# bytecode can be cached inside it), so the first run unpacks the archive once
# into a per-user cache keyed by the build and the interpreter, compiles the
# bytecode there, and every later run imports from that directory. The unpack
# goes to a temporary directory that is renamed into place, so two concurrent
# first runs are safe: one rename wins, the other run uses the winner's copy.
# If the cache cannot be written, the plugin still runs, slowly, from the zip.
#
# The cache is 0700 and its files 0600 (umask 077 while unpacking). Before the
# unpacked copy is imported, it is checked against the stamp written when it
# was unpacked (every file's path, size and mtime, hashed with the build id);
# a copy that fails the check, or that another user could write, is not used.
import hashlib
import os
import stat
import sys

BUILD_ID = "@BUILD_ID@"
ENTRY_POINT = "@ENTRY_POINT@"
COMPLETE_ENTRY_POINT = "kubectl_gitops_run.cli.completion:main"

# Environment knobs (documented in the README):
#   KUBECTL_GITOPS_RUN_CACHE     cache root (default $XDG_CACHE_HOME or ~/.cache,
#                                then kubectl-gitops-run/zipapp)
#   KUBECTL_GITOPS_RUN_COMPLETE  set to 1 by the completion helper: run the
#                                completion engine instead of the CLI
#   KUBECTL_GITOPS_RUN_SELF      set here: how the completion engine re-runs the
#                                plugin (this archive)


def cache_root():
    root = os.environ.get("KUBECTL_GITOPS_RUN_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "kubectl-gitops-run")
    return os.path.join(root, "zipapp")


STAMP = ".stamp"


def _stamp(target):
    """A digest of the unpacked tree as it must be: the build id, then every
    file's path, size and mtime."""
    h = hashlib.sha256(BUILD_ID.encode())
    for top, dirs, files in os.walk(target):
        dirs.sort()
        for name in sorted(files):
            if name == STAMP and top == target:
                continue
            st = os.lstat(os.path.join(top, name))
            h.update(("%s\0%d\0%d\n" % (os.path.relpath(os.path.join(top, name), target),
                                          st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


def _trusted(target):
    """Ours alone, and unchanged since it was unpacked."""
    try:
        st = os.lstat(target)
        with open(os.path.join(target, STAMP)) as f:
            stamp = f.read().strip()
    except OSError:
        return False
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    private = stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o022
    return mine and private and stamp == _stamp(target)


def unpacked_dir(archive):
    """The directory holding this build's files with compiled bytecode, or None."""
    target = os.path.join(cache_root(), "%s-%s" % (BUILD_ID, sys.implementation.cache_tag))
    if os.path.isdir(target):
        return target if _trusted(target) else None
    umask = os.umask(0o077)
    try:
        return _unpack(archive, target)
    except Exception:  # a read-only or full disk must not stop the plugin
        return None
    finally:
        os.umask(umask)


def _unpack(archive, target):
    import compileall
    import py_compile
    import shutil
    import tempfile
    import time
    import zipfile

    root = os.path.dirname(target)
    os.makedirs(root, exist_ok=True)
    # Leftovers of runs that died mid-unpack (older than an hour).
    for name in os.listdir(root):
        if name.startswith(".unpack-"):
            path = os.path.join(root, name)
            try:
                if time.time() - os.stat(path).st_mtime > 3600:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass
    tmp = tempfile.mkdtemp(prefix=".unpack-", dir=root)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [n for n in zf.namelist() if n != "__main__.py"]
            zf.extractall(tmp, members)
        # PYTHONDONTWRITEBYTECODE (set in some environments) only stops the import
        # system from writing caches; compile explicitly, whatever it says.
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = False
        try:
            compileall.compile_dir(
                tmp, quiet=2, workers=1,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        finally:
            sys.dont_write_bytecode = saved
        with open(os.path.join(tmp, STAMP), "w") as f:
            f.write(_stamp(tmp))
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # not a lost race: a real failure
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _load(spec):
    import importlib

    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def run():
    archive = os.path.abspath(sys.argv[0] if os.path.isfile(sys.argv[0]) else sys.path[0])
    site = unpacked_dir(archive)
    if site is not None:
        # Import from the unpacked copy, not from the zip.
        sys.path[:] = [site] + [p for p in sys.path if os.path.abspath(p) != archive]
    os.environ["KUBECTL_GITOPS_RUN_SELF"] = archive
    if os.environ.pop("KUBECTL_GITOPS_RUN_COMPLETE", "") == "1" or \
            os.path.basename(sys.argv[0]).startswith("kubectl_complete-"):
        func = _load(COMPLETE_ENTRY_POINT)
        sys.exit(func(sys.argv[1:]))
    func = _load(ENTRY_POINT)
    sys.exit(func())


if __name__ == "__main__":
    run()
