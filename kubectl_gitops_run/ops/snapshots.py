"""Snapshots of a source directory, checked before anything is uploaded."""
from __future__ import annotations

from typing import Callable

from ..adapters import digests
from ..adapters.scanner import Memo, check_yaml, scan
from ..core import fetchscope, helm, preflight
from ..core.snapshot import Snapshot
from .report import SILENT, Reporter


def scanner(source: str, max_file_size: int, cache: dict | None = None, *, path: str = "",
            include_keys: bool = False, decrypts: bool = True,
            report: Reporter = SILENT) -> Callable[[], Snapshot]:
    """Scan and check: every YAML file must parse, and the tree must pass the
    pre-flight for the applied `path` (core.preflight), before anything is
    uploaded. File digests are kept between scans in `cache`, and between
    commands on disk; the ignore rules' verdicts between scans (Memo). Files that may hold keys are left out, and SOPS files a
    session cannot decrypt are warned about, each said once."""
    if cache is None:
        cache = digests.load(source)
    said: set[str] = set()
    memo = Memo()

    def once(message: str) -> None:      # up scans twice: say each thing once
        if message not in said:
            said.add(message)
            report.warning(message)

    def run() -> Snapshot:
        before, skipped = dict(cache), []
        snapshot = scan(source, max_file_size=max_file_size, cache=cache,
                        include_keys=include_keys, skipped=skipped, memo=memo)
        if cache != before:     # unchanged on most syncs: spare the write
            digests.save(source, cache)
        if skipped:
            once(f"not uploading {len(skipped)} file(s) that may hold keys: "
                 f"{', '.join(skipped)} (pass --include-secrets to upload them)")
        chart = helm.is_chart(snapshot.entries, path)
        docs = check_yaml(snapshot, preflight.essentials,
                          skip=lambda key: chart and helm.is_template(key, path))
        preflight.check(docs, set(snapshot.entries), path, chart=chart, root=snapshot.root)
        # Flux fetches only what the build reads (core.fetchscope)
        snapshot.fetched = () if chart else fetchscope.scope(docs, set(snapshot.entries), path)
        sealed = [] if decrypts else preflight.encrypted(docs)
        if sealed:
            once(f"{', '.join(sealed)}: SOPS-encrypted, but the session has no decryption "
                 f"key, so Flux will fail on them; run up with --decryption-key FILE (an age key)")
        return snapshot
    return run
