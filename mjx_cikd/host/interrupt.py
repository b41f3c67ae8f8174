"""Signals during a run: SIGINT (Ctrl-C) and SIGTERM become a clean stop after the current chunk.

While a `StopRequest` is active, the first signal only records itself and says how long the
chunk on the device will take to finish (the loop then writes a checkpoint and stops, printing
the command that resumes); a second signal exits at once, without a checkpoint. A signal never
lands inside `jax.device_get` as a KeyboardInterrupt, which used to leave the process hanging.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)
LONG_CHUNK_S = 30.0  # a wait longer than this is said in the message, with how to shorten it


class StopRequest:
    """Install the handlers for the span of a `with` block; `signum` is set once one arrives."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.signum: int | None = None
        self.chunk_started = time.perf_counter()
        self.chunk_s = 0.0  # the last chunk's duration, for the estimate
        self._previous = {}

    def chunk_begins(self) -> None:
        self.chunk_started = time.perf_counter()

    def chunk_ends(self) -> None:
        self.chunk_s = time.perf_counter() - self.chunk_started

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # the second: at once
            os.write(2, b"\n[mjx_cikd] second signal: exiting now, without a checkpoint\n")
            os._exit(128 + signum)
        self.signum = signum
        left = max(self.chunk_s - (time.perf_counter() - self.chunk_started), 0.0)
        wait = ("its first chunk, not yet timed" if not self.chunk_s
                else f"about {left:.0f} s" if left >= 1 else "under a second")
        long = (f"; a chunk is {self.chunk_s:.0f} s of training here (--log_every sets its length)"
                if self.chunk_s > LONG_CHUNK_S else "")
        self.say(f"\n[mjx_cikd] {self.name}: stopping after the chunk on the device ({wait}"
                 f"{long}), then writing a checkpoint; {self.name} again quits at once without "
                 f"one")

    def __enter__(self) -> "StopRequest":
        for s in SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
