"""
Command line: C{python -m nova.virt.tinyimage [OUTPUT_DIR]} (see
C{tools/build-tiny-image}). Prints the output directory and whether the
image was built or reused; exits 1 with one line on stderr on failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nova.virt.tinyimage.build import build, default_output_dir
from nova.virt.tinyimage.packages import TinyImageError


def main(argv: list[str]) -> int:
    """
    @param argv: C{[OUTPUT_DIR]} or nothing.
    @return: the exit status.
    """
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: build-tiny-image [OUTPUT_DIR]", file=sys.stderr)
        return 2
    out = Path(argv[0]) if argv else default_output_dir()
    try:
        manifest = build(out, log=lambda msg: print(msg, file=sys.stderr))
    except TinyImageError as e:
        print(f"build-tiny-image: {e}", file=sys.stderr)
        return 1
    state = "cached" if manifest["cached"] else f"built in {manifest['build_seconds']} s"
    print(f"{out.resolve()} ({state}; kernel {manifest['kernel_release']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
