"""Ctrl-C and SIGTERM taken between training steps, not inside one, nor
inside a threaded k-d tree query.

Python raises KeyboardInterrupt from a signal at whatever bytecode runs next.
Inside a compiled kernel's dispatch (Numba) that arrives as a SystemError
chained to the interrupt, which the training loop cannot tell from a bug, so
the run ended with a traceback and no resumable state (seen once in the
test suite, and reproduced by repeated SIGTERMs to ``rbfield fit image``;
none in 60 since). :class:`DeferredInterrupts` turns the
first signal into a request that the loop honours after the current step.

scipy's threaded k-d tree queries have a worse failure: when the main thread
leaves one early, its worker threads run on and the process dies of a
segmentation fault (seen in 6 of 6 Ctrl-Cs during ``rbfield export mesh`` at
2 threads). :func:`interrupts_held` keeps the signal until the query returns.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The signals deferred: Ctrl-C and a polite kill.
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DeferredInterrupts:
    """A context in which SIGINT and SIGTERM set :attr:`requested` (and
    :attr:`signal_number`) instead of raising; a second one raises
    KeyboardInterrupt at once, for a user who will not wait for the step to
    end. The previous handlers come back on exit. A signal the process
    ignores (SIG_IGN, e.g. SIGINT of a job a shell started with ``&``) stays
    ignored. Off the main thread, where Python cannot install handlers, it
    changes nothing and :attr:`requested` stays False.
    """

    def __init__(self):
        self.requested = False
        #: The first signal received, or None.
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    def _request(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signal_number = True, signum

    def __enter__(self) -> DeferredInterrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in DEFERRED_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._request)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (a :class:`DeferredInterrupts`),
    then deliver the first one held to the handler that was there before: a
    training loop's own DeferredInterrupts (which finishes its step) or
    Python's KeyboardInterrupt. A second signal raises KeyboardInterrupt at
    once. Off the main thread it changes nothing."""
    with DeferredInterrupts() as held:
        yield
    if held.requested:
        signal.raise_signal(held.signal_number)
