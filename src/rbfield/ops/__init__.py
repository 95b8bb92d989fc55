"""Hot operations: a plain-PyTorch reference and a fast version of each, tested equal.

Set the environment variable ``RBFIELD_DISABLE_FAST=1`` to use only the
reference paths (results agree to floating-point rounding).

Threads: importing this module makes idle OpenMP threads spin only briefly, unless the
user chose a policy (see :func:`wait_briefly`); :func:`set_threads` sets PyTorch's,
Numba's and the BLAS libraries' thread counts together, and
:func:`thread_environment` is the environment that gives a new process n threads.
"""

import os
import sys
import warnings

from rbfield.interrupts import interrupts_held

_NUMBA_STATE: dict = {}

#: Environment variables that size a process's thread pools (OpenMP, MKL, OpenBLAS, Numba).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


#: Iterations an idle GNU OpenMP thread spins before it sleeps (a few microseconds). libgomp's own default is
#: 300,000 (milliseconds of spinning), which steals the cores' time slices from the working threads when
#: another process shares them; 0 (``OMP_WAIT_POLICY=PASSIVE``) gives the cores away at once but makes a fit
#: alone about 35 % slower, as every parallel region then wakes sleeping threads. 200 steps of the demo on 2
#: threads, alone / beside one busy process: spin 0: 21.6 / 32.2 s, 300: 21.1 / 33.0, 1000: 18.5 / 36.4,
#: 3000: 15.8 / 37.9, libgomp's default: 16.8 s alone and about 4x slower beside the busy process
#: (``bench/contention.py`` has the SDF fit's figures).
SPIN_COUNT = 1000


def wait_briefly() -> bool:
    """Make idle OpenMP threads spin only briefly (:data:`SPIN_COUNT`), then sleep: ``GOMP_SPINCOUNT``,
    unless the environment already sets it or an ``OMP_WAIT_POLICY``.

    GNU OpenMP (PyTorch's, and Numba's "omp" layer: two separate pools in one process) reads the
    variable when its library loads, so this works for PyTorch only if called before ``import torch``
    (this module calls it on import and imports no torch); Numba's pool loads later and always sees it.

    Returns:
        True when the spin count was set here.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return True


wait_briefly()


def set_threads(n: int) -> int:
    """Use ``n`` threads for everything rbfield runs in this process: PyTorch (and MKL through it),
    Numba's kernels, the k-d tree queries (:func:`cpu_workers`), and NumPy's / SciPy's BLAS when
    ``threadpoolctl`` is installed. Call it before any work; a worker of a pool calls it first thing.

    Args:
        n: threads, at least 1. Numba is capped at the pool size it started with (its
            ``NUMBA_NUM_THREADS``, by default the core count).

    Returns:
        ``n``.
    """
    import torch

    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    if "numba" in sys.modules:
        numba_kernels()  # Numba follows torch's count; this applies it now (and at each later call)
    try:
        import threadpoolctl
    except ImportError:
        return n
    threadpoolctl.threadpool_limits(limits=n)
    return n


def thread_environment(n: int, environment: dict | None = None) -> dict:
    """``environment`` (default: this process's) with every thread pool of a new process sized
    to ``n`` threads and OpenMP's brief spinning (:func:`wait_briefly`); for workers that
    must get their thread counts before they import anything."""
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    result = dict(os.environ if environment is None else environment)
    result.update(dict.fromkeys(THREAD_VARIABLES, str(n)))
    if "OMP_WAIT_POLICY" not in result:
        result.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))
    return result


def fast_paths_enabled() -> bool:
    """False when the user set RBFIELD_DISABLE_FAST to a non-empty, non-"0" value."""
    return os.environ.get("RBFIELD_DISABLE_FAST", "0") in ("", "0")


def cpu_workers() -> int:
    """Threads for CPU work outside PyTorch (k-d tree queries): torch's thread
    count, so that ``torch.set_num_threads`` bounds everything rbfield runs."""
    import torch

    return max(1, torch.get_num_threads())


def tree_query(method, *args, workers: int | None = None, **kwargs):
    """``method(*args, workers=workers, **kwargs)`` for a scipy cKDTree query
    method, on cpu_workers() threads unless ``workers`` is given. With more
    than one, Ctrl-C / SIGTERM wait until it returns
    (:func:`rbfield.interrupts.interrupts_held`): scipy's workers outlive a
    query left early and crash the process."""
    workers = cpu_workers() if workers is None else workers
    if workers == 1:
        return method(*args, workers=1, **kwargs)
    with interrupts_held():
        return method(*args, workers=workers, **kwargs)


def point_chunks(n_points: int) -> int:
    """Point ranges a parallel kernel splits n_points into: 16 per thread, so
    that uneven ranges balance out, and never more than the points (>= 1)."""
    return max(1, min(n_points, 16 * cpu_workers()))


def numba_kernels():
    """The compiled-kernel module, or None (with one warning) when Numba is missing
    or fast paths are disabled; callers then use their PyTorch path."""
    import torch

    if not fast_paths_enabled():
        return None
    if "module" not in _NUMBA_STATE:
        # Numba's OpenMP threading layer sets the process-wide OpenMP thread
        # count to all cores when its pool starts, which PyTorch shares: a run under
        # OMP_NUM_THREADS=1 or torch.set_num_threads(1) would silently go on
        # with every core. Put the user's setting back.
        threads = torch.get_num_threads()
        try:
            import importlib

            module = importlib.import_module("rbfield.ops.compiled")
            import numba

            numba.get_num_threads()  # starts Numba's thread pool (and its OpenMP side effect) now
        except Exception as error:  # ImportError, or numba failing to initialise
            warnings.warn(
                f"rbfield: Numba is not usable ({type(error).__name__}: {error}); "
                "using the slower PyTorch paths, which give the same results",
                RuntimeWarning,
                stacklevel=2,
            )
            module = None
        finally:
            torch.set_num_threads(threads)
        _NUMBA_STATE["module"] = module
    module = _NUMBA_STATE["module"]
    if module is not None:
        import numba

        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    return module


def return_freed_memory() -> None:
    """Give the heap's free pages back to the OS (glibc's ``malloc_trim``).

    Called between the phases of a fit, which free most of what they
    allocated: with :func:`keep_freed_memory_mapped` in force, a 100M-parameter
    gigapixel fit otherwise carried 5 GB of freed training memory into its
    final render. Costs milliseconds; does nothing off glibc.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def keep_freed_memory_mapped() -> bool:
    """Ask glibc to keep large freed blocks instead of returning them to the OS.

    PyTorch on the CPU allocates big temporaries every step; glibc serves
    blocks above its mmap threshold (at most 32 MB) with fresh mappings whose
    pages fault in on first touch, which made element-wise ops on 30 MB tensors
    up to several times slower here than on reused memory. Raising the mmap and trim
    thresholds keeps freed blocks in the heap for reuse. Blocks freed by one
    phase of a run (RBF placement, training) would then stay resident through
    the next, so the phases end with :func:`return_freed_memory`. The command line calls it;
    library users may call it themselves (it changes the whole process). Does nothing off glibc
    or when RBFIELD_KEEP_MALLOC=1. Returns True when the setting was applied.
    """
    if os.environ.get("RBFIELD_KEEP_MALLOC", "0") not in ("", "0"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False
