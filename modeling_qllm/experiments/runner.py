"""The SST-2-style experiment behind ``recipes/sst2.py``: protocol -> cached embeddings -> quantum head and
classical baselines on the same splits -> metrics.json, a table, a model card, optionally a Hub push.

Order of work, so that bad input never costs a training run:

1. load and validate the data, build the splits, check the settings against an earlier run in the same output
   folder (all before any model is loaded or any ``runs/`` / ``model/`` folder exists);
2. embed every text once with the frozen body (cached on disk; the baselines always use these embeddings, and a
   frozen-body quantum head trains on them too);
3. for each (split, seed): train the quantum head with ``transformers.Trainer`` (DDP when launched with torchrun or
   ``accelerate launch``), evaluate it, fit the baselines on the same rows, write ``runs/<split>-seed<k>/result.json``;
4. summarise (mean +- std, paired differences), write ``metrics.json``, print the table, write the model card of the
   first run's model (``model/``), push it if asked.

A rerun of the same command skips every run that has a ``result.json`` and resumes an unfinished run from its last
Trainer checkpoint (``runs/<split>-seed<k>/checkpoints``).

Example:
    >>> settings = ExperimentSettings(body="path/to/minilm", data="../shared/data/sst2", output_dir="out")
    >>> # metrics = run_experiment(settings)   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..heads import mlp_hidden_for_budget
from ..modeling_qllm import QuantumSequenceClassification, build_head
from .baselines import logistic_regression, mlp, svm
from .device import DEVICE_CHOICES, DeviceChoice, choose_device, head_qubits
from .data import Split, load_text_classification, paper_splits, standard_splits, validate_dataset
from .embeddings import EmbeddingCache, embed_texts
from .metrics import compute_metrics_fn
from .statistics import mean_std, paired_difference

FINETUNE_CHOICES = ("frozen", "lora", "full")
PROTOCOL_CHOICES = ("paper", "standard")
BASELINE_CHOICES = ("logreg", "mlp", "svm")
PARTS = ("train", "validation", "test")

# Settings that do not change any run's result: a rerun may change them and still reuse finished runs. `folds` and
# `seeds` may change too (runs are keyed by split and seed; fold k is the same sample whatever the number of folds).
_RESUMABLE_FIELDS = ("output_dir", "push_to_hub", "hub_private", "eval_batch_size", "body_id", "dataset_id", "folds",
                     "seeds", "device")


class ExperimentInputError(ValueError):
    """Bad data or settings, found before any training: the data, the labels, the protocol's needs, or an output
    folder holding runs of other settings."""


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


@dataclass
class ExperimentSettings:
    """Everything one experiment needs; stored verbatim in ``metrics.json``.

    Args:
        body: any ``AutoModel`` text encoder (Hub id or local folder) with its tokenizer.
        data: Hub dataset id or a local folder of ``train``/``validation``/``test`` ``.jsonl``/``.csv``/``.parquet``.
        output_dir: where ``metrics.json``, ``runs/``, ``model/`` and the embedding cache go.
        protocol: ``"paper"`` (merge all splits, ``per_label`` rows per label, ``train_fraction`` to train, the rest
            of the sample to validation, every other row to test; ``folds`` resamples) or ``"standard"`` (the
            dataset's own splits).
        seeds: head initialisation and data order; every split runs once per seed.
        head: ``QLLMConfig`` fields of the head (a preset merged with overrides); ``head_preset`` only records the
            preset's name.
        finetune: ``"frozen"`` (cached embeddings, the body runs once per text), ``"lora"`` or ``"full"``.
        batch_size: examples per optimizer step over all processes (each of ``n`` processes gets
            ``batch_size / n``), so results do not depend on the number of processes.
        eval_batch_size: per process; None = 1024 for a frozen body (embeddings), 64 otherwise (texts).
        learning_rate / body_learning_rate: AdamW learning rates of the head / of the trainable body parameters.
        max_length: truncate texts to this many tokens; None never truncates (a longer text is an error).
        baselines: classical heads on the same embeddings and splits (``"logreg"``, ``"mlp"`` at the quantum
            head's parameter count, ``"svm"``).
        text_column / label_column: the data's column names.
        label_names: names of the classes ``0..K-1`` (declares ``K``); None uses the dataset's ``ClassLabel`` names or
            the label ids.
        body_id / dataset_id: Hub ids the model card names when ``body`` / ``data`` are local folders.
        push_to_hub: ``"namespace/name"`` to upload ``model/`` when done; ``hub_private`` creates it private.
        device: where the runs train: ``"auto"`` (:func:`~modeling_qllm.experiments.device.choose_device`: the CPU
            for small frozen-body heads even when a GPU is present), ``"cpu"`` or ``"cuda"``.
    """

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
    eval_batch_size: Optional[int] = None
    max_length: Optional[int] = None
    baselines: List[str] = field(default_factory=lambda: ["logreg", "mlp"])
    text_column: str = "text"
    label_column: str = "label"
    label_names: Optional[List[str]] = None
    body_id: Optional[str] = None
    dataset_id: Optional[str] = None
    push_to_hub: Optional[str] = None
    hub_private: bool = False
    device: str = "auto"

    def __post_init__(self):
        for name, value, choices in (("protocol", self.protocol, PROTOCOL_CHOICES),
                                     ("finetune", self.finetune, FINETUNE_CHOICES)):
            if value not in choices:
                raise ValueError(f"{name}={value!r}; expected one of {choices}")
        unknown = sorted(set(self.baselines) - set(BASELINE_CHOICES))
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; expected some of {BASELINE_CHOICES}")
        for name in ("folds", "epochs", "batch_size", "per_label", "lora_r"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected a positive integer")
        for name in ("eval_batch_size", "max_length"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r}; expected None or a positive integer")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in self.seeds):
            raise ValueError(f"seeds={self.seeds!r}; expected a non-empty list of integers")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds!r} repeats a seed")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in DEVICE_CHOICES:
            raise ValueError(f"device={self.device!r}; expected one of {DEVICE_CHOICES} or 'cuda:N'")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction={self.train_fraction!r}; expected a fraction strictly between 0 and 1")
        for name in ("learning_rate", "body_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected a positive number")
        if not isinstance(self.head, dict):
            raise ValueError(f"head={self.head!r}; expected a dict of QLLMConfig fields")
        names = self.label_names
        if names is not None and (len(names) < 2 or len(set(names)) != len(names)):
            raise ValueError(f"label_names={self.label_names!r}; expected at least 2 distinct names")
        if self.push_to_hub is not None and not re.match(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$", self.push_to_hub):
            raise ValueError(f"push_to_hub={self.push_to_hub!r}; expected a repository id 'namespace/name'")


# -- data -------------------------------------------------------------------------------------------------------
def make_splits(settings: ExperimentSettings, dsd) -> List[Split]:
    """The protocol's splits (every one indexes the same merged dataset)."""
    if settings.protocol == "paper":
        return paper_splits(dsd, settings.per_label, settings.train_fraction, settings.folds)
    return standard_splits(dsd)


def _check_local_files(source: str) -> None:
    """An empty text file of a local split fails inside `datasets` with a bare StopIteration: name it instead."""
    from .data import FILE_FORMATS, SPLIT_NAMES

    folder = Path(source).expanduser()
    if not folder.is_dir():
        return
    for split in SPLIT_NAMES:
        for ext in FILE_FORMATS:
            path = folder / f"{split}.{ext}"
            if ext != "parquet" and path.is_file() and not path.read_bytes().strip():
                raise ValueError(f"Split {split!r} is empty: {path} holds no rows.")


def load_and_check_data(settings: ExperimentSettings):
    """Load, validate and split the data; return ``(splits, id2label)``. Raises ``ValueError`` on bad input.

    On top of :func:`validate_dataset` (columns, empty splits, non-integer or negative labels): labels must be
    ``0..K-1`` with every class present (``K`` from ``label_names``, the ``ClassLabel`` or the largest label + 1),
    and every training set must hold every class.
    """
    _check_local_files(settings.data)
    dsd = load_text_classification(settings.data, settings.text_column, settings.label_column)
    declared = len(settings.label_names) if settings.label_names is not None else None
    num_labels = validate_dataset(dsd, declared)
    first = dsd[next(iter(dsd))].features["label"]
    class_names = getattr(first, "names", None)
    if settings.label_names is not None:
        class_names = list(settings.label_names)
    elif class_names is not None and len(class_names) != num_labels:
        class_names = None
    counts = {c: 0 for c in range(num_labels)}
    for split in dsd.values():
        for label, n in zip(*np.unique(np.asarray(split["label"]), return_counts=True)):
            counts[int(label)] += int(n)
    absent = [c for c, n in counts.items() if n == 0]
    if absent:
        raise ValueError(f"Labels must be the class ids 0..{num_labels - 1} with every class present, but label(s) "
                         f"{absent} never occur (counts per label: {counts}). Renumber the labels 0..K-1"
                         + (", or fix label_names." if settings.label_names is not None else "."))
    if num_labels < 2:
        raise ValueError(f"Only one class (label 0) in the data; classification needs at least 2 (counts: {counts}).")
    splits = make_splits(settings, dsd)
    labels = np.asarray(splits[0].dataset["label"])
    for split in splits:
        missing = sorted(set(range(num_labels)) - set(int(c) for c in np.unique(labels[split.train])))
        if missing:
            raise ValueError(f"The training set of split {split.name!r} has no example of label(s) {missing}; "
                             "every class needs training examples.")
    id2label = {i: (str(class_names[i]) if class_names else str(i)) for i in range(num_labels)}
    return splits, id2label


def _check_resumable(settings: ExperimentSettings, out: Path, is_main: bool) -> None:
    """Refuse to mix runs of different settings in one output folder; record the settings on first use."""
    path = out / "settings.json"
    current = json.loads(json.dumps(asdict(settings)))
    if path.is_file():
        earlier = json.loads(path.read_text())
        changed = {k: (earlier.get(k), v) for k, v in current.items()
                   if k not in _RESUMABLE_FIELDS and earlier.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items()))
            raise ValueError(f"{out} holds runs made with other settings ({detail}); finished runs would be mixed "
                             "with new ones. Use another output_dir, or delete that folder to start over.")
    elif is_main:  # written whole (rename), so another process reads it complete or not at all
        out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2))
        os.replace(tmp, path)


def _head_dataset(embeddings: torch.Tensor, labels: np.ndarray, rows: np.ndarray):
    import datasets

    return datasets.Dataset.from_dict(
        {"sentence_embeddings": embeddings[rows].numpy(), "labels": labels[rows].astype(np.int64)}
    ).with_format("torch")


def _text_dataset(split: Split, part: str, tokenizer, max_length):
    subset = split.dataset.select(getattr(split, part))
    return subset.map(
        lambda b: tokenizer(b["text"], truncation=max_length is not None, max_length=max_length),
        batched=True, remove_columns=[c for c in subset.column_names if c != "label"], keep_in_memory=True,
    ).rename_column("label", "labels")


# -- training ---------------------------------------------------------------------------------------------------
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


def _tensorboard_callback(log_dir: Path):
    """transformers' TensorBoard callback writing to ``log_dir`` (its default is ``<output_dir>/runs/<date>``, and
    ``TENSORBOARD_LOGGING_DIR``, if set, would send every run of the experiment to one folder)."""
    from transformers.integrations import TensorBoardCallback

    callback = TensorBoardCallback()
    callback.logging_dir = str(log_dir)
    return callback


def _train_quantum(settings, template, split, seed, embeddings, labels, tokenizer, run_dir: Path,
                   state, device: DeviceChoice) -> Dict[str, Any]:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    model = _fresh_model(template, seed, settings)
    if settings.finetune == "frozen":
        train, val, test = (_head_dataset(embeddings, labels, getattr(split, p)) for p in PARTS)
        collator = None
    else:
        train, val, test = (_text_dataset(split, p, tokenizer, settings.max_length) for p in PARTS)
        collator = DataCollatorWithPadding(tokenizer)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    optimizer = torch.optim.AdamW(base.parameter_groups(settings.learning_rate, settings.body_learning_rate))
    eval_batch = settings.eval_batch_size or (1024 if settings.finetune == "frozen" else 64)
    tensorboard = _tensorboard_callback(run_dir / "tensorboard")
    args = TrainingArguments(
        output_dir=str(run_dir / "checkpoints"), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size // state.num_processes, per_device_eval_batch_size=eval_batch,
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="accuracy",
        save_total_limit=1, logging_strategy="epoch", report_to="none", seed=seed,
        use_cpu=device.device.type == "cpu", disable_tqdm=False, save_only_model=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, data_collator=collator,
                      compute_metrics=compute_metrics_fn(), optimizers=(optimizer, None), callbacks=[tensorboard])
    last = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    train_time = time.perf_counter() - start
    scores = trainer.evaluate(test, metric_key_prefix="test")
    val_scores = trainer.evaluate(val, metric_key_prefix="validation")
    if tensorboard.tb_writer is not None:  # the evaluations above reopened it after on_train_end closed it
        tensorboard.tb_writer.close()
    return {
        "accuracy": scores["test_accuracy"], "macro_f1": scores["test_macro_f1"], "loss": scores["test_loss"],
        "validation_accuracy": val_scores["validation_accuracy"], "validation_loss": val_scores["validation_loss"],
        "best_checkpoint": trainer.state.best_model_checkpoint, "epochs": settings.epochs,
        "num_parameters": base.classifier.parameter_counts()["total"],
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_time_s": train_time, "wall_time_s": time.perf_counter() - start,
        "resumed_from": last, "trainer": trainer, "model": model,
    }


def _run_baselines(settings, budget: int, embeddings, labels, split: Split, seed: int, num_labels: int):
    x = embeddings.numpy()
    tr, va, te = split.train, split.validation, split.test
    results = {}
    if "logreg" in settings.baselines:
        results["logreg"] = logistic_regression(x[tr], labels[tr], x[te], labels[te], seed=seed)
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
    """Run every (split, seed), write ``metrics.json`` and the model folder; return the metrics dict.

    Works in one process or in several (``torchrun --nproc_per_node N`` / ``accelerate launch``): every process
    trains (DDP), the main one embeds, fits the baselines and writes the files; all return the same metrics.
    """
    from accelerate import PartialState
    from transformers import AutoTokenizer

    # cpu=True on a machine without CUDA: under torchrun that makes the processes one gloo group (MULTI_CPU);
    # without it accelerate sees no GPU and leaves every process on its own.
    state = PartialState(cpu=not torch.cuda.is_available())
    if settings.batch_size % state.num_processes:
        raise ExperimentInputError(f"batch_size={settings.batch_size} is not divisible by the {state.num_processes} "
                                   "processes; it is the total batch over all of them.")
    out = Path(settings.output_dir)
    start = time.perf_counter()
    # Everything that can be wrong with the data fails here, before any model is loaded or any run folder exists.
    try:
        splits, id2label = load_and_check_data(settings)
        _check_resumable(settings, out, state.is_main_process)
    except ValueError as err:
        raise ExperimentInputError(str(err)) from err
    num_labels = len(id2label)
    if settings.push_to_hub and state.is_main_process:
        for name, explicit, source in (("body_id", settings.body_id, settings.body),
                                       ("dataset_id", settings.dataset_id, settings.data)):
            if not explicit and Path(source).expanduser().exists():
                warnings.warn(f"{source} is a local folder: the model card will name it {_card_id(None, source)!r}, "
                              f"which the Hub may reject as metadata; pass {name}= (its Hub id).", stacklevel=2)

    tokenizer = AutoTokenizer.from_pretrained(settings.body)
    template = QuantumSequenceClassification.from_body(settings.body, id2label=id2label, **settings.head)
    # from_body returns a model in training mode; embeddings must come without dropout (embed_texts only switches
    # nn.Modules to eval, and gets the bound method template.embed).
    template.eval()
    merged = splits[0].dataset
    labels = np.asarray(merged["label"], dtype=np.int64)

    def embed_all(texts):
        device = state.device
        template.to(device)
        try:
            return embed_texts(template.embed, tokenizer, texts, batch_size=128, device=device,
                               max_length=settings.max_length).float()
        finally:
            template.to("cpu")

    with state.main_process_first():  # one process embeds; the others read the cache
        cache = EmbeddingCache(out / "embedding_cache")
        embeddings = cache.get_or_compute(list(merged["text"]), embed_all, _embedding_key(settings, template))
    budget = template.classifier.parameter_counts()["total"]
    device = choose_device(settings.device, n_qubits=head_qubits(template.classifier),
                           batch_size=settings.batch_size // state.num_processes,
                           trains_body=settings.finetune != "frozen")  # fmt: skip
    if state.is_main_process:
        print(f"device policy: training on {device}", flush=True)

    runs = [(split, seed) for split in splits for seed in settings.seeds]
    published = f"{runs[0][0].name}-seed{runs[0][1]}"  # the model folder holds the first run's model
    records, reused_time = [], 0.0
    for index, (split, seed) in enumerate(runs):
        name = f"{split.name}-seed{seed}"
        run_dir = out / "runs" / name
        result_file = run_dir / "result.json"
        if result_file.is_file():
            if state.is_main_process:
                print(f"[{index + 1}/{len(runs)}] {name}: finished earlier, reusing {result_file}", flush=True)
            records.append(json.loads(result_file.read_text()))
            reused_time += records[-1].get("wall_time_s", 0.0)
            continue
        if state.is_main_process:
            print(f"[{index + 1}/{len(runs)}] {name}: training ({split.note})", flush=True)
        t0 = time.perf_counter()
        quantum = _train_quantum(settings, template, split, seed, embeddings, labels, tokenizer, run_dir, state,
                                 device)
        trainer, model = quantum.pop("trainer"), quantum.pop("model")
        if state.is_main_process:
            record = {"run": name, "split": split.name, "seed": seed, "note": split.note, "quantum": quantum,
                      "sizes": {p: int(len(getattr(split, p))) for p in PARTS},
                      "baselines": _run_baselines(settings, budget, embeddings, labels, split, seed, num_labels)}
            record["wall_time_s"] = time.perf_counter() - t0
            if name == published:
                save_model(model, tokenizer, out / "model")
            run_dir.mkdir(parents=True, exist_ok=True)
            tmp = result_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, indent=2, default=str))
            os.replace(tmp, result_file)  # result.json appears complete or not at all
        del trainer, model
        state.wait_for_everyone()
        records.append(json.loads(result_file.read_text()))
    metrics = summarize_runs(records, settings, template, time.perf_counter() - start)
    metrics["published_run"] = published
    metrics["experiment_wall_time_s"] = metrics["wall_time_s"] + reused_time
    metrics["environment"] = {**_environment(state), "training_device": str(device.device),
                              "device_policy": device.reason}
    if state.is_main_process:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        print(format_table(metrics), flush=True)
        if (out / "model" / "config.json").is_file():
            write_card(metrics, settings, template, out / "model")
            if settings.push_to_hub:
                from .hub import push_folder_to_hub

                url = push_folder_to_hub(out / "model", settings.push_to_hub, private=settings.hub_private)
                print(f"pushed {out / 'model'} to {settings.push_to_hub}: {url}", flush=True)
    state.wait_for_everyone()
    return metrics


def _environment(state) -> Dict[str, Any]:
    """Where this invocation ran: processes, device, versions."""
    import accelerate
    import transformers

    return {"num_processes": state.num_processes, "distributed_type": str(state.distributed_type.value),
            "device": str(state.device), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "transformers": transformers.__version__, "accelerate": accelerate.__version__}


def _embedding_key(settings: ExperimentSettings, model: QuantumSequenceClassification) -> str:
    """Names everything that changes the embeddings: the body's weights (hashed: a folder can be overwritten with
    another model), its name, the pooling and the truncation."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.body.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    c = model.config
    return (f"{settings.body}|weights={digest.hexdigest()[:16]}|pool={c.pooling}|norm={c.normalize_embeddings}"
            f"|max_length={settings.max_length}")


def save_model(model, tokenizer, folder: Path) -> None:
    """Save a loadable-anywhere model folder (LoRA merged into the body first) with its tokenizer."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# -- reporting --------------------------------------------------------------------------------------------------
def summarize_runs(records: List[Dict[str, Any]], settings: ExperimentSettings, template,
                   wall_time: float) -> Dict[str, Any]:
    """Mean +- std over runs of every head, paired differences to the quantum head, and the settings.

    ``summary[head]`` holds ``accuracy_mean/std``, ``macro_f1_mean/std``, ``loss_mean/std`` (quantum head: test
    cross-entropy), ``wall_time_s_mean`` (per run), ``num_parameters`` and ``n_runs``.
    """
    heads = {"quantum": [r["quantum"] for r in records]}
    for record in records:
        for name, res in record.get("baselines", {}).items():
            heads.setdefault(name, []).append(res)
    summary = {}
    for name, runs in heads.items():
        entry = {}
        for key in ("accuracy", "macro_f1", "loss"):
            if all(key in r for r in runs):
                entry[f"{key}_mean"], entry[f"{key}_std"] = mean_std([r[key] for r in runs])
        entry["wall_time_s_mean"] = mean_std([r["wall_time_s"] for r in runs])[0]
        entry["num_parameters"] = runs[0]["num_parameters"]
        if "parameter_note" in runs[0]:
            entry["parameter_note"] = runs[0]["parameter_note"]
        entry["n_runs"] = len(runs)
        summary[name] = entry
    quantum_acc = [r["quantum"]["accuracy"] for r in records]
    comparisons = {}
    for name, runs in heads.items():
        if name != "quantum" and len(runs) == len(quantum_acc) and len(runs) > 1:
            with warnings.catch_warnings():  # scipy warns when all differences are equal (p is then 0 or nan)
                warnings.simplefilter("ignore", RuntimeWarning)
                diff = paired_difference(quantum_acc, [r["accuracy"] for r in runs])
            comparisons[f"quantum_minus_{name}"] = asdict(diff)
    return {
        "settings": asdict(settings), "config": template.config.to_diff_dict(),
        "head_parameter_counts": template.classifier.parameter_counts(), "summary": summary,
        "paired_differences": comparisons, "runs": records, "wall_time_s": wall_time,
    }


def format_table(metrics: Dict[str, Any]) -> str:
    """A human-readable table of the summary (accuracy and macro-F1 in %, mean +- std over runs)."""
    lines = [f"{'head':<12} {'accuracy %':>15} {'macro-F1 %':>15} {'test loss':>9} {'params':>9} {'s/run':>7} "
             f"{'runs':>4}"]
    for name, s in metrics["summary"].items():
        loss = f"{s['loss_mean']:>9.4f}" if "loss_mean" in s else f"{'-':>9}"
        lines.append(f"{name:<12} {100 * s['accuracy_mean']:>7.2f} +- {100 * s['accuracy_std']:<4.2f} "
                     f"{100 * s['macro_f1_mean']:>7.2f} +- {100 * s['macro_f1_std']:<4.2f} {loss} "
                     f"{s['num_parameters']:>9} {s['wall_time_s_mean']:>7.1f} {s['n_runs']:>4}")
    for name, d in metrics["paired_differences"].items():
        lines.append(f"{name}: {100 * d['mean']:+.2f} +- {100 * d['std']:.2f} points "
                     f"(paired t-test p={d['p_value']:.3g})")
    total = metrics.get("experiment_wall_time_s", metrics["wall_time_s"])
    reused = f" ({total:.1f} s with the runs reused from earlier invocations)" if total > metrics["wall_time_s"] else ""
    lines.append(f"wall time: {metrics['wall_time_s']:.1f} s{reused}")
    return "\n".join(lines)


def _card_id(explicit: Optional[str], source: str) -> str:
    """The Hub id the card names: the explicit one, the source if it is a Hub id, else the folder's name."""
    if explicit:
        return explicit
    if not Path(source).expanduser().exists() and _HUB_ID.match(source):
        return source
    return Path(source).expanduser().resolve().name


def write_card(metrics, settings: ExperimentSettings, template, folder: Path) -> None:
    """README.md of the model folder, generated from what the runs saw."""
    from .model_card import CardInfo, ResultRow, render_model_card

    rows = {name: ResultRow(name, s["accuracy_mean"], s["accuracy_std"], s["n_runs"], s["num_parameters"],
                            s["macro_f1_mean"], s["macro_f1_std"], s.get("parameter_note", ""))
            for name, s in metrics["summary"].items()}
    n_splits = settings.folds if settings.protocol == "paper" else 1
    protocol = (f"{settings.protocol} protocol, {n_splits} split(s) x {len(settings.seeds)} seed(s); body "
                f"{settings.finetune}; {settings.epochs} epochs, batch {settings.batch_size}, head lr "
                f"{settings.learning_rate}, best epoch by validation accuracy. {metrics['runs'][0]['note']}")
    published = next((r for r in metrics["runs"] if r.get("run") == metrics.get("published_run")), metrics["runs"][0])
    limitations = [f"The weights in this repository are those of one run ({published['split']}, seed "
                   f"{published['seed']}: test accuracy {100 * published['quantum']['accuracy']:.2f} %); the table "
                   "reports the mean and spread over all runs."]
    if settings.finetune != "frozen":
        limitations.append(f"The quantum head was trained with {settings.finetune} fine-tuning of the body; the "
                           "classical baselines use the embeddings of the frozen pretrained body.")
    model_name = (settings.push_to_hub or "").split("/")[-1] or folder.parent.resolve().name
    data_id = _card_id(settings.dataset_id, settings.data)
    info = CardInfo(
        repo_id=settings.push_to_hub or f"local/{model_name}", model_name=model_name,
        body=_card_id(settings.body_id, settings.body), dataset=data_id, num_labels=template.config.num_labels,
        label_names=[template.config.id2label[i] for i in range(template.config.num_labels)],
        results=[rows.pop("quantum")], baselines=list(rows.values()),
        head_settings=dict(template.config.quantum_head_kwargs()),
        parameter_counts=template.classifier.parameter_counts(), protocol=protocol,
        wall_time_s=metrics.get("experiment_wall_time_s", metrics["wall_time_s"]), limitations=limitations,
        tags=[settings.protocol + "-protocol", f"body-{settings.finetune}"],
    )
    (folder / "README.md").write_text(render_model_card(info))
