"""LoRA on the body with peft; the quantum head (``classifier``) is trained and saved through ``modules_to_save``.

Not remote code: a LoRA checkpoint is loaded with peft (``PeftModel.from_pretrained(base, path)``) or merged first.

Example:
    >>> # model = apply_lora(QuantumSequenceClassification.from_body(path), r=8)   # doctest: +SKIP
    >>> default_lora_targets("mpnet")
    ['q', 'k', 'v', 'o']
"""

from __future__ import annotations

from typing import List, Optional

# Attention projections of common text encoders, by model_type (what a user would target by hand).
_LORA_TARGETS = {
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "xlm-roberta": ["query", "key", "value"],
    "camembert": ["query", "key", "value"],
    "electra": ["query", "key", "value"],
    "ernie": ["query", "key", "value"],
    "mpnet": ["q", "k", "v", "o"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj"],
    "modernbert": ["Wqkv", "Wo"],
    "nomic_bert": ["Wqkv"],
}


def default_lora_targets(body_model_type: str) -> List[str]:
    """Module names LoRA adapts by default for a body of this ``model_type``."""
    if body_model_type not in _LORA_TARGETS:
        raise ValueError(
            f"no default LoRA targets for body model_type={body_model_type!r}; pass target_modules= "
            f"(known: {sorted(_LORA_TARGETS)})"
        )
    return list(_LORA_TARGETS[body_model_type])


def apply_lora(model, r: int = 8, alpha: int = 16, dropout: float = 0.1, target_modules: Optional[List[str]] = None):
    """Wrap a :class:`QuantumSequenceClassification` in a peft ``SEQ_CLS`` LoRA model.

    Only the adapters and the head train; peft adds ``classifier`` to ``modules_to_save`` for sequence
    classification, so the head's weights are saved with the adapter.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    targets = target_modules or default_lora_targets(model.config.body_config.model_type)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    return get_peft_model(model, lora)
