"""Render the model card (README.md) of a trained qllm model from the data an experiment collected.

The source of truth is the Jinja template ``model_cards/qllm_card_template.md`` at the repository root; this module
only checks the data and fills it in.

Example:
    >>> info = CardInfo(repo_id="me/qllm-sst2", model_name="qllm-sst2",
    ...                 body="sentence-transformers/paraphrase-mpnet-base-v2", dataset="SetFit/sst2",
    ...                 num_labels=2, label_names=["negative", "positive"],
    ...                 results=[ResultRow("quantum", 0.89, 0.004, 5, 886)])
    >>> "trust_remote_code=True" in render_model_card(info)
    True
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "model_cards" / "qllm_card_template.md"
BASE_TAGS = ["qllm", "quantum-machine-learning", "text-classification", "hybrid-quantum-classical",
             "parameterized-quantum-circuit", "custom_code"]


@dataclass
class ResultRow:
    """Accuracy (fractions in [0, 1]) of one head or baseline over ``n_runs`` runs, and its parameter count."""

    name: str
    accuracy_mean: float
    accuracy_std: float
    n_runs: int
    num_parameters: int
    macro_f1_mean: float | None = None
    macro_f1_std: float | None = None
    parameter_note: str = ""


@dataclass
class CardInfo:
    """Everything the card says. ``results`` are heads of this project; ``primary_result`` names the row that is
    the uploaded model (default: the first) and goes into the ``model-index`` metadata."""

    repo_id: str
    model_name: str
    body: str
    dataset: str
    num_labels: int
    label_names: list[str]
    results: list[ResultRow]
    head_settings: dict[str, Any] = field(default_factory=dict)
    parameter_counts: dict[str, int] = field(default_factory=dict)
    protocol: str = "not stated"
    baselines: list[ResultRow] = field(default_factory=list)
    wall_time_s: float = 0.0
    primary_result: str | None = None
    dataset_name: str | None = None
    eval_split: str = "test"
    license: str = "apache-2.0"
    language: str = "en"
    tags: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)


def _check(info: CardInfo) -> ResultRow:
    """Validate ``info`` and return the primary result row."""
    if "/" not in info.repo_id:
        raise ValueError(f"repo_id must look like 'namespace/name', got {info.repo_id!r}.")
    if len(info.label_names) != info.num_labels:
        raise ValueError(f"label_names has {len(info.label_names)} entries ({info.label_names}) but num_labels is "
                         f"{info.num_labels}; give one name per label.")
    if not info.results:
        raise ValueError("results is empty; the card needs at least the uploaded model's result.")
    for row in [*info.results, *info.baselines]:
        for name in ("accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std"):
            v = getattr(row, name)
            if v is not None and not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"{row.name}.{name} is {v!r}; expected a fraction in [0, 1] (not a percentage).")
        if row.n_runs < 1:
            raise ValueError(f"{row.name}.n_runs is {row.n_runs}; expected at least 1.")
    names = [r.name for r in info.results]
    primary = info.primary_result or names[0]
    if primary not in names:
        raise ValueError(f"primary_result {primary!r} is not among the results {names}.")
    return info.results[names.index(primary)]


def render_model_card(info: CardInfo, template_path: str | os.PathLike | None = None) -> str:
    """Fill the card template with ``info`` and return the markdown text (YAML front matter included).

    Example:
        >>> from huggingface_hub import ModelCard
        >>> info = CardInfo("me/m", "m", "sentence-transformers/all-MiniLM-L6-v2", "SetFit/sst2", 2, ["neg", "pos"],
        ...                 [ResultRow("quantum", 0.9, 0.01, 5, 886)])
        >>> ModelCard(render_model_card(info)).data.eval_results[0].metric_value
        0.9
    """
    primary = _check(info)
    path = Path(template_path) if template_path is not None else DEFAULT_TEMPLATE
    if not path.is_file():
        raise ValueError(f"Card template {path} not found; pass template_path= (the repository ships "
                         "model_cards/qllm_card_template.md).")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)
    template = env.from_string(path.read_text(encoding="utf-8"))
    tags = list(dict.fromkeys(BASE_TAGS + list(info.tags)))
    values = {k: getattr(info, k) for k in info.__dataclass_fields__}
    values.update(tags=tags, primary=primary, dataset_name=info.dataset_name or info.dataset)
    return template.render(**values)
