"""Experiment infrastructure for recipes (never imported by the remote-code model files).

Protocols and splits, the embedding cache, classical baselines, local metrics, statistics over runs, the model
card writer and the Hub push helper.

Example:
    >>> from modeling_qllm.experiments import mean_std, mlp_hidden_for_budget
    >>> mlp_hidden_for_budget(768, 2, 886)
    1
"""

from .baselines import BaselineResult, logistic_regression, mlp, mlp_hidden_for_budget, mlp_num_parameters, svm
from .data import (
    Split,
    load_text_classification,
    merge_splits,
    paper_splits,
    standard_splits,
    validate_dataset,
)
from .embeddings import EmbeddingCache, embed_texts
from .hub import push_folder_to_hub
from .metrics import compute_metrics_fn, load_metric
from .model_card import CardInfo, ResultRow, render_model_card
from .statistics import PairedDifference, mean_std, paired_difference, summarize

__all__ = [
    "BaselineResult",
    "CardInfo",
    "EmbeddingCache",
    "PairedDifference",
    "ResultRow",
    "Split",
    "compute_metrics_fn",
    "embed_texts",
    "load_metric",
    "load_text_classification",
    "logistic_regression",
    "mean_std",
    "merge_splits",
    "mlp",
    "mlp_hidden_for_budget",
    "mlp_num_parameters",
    "paired_difference",
    "paper_splits",
    "push_folder_to_hub",
    "render_model_card",
    "standard_splits",
    "summarize",
    "svm",
    "validate_dataset",
]
