"""Accuracy and macro-F1 through local `evaluate` metric modules (no Hub access), and a ``compute_metrics`` for Trainer.

``evaluate.load("accuracy")`` downloads the module from the Hub and fails offline; the folders beside this file
(``accuracy/accuracy.py``, ``f1/f1.py``) are loaded by path instead.

Example:
    >>> import numpy as np
    >>> fn = compute_metrics_fn()
    >>> fn((np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]), np.array([0, 1, 0])))
    {'accuracy': 0.6666666666666666, 'macro_f1': 0.6666666666666666}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

METRICS_DIR = Path(__file__).resolve().parent
ACCURACY_PATH = str(METRICS_DIR / "accuracy")
F1_PATH = str(METRICS_DIR / "f1")


def load_metric(name: str) -> Any:
    """``evaluate.load`` of one of the local modules: ``"accuracy"`` or ``"f1"``.

    Example:
        >>> load_metric("accuracy").compute(predictions=[1, 1], references=[1, 0])
        {'accuracy': 0.5}
    """
    import evaluate

    paths = {"accuracy": ACCURACY_PATH, "f1": F1_PATH}
    if name not in paths:
        raise ValueError(f"Unknown local metric {name!r}; expected one of {sorted(paths)}.")
    return evaluate.load(paths[name])


def compute_metrics_fn() -> Callable[[Any], dict[str, float]]:
    """Return ``compute_metrics(eval_pred) -> {"accuracy", "macro_f1"}`` for ``transformers.Trainer``.

    ``eval_pred`` is an ``EvalPrediction`` or a ``(logits, labels)`` pair; logits may be a tuple whose first item
    is the ``(N, num_labels)`` array. The prediction is the arg-max of the logits.

    Example:
        >>> compute_metrics_fn()((np.array([[2.0, 1.0]]), np.array([0])))["accuracy"]
        1.0
    """
    accuracy, f1 = load_metric("accuracy"), load_metric("f1")

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        logits, labels = (eval_pred.predictions, eval_pred.label_ids) if hasattr(eval_pred, "label_ids") else eval_pred
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        logits, labels = np.asarray(logits), np.asarray(labels)
        if logits.ndim != 2 or labels.ndim != 1 or len(logits) != len(labels):
            raise ValueError(f"Expected logits (N, num_labels) and labels (N,), got {logits.shape} and {labels.shape}.")
        preds = logits.argmax(-1)
        return {
            "accuracy": accuracy.compute(predictions=preds, references=labels)["accuracy"],
            "macro_f1": f1.compute(predictions=preds, references=labels, average="macro")["f1"],
        }

    return compute_metrics
