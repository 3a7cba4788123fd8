"""Sizes as people read them."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core.units import human_bytes


@pytest.mark.parametrize("n, expected", [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (int(12.5 * 1024 ** 2), "12.5 MiB"), (1024 ** 2 - 1, "1.0 MiB"), (3 * 1024 ** 3, "3.0 GiB"),
])
def test_human_bytes(n, expected):
    assert human_bytes(n) == expected
