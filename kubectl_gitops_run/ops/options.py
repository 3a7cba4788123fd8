"""What every syncing operation is told: limits, waiting, and its reporter."""
from __future__ import annotations

from dataclasses import dataclass

from ..adapters.scanner import DEFAULT_MAX_FILE_SIZE
from .report import SILENT, Reporter


@dataclass
class Options:
    timeout: float = 300
    wait: bool = True
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    report: Reporter = SILENT
    include_secrets: bool = False       # upload files that may hold keys, too
