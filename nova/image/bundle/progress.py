"""
A text progress report for command-line tools: a redrawn bar on a terminal,
one line per finished stage otherwise (logs stay readable).
"""

from __future__ import annotations

from typing import TextIO

_WIDTH = 30
_MIB = 1024 * 1024


class ProgressBar:
    """
    Reports C{(stage, done, total)} updates on a stream (stderr).

    Call L{update} as often as wanted and L{finish} when a stage ends.
    """

    def __init__(self, stream: TextIO, interactive: bool | None = None) -> None:
        """
        @param stream: where to write.
        @param interactive: draw a bar (default: whether C{stream} is a tty).
        """
        self._stream = stream
        if interactive is None:
            isatty = getattr(stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self._drawn: tuple[str, int] | None = None

    def update(self, stage: str, done: int, total: int) -> None:
        """Redraw the bar if it changed by a visible step (terminal only)."""
        if not self.interactive:
            return
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if self._drawn == (stage, percent):
            return
        self._drawn = (stage, percent)
        filled = percent * _WIDTH // 100
        bar = "#" * filled + "." * (_WIDTH - filled)
        self._stream.write(f"\r{stage:<8} [{bar}] {percent:3d}%"
                           f" {done / _MIB:8.1f}/{total / _MIB:.1f} MiB")
        self._stream.flush()

    def finish(self, stage: str, summary: str) -> None:
        """End a stage: one line, C{"<stage>: <summary>"}."""
        if self.interactive and self._drawn is not None:
            self._stream.write("\n")
        self._drawn = None
        self._stream.write(f"{stage}: {summary}\n")
        self._stream.flush()
