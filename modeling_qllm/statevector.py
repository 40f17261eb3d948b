"""Batched real-amplitude state-vector kernels for the paper's ansatz (RY, CNOT), with an adjoint backward.

Every gate of the ansatz and every encoding is real, so states are real tensors of shape ``(batch, 2**n_qubits)``
in the caller's dtype and device: half the memory traffic of a complex simulator, and exact.

Two layers of code live here:

* small kernels that apply one gate to a batched state (``mix_``, ``cnot_``, ...), in place, and the differentiable
  out-of-place references ``apply_ry`` / ``apply_cnot`` (plain autograd; used by the density-matrix code and tests);
* :func:`run_circuit`, which executes a gate list (see ``circuits.py``) with a custom autograd function. Its
  backward is the *adjoint method*: gates are orthogonal, so instead of storing every intermediate state it walks
  the circuit backwards, un-applying each gate to the output state and to the incoming gradient, and reads each
  angle's gradient off the pair as ``0.5 * sum(g1 * psi0 - g0 * psi1)`` (the RY generator). Memory is a few states
  whatever the depth; time is about three forward passes.

Monte-Carlo noise (depolarizing trajectories) is sampled inside the forward pass and replayed in reverse.

Example:
    >>> import torch
    >>> from modeling_qllm.circuits import pqc_gates
    >>> gates = pqc_gates(n_qubits=3, layers=1, connectivity=1)
    >>> state = torch.zeros(4, 8); state[:, 0] = 1
    >>> out = run_circuit(state, gates, torch.zeros(6), n_qubits=3)   # all angles 0: CNOTs on |000> do nothing
    >>> expval_z(out, 3, [0, 1, 2])[0].tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .cpu_kernels import KernelProgram, pair_update_, run_program_
from .cpu_kernels import supports as c_kernels_support
from .circuits import Gate, num_inputs, num_weights

AMPLITUDE_FIT_CHOICES = ("pad", "truncate", "project")


# ----------------------------------------------------------------------------------------------------------------
# Encodings
# ----------------------------------------------------------------------------------------------------------------
def amplitude_encode(features: torch.Tensor, n_qubits: int, fit: Optional[str] = None) -> torch.Tensor:
    """Normalised amplitudes of ``features`` (shape ``(batch, d)``) on ``n_qubits`` qubits.

    When ``d != 2**n_qubits`` the caller must say how to fit: ``"pad"`` with zeros (d < 2**n), ``"truncate"``
    (d > 2**n; drops the trailing features), or ``"project"`` (a learned Linear(d -> 2**n) applied *before* this
    function, so that ``d == 2**n`` here). Zero vectors and non-finite values raise instead of producing NaNs.

    Example:
        >>> amplitude_encode(torch.tensor([[3.0, 4.0, 0.0]]), 2, fit="pad").tolist()
        [[0.6000000238418579, 0.800000011920929, 0.0, 0.0]]
    """
    if features.dim() != 2:
        raise ValueError(f"amplitude_encode expects (batch, features); got shape {tuple(features.shape)}")
    d, size = features.shape[1], 2**n_qubits
    if d != size:
        if fit == "pad" and d < size:
            features = torch.nn.functional.pad(features, (0, size - d))
        elif fit == "truncate" and d > size:
            features = features[:, :size]
        else:
            raise ValueError(
                f"cannot amplitude-encode d={d} features into {n_qubits} qubits (2**{n_qubits}={size} amplitudes) "
                f"with amplitude_fit={fit!r}; choose 'pad' (needs d < {size}), 'truncate' (needs d > {size}) or "
                f"'project' (a learned Linear(d -> {size}))"
            )
    check_finite(features, "amplitude_encode input")
    norms = features.norm(dim=1, keepdim=True)
    zero_rows = (norms[:, 0] == 0).nonzero().flatten()
    if zero_rows.numel():
        raise ValueError(f"cannot amplitude-encode a zero vector: rows {zero_rows[:10].tolist()} have norm 0")
    return features / norms


def check_finite(tensor: torch.Tensor, what: str) -> None:
    """Raise a ``ValueError`` naming the first rows that hold NaN or infinity."""
    bad = (~torch.isfinite(tensor)).reshape(tensor.shape[0], -1).any(dim=1).nonzero().flatten()
    if bad.numel():
        raise ValueError(f"{what} has non-finite values (NaN or inf) in rows {bad[:10].tolist()}")


def zero_state(batch: int, n_qubits: int, like: torch.Tensor) -> torch.Tensor:
    """``|0...0>`` for a batch, on ``like``'s device and dtype."""
    state = torch.zeros(batch, 2**n_qubits, dtype=like.dtype, device=like.device)
    state[:, 0] = 1
    return state


# ----------------------------------------------------------------------------------------------------------------
# Measurement
# ----------------------------------------------------------------------------------------------------------------
_SIGN_CACHE: Dict[Tuple, torch.Tensor] = {}


def z_signs(n_qubits: int, wires: Sequence[int], device, dtype) -> torch.Tensor:
    """``(2**n, len(wires))`` matrix of +-1: the eigenvalue of Z on each wire for every basis state."""
    key = (n_qubits, tuple(wires), torch.device(device), dtype)
    if key not in _SIGN_CACHE:
        index = torch.arange(2**n_qubits, device=device)
        shifts = torch.tensor([n_qubits - 1 - w for w in wires], device=device)
        bits = (index[:, None] >> shifts[None, :]) & 1
        _SIGN_CACHE[key] = (1 - 2 * bits).to(dtype)
    return _SIGN_CACHE[key]


# Above this many sign entries (2**n * wires) the +-1 matrix costs more memory than it saves time: at 24 qubits and
# 24 wires it would be 1.6 GB of float32 (and twice that in int64 while it is built).
SIGN_MATRIX_MAX_ENTRIES = 2**22


def expval_z(state: torch.Tensor, n_qubits: int, wires: Sequence[int]) -> torch.Tensor:
    """Exact ``<Z_w>`` for each wire of pure states ``(batch, 2**n)``, shape ``(batch, len(wires))``."""
    return expval_z_from_probabilities(state * state, n_qubits, wires)


def expval_z_from_probabilities(probs: torch.Tensor, n_qubits: int, wires: Sequence[int]) -> torch.Tensor:
    """``<Z_w>`` from basis-state probabilities ``(batch, 2**n)``: one GEMM with a cached sign matrix, or for large
    registers one reduction per wire (no matrix)."""
    if len(wires) * 2**n_qubits <= SIGN_MATRIX_MAX_ENTRIES:
        return probs @ z_signs(n_qubits, wires, probs.device, probs.dtype)
    columns = []
    for wire in wires:
        halves = probs.reshape(probs.shape[0], 2**wire, 2, 2 ** (n_qubits - wire - 1)).sum(dim=(1, 3))
        columns.append(halves[:, 0] - halves[:, 1])
    return torch.stack(columns, dim=1)


def marginal_probabilities(state: torch.Tensor, n_qubits: int, n_leading: int) -> torch.Tensor:
    """Probabilities of the ``2**n_leading`` outcomes of wires ``0..n_leading-1``, shape ``(batch, 2**n_leading)``."""
    probs = state * state
    return probs.reshape(state.shape[0], 2**n_leading, 2 ** (n_qubits - n_leading)).sum(dim=2)


# ----------------------------------------------------------------------------------------------------------------
# In-place kernels (no autograd; used inside run_circuit) on amplitude-major states
# ----------------------------------------------------------------------------------------------------------------
# Inside the executor a batch of states is stored transposed, shape (2**n, batch): the batch is the innermost axis,
# so the two halves of any wire are runs of at least `batch` contiguous numbers. In the sample-major layout
# (batch, 2**n) the pairs of the last wires are adjacent numbers and elementwise kernels on them fall back to
# scalar loops (measured 10-20x slower on this CPU for 2**10 amplitudes).
def _halves(state: torch.Tensor, n_qubits: int, wire: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Views of the amplitudes with ``wire`` = 0 and = 1 of an amplitude-major ``(2**n, batch)`` state."""
    view = state.view(2**wire, 2, 2 ** (n_qubits - wire - 1), state.shape[-1])
    return view[:, 0], view[:, 1]


def _controlled_halves(state: torch.Tensor, n_qubits: int, control: int, target: int, control_value: int):
    """Views of the target's 0- and 1-halves inside the subspace where ``control == control_value``."""
    low, high = min(control, target), max(control, target)
    view = state.view(2**low, 2, 2 ** (high - low - 1), 2, 2 ** (n_qubits - high - 1), state.shape[-1])
    if control < target:
        sub = view[:, control_value]
        return sub[:, :, 0], sub[:, :, 1]
    sub = view[:, :, :, control_value]
    return sub[:, 0], sub[:, 1]


def _copy_to_scratch(view: torch.Tensor, scratch: Optional[torch.Tensor]) -> torch.Tensor:
    # A fresh multi-MB tensor per gate costs page faults that take longer than the arithmetic: reuse one buffer.
    if scratch is None:
        return view.clone()
    return scratch[: view.numel()].view(view.shape).copy_(view)


def mix_(a: torch.Tensor, b: torch.Tensor, m00, m01, m10, m11, scratch: Optional[torch.Tensor] = None) -> None:
    """``(a, b) <- (m00 a + m01 b, m10 a + m11 b)`` in place; coefficients are 0-d tensors or one per sample
    (shape ``(batch,)``, broadcast along the innermost axis). ``scratch``: optional flat buffer of >= a.numel()."""
    a_old = _copy_to_scratch(a, scratch)
    a.mul_(m00).addcmul_(b, m01)
    b.mul_(m11).addcmul_(a_old, m10)


def swap_(a: torch.Tensor, b: torch.Tensor, scratch: Optional[torch.Tensor] = None) -> None:
    """Exchange two equally shaped views in place (an X on the wire that separates them)."""
    a_old = _copy_to_scratch(a, scratch)
    a.copy_(b)
    b.copy_(a_old)


def ry_(state, n_qubits, wire, cos, sin, scratch=None) -> None:
    """RY on ``wire``: ``[[c, -s], [s, c]]`` with ``c = cos(theta/2)``, ``s = sin(theta/2)``."""
    mix_(*_halves(state, n_qubits, wire), cos, -sin, sin, cos, scratch)


def cnot_(state, n_qubits, control, target, scratch=None) -> None:
    """CNOT: a permutation, swapping the target's halves where the control is 1."""
    swap_(*_controlled_halves(state, n_qubits, control, target, 1), scratch)


def cnot_ry_(state, n_qubits, control, target, cos, sin, inverse: bool = False, scratch=None) -> None:
    """CNOT(control -> target) followed by RY on the target (or its inverse), one pass over each control half.

    Where the control is 0 this is RY (RY^T for the inverse); where it is 1 it is ``RY @ X = [[-s, c], [c, s]]``,
    a reflection and hence its own inverse.
    """
    sin_01 = sin if inverse else -sin
    mix_(*_controlled_halves(state, n_qubits, control, target, 0), cos, sin_01, -sin_01, cos, scratch)
    mix_(*_controlled_halves(state, n_qubits, control, target, 1), -sin, cos, cos, sin, scratch)


def pauli_samples_(state, n_qubits, wire, samples: torch.Tensor, pauli: str) -> None:
    """Apply X or Z on ``wire`` to the batch entries ``samples`` only (a sampled error of a noise trajectory)."""
    sub = state.index_select(1, samples)
    a, b = _halves(sub, n_qubits, wire)
    if pauli == "X":
        swap_(a, b)
    else:
        b.neg_()
    state.index_copy_(1, samples, sub)


# ----------------------------------------------------------------------------------------------------------------
# Differentiable out-of-place references (plain autograd)
# ----------------------------------------------------------------------------------------------------------------
def apply_ry(state: torch.Tensor, n_qubits: int, wire: int, angle: torch.Tensor) -> torch.Tensor:
    """Out-of-place RY; ``angle`` is a scalar tensor or one angle per batch row."""
    c, s = torch.cos(angle / 2), torch.sin(angle / 2)
    if c.dim():
        c, s = c.reshape(-1, 1, 1), s.reshape(-1, 1, 1)
    view = state.reshape(state.shape[0], 2**wire, 2, 2 ** (n_qubits - wire - 1))
    a, b = view[:, :, 0], view[:, :, 1]
    return torch.stack((c * a - s * b, s * a + c * b), dim=2).reshape(state.shape)


def apply_cnot(state: torch.Tensor, n_qubits: int, control: int, target: int) -> torch.Tensor:
    """Out-of-place CNOT as an index permutation."""
    index = torch.arange(2**n_qubits, device=state.device)
    flip = ((index >> (n_qubits - 1 - control)) & 1) << (n_qubits - 1 - target)
    return state[:, index ^ flip]


def run_circuit_reference(state, gates: Sequence[Gate], weights, n_qubits, inputs=None) -> torch.Tensor:
    """Gate by gate with plain autograd: slow and memory-hungry, but obviously right. Used to test the adjoint."""
    for gate in gates:
        if gate.name == "CNOT":
            state = apply_cnot(state, n_qubits, *gate.wires)
        else:
            angle = weights[gate.index] if gate.source == "weight" else inputs[:, gate.index]
            state = apply_ry(state, n_qubits, gate.wires[0], angle)
    return state


# ----------------------------------------------------------------------------------------------------------------
# The circuit executor with an adjoint backward
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Program:
    """A gate list compiled for execution: CNOT+RY pairs on the same target fused unless noise must sit between."""

    ops: Tuple[Tuple, ...]
    n_qubits: int
    n_weights: int
    n_inputs: int


def compile_gates(gates: Sequence[Gate], n_qubits: int, fuse: bool = True) -> Program:
    """Turn gates into ops ``("ry", wire, source, index)``, ``("cnot", c, t)`` or ``("cnot_ry", c, t, source, index)``."""
    ops: List[Tuple] = []
    i = 0
    while i < len(gates):
        gate = gates[i]
        if gate.name == "CNOT":
            nxt = gates[i + 1] if i + 1 < len(gates) else None
            if fuse and nxt is not None and nxt.name == "RY" and nxt.wires[0] == gate.wires[1]:
                ops.append(("cnot_ry", gate.wires[0], gate.wires[1], nxt.source, nxt.index))
                i += 2
                continue
            ops.append(("cnot", gate.wires[0], gate.wires[1]))
        elif gate.name == "RY":
            ops.append(("ry", gate.wires[0], gate.source, gate.index))
        else:
            raise ValueError(f"unknown gate {gate.name!r}; the ansatz uses 'RY' and 'CNOT'")
        i += 1
    return Program(tuple(ops), n_qubits, num_weights(gates), num_inputs(gates))


@dataclass(frozen=True)
class Depolarizing:
    """Depolarizing rates for Monte-Carlo trajectories: after every 1-qubit gate with probability ``p1`` one of
    X, Y, Z (uniformly); after every CNOT with probability ``p2`` one of the 15 non-identity two-qubit Paulis."""

    p1: float = 0.0
    p2: float = 0.0
    generator: Optional[torch.Generator] = None

    @property
    def active(self) -> bool:
        return self.p1 > 0 or self.p2 > 0


def _coefficients(source, index, weight_cs, input_cs):
    """(cos, sin) of half the angle of one RY: scalars for weights, ``(batch, 1, 1)`` columns for inputs."""
    if source == "weight":
        return weight_cs[0][index], weight_cs[1][index]
    return input_cs[0][:, index], input_cs[1][:, index]


def _apply_op(state, n, op, weight_cs, input_cs, inverse=False, scratch=None) -> torch.Tensor:
    """Apply one op (or its inverse) in place to an amplitude-major state with the PyTorch kernels."""
    kind = op[0]
    if kind == "cnot":
        cnot_(state, n, op[1], op[2], scratch)
    elif kind == "ry":
        c, s = _coefficients(op[2], op[3], weight_cs, input_cs)
        ry_(state, n, op[1], c, -s if inverse else s, scratch)
    elif kind == "cnot_ry":
        c, s = _coefficients(op[3], op[4], weight_cs, input_cs)
        cnot_ry_(state, n, op[1], op[2], c, s, inverse, scratch)
    elif kind == "pauli":
        pauli_samples_(state, n, op[1], op[2], op[3])
    return state


# ---- the same ops through the one-pass C kernels (cpu_kernels.py) ---------------------------------------------
def _pair_table(cos: torch.Tensor, sin: torch.Tensor, inverse: bool) -> torch.Tensor:
    """Kernel coefficients ``(angles, 8, columns)`` for ``cos``/``sin`` of shape ``(columns, angles)``: rows 0-3
    are RY (or RY^T), rows 4-7 are ``RY @ X`` (its own inverse): the two halves of a fused CNOT+RY."""
    s01 = sin if inverse else -sin
    return torch.stack((cos, s01, -s01, cos, -sin, cos, cos, sin)).permute(2, 0, 1).contiguous()


def _kernel_tables(weight_cs, input_cs, inverse: bool, repeat: int = 1) -> Dict[str, torch.Tensor]:
    """Coefficient tables of every weight angle (one shared column) and input angle (one column per sample)."""
    tables = {"weight": _pair_table(weight_cs[0][None], weight_cs[1][None], inverse)}
    if input_cs[0].numel():
        tables["input"] = _pair_table(input_cs[0].repeat(repeat, 1), input_cs[1].repeat(repeat, 1), inverse)
    return tables


_FIXED_TABLES: Dict[torch.dtype, torch.Tensor] = {}


def _fixed_table(dtype: torch.dtype) -> torch.Tensor:
    """``(1, 8, 1)`` kernel coefficients of a CNOT: set 1 (control = 1) swaps the target's halves, set 0 is idle."""
    if dtype not in _FIXED_TABLES:
        _FIXED_TABLES[dtype] = torch.tensor([0.0] * 5 + [1.0, 1.0, 0.0], dtype=dtype).reshape(1, 8, 1)
    return _FIXED_TABLES[dtype]


@functools.lru_cache(maxsize=64)
def _kernel_program(ops: Tuple[Tuple, ...], n_qubits: int, backward: bool) -> KernelProgram:
    """A noise-free op list as a ``cpu_kernels.KernelProgram`` (validated once, then cached); ``backward``: reversed,
    each RY with an overlap row (in backward order, as :func:`_rotations`)."""
    rows, rotation = [], 0
    for op in reversed(ops) if backward else ops:
        if op[0] == "cnot":
            rows.append([op[2], op[1], 2, 0, 0, 1, -1])
            continue
        control, target, source, index = (-1, *op[1:]) if op[0] == "ry" else op[1:]
        rows.append([target, control, 0 if source == "weight" else 1, index, 1, int(control >= 0),
                     rotation if backward else -1])  # fmt: skip
        rotation += 1
    return KernelProgram(rows, n_qubits)


def _apply_op_kernel(state, n, op, tables, overlap=None) -> None:
    """One op through ``cpu_kernels.pair_update_`` (``tables`` from :func:`_kernel_tables` in the op's direction)."""
    kind = op[0]
    if kind == "cnot":
        pair_update_(state, n, op[2], op[1], _fixed_table(state.dtype)[0], (False, True))
    elif kind == "ry":
        pair_update_(state, n, op[1], -1, tables[op[2]][op[3]], (True, False), overlap)
    elif kind == "cnot_ry":
        pair_update_(state, n, op[2], op[1], tables[op[3]][op[4]], (True, True), overlap)
    elif kind == "pauli":
        pauli_samples_(state, n, op[1], op[2], op[3])


def _sample_paulis(batch: int, wires: Tuple[int, ...], p: float, generator, device) -> List[Tuple]:
    """Sampled Pauli errors after a gate on ``wires`` as ops ``("pauli", wire, rows, "X"|"Z")``.

    A Y error is ``i * X @ Z``: the global phase ``i`` does not change any probability, so a trajectory stays real
    and Y is applied as Z then X.
    """
    hit = torch.rand(batch, generator=generator, device=device) < p
    n_paulis = 4 ** len(wires)  # 0 is the identity, excluded below
    kind = torch.randint(1, n_paulis, (batch,), generator=generator, device=device)
    ops = []
    for position, wire in enumerate(wires):
        letter = (kind // 4 ** (len(wires) - 1 - position)) % 4  # 0=I, 1=X, 2=Y, 3=Z
        z_rows = (hit & ((letter == 2) | (letter == 3))).nonzero().flatten()
        x_rows = (hit & ((letter == 1) | (letter == 2))).nonzero().flatten()
        if z_rows.numel():
            ops.append(("pauli", wire, z_rows, "Z"))
        if x_rows.numel():
            ops.append(("pauli", wire, x_rows, "X"))
    return ops


def _execute(state, program: Program, weight_cs, input_cs, noise: Optional[Depolarizing]):
    """Run the program in place on an amplitude-major ``state`` (a private copy); return it and the ops actually
    applied (with sampled errors) for the backward pass."""
    n = program.n_qubits
    noisy = noise is not None and noise.active
    if c_kernels_support(state):
        tables = _kernel_tables(weight_cs, input_cs, inverse=False)
        if not noisy:  # the whole circuit in one C call
            kernel_program = _kernel_program(program.ops, n, backward=False)
            run_program_(state, kernel_program, tables["weight"], tables.get("input"), _fixed_table(state.dtype))
            return state, list(program.ops)
        apply = lambda op: _apply_op_kernel(state, n, op, tables)  # noqa: E731
    else:
        scratch = state.new_empty(state.numel() // 2)
        apply = lambda op: _apply_op(state, n, op, weight_cs, input_cs, scratch=scratch)  # noqa: E731
    if not noisy:
        for op in program.ops:
            apply(op)
        return state, list(program.ops)
    applied = []
    for op in program.ops:
        apply(op)
        applied.append(op)
        if op[0] == "cnot" and noise.p2 > 0:
            errors = _sample_paulis(state.shape[1], (op[1], op[2]), noise.p2, noise.generator, state.device)
        elif op[0] == "ry" and noise.p1 > 0:
            errors = _sample_paulis(state.shape[1], (op[1],), noise.p1, noise.generator, state.device)
        else:
            errors = []
        for error in errors:
            apply(error)
        applied.extend(errors)
    return state, applied


def _generator_overlap(both: torch.Tensor, n: int, wire: int, batch: int, scratch: torch.Tensor) -> torch.Tensor:
    """Per-sample ``0.5 * <grad, G psi>`` with ``G = [[0, -1], [1, 0]]`` (the derivative of RY(theta) times RY^T),
    for ``both = [psi | grad]``, an amplitude-major ``(2**n, 2 * batch)`` state pair."""
    view = both.view(2**wire, 2, 2 ** (n - wire - 1), 2, batch)
    p0, p1, g0, g1 = view[:, 0, :, 0], view[:, 1, :, 0], view[:, 0, :, 1], view[:, 1, :, 1]
    product = scratch[: p0.numel()].view(p0.shape)
    torch.mul(g1, p0, out=product)
    product.addcmul_(g0, p1, value=-1)
    return 0.5 * product.sum(dim=(0, 1))


def _transposed_copy(matrix: torch.Tensor) -> torch.Tensor:
    """A fresh contiguous transpose (``.t().contiguous()`` aliases its input when a dimension is 1)."""
    return torch.empty(matrix.shape[::-1], dtype=matrix.dtype, device=matrix.device).copy_(matrix.t())


# On a CPU the batch is simulated in chunks whose states fit in cache: the passes of each gate then run at cache
# speed instead of streaming the whole batch through main memory for every gate. A chunk keeps at least
# CPU_MIN_CHUNK_SAMPLES columns: the pairs of the last wires are runs of one column count, and shorter runs leave
# the vector units idle (measured at 14 qubits: 2 columns per chunk is 5x slower than 32). A GPU takes it whole.
CPU_CHUNK_AMPLITUDES = 2**18
CPU_MIN_CHUNK_ROW_BYTES = 128  # 32 float32 or 16 float64 samples (the fastest at 16 qubits on a 2-core EPYC)


def _chunks(batch: int, n_qubits: int, device: torch.device, itemsize: int = 4):
    if device.type != "cpu":
        return [(0, batch)]
    size = max(CPU_MIN_CHUNK_ROW_BYTES // itemsize, CPU_CHUNK_AMPLITUDES >> n_qubits, 1)
    return [(start, min(start + size, batch)) for start in range(0, batch, size)]


def _rotations(applied) -> List[Tuple[str, int]]:
    """``(source, index)`` of every RY op in backward order: the rows of :func:`_backward_chunk`'s overlaps."""
    return [(op[2], op[3]) if op[0] == "ry" else (op[3], op[4])
            for op in reversed(applied) if op[0] in ("ry", "cnot_ry")]  # fmt: skip


def _backward_chunk(program, applied, out, grad_out, weight_cs, inputs):
    """Adjoint pass over one chunk: returns the gradient of the input states and a ``(rotations, batch)`` matrix of
    per-sample overlaps ``<grad, dU/dtheta psi>``, one row per RY op in backward order (see :func:`_rotations`)."""
    n, batch = program.n_qubits, out.shape[0]
    # psi and its gradient side by side, amplitude-major: one kernel call per gate un-applies both.
    both = _transposed_copy(torch.cat((out, grad_out), dim=0))
    input_cs = (torch.cos(inputs / 2), torch.sin(inputs / 2))
    n_rotations = sum(op[0] in ("ry", "cnot_ry") for op in applied)
    use_kernels = c_kernels_support(both)
    overlaps = torch.zeros(n_rotations, batch, dtype=torch.float64 if use_kernels else out.dtype, device=out.device)
    if use_kernels:
        tables = _kernel_tables(weight_cs, input_cs, inverse=True, repeat=2)
        if all(op[0] != "pauli" for op in applied):  # noise-free: the whole adjoint pass in one C call
            kernel_program = _kernel_program(tuple(applied), n, backward=True)
            run_program_(both, kernel_program, tables["weight"], tables.get("input"), _fixed_table(both.dtype),
                         overlaps)  # fmt: skip
            return both[:, batch:].t(), (0.5 * overlaps).to(out.dtype)
    else:
        scratch = both.new_empty(both.numel() // 2)
        input_cs = (input_cs[0].repeat(2, 1), input_cs[1].repeat(2, 1))
    row = 0
    for op in reversed(applied):
        rotation = op[0] in ("ry", "cnot_ry")
        if op[0] == "pauli":  # the sampled errors hold for psi and for its gradient alike
            op = ("pauli", op[1], torch.cat((op[2], op[2] + batch)), op[3])
        if use_kernels:
            _apply_op_kernel(both, n, op, tables, overlaps[row] if rotation else None)
        else:
            if rotation:
                overlaps[row] = _generator_overlap(both, n, op[1] if op[0] == "ry" else op[2], batch, scratch)
            _apply_op(both, n, op, weight_cs, input_cs, inverse=True, scratch=scratch)
        row += rotation
    if use_kernels:
        overlaps = (0.5 * overlaps).to(out.dtype)
    return both[:, batch:].t(), overlaps


_POOLS: Dict[int, ThreadPoolExecutor] = {}


def _map_chunks(function, chunks, parallel: bool) -> list:
    """``[function(chunk) for chunk in chunks]``, on ``torch.get_num_threads()`` threads when ``parallel``: the C
    kernels release the GIL, and chunks are independent (each writes its own rows)."""
    workers = min(torch.get_num_threads(), len(chunks))
    if not parallel or workers < 2:
        return [function(chunk) for chunk in chunks]
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qllm-chunks")

    def without_autograd(chunk):  # grad mode is per thread: the pool's threads would record the copies
        with torch.no_grad():
            return function(chunk)

    return list(_POOLS[workers].map(without_autograd, chunks))


class _AdjointCircuit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, state, weights, inputs, program, noise):
        weight_cs = (torch.cos(weights / 2), torch.sin(weights / 2))
        out = torch.empty_like(state)

        def run_chunk(chunk):
            start, stop = chunk
            rows = inputs[start:stop]
            input_cs = (torch.cos(rows / 2), torch.sin(rows / 2))
            amplitudes, applied = _execute(_transposed_copy(state[start:stop]), program, weight_cs, input_cs, noise)
            out[start:stop] = amplitudes.t()
            return applied

        ctx.chunks = _chunks(state.shape[0], program.n_qubits, state.device, state.element_size())
        # Noisy trajectories draw from one generator: their chunks run in order so that a seed fixes the errors.
        ctx.parallel = c_kernels_support(state) and (noise is None or not noise.active)
        ctx.applied = _map_chunks(run_chunk, ctx.chunks, ctx.parallel)
        ctx.save_for_backward(out, weights, inputs)
        ctx.program = program
        return out

    @staticmethod
    def backward(ctx, grad_out):
        out, weights, inputs = ctx.saved_tensors
        weight_cs = (torch.cos(weights / 2), torch.sin(weights / 2))
        grad_state = torch.empty_like(out)
        grad_weights = torch.zeros_like(weights)
        grad_inputs = torch.zeros_like(inputs)

        def run_chunk(item):
            (start, stop), applied = item
            grad_state[start:stop], overlaps = _backward_chunk(
                ctx.program, applied, out[start:stop], grad_out[start:stop], weight_cs, inputs[start:stop]
            )
            return overlaps

        items = list(zip(ctx.chunks, ctx.applied))
        # The overlaps are summed in chunk order whatever the threads did: results do not depend on the thread count.
        for ((start, stop), applied), overlaps in zip(items, _map_chunks(run_chunk, items, ctx.parallel)):
            rotations = _rotations(applied)
            for source, grad in (("weight", grad_weights), ("input", grad_inputs[start:stop])):
                rows = [k for k, (s, _) in enumerate(rotations) if s == source]
                if not rows:
                    continue
                index = torch.tensor([rotations[k][1] for k in rows], device=weights.device)
                terms = overlaps[torch.tensor(rows, device=overlaps.device)]
                if source == "weight":
                    grad.index_add_(0, index, terms.sum(dim=1))
                else:
                    grad.index_add_(1, index, terms.t())
        return grad_state, grad_weights, grad_inputs, None, None


def run_circuit(
    state: torch.Tensor,
    gates_or_program,
    weights: torch.Tensor,
    n_qubits: Optional[int] = None,
    inputs: Optional[torch.Tensor] = None,
    noise: Optional[Depolarizing] = None,
) -> torch.Tensor:
    """Apply a circuit to a batch of real states; differentiable in ``state``, ``weights`` and ``inputs``.

    Args:
        state: ``(batch, 2**n_qubits)`` real amplitudes (any float dtype, any device).
        gates_or_program: a gate list from ``circuits.py`` or a :class:`Program` from :func:`compile_gates`.
        weights: 1-D tensor of trained angles, indexed by the gates' ``index`` where ``source == "weight"``.
        n_qubits: register size (taken from the program when one is given).
        inputs: ``(batch, n_features)`` per-sample angles for gates with ``source == "input"``.
        noise: optional :class:`Depolarizing` rates; one Monte-Carlo trajectory is sampled per row.

    Returns:
        The output states, ``(batch, 2**n_qubits)``.
    """
    if isinstance(gates_or_program, Program):
        program = gates_or_program
    else:
        if n_qubits is None:
            raise ValueError("run_circuit needs n_qubits when given a gate list")
        program = compile_gates(gates_or_program, n_qubits, fuse=noise is None or not noise.active)
    if noise is not None and noise.active and any(op[0] == "cnot_ry" for op in program.ops):
        raise ValueError("noisy trajectories need an unfused program: compile_gates(..., fuse=False)")
    if state.dim() != 2 or state.shape[1] != 2**program.n_qubits:
        raise ValueError(
            f"state has shape {tuple(state.shape)}; expected (batch, {2**program.n_qubits}) for {program.n_qubits} qubits"
        )
    if weights.dim() != 1 or weights.shape[0] < program.n_weights:
        raise ValueError(f"weights has shape {tuple(weights.shape)}; the circuit reads {program.n_weights} angles")
    if inputs is None:
        if program.n_inputs:
            raise ValueError(f"the circuit encodes {program.n_inputs} input features per sample; pass inputs=")
        inputs = state.new_zeros(state.shape[0], 0)
    elif inputs.dim() != 2 or inputs.shape[0] != state.shape[0] or inputs.shape[1] < program.n_inputs:
        raise ValueError(
            f"inputs has shape {tuple(inputs.shape)}; expected ({state.shape[0]}, >= {program.n_inputs})"
        )
    return _AdjointCircuit.apply(state, weights.to(state.dtype), inputs.to(state.dtype), program, noise)
