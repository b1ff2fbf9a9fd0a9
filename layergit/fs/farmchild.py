"""``python -m layergit.fs.farmchild OBJECTS_DIR``: the farm's writer process, which
fs.farmwriter starts and feeds (and says why it is a process)."""

from __future__ import annotations

import sys

from .farm import FarmDeposit
from .farmwriter import PIPE_BYTES, serve


def main(objects_dir: str) -> int:
    with open(0, "rb", buffering=PIPE_BYTES, closefd=False) as records, \
            open(1, "wb", closefd=False) as report:
        return serve(lambda: FarmDeposit(None, objects_dir, hand_over=False), records, report)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
