"""The paper's circuits as data: gate lists built from (qubits, layers, connectivity, extra column).

A circuit is a tuple of :class:`Gate`. Nothing here touches a tensor: `statevector.py` executes the lists,
`pennylane_bridge.py` translates them, and `heads.py` decides which lists a head is made of.

Wire convention (PennyLane's): wire 0 is the most significant bit of the basis-state index, so amplitude `k` of a
Q-qubit state is the basis state whose binary digits, read from wire 0 to wire Q-1, spell `k`.

Example:
    >>> gates = pqc_gates(n_qubits=4, layers=3, connectivity=2, extra_column="first")
    >>> pqc_num_params(4, 3, 2, "first")
    28
    >>> sum(g.name == "RY" for g in gates)
    28
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Tuple

EXTRA_COLUMN_CHOICES = ("first", "last", "none")

ParamSource = Literal["weight", "input"]


@dataclass(frozen=True)
class Gate:
    """One gate of a circuit.

    Args:
        name: ``"RY"`` or ``"CNOT"``.
        wires: ``(wire,)`` for RY, ``(control, target)`` for CNOT.
        source: where an RY angle comes from: ``"weight"`` (a trained parameter, shared by the batch) or
            ``"input"`` (a per-sample feature: angle encoding). ``None`` for CNOT.
        index: position of the angle in the weight vector or in the feature vector.
    """

    name: str
    wires: Tuple[int, ...]
    source: Optional[ParamSource] = None
    index: Optional[int] = None


def check_register(n_qubits: int, connectivity: int, layers: int, extra_column: str, where: str = "PQC") -> None:
    """Raise a ``ValueError`` naming the bad value if a PQC of these settings cannot be built."""
    if not isinstance(n_qubits, int) or n_qubits < 2:
        raise ValueError(f"{where}: n_qubits={n_qubits!r}; the long-range ansatz needs an integer >= 2")
    if not isinstance(layers, int) or layers < 0:
        raise ValueError(f"{where}: layers={layers!r}; expected an integer >= 0")
    if not isinstance(connectivity, int) or not 1 <= connectivity <= n_qubits - 1:
        raise ValueError(
            f"{where}: connectivity={connectivity!r} on {n_qubits} qubits; expected 1 <= connectivity <= "
            f"{n_qubits - 1} (a CNOT reaches at most n_qubits-1 wires away; {n_qubits // 2} already links every pair)"
        )
    if extra_column not in EXTRA_COLUMN_CHOICES:
        raise ValueError(f"{where}: extra_column={extra_column!r}; expected one of {EXTRA_COLUMN_CHOICES}")


def pqc_num_params(n_qubits: int, layers: int, connectivity: int, extra_column: str = "last") -> int:
    """Number of RY angles of one PQC: ``layers * n_qubits * connectivity`` plus ``n_qubits`` for the extra column."""
    check_register(n_qubits, connectivity, layers, extra_column)
    return layers * n_qubits * connectivity + (0 if extra_column == "none" else n_qubits)


def pqc_gates(
    n_qubits: int, layers: int, connectivity: int, extra_column: str = "last", weight_offset: int = 0
) -> Tuple[Gate, ...]:
    """The paper's long-range PQC (figure 3).

    Each layer: for offset d = 1..connectivity, for each qubit i: ``CNOT(i -> (i+d) mod n)`` then ``RY`` on the
    target. The extra column is one RY on every qubit, placed before the layers, after them, or not at all.
    Angles are numbered from ``weight_offset`` in the order the gates are applied.
    """
    check_register(n_qubits, connectivity, layers, extra_column)
    gates = []
    k = weight_offset

    def column():
        nonlocal k
        for wire in range(n_qubits):
            gates.append(Gate("RY", (wire,), "weight", k))
            k += 1

    if extra_column == "first":
        column()
    for _ in range(layers):
        for offset in range(1, connectivity + 1):
            for control in range(n_qubits):
                target = (control + offset) % n_qubits
                gates.append(Gate("CNOT", (control, target)))
                gates.append(Gate("RY", (target,), "weight", k))
                k += 1
    if extra_column == "last":
        column()
    return tuple(gates)


def angle_encoding_gates(n_qubits: int, feature_offset: int = 0) -> Tuple[Gate, ...]:
    """RY angle encoding: feature ``feature_offset + i`` drives an RY on wire ``i`` (one feature per qubit)."""
    return tuple(Gate("RY", (wire,), "input", feature_offset + wire) for wire in range(n_qubits))


def num_weights(gates: Sequence[Gate]) -> int:
    """Length of the weight vector a gate list reads (highest weight index + 1)."""
    indices = [g.index for g in gates if g.source == "weight"]
    return max(indices) + 1 if indices else 0


def num_inputs(gates: Sequence[Gate]) -> int:
    """Length of the per-sample feature vector a gate list reads."""
    indices = [g.index for g in gates if g.source == "input"]
    return max(indices) + 1 if indices else 0


def count_gates(gates: Sequence[Gate]) -> dict:
    """``{"RY": n, "CNOT": m}``: what a QPU would execute (used by the energy model and the card)."""
    counts = {"RY": 0, "CNOT": 0}
    for gate in gates:
        counts[gate.name] += 1
    return counts
