"""ops imports each operation on first use, and `ops.up` is the operation even
once the module `ops.up` is imported (issue 13: `ls` loads `sessions` alone)."""
from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import kubectl_gitops_run.ops as ops
assert "kubectl_gitops_run.ops.publish" not in sys.modules
import kubectl_gitops_run.ops.up, kubectl_gitops_run.ops.watch, kubectl_gitops_run.ops.sync
import kubectl_gitops_run.ops.down
for name in ("up", "watch", "sync", "down"):
    assert callable(getattr(ops, name)) and type(getattr(ops, name)).__name__ == "function", name
from kubectl_gitops_run.ops import Result, find_sessions, scanner
assert Result.__name__ == "Result" and find_sessions.__module__.endswith("sessions")
assert set(ops.__all__) <= set(dir(ops))
try:
    ops.nothing_of_the_kind
except AttributeError:
    pass
else:
    raise AssertionError("an unknown name must raise AttributeError")
"""


def test_operations_load_on_first_use_and_stay_functions():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
