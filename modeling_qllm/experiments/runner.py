"""The SST-2-style experiment behind ``recipes/sst2.py``: protocol -> cached embeddings -> quantum head and
classical baselines on the same splits -> metrics.json, a table, a model card, optionally a Hub push.

Each (split, seed) run writes ``runs/<split>-seed<k>/result.json`` when it finishes; a rerun of the same command
skips finished runs and resumes an interrupted one from its last Trainer checkpoint.

Example:
    >>> settings = ExperimentSettings(body="path/to/minilm", data="../shared/data/sst2", output_dir="out")
    >>> # metrics = run_experiment(settings)   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..configuration_qllm import MATCH_QUANTUM
from ..heads import mlp_hidden_for_budget
from ..modeling_qllm import QuantumSequenceClassification, build_head
from .baselines import logistic_regression, mlp, svm
from .data import Split, load_text_classification, paper_splits, standard_splits, validate_dataset
from .embeddings import EmbeddingCache, embed_texts
from .metrics import compute_metrics_fn
from .statistics import mean_std, paired_difference

FINETUNE_CHOICES = ("frozen", "lora", "full")
PROTOCOL_CHOICES = ("paper", "standard")
BASELINE_CHOICES = ("logreg", "mlp", "svm")


@dataclass
class ExperimentSettings:
    """Everything one experiment needs; stored verbatim in ``metrics.json``."""

    body: str
    data: str
    output_dir: str
    protocol: str = "paper"
    folds: int = 5
    seeds: List[int] = field(default_factory=lambda: [0])
    per_label: int = 256
    train_fraction: float = 0.85
    head: Dict[str, Any] = field(default_factory=dict)
    head_preset: Optional[str] = None
    finetune: str = "frozen"
    lora_r: int = 8
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 0.01
    body_learning_rate: float = 2e-5
    eval_batch_size: int = 1024
    max_length: Optional[int] = None
    baselines: List[str] = field(default_factory=lambda: ["logreg", "mlp"])
    text_column: str = "text"
    label_column: str = "label"
    push_to_hub: Optional[str] = None
    hub_private: bool = False

    def __post_init__(self):
        for name, value, choices in (("protocol", self.protocol, PROTOCOL_CHOICES),
                                     ("finetune", self.finetune, FINETUNE_CHOICES)):
            if value not in choices:
                raise ValueError(f"{name}={value!r}; expected one of {choices}")
        unknown = sorted(set(self.baselines) - set(BASELINE_CHOICES))
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; expected some of {BASELINE_CHOICES}")
        for name in ("folds", "epochs", "batch_size", "per_label"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected a positive integer")
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed")


def make_splits(settings: ExperimentSettings, dsd) -> List[Split]:
    if settings.protocol == "paper":
        return paper_splits(dsd, settings.per_label, settings.train_fraction, settings.folds)
    return standard_splits(dsd)


def _embedding_key(settings: ExperimentSettings, model: QuantumSequenceClassification) -> str:
    c = model.config
    return f"{settings.body}|pool={c.pooling}|norm={c.normalize_embeddings}|max_length={settings.max_length}"


def _head_dataset(embeddings: torch.Tensor, labels: np.ndarray, rows: np.ndarray):
    import datasets

    return datasets.Dataset.from_dict(
        {"sentence_embeddings": embeddings[rows].numpy(), "labels": labels[rows].astype(np.int64)}
    ).with_format("torch")


def _text_dataset(split: Split, part: str, tokenizer, max_length):
    subset = split.dataset.select(getattr(split, part))
    return subset.map(
        lambda b: tokenizer(b["text"], truncation=max_length is not None, max_length=max_length),
        batched=True, remove_columns=[c for c in subset.column_names if c != "label"],
    ).rename_column("label", "labels")


def _fresh_model(template: QuantumSequenceClassification, seed: int, settings: ExperimentSettings):
    """A copy of the template with a head initialised from ``seed`` (and LoRA / unfrozen body if asked)."""
    model = copy.deepcopy(template)
    torch.manual_seed(seed)
    model.classifier = build_head(model.config)
    if settings.finetune == "full":
        model.unfreeze_body()
    if settings.finetune == "lora":
        from ..lora import apply_lora

        model = apply_lora(model, r=settings.lora_r)
    return model


def _train_quantum(settings, template, split, seed, embeddings, labels, tokenizer, run_dir: Path) -> Dict[str, Any]:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    model = _fresh_model(template, seed, settings)
    if settings.finetune == "frozen":
        train, val, test = (_head_dataset(embeddings, labels, getattr(split, p)) for p in ("train", "validation", "test"))
        collator = None
    else:
        train, val, test = (_text_dataset(split, p, tokenizer, settings.max_length) for p in ("train", "validation", "test"))
        collator = DataCollatorWithPadding(tokenizer)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    optimizer = torch.optim.AdamW(base.parameter_groups(settings.learning_rate, settings.body_learning_rate))
    args = TrainingArguments(
        output_dir=str(run_dir / "checkpoints"), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.eval_batch_size,
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="accuracy",
        save_total_limit=1, logging_strategy="epoch", report_to=["tensorboard"], seed=seed,
        use_cpu=not torch.cuda.is_available(), disable_tqdm=False, save_only_model=False,
    )
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", "")
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, data_collator=collator,
                      compute_metrics=compute_metrics_fn(), optimizers=(optimizer, None))
    last = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    train_time = time.perf_counter() - start
    scores = trainer.evaluate(test, metric_key_prefix="test")
    val_scores = trainer.evaluate(val, metric_key_prefix="validation")
    return {
        "accuracy": scores["test_accuracy"], "macro_f1": scores["test_macro_f1"], "loss": scores["test_loss"],
        "validation_accuracy": val_scores["validation_accuracy"], "train_time_s": train_time,
        "num_parameters": base.classifier.parameter_counts()["total"], "resumed_from": last,
        "trainer": trainer, "model": model,
    }


def _run_baselines(settings, budget: int, embeddings, labels, split: Split, seed: int, num_labels: int):
    x = embeddings.numpy()
    tr, va, te = split.train, split.validation, split.test
    results = {}
    if "logreg" in settings.baselines:
        results["logreg"] = logistic_regression(x[tr], labels[tr], x[te], labels[te])
    if "mlp" in settings.baselines:
        hidden = mlp_hidden_for_budget(x.shape[1], num_labels, max(budget, x.shape[1] + 1 + 2 * num_labels))
        results["mlp_matched"] = mlp(x[tr], labels[tr], x[te], labels[te], hidden=hidden, num_labels=num_labels,
                                     seed=seed, x_val=x[va], y_val=labels[va])
        results["mlp_matched"].extra["hidden"] = hidden
        results["mlp_matched"].extra["budget"] = budget
    if "svm" in settings.baselines:
        results["svm"] = svm(x[tr], labels[tr], x[te], labels[te], seed=seed)
    return {name: asdict(r) for name, r in results.items()}


def run_experiment(settings: ExperimentSettings) -> Dict[str, Any]:
    """Run every (split, seed), write ``metrics.json`` and the model folder; return the metrics dict."""
    from accelerate import PartialState
    from transformers import AutoTokenizer

    state = PartialState()
    out = Path(settings.output_dir)
    start = time.perf_counter()
    # Everything that can be wrong with the data fails here, before any model is loaded.
    dsd = load_text_classification(settings.data, settings.text_column, settings.label_column)
    num_labels = validate_dataset(dsd)
    splits = make_splits(settings, dsd)
    names = dsd[next(iter(dsd))].features["label"].names if hasattr(dsd[next(iter(dsd))].features["label"], "names") else None
    id2label = {i: (names[i] if names else str(i)) for i in range(num_labels)}

    tokenizer = AutoTokenizer.from_pretrained(settings.body)
    template = QuantumSequenceClassification.from_body(settings.body, id2label=id2label, **settings.head)
    merged = splits[0].dataset
    labels = np.asarray(merged["label"], dtype=np.int64)
    cache = EmbeddingCache(out / "embedding_cache")
    device = "cuda" if torch.cuda.is_available() else "cpu"

    def embed_all(texts):
        template.to(device)
        try:
            return embed_texts(template.embed, tokenizer, texts, batch_size=128, device=device,
                               max_length=settings.max_length).float()
        finally:
            template.to("cpu")

    with state.main_process_first():  # one process embeds; the others read the cache
        embeddings = cache.get_or_compute(list(merged["text"]), embed_all, _embedding_key(settings, template))
    budget = template.classifier.parameter_counts()["total"]

    records = []
    published = None
    for split in splits:
        for seed in settings.seeds:
            run_dir = out / "runs" / f"{split.name}-seed{seed}"
            result_file = run_dir / "result.json"
            if result_file.is_file():
                records.append(json.loads(result_file.read_text()))
                continue
            t0 = time.perf_counter()
            quantum = _train_quantum(settings, template, split, seed, embeddings, labels, tokenizer, run_dir)
            trainer, model = quantum.pop("trainer"), quantum.pop("model")
            record = {"split": split.name, "seed": seed, "note": split.note, "quantum": quantum,
                      "sizes": {p: int(len(getattr(split, p))) for p in ("train", "validation", "test")}}
            if state.is_main_process:
                record["baselines"] = _run_baselines(settings, budget, embeddings, labels, split, seed, num_labels)
                record["wall_time_s"] = time.perf_counter() - t0
                if published is None and not (out / "model" / "config.json").is_file():
                    save_model(model, tokenizer, out / "model")
                    published = f"{split.name}-seed{seed}"
                run_dir.mkdir(parents=True, exist_ok=True)
                result_file.write_text(json.dumps(record, indent=2, default=str))
            state.wait_for_everyone()
            records.append(record)
    metrics = summarize_runs(records, settings, budget, template, time.perf_counter() - start)
    if state.is_main_process:
        metrics["published_run"] = published
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        print(format_table(metrics))
        if (out / "model" / "config.json").is_file():
            write_card(metrics, settings, template, out / "model")
            if settings.push_to_hub:
                from .hub import push_folder_to_hub

                push_folder_to_hub(out / "model", settings.push_to_hub, private=settings.hub_private)
    return metrics


def save_model(model, tokenizer, folder: Path) -> None:
    """Save a loadable-anywhere model folder (LoRA merged into the body first) with its tokenizer."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def summarize_runs(records, settings, budget, template, wall_time) -> Dict[str, Any]:
    """Mean +- std over runs of every head, paired differences to the quantum head, and the settings."""
    heads = {"quantum": [r["quantum"] for r in records]}
    for record in records:
        for name, res in record.get("baselines", {}).items():
            heads.setdefault(name, []).append(res)
    summary = {}
    for name, runs in heads.items():
        acc_mean, acc_std = mean_std([r["accuracy"] for r in runs])
        f1_mean, f1_std = mean_std([r["macro_f1"] for r in runs])
        summary[name] = {"accuracy_mean": acc_mean, "accuracy_std": acc_std, "macro_f1_mean": f1_mean,
                         "macro_f1_std": f1_std, "n_runs": len(runs), "num_parameters": runs[0]["num_parameters"]}
    quantum_acc = [r["quantum"]["accuracy"] for r in records]
    comparisons = {}
    for name, runs in heads.items():
        if name != "quantum" and len(runs) == len(quantum_acc) and len(runs) > 1:
            comparisons[f"quantum_minus_{name}"] = asdict(paired_difference(quantum_acc, [r["accuracy"] for r in runs]))
    return {
        "settings": asdict(settings), "config": template.config.to_diff_dict(),
        "head_parameter_counts": template.classifier.parameter_counts(), "summary": summary,
        "paired_differences": comparisons, "runs": records, "wall_time_s": wall_time,
    }


def format_table(metrics: Dict[str, Any]) -> str:
    """A human-readable table of the summary (accuracy and macro-F1 in %, mean +- std over runs)."""
    lines = [f"{'head':<14} {'accuracy %':>16} {'macro-F1 %':>16} {'params':>9} {'runs':>5}"]
    for name, s in metrics["summary"].items():
        lines.append(f"{name:<14} {100 * s['accuracy_mean']:>9.2f} +- {100 * s['accuracy_std']:<4.2f} "
                     f"{100 * s['macro_f1_mean']:>9.2f} +- {100 * s['macro_f1_std']:<4.2f} "
                     f"{s['num_parameters']:>9} {s['n_runs']:>5}")
    for name, d in metrics["paired_differences"].items():
        lines.append(f"{name}: {100 * d['mean']:+.2f} +- {100 * d['std']:.2f} points (paired t-test p={d['p_value']:.3g})")
    lines.append(f"wall time: {metrics['wall_time_s']:.1f} s")
    return "\n".join(lines)


def write_card(metrics, settings: ExperimentSettings, template, folder: Path) -> None:
    """README.md of the model folder, generated from what the runs saw."""
    from .model_card import CardInfo, ResultRow, render_model_card

    rows = {name: ResultRow(name, s["accuracy_mean"], s["accuracy_std"], s["n_runs"], s["num_parameters"],
                            s["macro_f1_mean"], s["macro_f1_std"]) for name, s in metrics["summary"].items()}
    protocol = (f"{settings.protocol} protocol, {settings.folds if settings.protocol == 'paper' else 1} split(s) x "
                f"{len(settings.seeds)} seed(s); body {settings.finetune}; {settings.epochs} epochs, batch "
                f"{settings.batch_size}, head lr {settings.learning_rate}. {metrics['runs'][0]['note']}")
    info = CardInfo(
        repo_id=settings.push_to_hub or f"local/{folder.parent.name}", model_name=folder.parent.name,
        body=settings.body, dataset=settings.data, num_labels=template.config.num_labels,
        label_names=[template.config.id2label[i] for i in range(template.config.num_labels)],
        results=[rows.pop("quantum")], baselines=list(rows.values()),
        head_settings={k: v for k, v in template.config.quantum_head_kwargs().items()},
        parameter_counts=template.classifier.parameter_counts(), protocol=protocol,
        wall_time_s=metrics["wall_time_s"],
    )
    (folder / "README.md").write_text(render_model_card(info))
