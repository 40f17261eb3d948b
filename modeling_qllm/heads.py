"""Classification heads on sentence embeddings: the paper's quantum head, and classical baselines.

:class:`QuantumHead` is module 1 (``E`` amplitude-encoding encoders, each with its own PQC, read out as <Z> on every
qubit) -> merge -> module 2 (``N`` data re-uploading blocks of RY angle encoding + PQC1, then PQC2, <Z> on ``Q_m``
qubits) -> ``Linear(Q_m -> num_labels)``. Every circuit weight is a plain ``nn.Parameter`` (no PennyLane layer),
so the head saves to safetensors and reloads exactly.

Example:
    >>> import torch
    >>> head = QuantumHead(embedding_size=384, num_labels=2, encoder_qubits=9, amplitude_fit="pad")
    >>> head(torch.randn(4, 384)).shape
    torch.Size([4, 2])
    >>> head.parameter_counts()["total"] == sum(p.numel() for p in head.parameters())
    True
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from torch import nn

from .circuits import EXTRA_COLUMN_CHOICES, angle_encoding_gates, check_register, pqc_gates, pqc_num_params
from .noise import NOISE_METHOD_CHOICES, NOISE_SCOPE_CHOICES, NoiseModel, measure_z
from .statevector import AMPLITUDE_FIT_CHOICES, amplitude_encode, check_finite, compile_gates, run_circuit, zero_state

MERGE_CHOICES = ("concat", "mean", "sum")
ENCODER_STRATEGY_CHOICES = ("auto", "gates", "matrix")


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r}; expected one of {choices}")


def merged_width(num_encoders: int, encoder_qubits: int, merge: str) -> int:
    """Width of the merged encoder read-out, which is also module 2's qubit count (one feature per qubit)."""
    return num_encoders * encoder_qubits if merge == "concat" else encoder_qubits


def default_encoder_qubits(embedding_size: int) -> int:
    """Fewest qubits whose amplitudes hold the embedding (768 -> 10, as in the paper; 384 -> 9)."""
    return max(2, math.ceil(math.log2(embedding_size)))


class QuantumHead(nn.Module):
    """The paper's hybrid head, simulated exactly (or with shots and noise) by the batched real simulator.

    Args:
        embedding_size: width ``d`` of the sentence embedding.
        num_labels: number of output logits.
        num_encoders: ``E``, parallel encoders of module 1.
        encoder_qubits: ``Q_c``; default: fewest qubits holding ``d`` amplitudes.
        encoder_layers, encoder_connectivity: ``M`` and ``C`` of each encoder's PQC.
        amplitude_fit: how ``d`` meets ``2**Q_c``: ``"pad"``, ``"truncate"`` or ``"project"`` (learned Linear).
        merge: ``"concat"``, ``"mean"`` or ``"sum"`` of the encoders' <Z> vectors.
        reupload_blocks: ``N``, blocks of RY angle encoding + PQC1 in module 2.
        reupload_layers, reupload_connectivity: PQC1's ``M`` and ``C``.
        share_reupload_weights: one PQC1 for all blocks (True) or one per block.
        final_layers, final_connectivity: PQC2's ``M`` and ``C``.
        extra_column: the extra RY column of every PQC: ``"first"``, ``"last"`` or ``"none"``.
        measured_qubits: ``Q_m``, wires ``0..Q_m-1`` of module 2 read out as <Z>.
        angle_scale: RY angle = ``angle_scale * feature`` in module 2.
        shots: ``None`` for exact expectations, else the number of shots per estimate.
        depolarizing_1q, depolarizing_2q, readout_error: noise rates (see ``noise.py``).
        noise_scope: ``"qpu"`` (module 2 only, as in the paper) or ``"all"``.
        noise_method: ``"auto"``, ``"density_matrix"`` or ``"trajectories"``.
        init_scale: circuit weights start uniform in ``[-init_scale, init_scale]``.
        encoder_strategy: ``"gates"`` runs each encoder's circuit on the batch; ``"matrix"`` runs it once on the
            basis states the embedding occupies and applies the result as a matrix (cheaper when the batch is
            larger than the embedding); ``"auto"`` picks the cheaper.
    """

    def __init__(
        self,
        embedding_size: int,
        num_labels: int,
        num_encoders: int = 2,
        encoder_qubits: Optional[int] = None,
        encoder_layers: int = 2,
        encoder_connectivity: int = 2,
        amplitude_fit: str = "pad",
        merge: str = "mean",
        reupload_blocks: int = 2,
        reupload_layers: int = 1,
        reupload_connectivity: int = 1,
        share_reupload_weights: bool = True,
        final_layers: int = 1,
        final_connectivity: int = 1,
        extra_column: str = "last",
        measured_qubits: int = 1,
        angle_scale: float = math.pi,
        shots: Optional[int] = None,
        depolarizing_1q: float = 0.0,
        depolarizing_2q: float = 0.0,
        readout_error: float = 0.0,
        noise_scope: str = "qpu",
        noise_method: str = "auto",
        init_scale: float = math.pi,
        encoder_strategy: str = "auto",
    ):
        super().__init__()
        if not isinstance(embedding_size, int) or embedding_size < 1:
            raise ValueError(f"embedding_size={embedding_size!r}; expected a positive integer")
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"num_labels={num_labels!r}; expected a positive integer")
        if not isinstance(num_encoders, int) or num_encoders < 1:
            raise ValueError(f"num_encoders={num_encoders!r}; expected an integer >= 1")
        if not isinstance(reupload_blocks, int) or reupload_blocks < 1:
            raise ValueError(f"reupload_blocks={reupload_blocks!r}; expected an integer >= 1")
        _choice("merge", merge, MERGE_CHOICES)
        _choice("amplitude_fit", amplitude_fit, AMPLITUDE_FIT_CHOICES)
        _choice("extra_column", extra_column, EXTRA_COLUMN_CHOICES)
        _choice("encoder_strategy", encoder_strategy, ENCODER_STRATEGY_CHOICES)
        _choice("noise_scope", noise_scope, NOISE_SCOPE_CHOICES)
        _choice("noise_method", noise_method, NOISE_METHOD_CHOICES)
        encoder_qubits = default_encoder_qubits(embedding_size) if encoder_qubits is None else encoder_qubits
        amplitudes = 2**encoder_qubits
        if amplitude_fit == "pad" and embedding_size > amplitudes:
            raise ValueError(
                f"amplitude_fit='pad' cannot fit embedding_size={embedding_size} into encoder_qubits={encoder_qubits} "
                f"({amplitudes} amplitudes); use 'truncate', 'project', or at least "
                f"{default_encoder_qubits(embedding_size)} qubits"
            )
        if amplitude_fit == "truncate" and embedding_size <= amplitudes:
            raise ValueError(
                f"amplitude_fit='truncate' with embedding_size={embedding_size} <= {amplitudes} amplitudes "
                f"(encoder_qubits={encoder_qubits}) drops nothing; use 'pad'"
            )
        check_register(encoder_qubits, encoder_connectivity, encoder_layers, extra_column, "encoder PQC")
        width = merged_width(num_encoders, encoder_qubits, merge)
        check_register(width, reupload_connectivity, reupload_layers, extra_column, "re-uploading PQC1")
        check_register(width, final_connectivity, final_layers, extra_column, "final PQC2")
        if not isinstance(measured_qubits, int) or not 1 <= measured_qubits <= width:
            raise ValueError(f"measured_qubits={measured_qubits!r}; expected 1 <= measured_qubits <= {width} (module 2's qubits)")
        if not isinstance(init_scale, (int, float)) or not 0 <= init_scale <= 2 * math.pi:
            raise ValueError(f"init_scale={init_scale!r}; expected a number in [0, 2pi] (angles start uniform in +-init_scale)")
        if not isinstance(angle_scale, (int, float)) or not math.isfinite(angle_scale):
            raise ValueError(f"angle_scale={angle_scale!r}; expected a finite number")
        self.noise = NoiseModel(shots, depolarizing_1q, depolarizing_2q, readout_error, noise_scope, noise_method)

        self.embedding_size, self.num_labels = embedding_size, num_labels
        self.num_encoders, self.encoder_qubits, self.amplitude_fit = num_encoders, encoder_qubits, amplitude_fit
        self.merge, self.qpu_qubits, self.measured_qubits = merge, width, measured_qubits
        self.angle_scale, self.encoder_strategy = float(angle_scale), encoder_strategy

        self.encoder_gates = pqc_gates(encoder_qubits, encoder_layers, encoder_connectivity, extra_column)
        pqc1_size = pqc_num_params(width, reupload_layers, reupload_connectivity, extra_column)
        pqc1_sets = 1 if share_reupload_weights else reupload_blocks
        gates = []
        for block in range(reupload_blocks):
            offset = 0 if share_reupload_weights else block * pqc1_size
            gates += angle_encoding_gates(width)
            gates += pqc_gates(width, reupload_layers, reupload_connectivity, extra_column, weight_offset=offset)
        gates += pqc_gates(width, final_layers, final_connectivity, extra_column, weight_offset=pqc1_sets * pqc1_size)
        self.qpu_gates = tuple(gates)
        self._counts = {
            "encoders": num_encoders * len([g for g in self.encoder_gates if g.source == "weight"]),
            "reupload_pqc1": pqc1_sets * pqc1_size,
            "final_pqc2": pqc_num_params(width, final_layers, final_connectivity, extra_column),
        }

        self.projection = nn.Linear(embedding_size, amplitudes) if amplitude_fit == "project" else None
        self.encoder_weights = nn.Parameter(torch.empty(num_encoders, self._counts["encoders"] // num_encoders))
        self.qpu_weights = nn.Parameter(torch.empty(self._counts["reupload_pqc1"] + self._counts["final_pqc2"]))
        self.readout = nn.Linear(measured_qubits, num_labels)
        self.init_scale = float(init_scale)
        self.reset_circuit_parameters()

    def reset_circuit_parameters(self) -> None:
        """Uniform angles in ``[-init_scale, init_scale]`` (PennyLane's TorchLayer uses ``[0, 2pi)``)."""
        with torch.no_grad():
            self.encoder_weights.uniform_(-self.init_scale, self.init_scale)
            self.qpu_weights.uniform_(-self.init_scale, self.init_scale)

    def parameter_counts(self) -> Dict[str, int]:
        """Trainable parameters per module, and their total.

        Example:
            >>> head = QuantumHead(768, 2, num_encoders=2, encoder_qubits=7, amplitude_fit="truncate",
            ...                    merge="concat", encoder_layers=10, reupload_layers=10, reupload_connectivity=2,
            ...                    final_layers=10, final_connectivity=2)   # module 2 on 2 x 7 = 14 qubits
            >>> head.parameter_counts()
            {'projection': 0, 'encoders': 294, 'reupload_pqc1': 294, 'final_pqc2': 294, 'readout': 4, 'total': 886}
        """
        counts = {"projection": 0 if self.projection is None else sum(p.numel() for p in self.projection.parameters())}
        counts.update(self._counts)
        counts["readout"] = sum(p.numel() for p in self.readout.parameters())
        counts["total"] = sum(counts.values())
        return counts

    # -- module 1 ---------------------------------------------------------------------------------------------
    def amplitudes(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Normalised encoder input states, ``(batch, 2**Q_c)``."""
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        return amplitude_encode(embeddings, self.encoder_qubits, self.amplitude_fit)

    def _use_matrix(self, batch: int) -> bool:
        if self.encoder_strategy != "auto":
            return self.encoder_strategy == "matrix"
        # Simulating the circuit on the basis states the input occupies costs like a batch of that many states;
        # the matrix product that follows costs about a fifth of one gate pass per column.
        occupied = self._occupied_amplitudes()
        return occupied * (1 + 0.2 * batch / max(len(self.encoder_gates), 1)) < batch

    def _occupied_amplitudes(self) -> int:
        return min(self.embedding_size, 2**self.encoder_qubits) if self.amplitude_fit != "project" else 2**self.encoder_qubits

    def encode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Module 1: <Z> of every qubit of every encoder, ``(batch, E, Q_c)``."""
        states = self.amplitudes(embeddings)
        n = self.encoder_qubits
        noisy = self.noise.scope == "all"
        wires = list(range(n))
        outputs = []
        if not noisy and self._use_matrix(states.shape[0]):
            occupied = self._occupied_amplitudes()
            basis = torch.eye(occupied, 2**n, dtype=states.dtype, device=states.device)
            program = compile_gates(self.encoder_gates, n)
            for weights in self.encoder_weights:
                columns = run_circuit(basis, program, weights)  # row k = U e_k
                outputs.append(measure_z(states[:, :occupied] @ columns, n, wires, self.noise, exact=True))
        else:
            for weights in self.encoder_weights:
                outputs.append(self.noise.expval(states, self.encoder_gates, weights, n, wires, active=noisy))
        return torch.stack(outputs, dim=1)

    def merge_readouts(self, readouts: torch.Tensor) -> torch.Tensor:
        """``(batch, E, Q_c)`` -> ``(batch, merged width)``."""
        if self.merge == "concat":
            return readouts.flatten(1)
        return readouts.mean(dim=1) if self.merge == "mean" else readouts.sum(dim=1)

    # -- module 2 ---------------------------------------------------------------------------------------------
    def qpu_expectations(self, merged: torch.Tensor) -> torch.Tensor:
        """Module 2: <Z> on wires ``0..Q_m-1`` after re-uploading and PQC2, ``(batch, Q_m)``."""
        start = zero_state(merged.shape[0], self.qpu_qubits, merged)
        wires = list(range(self.measured_qubits))
        return self.noise.expval(
            start, self.qpu_gates, self.qpu_weights, self.qpu_qubits, wires, inputs=self.angle_scale * merged, active=True
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_labels)`` for sentence embeddings ``(batch, embedding_size)``."""
        check_embeddings(embeddings, self.embedding_size)
        merged = self.merge_readouts(self.encode(embeddings.to(self.encoder_weights.dtype)))
        return self.readout(self.qpu_expectations(merged))


def check_embeddings(embeddings: torch.Tensor, embedding_size: int) -> None:
    """Fail early, naming the problem, on a wrong shape, an empty batch or non-finite values."""
    if embeddings.dim() != 2 or embeddings.shape[1] != embedding_size:
        raise ValueError(
            f"sentence embeddings have shape {tuple(embeddings.shape)}; the head expects (batch, {embedding_size})"
        )
    if embeddings.shape[0] == 0:
        raise ValueError("empty batch: the head got 0 sentence embeddings")
    check_finite(embeddings, "sentence embeddings")


class LinearHead(nn.Module):
    """Logistic regression on the embedding: the smallest classical baseline.

    Example:
        >>> LinearHead(384, 2)(torch.randn(3, 384)).shape
        torch.Size([3, 2])
    """

    def __init__(self, embedding_size: int, num_labels: int):
        super().__init__()
        self.embedding_size = embedding_size
        self.linear = nn.Linear(embedding_size, num_labels)

    def parameter_counts(self) -> Dict[str, int]:
        n = sum(p.numel() for p in self.parameters())
        return {"linear": n, "total": n}

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        check_embeddings(embeddings, self.embedding_size)
        return self.linear(embeddings)


def mlp_num_parameters(embedding_size: int, hidden_size: int, num_labels: int) -> int:
    """Parameters of ``Linear(embedding_size, hidden) -> ReLU -> Linear(hidden, num_labels)``."""
    return embedding_size * hidden_size + hidden_size + hidden_size * num_labels + num_labels


def mlp_hidden_for_budget(embedding_size: int, num_labels: int, budget: int) -> int:
    """Largest hidden width whose one-hidden-layer MLP has at most ``budget`` parameters.

    Example:
        >>> mlp_hidden_for_budget(768, 2, 886)   # matched to the paper's 886-parameter quantum head
        1
        >>> mlp_hidden_for_budget(10, 2, 1000)
        76
    """
    for name, value in (("embedding_size", embedding_size), ("num_labels", num_labels), ("budget", budget)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    hidden = (budget - num_labels) // (embedding_size + 1 + num_labels)
    if hidden < 1:
        raise ValueError(
            f"a budget of {budget} parameters is below the smallest MLP (hidden=1) for embedding_size="
            f"{embedding_size}, num_labels={num_labels}, which has {mlp_num_parameters(embedding_size, 1, num_labels)}"
        )
    return hidden


class MLPHead(nn.Module):
    """One hidden layer with ReLU: the classical baseline of matched size.

    Example:
        >>> MLPHead(384, 2, hidden_size=8).parameter_counts()["total"]
        3098
    """

    def __init__(self, embedding_size: int, num_labels: int, hidden_size: int = 64, dropout: float = 0.0):
        super().__init__()
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size={hidden_size!r}; expected a positive integer")
        self.embedding_size = embedding_size
        self.net = nn.Sequential(
            nn.Linear(embedding_size, hidden_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_size, num_labels)
        )

    def parameter_counts(self) -> Dict[str, int]:
        n = sum(p.numel() for p in self.parameters())
        return {"mlp": n, "total": n}

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        check_embeddings(embeddings, self.embedding_size)
        return self.net(embeddings)
