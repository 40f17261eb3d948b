"""Ablation study: remove or replace one module of the full head at a time, on the same splits and seeds, and
compare each variant with the full model by paired differences.

Config (``configuration/studies/ablation.yaml``)::

    folds: 2
    seeds: [0]
    train: {epochs: 10, lr: 0.01, batch_size: 32}
    full: {type: quantum, encoder_qubits: 8, num_encoders: 2, ...}     # the reference head
    variants:                                                         # overrides of ``full``, one module each
      no_qpu_module: {type: encoder_only}          # module 2 removed: linear read-out on the encoders' <Z>
      no_reupload: {reupload_blocks: 1}
      one_encoder: {num_encoders: 1}
      connectivity_1: {encoder_connectivity: 1, reupload_connectivity: 1, final_connectivity: 1}
      mlp_matched: {type: mlp_matched}             # MLP of at most the full head's parameter count
      logreg_matched: {type: logreg_matched}       # logistic regression on the first k features, k + 1 <= count
      logreg: {type: logreg}                       # logistic regression on the embedding
    lora: {epochs: 1, lora_r: 8, learning_rate: 0.01, body_learning_rate: 0.0002}   # used by --include-lora

``mlp_matched`` resolves to the largest one-hidden-layer MLP within the full head's parameter count; when the full
head is below the smallest MLP (``d + 1 + 2k + k`` parameters, 389 for a 384-d body) the smallest one is used and the
table says "over budget". The LoRA comparison (``include_lora``) trains the full head with LoRA adapters in the body
through the SST-2 engine (``runner.run_experiment``), and also with a frozen body through the same engine and epochs,
so the pair differs only in the body's fine-tuning.

Example:
    >>> from modeling_qllm.experiments.studies.common import StudyData
    >>> cfg = {"folds": 1, "seeds": [0], "full": {"encoder_qubits": 3, "num_encoders": 2},
    ...        "variants": {"one_encoder": {"num_encoders": 1}}}
    >>> [t["id"] for t in ablation_tasks(cfg, StudyData.synthetic(n=60, dim=16, folds=1))[0]]
    ['full-fold0-seed0', 'one_encoder-fold0-seed0']
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from ..statistics import mean_std, paired_difference
from .common import (
    StudyData,
    head_parameters,
    markdown_table,
    matched_mlp,
    pct,
    quantum_kwargs,
    replicates,
    run_tasks,
    setup_matplotlib,
    write_json,
)

DEFAULT_VARIANTS = {
    "no_qpu_module": {"type": "encoder_only"},
    "no_reupload": {"reupload_blocks": 1},
    "one_encoder": {"num_encoders": 1},
    "connectivity_1": {"encoder_connectivity": 1, "reupload_connectivity": 1, "final_connectivity": 1},
    "mlp_matched": {"type": "mlp_matched"},
    "logreg_matched": {"type": "logreg_matched"},
    "logreg": {"type": "logreg"},
}
DESCRIPTIONS = {
    "full": "full model",
    "no_qpu_module": "no QPU module (linear read-out on the encoders' <Z>)",
    "no_reupload": "no re-uploading (1 block)",
    "one_encoder": "one encoder instead of several",
    "connectivity_1": "connectivity 1 instead of long range",
    "mlp_matched": "quantum head replaced by an MLP of the same parameter count",
    "logreg": "logistic regression on the embedding",
    "logreg_matched": "logistic regression on the first k features, k + 1 <= the full head's parameters",
    "lora_body": "LoRA-tuned body (SST-2 engine)",
    "frozen_body_engine": "frozen body (SST-2 engine, same epochs as LoRA)",
}


def variant_specs(config: Dict[str, Any], data: StudyData) -> Dict[str, Dict[str, Any]]:
    """``{variant: head spec}`` (``{"type": "logreg"}`` for the logistic regression), full model first."""
    full = {"type": "quantum", **config["full"]}
    budget = head_parameters(full, data.dim, data.num_labels)
    specs = {"full": full}
    for name, overrides in (config.get("variants") or DEFAULT_VARIANTS).items():
        kind = overrides.get("type")
        if kind == "mlp_matched":
            specs[name] = matched_mlp(budget, data.dim, data.num_labels)
        elif kind == "logreg":
            specs[name] = {"type": "logreg"}
        elif kind == "logreg_matched":  # two classes: k weights + 1 intercept (k * K + K for K > 2 classes)
            per_feature = 1 if data.num_labels == 2 else data.num_labels
            features = min(data.dim, (budget - (1 if data.num_labels == 2 else data.num_labels)) // per_feature)
            specs[name] = {"type": "logreg", "features": int(max(features, 1))}
        else:
            specs[name] = {**full, **overrides}
    return specs


def ablation_tasks(config: Dict[str, Any], data: StudyData):
    specs = variant_specs(config, data)
    reps = replicates(data, int(config.get("folds", 2)), config.get("seeds", [0]))
    train = {"epochs": 10, "lr": 0.01, "batch_size": 32, **config.get("train", {})}
    tasks = []
    for name, spec in specs.items():
        for split, seed in reps:
            task = {"id": f"{name}-fold{split}-seed{seed}", "split": split, "seed": seed}
            if spec["type"] == "logreg":
                task["kind"] = "logreg"
                if spec.get("features") is not None:
                    task["features"] = spec["features"]
            else:
                head = {k: v for k, v in spec.items() if k not in ("over_budget", "budget", "parameters", "note")}
                task.update(kind="head", head=head,
                            train={**train, "lr": config.get("mlp_lr", 1e-3)} if spec["type"] == "mlp" else train)
            tasks.append(task)
    return tasks, specs, reps


def lora_records(config: Dict[str, Any], args, specs, reps, out_dir: Path, log=print) -> Dict[str, List[float]]:
    """Accuracies ``{"lora_body": [...], "frozen_body_engine": [...]}`` per replicate, from ``runner.run_experiment``
    with ``finetune="lora"`` and ``"frozen"`` (same head, epochs and splits)."""
    from ..runner import ExperimentSettings, run_experiment

    lora = {"epochs": 1, "lora_r": 8, "learning_rate": 0.01, "body_learning_rate": 2e-4, "batch_size": 32,
            **config.get("lora", {})}
    head = quantum_kwargs(specs["full"], args.embedding_dim)
    folds = int(config.get("folds", 2))
    seeds = list(config.get("seeds", [0]))
    out = {}
    for name, finetune in (("lora_body", "lora"), ("frozen_body_engine", "frozen")):
        engine_dir = out_dir / "engine" / finetune
        cache = Path(getattr(args, "cache_dir", "") or "")
        if cache.is_dir():  # the engine caches under <output_dir>/embedding_cache with the same keys: reuse ours
            target = engine_dir / "embedding_cache"
            target.mkdir(parents=True, exist_ok=True)
            for file in cache.glob("*.safetensors"):
                if not (target / file.name).exists():
                    shutil.copyfile(file, target / file.name)
        settings = ExperimentSettings(
            body=args.body, data=args.data, output_dir=str(engine_dir), folds=folds, seeds=seeds,
            per_label=args.per_label, head=head, finetune=finetune, lora_r=int(lora["lora_r"]),
            epochs=int(lora["epochs"]), batch_size=int(lora["batch_size"]),
            learning_rate=float(lora["learning_rate"]), body_learning_rate=float(lora["body_learning_rate"]),
            max_length=args.max_length, baselines=[])
        log(f"{name}: runner.run_experiment(finetune={finetune!r}, epochs={lora['epochs']})")
        metrics = run_experiment(settings)
        by_run = {(r["split"], r["seed"]): r["quantum"] for r in metrics["runs"]}
        out[name] = {"accuracies": [by_run[(f"fold{f}", s)]["accuracy"] for f, s in reps],
                     "parameters": metrics["runs"][0]["quantum"]["num_parameters"],
                     "trainable_parameters": metrics["runs"][0]["quantum"]["trainable_parameters"],
                     "epochs": int(lora["epochs"])}
    return out


def analyse(specs, reps, results, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    rows = []
    full = [results[f"full-fold{f}-seed{s}"]["accuracy"] for f, s in reps]
    variants = {name: {"accuracies": [results[f"{name}-fold{f}-seed{s}"]["accuracy"] for f, s in reps],
                       "macro_f1": [results[f"{name}-fold{f}-seed{s}"]["macro_f1"] for f, s in reps],
                       "parameters": results[f"{name}-fold{reps[0][0]}-seed{reps[0][1]}"]["num_parameters"],
                       "spec": spec}
                for name, spec in specs.items()}
    for name, v in (extra or {}).items():
        variants[name] = {**v, "spec": {"type": name}}
    for name, v in variants.items():
        m, s = mean_std(v["accuracies"])
        row = {"variant": name, "description": DESCRIPTIONS.get(name, name), "parameters": v["parameters"],
               "accuracy_mean": m, "accuracy_std": s, "accuracies": v["accuracies"], "n": len(v["accuracies"])}
        if "macro_f1" in v:
            row["macro_f1_mean"], row["macro_f1_std"] = mean_std(v["macro_f1"])
        if v["spec"].get("over_budget"):
            row["note"] = v["spec"]["note"]
        reference = variants["frozen_body_engine"]["accuracies"] if name == "lora_body" else full
        reference_name = "frozen_body_engine" if name == "lora_body" else "full"
        if name not in ("full", "frozen_body_engine") and len(reps) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                d = paired_difference(v["accuracies"], reference)
            row["difference"] = {"against": reference_name, "mean": d.mean, "std": d.std, "n": d.n,
                                 "t": d.t_statistic, "p_value": d.p_value}
        elif name not in ("full", "frozen_body_engine"):
            diff = float(np.mean(np.asarray(v["accuracies"]) - np.asarray(reference)))
            row["difference"] = {"against": reference_name, "mean": diff, "std": float("nan"), "n": len(reps),
                                 "t": float("nan"), "p_value": float("nan")}
        rows.append(row)
    return {"rows": rows, "replicates": [list(r) for r in reps]}


def table(analysis) -> str:
    out = []
    for r in analysis["rows"]:
        d = r.get("difference")
        diff = "" if d is None else (f"{100 * d['mean']:+.2f} +- {100 * d['std']:.2f} (p = {d['p_value']:.3g})"
                                     + ("" if d["against"] == "full" else f" vs {d['against']}"))
        params = f"{r['parameters']}" + (" (over budget)" if r.get("note") else "")
        out.append({"variant": r["variant"], "what": r["description"], "params": params,
                    "acc": pct(r["accuracy_mean"], r["accuracy_std"]), "diff": diff})
    return markdown_table(out, ["variant", "what", "params", "acc", "diff"],
                          ["variant", "what changes", "parameters", "test accuracy %",
                           "paired difference to full (points)"])


def plot(analysis, out_dir: Path) -> str:
    plt = setup_matplotlib()
    rows = analysis["rows"]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    colors = ["tab:blue" if r["variant"] == "full" else "tab:gray" if r["variant"] in ("mlp_matched", "logreg",
                                                                                        "logreg_matched")
              else "tab:purple" if "body" in r["variant"] else "tab:orange" for r in rows]
    ax.barh(y, [100 * r["accuracy_mean"] for r in rows], xerr=[100 * r["accuracy_std"] for r in rows], color=colors,
            capsize=3)
    ax.set_yticks(y, [f"{r['variant']} ({r['parameters']})" for r in rows], fontsize=8)
    lo = min(100 * (r["accuracy_mean"] - r["accuracy_std"]) for r in rows)
    hi = max(100 * (r["accuracy_mean"] + r["accuracy_std"]) for r in rows)
    ax.set_xlim(max(0, lo - 3), min(100, hi + 2))
    ax.set_xlabel("test accuracy % (mean +- std over folds x seeds); labels: parameters")
    ax.set_title("Ablation: one module removed or replaced at a time")
    fig.tight_layout()
    fig.savefig(out_dir / "ablation.png", dpi=100)
    plt.close(fig)
    return "ablation.png"


def run_ablation(config: Dict[str, Any], data: StudyData, out_dir, workers: int = 1, use_ray: bool = False,
                 threads_per_worker: int = 1, include_lora: bool = False, lora_args=None, log=print) -> Dict[str, Any]:
    """Run (or resume) the study; write ``results.json``, ``results.md`` and ``ablation.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tasks, specs, reps = ablation_tasks(config, data)
    results = run_tasks(tasks, data, out_dir, workers, use_ray, threads_per_worker, log)
    extra = lora_records(config, lora_args, specs, reps, out_dir, log) if include_lora else None
    analysis = analyse(specs, reps, results, extra)
    analysis["plot"] = plot(analysis, out_dir)
    report = {"config": config, "data": data.description, "specs": specs, **analysis,
              "include_lora": include_lora, "wall_time_s": time.perf_counter() - start}
    write_json(out_dir / "results.json", report)
    notes = [r["note"] for r in analysis["rows"] if r.get("note")]
    text = "\n\n".join([
        f"# Ablation study\n\nData: {data.description}. {len(reps)} replicates (fold, seed): "
        f"{', '.join(f'fold{f}/seed{s}' for f, s in reps)}. Paired differences: variant - full model on the same "
        "replicates (paired t-test; n/a with one replicate).",
        table(analysis)] + [f"Note: {n}." for n in notes] + (
        [] if include_lora else ["Frozen vs LoRA body: not run (pass --include-lora)."]))
    (out_dir / "results.md").write_text(text + "\n")
    log(text)
    return report
