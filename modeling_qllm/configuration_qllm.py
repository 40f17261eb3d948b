"""QLLMConfig: every setting of a qllm sequence classifier, with defaults and validation.

The body's own configuration is nested as ``body_config`` (as CLIP nests ``text_config``), so a saved checkpoint
rebuilds the whole model from ``config.json`` alone. Every open choice of the paper (see ``paper.md``) is a field.

Example:
    >>> from transformers import BertConfig
    >>> config = QLLMConfig(body_config=BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                                            intermediate_size=37), num_encoders=2, encoder_qubits=5)
    >>> config.embedding_size, config.head_type
    (32, 'quantum')
    >>> QLLMConfig(merge="max")
    Traceback (most recent call last):
    ...
    ValueError: merge='max'; expected one of ('concat', 'mean', 'sum')
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, Optional, Union

import torch
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .heads import QuantumHead, mlp_hidden_for_budget

HEAD_TYPE_CHOICES = ("quantum", "linear", "mlp")
POOLING_CHOICES = ("mean", "cls")
BACKEND_CHOICES = ("torch", "pennylane")
PROBLEM_TYPE_CHOICES = ("regression", "single_label_classification", "multi_label_classification")
MATCH_QUANTUM = "match_quantum"

# Fields of QLLMConfig passed verbatim to QuantumHead.
QUANTUM_HEAD_FIELDS = (
    "num_encoders", "encoder_qubits", "encoder_layers", "encoder_connectivity", "amplitude_fit", "merge",
    "reupload_blocks", "reupload_layers", "reupload_connectivity", "share_reupload_weights", "final_layers",
    "final_connectivity", "extra_column", "measured_qubits", "angle_scale", "shots", "depolarizing_1q",
    "depolarizing_2q", "readout_error", "noise_scope", "noise_method", "init_scale", "encoder_strategy",
)  # fmt: skip

AUTO_MAP = {
    "AutoConfig": "configuration_qllm.QLLMConfig",
    "AutoModel": "modeling_qllm.QuantumSequenceClassification",
    "AutoModelForSequenceClassification": "modeling_qllm.QuantumSequenceClassification",
}


class QLLMConfig(PreTrainedConfig):
    r"""Configuration of [`QuantumSequenceClassification`].

    Head:
        head_type: ``"quantum"`` (the paper's head), ``"linear"`` (logistic regression) or ``"mlp"``.
        num_encoders: ``E``, parallel amplitude-encoding encoders (module 1).
        encoder_qubits: ``Q_c``; ``None`` = fewest qubits whose amplitudes hold the embedding (768 -> 10).
        encoder_layers / encoder_connectivity: ``M`` / ``C`` of each encoder's PQC.
        amplitude_fit: ``"pad"`` (zeros; the paper's 768 -> 1024), ``"truncate"`` or ``"project"`` (learned Linear)
            when the embedding width is not ``2**Q_c``.
        merge: ``"concat"``, ``"mean"`` or ``"sum"`` of the encoders' <Z> outputs (not stated in the paper).
        reupload_blocks: ``N``, data re-uploading blocks (RY encoding + PQC1) of module 2.
        reupload_layers / reupload_connectivity: PQC1's ``M`` / ``C``.
        share_reupload_weights: one PQC1 shared by all blocks (not stated in the paper).
        final_layers / final_connectivity: PQC2's ``M`` / ``C``.
        extra_column: position of the extra RY column of every PQC: ``"first"``, ``"last"`` or ``"none"``.
        measured_qubits: ``Q_m``, read out as <Z> (1 in every experiment of the paper).
        angle_scale: RY angle = ``angle_scale * feature`` in module 2 (not stated; default pi).
        init_scale: circuit angles start uniform in ``[-init_scale, init_scale]``.
        encoder_strategy: ``"auto"``, ``"gates"`` or ``"matrix"`` (simulation strategy; same numbers).
    Simulated device:
        shots: ``None`` (exact) or shots per expectation estimate.
        depolarizing_1q / depolarizing_2q / readout_error: noise rates (0 = none).
        noise_scope: ``"qpu"`` (module 2 only, as in the paper) or ``"all"``.
        noise_method: ``"auto"``, ``"density_matrix"`` or ``"trajectories"``.
        backend: ``"torch"`` (our simulator) or ``"pennylane"`` (the same circuits through a PennyLane device).
        pennylane_device: device name for the ``"pennylane"`` backend (``"default.qubit"``, ``"lightning.qubit"``,
            a hardware plugin's device...).
    Classical heads:
        mlp_hidden_size: hidden width of the ``"mlp"`` head, or ``"match_quantum"`` for the largest width whose
            parameter count does not exceed that of the quantum head these settings describe.
        mlp_dropout: dropout of the MLP head.
    Body:
        body_config: the encoder's config (any ``AutoModel`` text encoder), nested.
        pooling: ``"mean"`` over non-padding tokens (sentence-transformers) or ``"cls"``.
        normalize_embeddings: L2-normalise the pooled embedding (as some sentence transformers do).
        freeze_body: freeze the body (the paper) or train it with the head (full fine-tuning).
    """

    model_type = "qllm"
    sub_configs_defaults = {"body_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    head_type: str = "quantum"
    num_encoders: int = 2
    encoder_qubits: Optional[int] = None
    encoder_layers: int = 2
    encoder_connectivity: int = 2
    amplitude_fit: str = "pad"
    merge: str = "mean"
    reupload_blocks: int = 2
    reupload_layers: int = 1
    reupload_connectivity: int = 1
    share_reupload_weights: bool = True
    final_layers: int = 1
    final_connectivity: int = 1
    extra_column: str = "last"
    measured_qubits: int = 1
    angle_scale: float = math.pi
    init_scale: float = math.pi
    encoder_strategy: str = "auto"
    shots: Optional[int] = None
    depolarizing_1q: float = 0.0
    depolarizing_2q: float = 0.0
    readout_error: float = 0.0
    noise_scope: str = "qpu"
    noise_method: str = "auto"
    backend: str = "torch"
    pennylane_device: str = "default.qubit"
    mlp_hidden_size: Union[int, str] = 64
    mlp_dropout: float = 0.0
    pooling: str = "mean"
    normalize_embeddings: bool = False
    freeze_body: bool = True
    body_config: Union[Dict[str, Any], PreTrainedConfig, None] = None

    def __post_init__(self, **kwargs):
        kwargs.setdefault("auto_map", dict(AUTO_MAP))
        if isinstance(self.body_config, PreTrainedConfig):
            # Own a copy: PreTrainedConfig.__post_init__ resets the sub-config's attention implementation, so an
            # aliased config would switch a model already built on it to attention that ignores padding.
            self.body_config = copy.deepcopy(self.body_config)
        super().__post_init__(**kwargs)
        for name, value, choices in (
            ("head_type", self.head_type, HEAD_TYPE_CHOICES),
            ("pooling", self.pooling, POOLING_CHOICES),
            ("backend", self.backend, BACKEND_CHOICES),
        ):
            if value not in choices:
                raise ValueError(f"{name}={value!r}; expected one of {choices}")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPE_CHOICES:
            raise ValueError(f"problem_type={self.problem_type!r}; expected None (inferred) or one of {PROBLEM_TYPE_CHOICES}")
        for name in ("freeze_body", "normalize_embeddings", "share_reupload_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r}; expected True or False")
        if self.backend == "pennylane" and self.head_type != "quantum":
            raise ValueError(f"backend='pennylane' simulates the quantum head; head_type is {self.head_type!r}")
        if not (self.mlp_hidden_size == MATCH_QUANTUM or (isinstance(self.mlp_hidden_size, int) and self.mlp_hidden_size >= 1)):
            raise ValueError(f"mlp_hidden_size={self.mlp_hidden_size!r}; expected a positive integer or {MATCH_QUANTUM!r}")
        if not 0.0 <= self.mlp_dropout < 1.0:
            raise ValueError(f"mlp_dropout={self.mlp_dropout!r}; expected a probability in [0, 1)")
        if self.head_type == "quantum" or self.mlp_hidden_size == MATCH_QUANTUM:
            self.quantum_parameter_count()  # builds the head on the meta device: validates every circuit setting
        if self.head_type == "mlp":
            self.resolved_mlp_hidden_size()  # "match_quantum" fails here when the quantum budget is below hidden=1

    @property
    def embedding_size(self) -> int:
        """Width of the pooled sentence embedding (the body's hidden size)."""
        text_config = self.body_config.get_text_config() if hasattr(self.body_config, "get_text_config") else self.body_config
        for name in ("hidden_size", "d_model", "dim"):
            if isinstance(getattr(text_config, name, None), int):
                return getattr(text_config, name)
        raise ValueError(f"cannot find the embedding width of body_config {type(self.body_config).__name__}")

    @property
    def num_outputs(self) -> int:
        """Logits the head produces: ``num_labels`` (1 for regression)."""
        return self.num_labels

    def quantum_head_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of :class:`QuantumHead` held by this config."""
        return {name: getattr(self, name) for name in QUANTUM_HEAD_FIELDS}

    def quantum_parameter_count(self) -> int:
        """Parameters of the quantum head these settings describe (computed without allocating it)."""
        with torch.device("meta"):
            head = QuantumHead(self.embedding_size, self.num_outputs, **self.quantum_head_kwargs())
        return head.parameter_counts()["total"]

    def resolved_mlp_hidden_size(self) -> int:
        """The MLP's hidden width, with ``"match_quantum"`` resolved against the quantum head's parameter count."""
        if self.mlp_hidden_size == MATCH_QUANTUM:
            return mlp_hidden_for_budget(self.embedding_size, self.num_outputs, self.quantum_parameter_count())
        return self.mlp_hidden_size


__all__ = ["QLLMConfig"]
