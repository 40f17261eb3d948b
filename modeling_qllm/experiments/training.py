"""A plain training loop for heads on cached sentence embeddings, and the cached SST-2 embeddings the studies share.

Studies train hundreds of small heads on the same frozen-body embeddings; ``transformers.Trainer`` costs more than
the head itself there. :func:`train_head` is the loop they use: Adam, cross-entropy, mini-batches in a seeded order,
the weights of the epoch with the best validation accuracy kept (first best on ties), then one pass over the test
rows. :func:`cached_sst2_embeddings` loads and splits the data exactly as the SST-2 recipe does and embeds every
text once with the frozen body, under the recipe's cache key, so a cache written by ``recipes/sst2.py`` is reused.

Example:
    >>> import torch
    >>> from modeling_qllm.heads import LinearHead
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(64, 8); y = (x[:, 0] > 0).long()
    >>> r = train_head(LinearHead(8, 2), x[:40], y[:40], x[40:50], y[40:50], x[50:], y[50:], epochs=30, lr=0.05,
    ...                batch_size=8, seed=0)
    >>> r["accuracy"] > 0.8, r["num_parameters"]
    (True, 18)
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .device import choose_device, head_qubits

DEFAULT_EVAL_BATCH = 1024


def _as_tensor(x, dtype) -> torch.Tensor:
    return x.to(dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


def _num_parameters(head: nn.Module) -> int:
    if hasattr(head, "parameter_counts"):
        return int(head.parameter_counts()["total"])
    return sum(p.numel() for p in head.parameters())


@torch.no_grad()
def evaluate_head(head: nn.Module, x, y, batch_size: int = DEFAULT_EVAL_BATCH) -> Dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy of ``head`` on ``(x, y)``, in eval mode and batches.

    Example:
        >>> from modeling_qllm.heads import LinearHead
        >>> sorted(evaluate_head(LinearHead(4, 2), torch.randn(10, 4), torch.zeros(10, dtype=torch.long)))
        ['accuracy', 'loss', 'macro_f1']
    """
    from sklearn.metrics import f1_score

    device = next((p.device for p in head.parameters()), torch.device("cpu"))
    x, y = _as_tensor(x, torch.float32).to(device), _as_tensor(y, torch.long).to(device)
    was_training = head.training
    head.eval()
    try:
        preds, loss = [], 0.0
        for start in range(0, len(x), batch_size):
            logits = head(x[start:start + batch_size])
            loss += float(nn.functional.cross_entropy(logits, y[start:start + batch_size], reduction="sum"))
            preds.append(logits.argmax(-1))
    finally:
        head.train(was_training)
    pred = torch.cat(preds).cpu().numpy()
    truth = y.cpu().numpy()
    return {"accuracy": float((pred == truth).mean()), "macro_f1": float(f1_score(truth, pred, average="macro")),
            "loss": loss / len(x)}


def train_head(head: nn.Module, x_train, y_train, x_val, y_val, x_test, y_test, epochs: int, lr: float,
               batch_size: int, seed: int, weight_decay: float = 0.0,
               eval_batch_size: int = DEFAULT_EVAL_BATCH, device: str | torch.device = "auto") -> Dict[str, Any]:
    """Train ``head`` in place (Adam, cross-entropy) and score it on the test rows.

    The head's initial weights are the caller's business (build it after ``torch.manual_seed(seed)`` for
    reproducible runs); ``seed`` drives the mini-batch order and any shot / noise sampling during training and
    evaluation. After every epoch the validation accuracy is computed; the weights of the best epoch (first best on
    ties) are loaded back into ``head`` before the test pass. ``device``: ``"auto"`` asks
    :func:`~modeling_qllm.experiments.device.choose_device` (the CPU for heads too small to pay for a GPU); the head
    is moved there and stays there.

    Returns:
        ``accuracy``, ``macro_f1``, ``loss`` (test), ``validation_accuracy`` (of the kept epoch), ``best_epoch``,
        ``num_parameters``, ``train_time_s``, ``eval_time_s``, ``epochs``, ``lr``, ``batch_size``,
        ``weight_decay``, ``seed``, ``device`` and ``device_reason`` (what the policy picked, and why).
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; expected a positive integer")
    if not lr > 0:
        raise ValueError(f"lr={lr!r}; expected a positive number")
    choice = choose_device(device if isinstance(device, str) else str(device), n_qubits=head_qubits(head),
                           batch_size=batch_size)  # fmt: skip
    head.to(choice.device)
    xt, yt = _as_tensor(x_train, torch.float32).to(choice.device), _as_tensor(y_train, torch.long).to(choice.device)
    xv, yv = _as_tensor(x_val, torch.float32), _as_tensor(y_val, torch.long)
    if len(xt) != len(yt) or len(xv) != len(yv) or len(xt) == 0 or len(xv) == 0:
        raise ValueError(f"train/validation rows and labels must match and be non-empty: x_train {len(xt)}, "
                         f"y_train {len(yt)}, x_val {len(xv)}, y_val {len(yv)}")
    order = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # shot sampling and noise trajectories draw from the global generator
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    best_acc, best_state, best_epoch = -1.0, None, -1
    start = time.perf_counter()
    for epoch in range(epochs):
        head.train()
        for idx in torch.randperm(len(xt), generator=order).to(choice.device).split(batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(head(xt[idx]), yt[idx]).backward()
            optimizer.step()
        val_acc = evaluate_head(head, xv, yv, eval_batch_size)["accuracy"]
        if val_acc > best_acc:
            best_acc, best_state, best_epoch = val_acc, copy.deepcopy(head.state_dict()), epoch
    head.load_state_dict(best_state)
    train_time = time.perf_counter() - start
    start = time.perf_counter()
    scores = evaluate_head(head, x_test, y_test, eval_batch_size)
    return {**scores, "validation_accuracy": best_acc, "best_epoch": best_epoch,
            "num_parameters": _num_parameters(head), "train_time_s": train_time,
            "eval_time_s": time.perf_counter() - start, "epochs": epochs, "lr": lr, "batch_size": batch_size,
            "weight_decay": weight_decay, "seed": seed, "device": str(choice.device), "device_reason": choice.reason}


def cached_sst2_embeddings(body: str, data: str, cache_dir: str | Path, protocol: str = "paper", folds: int = 5,
                           per_label: int = 256, train_fraction: float = 0.85, max_length: Optional[int] = None,
                           batch_size: int = 128, text_column: str = "text", label_column: str = "label",
                           ) -> Tuple[torch.Tensor, np.ndarray, List[Any]]:
    """``(embeddings (N, d) float32, labels (N,) int64, splits)`` of a text-classification dataset.

    Data loading, validation and splitting are the SST-2 recipe's (``runner.load_and_check_data``); the body is
    ``QuantumSequenceClassification.from_body(body).embed`` (pooling and normalisation as the checkpoint declares);
    the cache is an :class:`EmbeddingCache` in ``cache_dir`` keyed by ``runner._embedding_key`` (body, a hash of its
    weights, pooling, normalisation, max_length), so pointing ``cache_dir`` at an SST-2 run's ``embedding_cache``
    reuses its vectors, and every study embeds each text once.
    """
    from transformers import AutoTokenizer

    from ..modeling_qllm import QuantumSequenceClassification
    from .embeddings import EmbeddingCache, embed_texts
    from .runner import ExperimentSettings, _embedding_key, load_and_check_data

    settings = ExperimentSettings(body=str(body), data=str(data), output_dir=str(cache_dir), protocol=protocol,
                                  folds=folds, per_label=per_label, train_fraction=train_fraction,
                                  max_length=max_length, text_column=text_column, label_column=label_column)
    splits, id2label = load_and_check_data(settings)
    merged = splits[0].dataset
    labels = np.asarray(merged["label"], dtype=np.int64)
    cache = EmbeddingCache(cache_dir)
    template = QuantumSequenceClassification.from_body(str(body), id2label=id2label)
    template.eval()
    key = _embedding_key(settings, template)
    texts = list(merged["text"])
    if cache.path_for(texts, key).is_file():
        embeddings = cache.get_or_compute(texts, None, key)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(body))
        embeddings = cache.get_or_compute(
            texts, lambda t: embed_texts(template.embed, tokenizer, t, batch_size=batch_size,
                                         max_length=max_length).float(), key)
    return embeddings.float(), labels, splits
