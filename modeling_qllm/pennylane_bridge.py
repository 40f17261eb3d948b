"""The head's circuits as PennyLane QNodes: a reference for our simulator, drawings, and a bridge to hardware.

Our simulator (``statevector.py``, ``noise.py``) executes gate lists from ``circuits.py``. This module queues the
*very same* gate lists as PennyLane operations (``qml.RY``, ``qml.CNOT``; wire 0 is the most significant bit in both),
so any PennyLane device can run them: ``default.qubit`` (exact, broadcasting, backprop), ``default.mixed`` (noise
channels and readout error), ``lightning.qubit`` (adjoint), or a hardware plugin such as ``"ionq.simulator"`` (the
name is passed through to ``qml.device``; the plugin must be installed).

PennyLane is imported lazily inside the functions, so this file travels as Hub remote code without making PennyLane
a requirement of loading a model.

Noise mirrors :class:`~.noise.NoiseModel`: ``qml.DepolarizingChannel(p1)`` after every RY, a two-qubit depolarizing
channel ``rho -> (1 - p2) rho + p2/15 sum_P P rho P`` (16 Kraus operators, ``qml.QubitChannel``) after every CNOT, and
readout error as a ``qml.BitFlip(readout_error)`` on every measured wire just before the ``<Z>`` measurement, which is
the same channel as a flipped read bit. (``default.mixed``'s own ``readout_prob`` argument would be the natural
route, but in PennyLane 0.45 it crashes every execution with ``TypeError: 'float' object is not iterable``:
PennyLane issue #9612; ``readout="device"`` selects it for versions that fix it.) Shots (``NoiseModel.shots`` or
``shots=``) become the QNode's shots: the estimates are then samples, equal to ours only in distribution.

Public API:

* :func:`gates_to_pennylane` -- queue a gate list inside a quantum function;
* :func:`circuit_qnode` -- a QNode ``qnode(weights, state=None, inputs=None) -> (batch, n_measured)`` for a gate list;
* :func:`head_to_pennylane` -- a :class:`PennyLaneHead`, a callable ``f(embeddings) -> logits`` reproducing a
  :class:`~.heads.QuantumHead` with PennyLane (it reads the head's parameters live, so gradients reach them);
* :func:`draw` / :func:`draw_head` -- ``qml.draw`` text (or ``qml.draw_mpl`` figures) of the circuits.

Example:
    >>> import torch
    >>> from modeling_qllm.heads import QuantumHead
    >>> head = QuantumHead(embedding_size=16, num_labels=2, encoder_qubits=4).double()
    >>> x = torch.randn(3, 16, dtype=torch.float64)
    >>> f = head_to_pennylane(head, "default.qubit")
    >>> torch.allclose(f(x), head(x), atol=1e-10)
    True
    >>> drawings = draw_head(head)             # qml.draw text of one encoder and of module 2
    >>> sorted(drawings), "RY" in drawings["qpu"]
    (['encoder', 'qpu'], True)
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .circuits import Gate, num_inputs, num_weights


# Imports inside `try` blocks are not required by transformers' remote-code check, so a checkpoint loads from the
# Hub on a machine without PennyLane; only the bridge's own functions need it.
def _pennylane():
    try:
        import pennylane
    except ImportError as error:
        raise ImportError("the PennyLane bridge needs PennyLane: pip install pennylane") from error
    return pennylane


def _numpy():
    try:
        import numpy
    except ImportError as error:
        raise ImportError("the PennyLane bridge needs numpy (PennyLane installs it)") from error
    return numpy

STATE_PREP_CHOICES = ("amplitude", "zero")
READOUT_CHOICES = ("bitflip", "device")

# Simulators that evolve pure states only: noise channels need ``default.mixed`` (or a device with its own noise).
_PURE_STATE_DEVICES = ("default.qubit", "lightning.qubit", "lightning.gpu", "lightning.kokkos", "lightning.tensor")
# Devices on which batch broadcasting is known to work (natively or by PennyLane's own tape splitting).
_BROADCAST_DEVICES = ("default.qubit", "default.mixed", "lightning.qubit", "lightning.gpu", "lightning.kokkos")

_KRAUS_CACHE: Dict[float, list] = {}


# ----------------------------------------------------------------------------------------------------------------
# Noise
# ----------------------------------------------------------------------------------------------------------------
def noise_rates(noise: Any) -> Tuple[float, float, float, Optional[int]]:
    """``(p1, p2, readout_error, shots)`` of a :class:`~.noise.NoiseModel`, a ``Depolarizing`` or ``None``."""
    if noise is None:
        return 0.0, 0.0, 0.0, None
    if hasattr(noise, "depolarizing_1q"):
        return (
            float(noise.depolarizing_1q),
            float(noise.depolarizing_2q),
            float(getattr(noise, "readout_error", 0.0)),
            getattr(noise, "shots", None),
        )
    if hasattr(noise, "p1") and hasattr(noise, "p2"):
        return float(noise.p1), float(noise.p2), 0.0, None
    raise TypeError(
        f"noise={noise!r}; expected None, a NoiseModel (noise.py) or a Depolarizing (statevector.py)"
    )


def two_qubit_depolarizing_kraus(p2: float) -> list:
    """The 16 Kraus operators of ``rho -> (1 - p2) rho + p2/15 sum_{P != II} P rho P`` (4x4 complex numpy arrays).

    Example:
        >>> import numpy as np
        >>> ks = two_qubit_depolarizing_kraus(0.1)
        >>> len(ks), bool(np.allclose(sum(k.conj().T @ k for k in ks), np.eye(4)))
        (16, True)
    """
    np = _numpy()

    if not 0.0 <= p2 <= 1.0:
        raise ValueError(f"p2={p2!r}; expected a probability in [0, 1]")
    key = float(p2)
    if key not in _KRAUS_CACHE:
        paulis = [
            np.eye(2, dtype=complex),
            np.array([[0, 1], [1, 0]], dtype=complex),
            np.array([[0, -1j], [1j, 0]], dtype=complex),
            np.array([[1, 0], [0, -1]], dtype=complex),
        ]
        kraus = []
        for a in range(4):
            for b in range(4):
                scale = math.sqrt(1.0 - p2) if a == b == 0 else math.sqrt(p2 / 15.0)
                kraus.append(scale * np.kron(paulis[a], paulis[b]))
        _KRAUS_CACHE[key] = kraus
    return _KRAUS_CACHE[key]


# ----------------------------------------------------------------------------------------------------------------
# Gate lists -> PennyLane operations
# ----------------------------------------------------------------------------------------------------------------
def gates_to_pennylane(gates: Sequence[Gate], weights, inputs_row=None, noise: Any = None) -> None:
    """Queue ``gates`` as PennyLane operations; call it inside a quantum function (QNode body).

    Args:
        gates: a gate list from ``circuits.py``.
        weights: 1-D array or tensor of trained angles, read at ``gate.index`` where ``gate.source == "weight"``.
        inputs_row: per-sample angles for ``source == "input"`` gates, read as ``inputs_row[..., gate.index]``: one
            row ``(n_inputs,)``, or a batch ``(batch, n_inputs)`` for PennyLane's parameter broadcasting. Any
            scaling (the head's ``angle_scale``) must already be applied.
        noise: ``None``, a :class:`~.noise.NoiseModel` or a ``Depolarizing``: ``qml.DepolarizingChannel(p1)``
            after every RY, the 16-Kraus two-qubit depolarizing channel after every CNOT. Readout error and shots
            are not gates: :func:`circuit_qnode` handles them.
    """
    qml = _pennylane()

    p1, p2, _, _ = noise_rates(noise)
    kraus = two_qubit_depolarizing_kraus(p2) if p2 > 0 else None
    for gate in gates:
        if gate.name == "CNOT":
            qml.CNOT(wires=list(gate.wires))
            if kraus is not None:
                qml.QubitChannel(kraus, wires=list(gate.wires))
        elif gate.name == "RY":
            if gate.source == "weight":
                angle = weights[gate.index]
            elif gate.source == "input":
                if inputs_row is None:
                    raise ValueError(f"gate {gate} reads an input feature; pass inputs_row=")
                angle = inputs_row[..., gate.index]
            else:
                raise ValueError(f"RY gate {gate} has source={gate.source!r}; expected 'weight' or 'input'")
            qml.RY(angle, wires=gate.wires[0])
            if p1 > 0:
                qml.DepolarizingChannel(p1, wires=gate.wires[0])
        else:
            raise ValueError(f"unknown gate {gate.name!r}; the ansatz uses 'RY' and 'CNOT'")


def _device_name(device) -> str:
    return device if isinstance(device, str) else getattr(device, "name", type(device).__name__)


def _make_device(device, n_qubits: int, noise: Any, device_kwargs: dict, readout: str):
    """A PennyLane device for ``n_qubits`` wires; noise settings checked against what the device can do."""
    qml = _pennylane()

    p1, p2, readout_error, _ = noise_rates(noise)
    name = _device_name(device)
    if (p1 > 0 or p2 > 0) and name in _PURE_STATE_DEVICES:
        raise ValueError(
            f"device {name!r} simulates pure states and cannot apply depolarizing channels "
            f"(p1={p1}, p2={p2}); use device='default.mixed', or noise=None for the ideal circuit"
        )
    if readout_error > 0:
        if name in _PURE_STATE_DEVICES:
            raise ValueError(
                f"readout_error={readout_error} needs a mixed-state simulator; got device {name!r}. Use "
                f"device='default.mixed', or on hardware noise=None: the device has its own readout error"
            )
        if readout == "device":
            if name != "default.mixed" or not isinstance(device, str):
                raise ValueError(f"readout='device' needs device='default.mixed' by name; got {name!r}")
            device_kwargs = dict(device_kwargs)
            if device_kwargs.setdefault("readout_prob", readout_error) != readout_error:
                raise ValueError(
                    f"readout_prob={device_kwargs['readout_prob']} conflicts with the noise model's "
                    f"readout_error={readout_error}"
                )
    if not isinstance(device, str):
        if device_kwargs:
            raise ValueError(f"device keyword arguments {sorted(device_kwargs)} need the device given by name")
        return device
    return qml.device(device, wires=n_qubits, **device_kwargs)


def _stack_expvals(result) -> torch.Tensor:
    """QNode output (a tensor or a sequence of per-wire tensors, each ``()`` or ``(batch,)``) -> ``(..., n_wires)``."""
    if isinstance(result, (list, tuple)):
        return torch.stack([torch.as_tensor(r) for r in result], dim=-1)
    result = torch.as_tensor(result)
    return result[..., None]


def circuit_qnode(
    gates: Sequence[Gate],
    n_qubits: int,
    device="default.qubit",
    wires_measured: Optional[Sequence[int]] = None,
    state_prep: str = "amplitude",
    noise: Any = None,
    diff_method: str = "best",
    interface: str = "torch",
    shots: Optional[int] = None,
    qnode_kwargs: Optional[dict] = None,
    readout: str = "bitflip",
    **device_kwargs,
):
    """A QNode running ``gates`` on ``n_qubits`` wires and returning ``<Z>`` on ``wires_measured``.

    The QNode is called as ``qnode(weights, state=None, inputs=None)`` and returns a list of ``<Z_w>`` (each of
    shape ``()`` or ``(batch,)`` when broadcasting); :func:`run_qnode` stacks them into ``(batch, n_measured)``.

    Args:
        gates: a gate list from ``circuits.py``.
        n_qubits: register size.
        device: a device name passed through to ``qml.device`` (``"default.qubit"``, ``"default.mixed"``,
            ``"lightning.qubit"``, or a plugin such as ``"ionq.simulator"``), or a ready device instance.
        wires_measured: wires read out as ``<Z>``; default all.
        state_prep: ``"amplitude"``: ``state`` is prepared first -- a ``2**n_qubits`` vector (ideally the head's
            :meth:`~.heads.QuantumHead.amplitudes`, so pad / truncate / project semantics are ours) goes through
            ``qml.StatePrep(normalize=True)``, a shorter one through ``qml.AmplitudeEmbedding(normalize=True,
            pad_with=0.)``; ``"zero"``: start in ``|0...0>``.
        noise: ``None``, a :class:`~.noise.NoiseModel` or a ``Depolarizing``; gate noise and readout error need a
            device that accepts channels (``default.mixed``).
        diff_method: PennyLane's differentiation method (``"best"``, ``"backprop"``, ``"adjoint"``, ...).
        interface: PennyLane's ML interface; ``"torch"`` for our tensors.
        shots: QNode shots; default: the noise model's shots, else analytic.
        qnode_kwargs: further ``qml.QNode`` arguments (e.g. ``{"device_vjp": True}``).
        readout: how the noise model's readout error is simulated: ``"bitflip"`` (a ``qml.BitFlip`` on each
            measured wire before measuring; works on any mixed-state device) or ``"device"`` (``default.mixed``'s
            ``readout_prob``, broken in PennyLane 0.45, issue #9612).
        **device_kwargs: passed to ``qml.device`` (e.g. ``readout_prob``, ``seed``, a plugin's ``api_key``).

    Example:
        >>> import torch
        >>> from modeling_qllm.circuits import pqc_gates
        >>> qnode = circuit_qnode(pqc_gates(3, 1, 1), 3, state_prep="zero", wires_measured=[0])
        >>> run_qnode(qnode, torch.zeros(6, dtype=torch.float64)).tolist()
        [[1.0]]
    """
    qml = _pennylane()

    if state_prep not in STATE_PREP_CHOICES:
        raise ValueError(f"state_prep={state_prep!r}; expected one of {STATE_PREP_CHOICES}")
    if readout not in READOUT_CHOICES:
        raise ValueError(f"readout={readout!r}; expected one of {READOUT_CHOICES}")
    wires_measured = list(range(n_qubits)) if wires_measured is None else [int(w) for w in wires_measured]
    bad = [w for w in wires_measured if not 0 <= w < n_qubits]
    if bad or not wires_measured:
        raise ValueError(f"wires_measured={wires_measured}; expected a non-empty list of wires in 0..{n_qubits - 1}")
    gates = tuple(gates)
    used = [w for g in gates for w in g.wires]
    if used and max(used) >= n_qubits:
        raise ValueError(f"the gates act on wire {max(used)}; n_qubits={n_qubits} is too small")
    _, _, readout_error, noise_shots = noise_rates(noise)
    shots = noise_shots if shots is None else shots
    dev = _make_device(device, n_qubits, noise, device_kwargs, readout)
    bit_flip = readout_error if readout == "bitflip" and readout_error > 0 else None
    size = 2**n_qubits

    def circuit(weights, state=None, inputs=None):
        if state_prep == "amplitude":
            if state is None:
                raise ValueError("state_prep='amplitude' needs state= (the amplitudes to prepare)")
            if state.shape[-1] == size:
                qml.StatePrep(state, wires=range(n_qubits), normalize=True)
            else:
                qml.AmplitudeEmbedding(state, wires=range(n_qubits), normalize=True, pad_with=0.0)
        gates_to_pennylane(gates, weights, inputs, noise)
        if bit_flip is not None:
            for w in wires_measured:
                qml.BitFlip(bit_flip, wires=w)
        return [qml.expval(qml.PauliZ(w)) for w in wires_measured]

    kwargs = dict(qnode_kwargs or {})
    if shots is not None:
        kwargs["shots"] = shots
    qnode = qml.QNode(circuit, dev, interface=interface, diff_method=diff_method, **kwargs)
    qnode.qllm_info = {
        "gates": gates,
        "n_qubits": n_qubits,
        "wires_measured": wires_measured,
        "state_prep": state_prep,
        "n_weights": num_weights(gates),
        "n_inputs": num_inputs(gates),
        "device": _device_name(device),
        "shots": shots,
    }
    return qnode


def supports_broadcasting(device) -> bool:
    """Whether :func:`run_qnode` broadcasts a batch on ``device`` by default (else it loops over rows)."""
    return _device_name(device) in _BROADCAST_DEVICES


def run_qnode(qnode, weights, state=None, inputs=None, broadcast: Optional[bool] = None) -> torch.Tensor:
    """Run a :func:`circuit_qnode` QNode on a batch; returns ``(batch, n_measured)`` (or ``(1, n)`` unbatched).

    ``state`` is ``(batch, 2**n)`` (or one vector), ``inputs`` ``(batch, n_inputs)`` (or one row). With
    ``broadcast`` (default: when the device is known to support it and the QNode is analytic -- PennyLane's
    parameter-shift gradients, used with shots, reject broadcast trainable inputs) the whole batch is one broadcast
    call; otherwise the rows run one at a time and are stacked.
    """
    batched = [t for t in (state, inputs) if t is not None and t.dim() == 2]
    if not batched:
        return _stack_expvals(qnode(weights, state=state, inputs=inputs)).reshape(1, -1)
    batch = batched[0].shape[0]
    if any(t.shape[0] != batch for t in batched):
        raise ValueError(f"state and inputs disagree on the batch size: {[tuple(t.shape) for t in batched]}")
    if broadcast is None:
        analytic = getattr(qnode, "qllm_info", {}).get("shots") is None
        broadcast = analytic and supports_broadcasting(qnode.device)
    if broadcast and batch > 1:
        out = _stack_expvals(qnode(weights, state=state, inputs=inputs))
        return out.reshape(batch, -1)
    rows = []
    for i in range(batch):
        row_state = None if state is None else (state[i] if state.dim() == 2 else state)
        row_inputs = None if inputs is None else (inputs[i] if inputs.dim() == 2 else inputs)
        rows.append(_stack_expvals(qnode(weights, state=row_state, inputs=row_inputs)).reshape(-1))
    return torch.stack(rows)


# ----------------------------------------------------------------------------------------------------------------
# A whole head
# ----------------------------------------------------------------------------------------------------------------
class PennyLaneHead:
    """A :class:`~.heads.QuantumHead` executed by PennyLane: ``f(embeddings) -> logits``.

    The encoders run as one QNode (amplitude state prep of ``head.amplitudes(x)``, then the encoder PQC, ``<Z>`` on
    every wire), once per encoder weight set; their read-outs are merged by ``head.merge_readouts``; module 2 runs
    as a second QNode from ``|0...0>`` with input angles ``head.angle_scale * merged``; ``head.readout`` gives the
    logits. The head's parameters are read at every call (nothing is copied), so gradients flow to them.

    Args:
        head: the :class:`~.heads.QuantumHead`.
        device: device name (or instance) for both modules; ``encoder_device`` overrides it for module 1.
        noise: ``"head"`` (default): the head's own noise model, with its scope (module 2 only unless
            ``noise_scope="all"``); ``None``: the ideal circuits (what to send to hardware, which brings its own
            noise); or a :class:`~.noise.NoiseModel`.
        diff_method, interface, shots, qnode_kwargs, readout, device_kwargs: see :func:`circuit_qnode`.
        broadcast: broadcast the batch (default: when the device supports it) or loop over rows.
    """

    def __init__(
        self,
        head,
        device="default.qubit",
        noise: Any = "head",
        diff_method: str = "best",
        interface: str = "torch",
        broadcast: Optional[bool] = None,
        shots: Optional[int] = None,
        encoder_device=None,
        qnode_kwargs: Optional[dict] = None,
        readout: str = "bitflip",
        **device_kwargs,
    ):
        self.head = head
        noise = head.noise if isinstance(noise, str) and noise == "head" else noise
        if isinstance(noise, str):
            raise ValueError(f"noise={noise!r}; expected 'head', None or a NoiseModel")
        self.noise = noise
        encoder_noise = noise if noise is not None and getattr(noise, "scope", "qpu") == "all" else None
        self.broadcast = broadcast
        common = dict(
            diff_method=diff_method, interface=interface, shots=shots, qnode_kwargs=qnode_kwargs, readout=readout
        )
        self.encoder_qnode = circuit_qnode(
            head.encoder_gates,
            head.encoder_qubits,
            device if encoder_device is None else encoder_device,
            wires_measured=range(head.encoder_qubits),
            state_prep="amplitude",
            noise=encoder_noise,
            **common,
            **device_kwargs,
        )
        self.qpu_qnode = circuit_qnode(
            head.qpu_gates,
            head.qpu_qubits,
            device,
            wires_measured=range(head.measured_qubits),
            state_prep="zero",
            noise=noise,
            **common,
            **device_kwargs,
        )

    def encode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Module 1: ``(batch, E, Q_c)`` <Z> read-outs of every encoder."""
        states = self.head.amplitudes(embeddings)
        outputs = [
            run_qnode(self.encoder_qnode, weights, state=states, broadcast=self.broadcast)
            for weights in self.head.encoder_weights
        ]
        return torch.stack(outputs, dim=1).to(states.dtype)

    def qpu_expectations(self, merged: torch.Tensor) -> torch.Tensor:
        """Module 2: ``(batch, Q_m)`` <Z> on wires ``0..Q_m-1``."""
        inputs = self.head.angle_scale * merged
        out = run_qnode(self.qpu_qnode, self.head.qpu_weights, inputs=inputs, broadcast=self.broadcast)
        return out.to(merged.dtype)

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        from .heads import check_embeddings

        check_embeddings(embeddings, self.head.embedding_size)
        embeddings = embeddings.to(self.head.encoder_weights.dtype)
        merged = self.head.merge_readouts(self.encode(embeddings))
        return self.head.readout(self.qpu_expectations(merged))

    def draw(self, **kwargs) -> Dict[str, Any]:
        """:func:`draw_head` of the wrapped head."""
        return draw_head(self.head, **kwargs)


def head_to_pennylane(head, device="default.qubit", **kwargs) -> PennyLaneHead:
    """A callable ``f(embeddings) -> logits`` that runs ``head``'s circuits with PennyLane on ``device``.

    See :class:`PennyLaneHead` for the arguments. On ``default.qubit`` (exact) and on ``default.mixed`` with the
    density-matrix noise model, ``f(x)`` equals ``head(x)`` to float precision.
    """
    return PennyLaneHead(head, device, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------------------------
def draw(
    gates: Sequence[Gate],
    n_qubits: int,
    weights=None,
    inputs=None,
    state_prep: str = "zero",
    wires_measured: Optional[Sequence[int]] = None,
    decimals: Optional[int] = None,
    mpl: bool = False,
    **draw_kwargs,
):
    """``qml.draw`` text of a gate list (or, with ``mpl=True``, the ``(figure, axes)`` of ``qml.draw_mpl``).

    Angles default to zeros and are hidden unless ``decimals`` is given; ``state_prep="amplitude"`` draws the
    state preparation as a box (of ``|0...0>``).

    Example:
        >>> from modeling_qllm.circuits import pqc_gates
        >>> print(draw(pqc_gates(2, 1, 1, extra_column="none"), 2))
        0: ─╭●─────╭X──RY─┤  <Z>
        1: ─╰X──RY─╰●─────┤  <Z>
    """
    qml = _pennylane()

    qnode = circuit_qnode(gates, n_qubits, "default.qubit", wires_measured, state_prep, diff_method=None)
    if weights is None:
        weights = torch.zeros(num_weights(gates), dtype=torch.float64)
    if inputs is None and num_inputs(gates):
        inputs = torch.zeros(num_inputs(gates), dtype=torch.float64)
    state = None
    if state_prep == "amplitude":
        state = torch.zeros(2**n_qubits, dtype=torch.float64)
        state[0] = 1
    drawer = qml.draw_mpl if mpl else qml.draw
    return drawer(qnode, decimals=decimals, **draw_kwargs)(weights, state=state, inputs=inputs)


def draw_head(head, decimals: Optional[int] = None, mpl: bool = False, **draw_kwargs) -> Dict[str, Any]:
    """Drawings of a head's two circuits: ``{"encoder": ..., "qpu": ...}`` (text, or ``(fig, ax)`` with ``mpl``).

    ``"encoder"`` is one encoder (all ``E`` share the structure; drawn with the first one's weights), its amplitude
    state preparation shown as a box; ``"qpu"`` is module 2 (re-uploading blocks and PQC2), its input angles drawn
    as zeros. Angles are hidden unless ``decimals`` is given.
    """
    with torch.no_grad():
        encoder = draw(
            head.encoder_gates,
            head.encoder_qubits,
            head.encoder_weights[0].detach().double(),
            state_prep="amplitude",
            decimals=decimals,
            mpl=mpl,
            **draw_kwargs,
        )
        qpu = draw(
            head.qpu_gates,
            head.qpu_qubits,
            head.qpu_weights.detach().double(),
            state_prep="zero",
            wires_measured=range(head.measured_qubits),
            decimals=decimals,
            mpl=mpl,
            **draw_kwargs,
        )
    return {"encoder": encoder, "qpu": qpu}


__all__ = [
    "PennyLaneHead",
    "circuit_qnode",
    "draw",
    "draw_head",
    "gates_to_pennylane",
    "head_to_pennylane",
    "noise_rates",
    "run_qnode",
    "supports_broadcasting",
    "two_qubit_depolarizing_kraus",
]
