"""Write the shell completion scripts into completions/ (`make completions`).

    python packaging/completions.py [--check]

The scripts come from kubectl_gitops_run.cli.completion.script(), the same text
`kubectl gitops-run completion SHELL` prints; --check exits 1 when a committed
script differs from it. completions/kubectl_complete-gitops_run (the helper
kubectl runs) is a hand-written file and is not generated.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from kubectl_gitops_run.cli.completion import script  # noqa: E402

FILES = {"bash": "kubectl-gitops_run.bash", "zsh": "_kubectl-gitops_run",
         "fish": "kubectl-gitops_run.fish"}


def expected() -> dict[Path, str]:
    return {ROOT / "completions" / name: script(shell) for shell, name in FILES.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    stale = []
    for path, text in expected().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"stale completion scripts: {', '.join(stale)}; run `make completions`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
