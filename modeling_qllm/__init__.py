"""qllm: Hugging Face sequence classifiers with a quantum classification head (after arXiv 2504.08732).

Example:
    >>> from modeling_qllm import QLLMConfig, QuantumSequenceClassification
    >>> model = QuantumSequenceClassification.from_body("path/to/sentence-transformer", num_labels=2)  # doctest: +SKIP
"""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .circuits import Gate, angle_encoding_gates, pqc_gates, pqc_num_params
from .configuration_qllm import QLLMConfig
from .heads import LinearHead, MLPHead, QuantumHead, mlp_hidden_for_budget
from .modeling_qllm import QuantumSequenceClassification, add_sentence_embeddings
from .noise import NoiseModel
from .statevector import amplitude_encode, expval_z, run_circuit

# Local registration: the Auto classes know "qllm" as soon as the package is imported. Saved checkpoints carry an
# `auto_map` instead, so machines without this package load them with trust_remote_code=True.
AutoConfig.register("qllm", QLLMConfig, exist_ok=True)
AutoModel.register(QLLMConfig, QuantumSequenceClassification, exist_ok=True)
AutoModelForSequenceClassification.register(QLLMConfig, QuantumSequenceClassification, exist_ok=True)
# save_pretrained copies the code files of classes registered for an Auto class (the auto_map lists all three).
QLLMConfig.register_for_auto_class("AutoConfig")
QuantumSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")

__version__ = "0.1.0"
__all__ = [
    "QLLMConfig", "QuantumSequenceClassification", "QuantumHead", "LinearHead", "MLPHead", "NoiseModel",
    "mlp_hidden_for_budget", "Gate", "pqc_gates", "angle_encoding_gates", "pqc_num_params", "run_circuit",
    "amplitude_encode", "expval_z", "add_sentence_embeddings",
]  # fmt: skip
