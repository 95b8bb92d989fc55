"""Ctrl-C and SIGTERM taken between training steps, not inside one.

Python raises KeyboardInterrupt from a signal at whatever bytecode runs next.
Inside a compiled kernel's dispatch (Numba) that arrives as a SystemError
chained to the interrupt, which the training loop cannot tell from a bug, so
the run ended with a traceback and no resumable state (seen once in the
test suite, and reproduced by repeated SIGTERMs to ``rbfield fit image``;
none in 60 since). :class:`DeferredInterrupts` turns the
first signal into a request that the loop honours after the current step.
"""

from __future__ import annotations

import signal
import threading

#: The signals deferred: Ctrl-C and a polite kill.
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DeferredInterrupts:
    """A context in which SIGINT and SIGTERM set :attr:`requested` instead of
    raising; a second one raises KeyboardInterrupt at once, for a user who
    will not wait for the step to end. The previous handlers come back on
    exit. Off the main thread, where Python cannot install handlers, it
    changes nothing and :attr:`requested` stays False.
    """

    def __init__(self):
        self.requested = False
        self._previous: dict[int, object] = {}

    def _request(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> DeferredInterrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in DEFERRED_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._request)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
