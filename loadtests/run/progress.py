"""The run's progress on the terminal: one status line while the load runs."""

from __future__ import annotations

import sys
import time


class Progress:
    """A single status line while the load runs (a line every few seconds when not a TTY)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + text)
            sys.stderr.flush()
        elif force or now - self.last >= 5.0:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            self.last = now

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def say(self, text: str) -> None:
        if self.enabled:
            if self.tty:
                sys.stderr.write("\r\x1b[2K")
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
