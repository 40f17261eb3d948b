"""One-pass C kernels for the simulator's gates on CPU, compiled on first use and optional.

Every gate of the ansatz is a 2x2 real matrix applied to the pairs of amplitudes that differ in one wire, possibly
only where a control wire is 0 or 1. In plain PyTorch a 2x2 mix of two half-states costs five elementwise passes
(copy, mul, addcmul, mul, addcmul) and the adjoint backward adds three more for each angle's overlap; these loops do
each gate, and each backward step (overlap + un-apply), in one read and one write of the state.

The C source is below as a string so that it travels with the remote code (``trust_remote_code`` copies ``.py``
files only). It is compiled with the system C compiler into a per-user cache (``$QLLM_KERNEL_CACHE``, else
``$XDG_CACHE_HOME/qllm`` or ``~/.cache/qllm``), keyed by the source, the compiler and the CPU's instruction-set
flags (it is built with ``-march=native``), and called through ``ctypes`` on the tensors' own memory: no copy, no
NumPy. When no compiler is found or the build fails, :func:`available` is ``False`` (the reason is logged once) and
the simulator uses its PyTorch kernels, which give the same results. ``QLLM_CPU_KERNELS=0`` turns these kernels off.

Example:
    >>> import torch
    >>> state = torch.tensor([[1.0], [0.0]])            # |0>, amplitude-major (2**n, batch), one sample
    >>> coefficients = torch.tensor([[0.0], [1.0], [1.0], [0.0], [0.0], [0.0], [0.0], [0.0]])  # X
    >>> if available():
    ...     pair_update_(state, n_qubits=1, target=0, control=-1, coefficients=coefficients)
    ... else:
    ...     state = torch.tensor([[0.0], [1.0]])
    >>> state.flatten().tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from typing import Optional

import torch

logger = logging.getLogger(__name__)

# pair_update: for every pair (a, b) of rows that differ in the target wire, and every column j,
#   (a_j, b_j) <- (m00 a_j + m01 b_j, m10 a_j + m11 b_j)
# where m is set 0 (coefficients rows 0-3) where the control wire is 0 (or when control < 0) and set 1 (rows 4-7)
# where it is 1; an inactive set leaves its pairs untouched (a CNOT touches half the state). Coefficients have one
# column (shared by the batch) or one per state column. With an overlap buffer of B = ncols / 2 doubles (the
# adjoint's [psi | grad] layout) it first adds b[B+j] a[j] - a[B+j] b[j] for j < B: the generator overlap of RY.
_SOURCE = r"""
#include <stdint.h>

/* Mix a[j], b[j] for j < len with shared (k == 0) or per-column coefficients (column j % ncols, k == 1). */
#define MIX(T, a, b, m, coef_cols, len, ncols)                                                                  \
    if (coef_cols == 1) {                                                                                    \
        const T m00 = m[0], m01 = m[1], m10 = m[2], m11 = m[3];                                              \
        _Pragma("GCC ivdep") for (int64_t j = 0; j < len; ++j) {                                             \
            const T x = a[j], y = b[j];                                                                      \
            a[j] = m00 * x + m01 * y;                                                                        \
            b[j] = m10 * x + m11 * y;                                                                        \
        }                                                                                                    \
    } else {                                                                                                 \
        const T *restrict m00 = m, *restrict m01 = m + coef_cols;                                            \
        const T *restrict m10 = m + 2 * coef_cols, *restrict m11 = m + 3 * coef_cols;                        \
        for (int64_t row = 0; row < len; row += ncols) {                                                     \
            T *restrict ar = a + row, *restrict br = b + row;                                                \
            _Pragma("GCC ivdep") for (int64_t j = 0; j < ncols; ++j) {                                       \
                const T x = ar[j], y = br[j];                                                                \
                ar[j] = m00[j] * x + m01[j] * y;                                                             \
                br[j] = m10[j] * x + m11[j] * y;                                                             \
            }                                                                                                \
        }                                                                                                    \
    }

/* Runs of consecutive rows share the control bit: the whole half-block when the control is a higher wire (or
   absent), 2**(n-1-control) rows when it is a lower one. Each run is two contiguous blocks a and b. */
#define PAIR_UPDATE(T, NAME)                                                                                    \
void NAME(T *state, int64_t n_qubits, int64_t ncols, int64_t target, int64_t control, const T *coef,         \
          int64_t coef_cols, int32_t active0, int32_t active1, double *overlap) {                             \
    const int64_t rows_low = (int64_t)1 << (n_qubits - 1 - target);                                          \
    const int64_t n_high = (int64_t)1 << target;                                                             \
    const int64_t half = rows_low * ncols;                                                                   \
    const int64_t nb = ncols / 2;                                                                            \
    const int64_t run = control > target ? ((int64_t)1 << (n_qubits - 1 - control)) : rows_low;              \
    for (int64_t hi = 0; hi < n_high; ++hi) {                                                                \
        for (int64_t r0 = 0; r0 < rows_low; r0 += run) {                                                     \
            const int64_t row = hi * 2 * rows_low + r0;                                                      \
            const int bit = control < 0 ? 0 : (int)((row >> (n_qubits - 1 - control)) & 1);                \
            if (!(bit ? active1 : active0)) continue;                                                        \
            T *restrict a = state + row * ncols;                                                             \
            T *restrict b = a + half;                                                                        \
            if (overlap) {                                                                                   \
                for (int64_t r = 0; r < run * ncols; r += ncols) {                                           \
                    const T *restrict ar = a + r, *restrict br = b + r;                                      \
                    _Pragma("GCC ivdep") for (int64_t j = 0; j < nb; ++j)                                    \
                        overlap[j] += (double)(br[nb + j] * ar[j] - ar[nb + j] * br[j]);                     \
                }                                                                                            \
            }                                                                                                \
            const T *m = coef + 4 * bit * coef_cols;                                                         \
            MIX(T, a, b, m, coef_cols, run * ncols, ncols)                                                   \
        }                                                                                                    \
    }                                                                                                        \
}

PAIR_UPDATE(float, qllm_pair_update_f32)
PAIR_UPDATE(double, qllm_pair_update_f64)

/* A whole gate sequence in one call (no interpreter between gates). Each op is 7 integers: target, control (-1:
   none), coefficient source (0: weight table (angles, 8, 1), 1: input table (angles, 8, ncols), 2: fixed table
   (k, 8, 1)), index in that table, active0, active1, overlap row (-1: none; else a row of ncols / 2 doubles). */
#define RUN_PROGRAM(T, NAME, PAIR)                                                                              \
void NAME(T *state, int64_t n_qubits, int64_t ncols, const int64_t *ops, int64_t n_ops, const T *weight_table,  \
          const T *input_table, const T *fixed_table, double *overlaps) {                                      \
    for (int64_t k = 0; k < n_ops; ++k) {                                                                      \
        const int64_t *op = ops + 7 * k;                                                                       \
        const T *coef = op[2] == 0 ? weight_table + 8 * op[3]                                                  \
                      : op[2] == 1 ? input_table + 8 * ncols * op[3] : fixed_table + 8 * op[3];                \
        PAIR(state, n_qubits, ncols, op[0], op[1], coef, op[2] == 1 ? ncols : 1, (int32_t)op[4],             \
             (int32_t)op[5], op[6] < 0 ? (double *)0 : overlaps + (ncols / 2) * op[6]);                       \
    }                                                                                                          \
}

RUN_PROGRAM(float, qllm_run_program_f32, qllm_pair_update_f32)
RUN_PROGRAM(double, qllm_run_program_f64, qllm_pair_update_f64)
"""

_FLAGS = ["-O3", "-march=native", "-std=c99", "-fPIC", "-shared"]
_ARGTYPES = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
             ctypes.c_int64, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p]  # fmt: skip

_PROGRAM_ARGTYPES = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                     ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]  # fmt: skip

_library: Optional[ctypes.CDLL] = None
_state = {"tried": False, "reason": None, "enabled": True}


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _cache_dir() -> str:
    if os.environ.get("QLLM_KERNEL_CACHE"):
        return os.environ["QLLM_KERNEL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "qllm")


def _compiler() -> Optional[str]:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build(compiler: str) -> str:
    """Compile the source once per (source, compiler, CPU flags) and return the shared library's path."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256("\0".join([_SOURCE, " ".join(_FLAGS), version, _cpu_flags(), platform.machine()]).encode())
    directory = _cache_dir()
    path = os.path.join(directory, f"qllm_kernels_{key.hexdigest()[:16]}.so")
    if os.path.exists(path):
        return path
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as build:
        source = os.path.join(build, "qllm_kernels.c")
        with open(source, "w") as handle:
            handle.write(_SOURCE)
        partial = os.path.join(build, "qllm_kernels.so")
        result = subprocess.run([compiler, *_FLAGS, "-o", partial, source], capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {result.stderr.strip()[-500:]}")
        os.replace(partial, path)  # atomic: concurrent processes never load a half-written file
    return path


def _load() -> Optional[ctypes.CDLL]:
    global _library
    if _state["tried"]:
        return _library
    _state["tried"] = True
    if os.environ.get("QLLM_CPU_KERNELS", "1") == "0":
        _state["reason"] = "turned off by QLLM_CPU_KERNELS=0"
        return None
    compiler = _compiler()
    if compiler is None:
        _state["reason"] = "no C compiler (cc, gcc or clang) on PATH"
    else:
        try:
            library = ctypes.CDLL(_build(compiler))
            for name in ("qllm_pair_update_f32", "qllm_pair_update_f64"):
                getattr(library, name).argtypes = _ARGTYPES
                getattr(library, name).restype = None
            for name in ("qllm_run_program_f32", "qllm_run_program_f64"):
                getattr(library, name).argtypes = _PROGRAM_ARGTYPES
                getattr(library, name).restype = None
            _library = library
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            _state["reason"] = f"building them failed: {error}"
    if _library is None:
        logger.info("qllm: one-pass CPU kernels unavailable (%s); using the PyTorch kernels", _state["reason"])
    return _library


def available() -> bool:
    """Whether the compiled kernels can be used (compiles them on the first call)."""
    return _load() is not None


def unavailable_reason() -> Optional[str]:
    """Why :func:`available` is ``False`` (``None`` when the kernels work or were not tried yet)."""
    _load()
    return _state["reason"]


def set_enabled(enabled: bool) -> bool:
    """Route CPU states through these kernels (``True``, the default, when they build) or through the PyTorch
    kernels (``False``: for comparisons and tests); returns the previous setting.

    Example:
        >>> previous = set_enabled(False)
        >>> supports(torch.zeros(4, 2))
        False
        >>> _ = set_enabled(previous)
    """
    previous = _state["enabled"]
    _state["enabled"] = bool(enabled)
    return previous


def supports(state: torch.Tensor) -> bool:
    """Whether ``state`` goes through these kernels: enabled, built, and a contiguous float32/float64 CPU tensor."""
    return (
        _state["enabled"]
        and state.device.type == "cpu"
        and state.dtype in (torch.float32, torch.float64)
        and state.is_contiguous()
        and available()
    )


def pair_update_(
    state: torch.Tensor,
    n_qubits: int,
    target: int,
    control: int,
    coefficients: torch.Tensor,
    active: tuple = (True, True),
    overlap: Optional[torch.Tensor] = None,
) -> None:
    """Apply a (controlled) 2x2 real matrix to an amplitude-major state ``(2**n_qubits, ncols)`` in place.

    Args:
        state: contiguous CPU float32/float64 tensor; row ``k`` is basis state ``k``, columns are samples.
        target: the wire whose pairs are mixed. control: the wire that selects the matrix, or -1 for none.
        coefficients: ``(8, 1)`` or ``(8, ncols)`` of the state's dtype: rows 0-3 are ``m00, m01, m10, m11`` where
            the control is 0 (or for every pair when ``control < 0``), rows 4-7 where it is 1.
        active: which of the two sets to apply; an inactive set leaves its pairs unchanged.
        overlap: optional float64 ``(ncols // 2,)`` buffer; for the adjoint's ``[psi | grad]`` layout it accumulates
            ``sum(g1 * p0 - g0 * p1)`` over the pairs of the active sets (read before the update).
    """
    library = _load()
    if library is None:
        raise RuntimeError(f"qllm CPU kernels are unavailable: {_state['reason']}")
    _check_state(state, n_qubits)
    if not 0 <= target < n_qubits or not -1 <= control < n_qubits or control == target:
        raise ValueError(f"target={target}, control={control} on {n_qubits} qubits; expected 0 <= target < "
                         f"{n_qubits} and control -1 or another wire")  # fmt: skip
    ncols = state.shape[1]
    if coefficients.dtype != state.dtype or not coefficients.is_contiguous() or coefficients.dim() != 2 \
            or coefficients.shape[0] != 8:  # fmt: skip
        raise ValueError(f"coefficients must be a contiguous (8, 1 or {ncols}) {state.dtype} tensor; got "
                         f"{tuple(coefficients.shape)} {coefficients.dtype}")  # fmt: skip
    if coefficients.shape[1] not in (1, ncols):
        raise ValueError(f"coefficients have {coefficients.shape[1]} columns; expected 1 or {ncols}")
    if overlap is not None and (overlap.dtype != torch.float64 or overlap.numel() != ncols // 2):
        raise ValueError(f"overlap must be a float64 buffer of {ncols // 2} numbers")
    function = library.qllm_pair_update_f32 if state.dtype == torch.float32 else library.qllm_pair_update_f64
    function(state.data_ptr(), n_qubits, ncols, target, control, coefficients.data_ptr(), coefficients.shape[1],
             int(active[0]), int(active[1]), overlap.data_ptr() if overlap is not None else None)  # fmt: skip


class KernelProgram:
    """An op sequence for :func:`run_program_`, validated once when built (the C loop follows its indices blindly).

    Args:
        rows: one row of 7 integers per op: target, control (-1: none), coefficient source (0: weight table, 1: input
            table, 2: fixed table), row in that table, active0, active1, overlap row (-1: none).
        n_qubits: the register the ops act on.

    Example:
        >>> program = KernelProgram([[1, -1, 0, 2, 1, 0, -1], [0, 1, 2, 0, 0, 1, -1]], n_qubits=2)
        >>> program.table_rows, program.overlap_rows
        ((3, 0, 1), 0)
    """

    def __init__(self, rows, n_qubits: int):
        rows = [list(map(int, row)) for row in rows]
        needed, overlap_rows = [0, 0, 0], 0
        for i, row in enumerate(rows):
            if len(row) != 7:
                raise ValueError(f"op {i} {row} has {len(row)} numbers; expected 7")
            target, control, source, index, active0, active1, overlap_row = row
            problems = {
                "target": not 0 <= target < n_qubits,
                "control": not -1 <= control < n_qubits or control == target,
                "source": source not in (0, 1, 2),
                "index": index < 0,
                "active flag": active0 not in (0, 1) or active1 not in (0, 1),
                "overlap row": overlap_row < -1,
            }
            for what, bad in problems.items():
                if bad:
                    raise ValueError(f"op {i} {row} has an out-of-range {what} for {n_qubits} qubits")
            needed[source] = max(needed[source], index + 1)
            overlap_rows = max(overlap_rows, overlap_row + 1)
        self.ops = torch.tensor(rows, dtype=torch.int64).reshape(-1, 7)
        self.n_qubits = n_qubits
        self.table_rows = tuple(needed)
        self.overlap_rows = overlap_rows


def run_program_(
    state: torch.Tensor,
    program: KernelProgram,
    weight_table: torch.Tensor,
    input_table: Optional[torch.Tensor],
    fixed_table: torch.Tensor,
    overlaps: Optional[torch.Tensor] = None,
) -> None:
    """Apply a sequence of :func:`pair_update_` ops in one call.

    Args:
        state: contiguous CPU float32/float64 ``(2**program.n_qubits, ncols)``, updated in place.
        program: the ops (validated when it was built); each call only checks that the tables are big enough.
        weight_table: ``(n, 8, 1)``; input_table: ``(n, 8, ncols)`` or ``None``; fixed_table: ``(n, 8, 1)``; all of
            the state's dtype and contiguous.
        overlaps: float64 ``(rows, ncols // 2)`` accumulated as in :func:`pair_update_` (needed when any op has
            an overlap row).
    """
    library = _load()
    if library is None:
        raise RuntimeError(f"qllm CPU kernels are unavailable: {_state['reason']}")
    _check_state(state, program.n_qubits)
    ncols = state.shape[1]
    tables = [("weight_table", weight_table, 1), ("input_table", input_table, ncols), ("fixed_table", fixed_table, 1)]
    for (name, table, columns), needed in zip(tables, program.table_rows):
        if table is None:
            if needed:
                raise ValueError(f"the program reads {name} (index up to {needed - 1}) but none was given")
            continue
        if table.dtype != state.dtype or not table.is_contiguous() or tuple(table.shape[1:]) != (8, columns):
            raise ValueError(f"{name} must be a contiguous (n, 8, {columns}) {state.dtype} tensor; got "
                             f"{tuple(table.shape)} {table.dtype}")  # fmt: skip
        if table.shape[0] < needed:
            raise ValueError(f"{name} has {table.shape[0]} rows; the program's largest {name} index is {needed - 1}")
    if program.overlap_rows:
        if overlaps is None or overlaps.dtype != torch.float64 or not overlaps.is_contiguous() \
                or overlaps.dim() != 2 or overlaps.shape[1] != ncols // 2:  # fmt: skip
            raise ValueError(f"the program accumulates overlaps: pass a contiguous float64 (>= "
                             f"{program.overlap_rows}, {ncols // 2}) tensor")  # fmt: skip
        if overlaps.shape[0] < program.overlap_rows:
            raise ValueError(f"overlaps has {overlaps.shape[0]} rows; the program's largest overlap row is "
                             f"{program.overlap_rows - 1}")  # fmt: skip
    function = library.qllm_run_program_f32 if state.dtype == torch.float32 else library.qllm_run_program_f64
    function(state.data_ptr(), program.n_qubits, ncols, program.ops.data_ptr(), program.ops.shape[0],
             weight_table.data_ptr(), input_table.data_ptr() if input_table is not None else None,
             fixed_table.data_ptr(), overlaps.data_ptr() if program.overlap_rows else None)  # fmt: skip


def _check_state(state: torch.Tensor, n_qubits: int) -> None:
    if state.dim() != 2 or state.shape[0] != 2**n_qubits or not state.is_contiguous() \
            or state.dtype not in (torch.float32, torch.float64) or state.device.type != "cpu":  # fmt: skip
        raise ValueError(f"state must be a contiguous CPU float32/float64 (2**{n_qubits}, ncols) tensor; got "
                         f"{tuple(state.shape)} {state.dtype} on {state.device}")  # fmt: skip
