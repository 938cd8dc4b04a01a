"""Stopping a run cleanly: SIGTERM/SIGINT let items in flight finish and start no new one."""

from __future__ import annotations

import signal
import threading


class StopFlag:
    """Set by SIGTERM/SIGINT (main thread only): no new item starts; items in flight finish."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signalled = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._set) for number in self.SIGNALS}

    def _set(self, number: int, frame: object) -> None:
        self.signalled = True

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
