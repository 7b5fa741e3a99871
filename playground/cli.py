"""Command line: ``playground`` and ``python -m playground`` (filled in by the ladder)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("playground: nothing here yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
