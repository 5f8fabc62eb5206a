"""
Reading the serial console log that the hypervisor writes for a guest.
"""

from __future__ import annotations

import os


def read_tail(path: str, max_bytes: int) -> bytes:
    """
    Read the end of a console log. Blocking: call it off the reactor thread
    (the libvirt driver runs it in its worker).

    @param path: the log file.
    @param max_bytes: the most bytes to return.
    @return: the last C{max_bytes} bytes, or C{b""} when the file does not
        exist yet (the guest has not started writing).
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            return f.read(max_bytes)
    except FileNotFoundError:
        return b""
