"""Finite shots, depolarizing gates and readout error.

Noise model (the paper gives no rates or channel types, so every choice is a setting):

* **Depolarizing gates.** After every RY (trained or encoding) on wire ``w``: with probability ``p1`` one of X, Y, Z
  on ``w`` (PennyLane's ``DepolarizingChannel(p1)``). After every CNOT on ``(c, t)``: with probability ``p2`` one of
  the 15 non-identity two-qubit Paulis, i.e. ``rho -> (1 - p2) rho + p2/15 sum_P P rho P``.
* **Readout error.** Each measured bit flips independently with probability ``readout_error``; for exact
  expectations this scales ``<Z>`` by ``1 - 2 * readout_error``.
* **Shots.** ``shots=S`` draws ``S`` joint outcomes of the measured wires from the (readout-noisy) distribution and
  returns the sample mean of each ``Z``: unbiased, with variance ``(1 - <Z>^2) / S``. The estimate is
  differentiable by the straight-through rule ``z_hat = z + (z_hat - z).detach()``: the forward value is the
  sample, the gradient that of the exact expectation, which is the gradient of the estimator's mean.

Two exact-in-distribution simulators of gate noise:

* ``density_matrix``: ``rho`` evolved exactly (real, ``4**n`` entries per sample; plain autograd), for small
  registers (``auto`` uses it up to :data:`DENSITY_MATRIX_MAX_QUBITS` qubits);
* ``trajectories``: one Monte-Carlo trajectory per sample and forward pass (any size; adjoint backward), whose
  average converges to the density-matrix result.

Example:
    >>> import torch
    >>> from modeling_qllm.circuits import pqc_gates
    >>> model = NoiseModel(shots=None, depolarizing_1q=0.01, depolarizing_2q=0.02)
    >>> state = torch.zeros(2, 8); state[:, 0] = 1
    >>> model.expval(state, pqc_gates(3, 1, 1), torch.zeros(6), 3, [0]).shape
    torch.Size([2, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from .circuits import Gate
from .statevector import (
    Depolarizing,
    apply_cnot,
    apply_ry,
    compile_gates,
    expval_z_from_probabilities,
    marginal_probabilities,
    run_circuit,
)

NOISE_SCOPE_CHOICES = ("qpu", "all")
NOISE_METHOD_CHOICES = ("auto", "density_matrix", "trajectories")
DENSITY_MATRIX_MAX_QUBITS = 7


def _check_probability(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r}; expected a probability in [0, 1]")


@dataclass
class NoiseModel:
    """Shots, gate noise and readout error of a simulated device; all zero / ``None`` means exact.

    Args:
        shots: ``None`` (exact) or a positive number of shots per expectation estimate.
        depolarizing_1q: probability of a Pauli error after each RY.
        depolarizing_2q: probability of a two-qubit Pauli error after each CNOT.
        readout_error: probability that a measured bit flips.
        scope: ``"qpu"`` (module 2 only, as in the paper) or ``"all"`` (the encoders too); read by the head.
        method: ``"auto"``, ``"density_matrix"`` or ``"trajectories"`` for gate noise.
        generator: optional ``torch.Generator`` (on the state's device) for reproducible sampling.
    """

    shots: Optional[int] = None
    depolarizing_1q: float = 0.0
    depolarizing_2q: float = 0.0
    readout_error: float = 0.0
    scope: str = "qpu"
    method: str = "auto"
    generator: Optional[torch.Generator] = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.shots is not None and (isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 1):
            raise ValueError(f"shots={self.shots!r}; expected None (exact expectations) or a positive integer")
        _check_probability("depolarizing_1q", self.depolarizing_1q)
        _check_probability("depolarizing_2q", self.depolarizing_2q)
        _check_probability("readout_error", self.readout_error)
        if self.scope not in NOISE_SCOPE_CHOICES:
            raise ValueError(f"noise_scope={self.scope!r}; expected one of {NOISE_SCOPE_CHOICES}")
        if self.method not in NOISE_METHOD_CHOICES:
            raise ValueError(f"noise_method={self.method!r}; expected one of {NOISE_METHOD_CHOICES}")

    @property
    def gate_noise(self) -> bool:
        return self.depolarizing_1q > 0 or self.depolarizing_2q > 0

    def uses_density_matrix(self, n_qubits: int) -> bool:
        return self.method == "density_matrix" or (self.method == "auto" and n_qubits <= DENSITY_MATRIX_MAX_QUBITS)

    def expval(
        self,
        state: torch.Tensor,
        gates: Sequence[Gate],
        weights: torch.Tensor,
        n_qubits: int,
        wires: Sequence[int],
        inputs: Optional[torch.Tensor] = None,
        active: bool = True,
    ) -> torch.Tensor:
        """``<Z>`` on the leading ``wires`` after ``gates``, under this noise model when ``active``."""
        if active and self.gate_noise and self.uses_density_matrix(n_qubits):
            probs = density_matrix_probabilities(
                state, gates, weights, n_qubits, inputs, self.depolarizing_1q, self.depolarizing_2q
            )
            return measure_probabilities(probs, n_qubits, wires, self)
        if active and self.gate_noise:
            program = compile_gates(gates, n_qubits, fuse=False)
            trajectory = Depolarizing(self.depolarizing_1q, self.depolarizing_2q, self.generator)
            out = run_circuit(state, program, weights, inputs=inputs, noise=trajectory)
        else:
            out = run_circuit(state, compile_gates(gates, n_qubits), weights, inputs=inputs)
        return measure_z(out, n_qubits, wires, self, exact=not active)


def _leading(wires: Sequence[int]) -> int:
    wires = list(wires)
    if wires != list(range(len(wires))):
        raise ValueError(f"measured wires must be the leading wires 0..k-1; got {wires}")
    return len(wires)


def measure_z(state: torch.Tensor, n_qubits: int, wires: Sequence[int], noise: Optional[NoiseModel], exact: bool = False):
    """``<Z>`` on the leading ``wires`` of pure states, with readout error and shots unless ``exact``."""
    probs = marginal_probabilities(state, n_qubits, _leading(wires))
    return measure_probabilities(probs, len(wires), wires, None if exact else noise, marginal=True)


def measure_probabilities(probs, n_qubits, wires, noise: Optional[NoiseModel], marginal: bool = False) -> torch.Tensor:
    """``<Z>`` estimates from basis-state probabilities ``(batch, 2**n)`` (or their marginal on ``wires``)."""
    k = _leading(wires)
    if not marginal:
        probs = probs.reshape(probs.shape[0], 2**k, 2 ** (n_qubits - k)).sum(dim=2)
    if noise is not None and noise.readout_error > 0:
        probs = apply_readout_error(probs, k, noise.readout_error)
    exact = expval_z_from_probabilities(probs, k, range(k))
    if noise is None or noise.shots is None:
        return exact
    counts = sample_counts(probs, noise.shots, noise.generator)
    estimate = expval_z_from_probabilities(counts / noise.shots, k, range(k))
    return exact + (estimate - exact).detach()


def apply_readout_error(probs: torch.Tensor, n_bits: int, flip: float) -> torch.Tensor:
    """Distribution of the read bits when each one flips independently with probability ``flip``."""
    for wire in range(n_bits):
        view = probs.reshape(probs.shape[0], 2**wire, 2, 2 ** (n_bits - wire - 1))
        a, b = view[:, :, 0], view[:, :, 1]
        probs = torch.stack(((1 - flip) * a + flip * b, flip * a + (1 - flip) * b), dim=2).reshape(probs.shape)
    return probs


def sample_counts(probs: torch.Tensor, shots: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Multinomial outcome counts ``(batch, 2**k)`` of ``shots`` draws from each row of ``probs``."""
    probs = probs.detach().clamp_min(0)
    draws = torch.multinomial(probs, shots, replacement=True, generator=generator)
    return torch.zeros_like(probs).scatter_add_(1, draws, torch.ones_like(draws, dtype=probs.dtype))


# ----------------------------------------------------------------------------------------------------------------
# Exact density-matrix simulation for small registers
# ----------------------------------------------------------------------------------------------------------------
def _twirl(rho: torch.Tensor, n: int, wire: int) -> torch.Tensor:
    """``Tr_w(rho) (x) I/2``: the fully depolarized wire, on ``rho`` stored as a ``2n``-wire vector."""
    view = rho.reshape(rho.shape[0], 2**wire, 2, 2 ** (n - 1), 2, 2 ** (n - 1 - wire))
    traced = (view[:, :, 0, :, 0] + view[:, :, 1, :, 1]) / 2
    zero = torch.zeros_like(traced)
    rows = (torch.stack((traced, zero), dim=3), torch.stack((zero, traced), dim=3))
    return torch.stack(rows, dim=2).reshape(rho.shape)


def _depolarize(rho, n, wires, p):
    if p == 0:
        return rho
    if len(wires) == 1:
        strength = 4 * p / 3  # (1-p) rho + p/3 (X.X + Y.Y + Z.Z) = (1 - 4p/3) rho + 4p/3 Tr_w(rho) I/2
        return (1 - strength) * rho + strength * _twirl(rho, n, wires[0])
    strength = 16 * p / 15
    return (1 - strength) * rho + strength * _twirl(_twirl(rho, n, wires[0]), n, wires[1])


def density_matrix_probabilities(
    state: torch.Tensor,
    gates: Sequence[Gate],
    weights: torch.Tensor,
    n_qubits: int,
    inputs: Optional[torch.Tensor],
    p1: float,
    p2: float,
) -> torch.Tensor:
    """Basis-state probabilities ``(batch, 2**n)`` after the noisy circuit, from an exact density matrix.

    ``rho`` (real: every gate and channel here maps real matrices to real matrices) is stored as a state of ``2n``
    wires, rows first: a gate ``G`` on wire ``w`` is ``G`` on wire ``w`` and on wire ``n + w``.
    """
    if n_qubits > 12:
        raise ValueError(f"a density matrix of {n_qubits} qubits has 4**{n_qubits} entries per sample; use trajectories")
    n = n_qubits
    rho = (state[:, :, None] * state[:, None, :]).reshape(state.shape[0], 4**n)
    for gate in gates:
        if gate.name == "CNOT":
            c, t = gate.wires
            rho = apply_cnot(apply_cnot(rho, 2 * n, c, t), 2 * n, n + c, n + t)
            rho = _depolarize(rho, n, (c, t), p2)
        else:
            (w,) = gate.wires
            angle = weights[gate.index] if gate.source == "weight" else inputs[:, gate.index]
            rho = apply_ry(apply_ry(rho, 2 * n, w, angle), 2 * n, n + w, angle)
            rho = _depolarize(rho, n, (w,), p1)
    return torch.diagonal(rho.reshape(-1, 2**n, 2**n), dim1=1, dim2=2)
