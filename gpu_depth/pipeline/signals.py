"""Stopping a run cleanly: SIGTERM/SIGINT let items in flight finish and start no new one; a second
SIGINT (Ctrl-C twice) stops at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


class StopFlag:
    """Set by SIGTERM/SIGINT (main thread only): no new item starts; items in flight finish.

    ``on_signal`` is called with the signal's number when the first one comes (to say so at once).  A
    SIGINT after the first signal raises KeyboardInterrupt: the run stops now (outputs are written
    atomically, so none is left half-written).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.signalled: int | None = None  # the first signal's number
        self.on_signal = on_signal
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._set) for number in self.SIGNALS}

    def _set(self, number: int, frame: object) -> None:
        if self.signalled is not None:
            if number == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.signalled = number
        if self.on_signal is not None:
            self.on_signal(number)

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
