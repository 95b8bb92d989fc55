"""Ctrl-C and SIGTERM outside the training steps: held through threaded k-d
tree queries, then reported by the CLI as an interruption (exit 130)."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
from scipy.spatial import cKDTree

from rbfield.interrupts import DeferredInterrupts, interrupts_held
from rbfield.ops import tree_query
from rbfield.tasks.common import InterruptReported, is_interrupt, reporting_interrupts


def _signal_self(signum: int, after: float) -> threading.Timer:
    timer = threading.Timer(after, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


def test_a_held_signal_is_raised_when_the_block_ends():
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            reached_the_end = True
    assert reached_the_end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored():
    """A job a shell starts with '&' ignores SIGINT; a deferral must not revive it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with DeferredInterrupts() as deferred:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
        assert not deferred.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_held_signal_goes_to_the_training_loops_deferral():
    """Inside a fit's DeferredInterrupts, a signal held through a query becomes
    the loop's request (it finishes its step), not an exception mid-step."""
    with DeferredInterrupts() as deferred:
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
        assert deferred.requested


def test_a_second_signal_is_not_held():
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the second signal should have raised")


def test_a_threaded_query_finishes_before_the_interrupt():
    """A signal in the middle of a 2-thread query used to crash the process
    (scipy's workers outlived the query); now the query ends, then it raises."""
    rng = np.random.default_rng(0)
    tree = cKDTree(rng.random((100_000, 3)))
    queries = rng.random((1_500_000, 3))
    timer = _signal_self(signal.SIGINT, 0.05)
    try:
        with pytest.raises(KeyboardInterrupt):
            tree_query(tree.query, queries, k=8, workers=2)
    finally:
        timer.join()


def _numba_wrapped_interrupt() -> SystemError:
    """The SystemError Numba's dispatch raises when a KeyboardInterrupt arrives inside it."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as interrupt:
        wrapped = SystemError("<built-in function> returned a result with an exception set")
        wrapped.__cause__ = interrupt
        return wrapped


def test_is_interrupt_knows_numbas_wrapping():
    assert is_interrupt(_numba_wrapped_interrupt())
    assert is_interrupt(KeyboardInterrupt())
    assert not is_interrupt(SystemError("a real bug"))


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, _numba_wrapped_interrupt], ids=["plain", "numba-wrapped"])
def test_a_command_reports_what_an_interrupt_kept(interrupt):
    """Either form of Ctrl-C inside a command's block runs its report once, then
    raises InterruptReported (exit 130 in main)."""
    reports = []
    with pytest.raises(InterruptReported):
        with reporting_interrupts(lambda: reports.append("kept")):
            raise interrupt()
    assert reports == ["kept"]


def test_other_errors_pass_through_without_a_report():
    reports = []
    with pytest.raises(SystemError, match="a real bug"):
        with reporting_interrupts(lambda: reports.append("kept")):
            raise SystemError("a real bug")
    assert reports == []
