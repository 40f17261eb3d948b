"""QuantumSequenceClassification: a text encoder, sentence pooling, and a quantum classification head.

The model behaves like any sequence classifier of transformers: ``forward`` returns a ``SequenceClassifierOutput``
with a loss chosen by ``config.problem_type``; it saves to safetensors with its code and loads anywhere with
``AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)``.

Example:
    >>> import torch
    >>> from transformers import BertConfig
    >>> body = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                   intermediate_size=37)
    >>> model = QuantumSequenceClassification(QLLMConfig(body_config=body, num_labels=2))
    >>> out = model(input_ids=torch.tensor([[2, 5, 7]]), labels=torch.tensor([1]))
    >>> out.logits.shape, out.loss.dim()
    (torch.Size([1, 2]), 0)
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_qllm import QLLMConfig
from .heads import LinearHead, MLPHead, QuantumHead


def build_head(config: QLLMConfig) -> nn.Module:
    """The classifier ``config.head_type`` describes, sized to the body's embedding width."""
    if config.head_type == "quantum":
        return QuantumHead(config.embedding_size, config.num_outputs, **config.quantum_head_kwargs())
    if config.head_type == "linear":
        return LinearHead(config.embedding_size, config.num_outputs)
    return MLPHead(config.embedding_size, config.num_outputs, config.resolved_mlp_hidden_size(), config.mlp_dropout)


def pool(hidden: torch.Tensor, attention_mask: Optional[torch.Tensor], pooling: str, normalize: bool) -> torch.Tensor:
    """Sentence embedding from token states: mean over real tokens (sentence-transformers) or the first token."""
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
    return nn.functional.normalize(pooled, dim=-1) if normalize else pooled


class QLLMPreTrainedModel(PreTrainedModel):
    config_class = QLLMConfig
    base_model_prefix = "body"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        # The body is a PreTrainedModel: transformers dispatches its own _init_weights to it.
        if isinstance(module, QuantumHead):
            module.reset_circuit_parameters()
        elif isinstance(module, nn.Linear):
            module.reset_parameters()


class QuantumSequenceClassification(QLLMPreTrainedModel):
    """Body + pooling + classifier (the quantum head, or a classical baseline), for sequence classification.

    ``forward`` returns the mean loss of its batch: Trainer must not rescale it by ``num_items_in_batch``
    (``accepts_loss_kwargs = False``), or DDP and gradient accumulation would multiply reported losses.

    Args:
        config: a :class:`QLLMConfig`; the body is built from ``config.body_config`` with random weights. Use
            :meth:`from_body` to start from a pretrained encoder.
    """

    accepts_loss_kwargs = False

    def __init__(self, config: QLLMConfig):
        super().__init__(config)
        self.body = AutoModel.from_config(config.body_config)
        self.classifier = build_head(config)
        self.post_init()
        if config.freeze_body:
            self.body.requires_grad_(False)

    @classmethod
    def from_body(
        cls,
        body_name_or_path: str,
        config: Optional[QLLMConfig] = None,
        num_labels: int = 2,
        id2label: Optional[Dict[int, str]] = None,
        **settings: Any,
    ) -> "QuantumSequenceClassification":
        """A classifier on a pretrained text encoder (Hub id or local path) with a fresh head.

        Circuit settings not given keep their defaults, sized to the body: ``encoder_qubits`` holds the embedding
        (384 -> 9, 768 -> 10) with zero padding, as in the paper. A sentence-transformers folder's own pooling
        (``1_Pooling/config.json``: mean or CLS) and ``Normalize`` module are followed unless settings say otherwise.

        Example:
            >>> model = QuantumSequenceClassification.from_body("sentence-transformers/all-MiniLM-L6-v2",
            ...                                                 num_labels=2)  # doctest: +SKIP
        """
        body = AutoModel.from_pretrained(body_name_or_path)
        if config is None:
            settings = {**sentence_transformer_pooling(body_name_or_path), **settings}
            if id2label is not None:
                settings["id2label"] = {int(k): v for k, v in id2label.items()}
                settings["label2id"] = {v: int(k) for k, v in id2label.items()}
            else:
                settings["num_labels"] = num_labels
            config = QLLMConfig(body_config=body.config, **settings)
        elif settings:
            raise ValueError(f"pass either a config or settings, not both; got config and {sorted(settings)}")
        else:
            config.body_config = body.config
        model = cls(config)
        missing, unexpected = model.body.load_state_dict(body.state_dict(), strict=False)
        if missing or unexpected:
            raise ValueError(f"body weights do not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
        model.config.name_or_path = body_name_or_path
        return model.eval()  # like from_pretrained: dropout off until training asks for it

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """``PreTrainedModel.from_pretrained``, strict about a checkpoint whose weights do not match its config.

        transformers re-initialises weights missing from the checkpoint and drops unexpected ones with only a log
        message; here that would be a head silently reset when ``config.json`` and ``model.safetensors`` disagree
        (an edited ``encoder_qubits``, ``head_type``, ``body_config``...). Such a load raises ``ValueError`` naming
        the keys, unless ``ignore_mismatched_sizes=True`` asks for the re-initialisation (e.g. a new label set).
        Loading replaces the parameters, so the body is frozen again when ``config.freeze_body``.
        """
        output_loading_info = kwargs.pop("output_loading_info", False)
        allow_reinit = kwargs.pop("ignore_mismatched_sizes", False)
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *model_args, ignore_mismatched_sizes=True, output_loading_info=True, **kwargs
        )
        if not allow_reinit:
            check_loading_info(info, pretrained_model_name_or_path, model.body)
        if model.config.freeze_body:
            model.body.requires_grad_(False)
        return (model, info) if output_loading_info else model

    def train(self, mode: bool = True) -> "QuantumSequenceClassification":
        """As ``nn.Module.train``, but a body with no trainable parameter stays in eval mode (no dropout): a frozen
        body is a fixed feature extractor whose embeddings equal the cached ``sentence_embeddings``."""
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.body.parameters()):
            self.body.eval()
        return self

    # -- embeddings ---------------------------------------------------------------------------------------------
    def embed(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        **body_kwargs: Any,
    ) -> torch.Tensor:
        """Pooled sentence embeddings ``(batch, embedding_size)``; cache these when the body is frozen."""
        if input_ids is None and body_kwargs.get("inputs_embeds") is None:
            raise ValueError("pass input_ids (or inputs_embeds), or precomputed sentence_embeddings")
        if input_ids is not None and input_ids.shape[0] == 0:
            raise ValueError("empty batch: input_ids has 0 rows")
        if token_type_ids is not None:
            body_kwargs["token_type_ids"] = token_type_ids
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, **body_kwargs).last_hidden_state
        return pool(hidden, attention_mask, self.config.pooling, self.config.normalize_embeddings)

    # -- classification -----------------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        sentence_embeddings: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs: Any,
    ) -> Union[SequenceClassifierOutput, tuple]:
        """Logits, and the loss when ``labels`` are given.

        Args:
            input_ids, attention_mask, token_type_ids: tokenized text for the body.
            sentence_embeddings: ``(batch, embedding_size)`` pooled embeddings computed earlier (e.g. by
                :meth:`embed` over a dataset); the body is then skipped.
            labels: class indices ``(batch,)`` (single-label), multi-hot ``(batch, num_labels)`` (multi-label) or
                targets ``(batch,)`` / ``(batch, num_labels)`` (regression).
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        body_kwargs = {k: v for k, v in kwargs.items() if k in ("inputs_embeds", "position_ids")}
        if sentence_embeddings is None:
            sentence_embeddings = self.embed(input_ids, attention_mask, token_type_ids, **body_kwargs)
        logits = self.classify(sentence_embeddings)
        loss = None if labels is None else self.loss(logits, labels)
        if not return_dict:
            return (logits,) if loss is None else (loss, logits)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def classify(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        """Logits from pooled embeddings, through the configured backend."""
        head_dtype = next(self.classifier.parameters()).dtype
        sentence_embeddings = sentence_embeddings.to(head_dtype)
        if self.config.backend == "pennylane":
            from .pennylane_bridge import head_to_pennylane

            return head_to_pennylane(self.classifier, device=self.config.pennylane_device)(sentence_embeddings)
        return self.classifier(sentence_embeddings)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Regression / single-label / multi-label loss, as transformers' own classification heads."""
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for a batch of {logits.shape[0]}")
        problem = self.config.problem_type
        if problem is None:
            if self.config.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
            self.config.problem_type = problem
        if problem == "regression":
            return nn.functional.mse_loss(logits.reshape(labels.shape), labels.to(logits.dtype))
        if problem == "single_label_classification":
            check_class_labels(labels, self.config.num_labels)
            return nn.functional.cross_entropy(logits, labels.view(-1).long())
        if labels.shape != logits.shape:
            raise ValueError(f"multi-label targets have shape {tuple(labels.shape)}; expected {tuple(logits.shape)}")
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    # -- training helpers ---------------------------------------------------------------------------------------
    def unfreeze_body(self) -> None:
        """Train the body with the head (full fine-tuning); recorded in the config."""
        self.config.freeze_body = False
        self.body.requires_grad_(True)

    def parameter_groups(self, head_lr: float, body_lr: Optional[float] = None, weight_decay: float = 0.0) -> List[dict]:
        """Optimizer groups with separate learning rates for the head and for the trainable body parameters.

        Example:
            >>> # torch.optim.AdamW(model.parameter_groups(head_lr=1e-2, body_lr=2e-5))  # doctest: +SKIP
        """
        head = [p for p in self.classifier.parameters() if p.requires_grad]
        head_ids = {id(p) for p in head}
        body = [p for p in self.parameters() if p.requires_grad and id(p) not in head_ids]
        groups = [{"params": head, "lr": head_lr, "weight_decay": 0.0}]
        if body:
            groups.append({"params": body, "lr": head_lr if body_lr is None else body_lr, "weight_decay": weight_decay})
        return groups

    def parameter_counts(self) -> Dict[str, int]:
        """The head's parameters per module, plus the body's total and trainable counts."""
        counts = {f"head.{k}": v for k, v in self.classifier.parameter_counts().items()}
        counts["body.total"] = sum(p.numel() for p in self.body.parameters())
        counts["body.trainable"] = sum(p.numel() for p in self.body.parameters() if p.requires_grad)
        return counts


def sentence_transformer_pooling(body_name_or_path: str) -> Dict[str, Any]:
    """Pooling settings a sentence-transformers checkpoint declares in ``modules.json`` (empty if none).

    Example:
        >>> sentence_transformer_pooling("/nonexistent")
        {}
    """
    import json
    import os

    def read(name: str) -> Optional[dict]:
        path = os.path.join(body_name_or_path, name)
        if not os.path.isfile(path):
            try:  # a Hub id: the files may be cached or reachable; a plain transformers model has none
                from huggingface_hub import hf_hub_download

                path = hf_hub_download(body_name_or_path, name)
            except Exception:
                return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    modules = read("modules.json")
    if not isinstance(modules, list):
        return {}
    settings: Dict[str, Any] = {"normalize_embeddings": any(m.get("type", "").endswith("Normalize") for m in modules)}
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            pooling = read(os.path.join(module.get("path", "1_Pooling"), "config.json")) or {}
            if pooling.get("pooling_mode_cls_token"):
                settings["pooling"] = "cls"
            elif pooling.get("pooling_mode_mean_tokens", True):
                settings["pooling"] = "mean"
    return settings


def check_class_labels(labels: torch.Tensor, num_labels: int) -> None:
    """Single-label targets must be integer class indices in ``[0, num_labels)``."""
    if labels.is_floating_point():
        raise ValueError(f"single-label targets must be integer class indices; got dtype {labels.dtype}")
    labels = labels.reshape(-1)
    bad = ((labels < 0) | (labels >= num_labels)).nonzero().flatten()
    if bad.numel():
        raise ValueError(
            f"label {labels[bad[0]].item()} at position {bad[0].item()} is out of range; expected class "
            f"indices in [0, {num_labels})"
        )


def check_loading_info(info: Dict[str, Any], source: Any, body: Optional[nn.Module] = None) -> None:
    """Raise when ``from_pretrained``'s loading info shows weights re-initialised or dropped (keys the body's own
    class tells transformers to ignore, such as weights of older checkpoint formats, are ignored here too)."""

    def relevant(keys, ignore_attribute):
        patterns = getattr(body, ignore_attribute, None) or ()
        return sorted(k for k in keys if not any(re.search(p, k.removeprefix("body.")) for p in patterns))

    missing = relevant(info["missing_keys"], "_keys_to_ignore_on_load_missing")
    unexpected = relevant(info["unexpected_keys"], "_keys_to_ignore_on_load_unexpected")
    problems = []
    if info["mismatched_keys"]:
        shapes = [f"{key} (checkpoint {tuple(ckpt)}, config {tuple(model)})" for key, ckpt, model in sorted(info["mismatched_keys"])]
        problems.append(f"shapes differ for {', '.join(shapes[:5])}")
    if missing:
        problems.append(f"missing from the checkpoint: {missing[:5]}")
    if unexpected:
        problems.append(f"not used by the config: {unexpected[:5]}")
    if problems:
        raise ValueError(
            f"checkpoint {source} does not match its config ({'; '.join(problems)}); was config.json edited after "
            f"saving? Pass ignore_mismatched_sizes=True to re-initialise these weights deliberately"
        )


def add_sentence_embeddings(dataset, model: QuantumSequenceClassification, tokenizer, batch_size: int = 64,
                            text_column: str = "text", max_length: Optional[int] = None):
    """``datasets.map`` the frozen body over ``dataset`` once, adding a ``sentence_embeddings`` column.

    Training the head on that column (the Trainer passes it to ``forward``) never reruns the body.

    Example:
        >>> # train = add_sentence_embeddings(train, model, tokenizer)   # doctest: +SKIP
    """
    if text_column not in dataset.column_names:
        raise ValueError(f"dataset has no {text_column!r} column; columns are {dataset.column_names}")
    device = next(model.parameters()).device

    def embed_batch(batch):
        tokens = tokenizer(batch[text_column], padding=True, truncation=max_length is not None,
                           max_length=max_length, return_tensors="pt").to(device)
        with torch.no_grad():
            embeddings = model.embed(**{k: v for k, v in tokens.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
        return {"sentence_embeddings": embeddings.float().cpu().numpy()}

    was_training = model.training
    model.eval()
    try:
        return dataset.map(embed_batch, batched=True, batch_size=batch_size, desc="embedding")
    finally:
        model.train(was_training)


__all__ = [
    "QuantumSequenceClassification", "QLLMPreTrainedModel", "pool", "build_head", "add_sentence_embeddings",
    "sentence_transformer_pooling",
]
