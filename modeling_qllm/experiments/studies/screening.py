"""Screening study of main effects: a two-level design over head and training factors, run on cached embeddings
over folds x seeds, with the classical baselines on the same splits.

Config (a dict, e.g. ``configuration/studies/screening.yaml``)::

    design: {type: plackett_burman, runs: 8}     # or fractional_factorial with base + generators, see design.py
    folds: 2
    seeds: [0]
    base_head: {type: quantum, ...}              # QuantumHead settings every run starts from
    train: {epochs: 10, lr: 0.01, batch_size: 32}
    factors:                                     # in design-column order; unused columns are dummies
      qubits: {set: [encoder_qubits], low: 4, high: 8}
      learning_rate: {set: [train.lr], low: 0.003, high: 0.03}
    baselines: [logreg, logreg_truncated, mlp_matched]

A factor's ``set`` lists the settings it drives (``train.<key>`` for training settings, else head settings).
``baselines``: ``logreg`` on the full embedding; ``logreg_truncated`` on the first ``2**Q`` features a truncating
quantum head sees; ``mlp_matched``: the one-hidden-layer MLP of at most the run's parameter count, or the smallest
MLP flagged over budget when the quantum head has fewer parameters than it.

Example:
    >>> from modeling_qllm.experiments.studies.common import StudyData
    >>> cfg = {"design": {"type": "plackett_burman", "runs": 8}, "folds": 1, "seeds": [0],
    ...        "base_head": {"encoder_qubits": 2, "encoder_connectivity": 1}, "train": {"epochs": 1},
    ...        "factors": {"qubits": {"set": ["encoder_qubits"], "low": 2, "high": 3}}}
    >>> tasks, plan = screening_tasks(cfg, StudyData.synthetic(n=60, dim=16, folds=1))
    >>> logregs = sorted({t["id"].split("-")[0] for t in tasks if t["kind"] == "logreg"})
    >>> sum(t["id"].startswith("run") for t in tasks), logregs
    (8, ['logreg', 'logreg_first4', 'logreg_first8'])
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from ..statistics import mean_std, paired_difference
from .common import (
    StudyData,
    head_parameters,
    markdown_table,
    matched_mlp,
    pct,
    replicates,
    run_tasks,
    setup_matplotlib,
    write_json,
)
from .design import main_effects, make_design

DEFAULT_TRAIN = {"epochs": 10, "lr": 0.01, "batch_size": 32, "weight_decay": 0.0}


def design_points(config: Dict[str, Any]) -> Tuple[np.ndarray, List[str], List[Dict[str, Any]]]:
    """``(design matrix, column names, settings of each run)``; each run's settings hold ``head``, ``train`` and
    the factor ``levels``."""
    factors = config["factors"]
    names = list(factors)
    design = make_design(config.get("design", {"type": "plackett_burman", "runs": 8}), len(names))
    columns = names + [f"dummy{j + 1}" for j in range(design.shape[1] - len(names))]
    points = []
    for row in design:
        head = {"type": "quantum", **config.get("base_head", {})}
        train = {**DEFAULT_TRAIN, **config.get("train", {})}
        levels = {}
        for j, name in enumerate(names):
            factor = factors[name]
            value = factor["high"] if row[j] > 0 else factor["low"]
            levels[name] = value
            targets = factor.get("set", [name])
            for target in [targets] if isinstance(targets, str) else targets:
                if target.startswith("train."):
                    train[target[len("train."):]] = value
                else:
                    head[target] = value
        points.append({"head": head, "train": train, "levels": levels})
    return design, columns, points


def screening_tasks(config: Dict[str, Any], data: StudyData) -> Tuple[List[Dict], Dict[str, Any]]:
    """The tasks of the study (quantum runs and baselines) and what the analysis needs to map results back."""
    design, columns, points = design_points(config)
    reps = replicates(data, int(config.get("folds", 2)), config.get("seeds", [0]))
    wanted = config.get("baselines", ["logreg", "logreg_truncated", "mlp_matched"])
    tasks, mlps = [], {}
    for i, point in enumerate(points):
        point["parameters"] = head_parameters(point["head"], data.dim, data.num_labels)
        point["mlp"] = matched_mlp(point["parameters"], data.dim, data.num_labels)
        mlps[point["mlp"]["hidden_size"]] = point["mlp"]
        for split, seed in reps:
            tasks.append({"id": f"run{i + 1:02d}-fold{split}-seed{seed}", "kind": "head", "split": split, "seed": seed,
                          "head": point["head"], "train": point["train"]})
    base_train = {**DEFAULT_TRAIN, **config.get("train", {})}
    qubit_levels = sorted({p["head"].get("encoder_qubits") for p in points if p["head"].get("encoder_qubits")})
    for split, seed in reps:
        if "logreg" in wanted:
            tasks.append({"id": f"logreg-fold{split}-seed{seed}", "kind": "logreg", "split": split, "seed": seed})
        if "logreg_truncated" in wanted:
            for q in qubit_levels:
                if 2**q < data.dim:
                    tasks.append({"id": f"logreg_first{2**q}-fold{split}-seed{seed}", "kind": "logreg",
                                  "split": split, "seed": seed, "features": 2**q})
        if "mlp_matched" in wanted:
            for hidden in sorted(mlps):
                tasks.append({"id": f"mlp_h{hidden}-fold{split}-seed{seed}", "kind": "head", "split": split,
                              "seed": seed, "head": {"type": "mlp", "hidden_size": hidden},
                              "train": {**base_train, "lr": config.get("mlp_lr", 1e-3),
                                        "epochs": config.get("mlp_epochs", base_train["epochs"])}})
    return tasks, {"design": design, "columns": columns, "points": points, "replicates": reps,
                   "qubit_levels": qubit_levels}


def analyse(config, plan, results, data: StudyData) -> Dict[str, Any]:
    """Effects with intervals, per-run summaries, the baselines, and paired comparisons of the best run."""
    design, columns, points, reps = plan["design"], plan["columns"], plan["points"], plan["replicates"]
    acc = np.array([[results[f"run{i + 1:02d}-fold{f}-seed{s}"]["accuracy"] for f, s in reps]
                    for i in range(len(points))])
    effects = main_effects(design, acc, columns, alpha=float(config.get("alpha", 0.05)))
    for e in effects:
        e["dummy"] = e["factor"].startswith("dummy")
    runs = []
    for i, point in enumerate(points):
        m, s = mean_std(acc[i])
        rec = {"run": i + 1, "levels": point["levels"], "parameters": point["parameters"], "accuracy_mean": m,
               "accuracy_std": s, "accuracies": acc[i].tolist(), "mlp": point["mlp"],
               "encoder_qubits": point["head"].get("encoder_qubits"),
               "train_time_s_mean": float(np.mean([results[f"run{i + 1:02d}-fold{f}-seed{sd}"]["train_time_s"]
                                                   for f, sd in reps]))}
        mlp_key = [f"mlp_h{point['mlp']['hidden_size']}-fold{f}-seed{sd}" for f, sd in reps]
        if all(k in results for k in mlp_key):
            rec["mlp_accuracies"] = [results[k]["accuracy"] for k in mlp_key]
            rec["mlp_accuracy_mean"], rec["mlp_accuracy_std"] = mean_std(rec["mlp_accuracies"])
        runs.append(rec)
    baselines = {}
    names = sorted({k.rsplit("-fold", 1)[0] for k in results if not k.startswith("run")})
    for name in names:
        values = [results[f"{name}-fold{f}-seed{s}"]["accuracy"] for f, s in reps]
        first = results[f"{name}-fold{reps[0][0]}-seed{reps[0][1]}"]
        m, s = mean_std(values)
        baselines[name] = {"accuracy_mean": m, "accuracy_std": s, "accuracies": values,
                           "parameters": first["num_parameters"], "features": first.get("features")}
    best = max(range(len(runs)), key=lambda i: runs[i]["accuracy_mean"])
    comparisons = {}
    if len(reps) >= 2:
        for name, b in baselines.items():
            d = paired_difference(runs[best]["accuracies"], b["accuracies"])
            comparisons[f"best_run_minus_{name}"] = {"mean": d.mean, "std": d.std, "n": d.n, "p_value": d.p_value}
    return {"effects": effects, "runs": runs, "baselines": baselines, "best_run": best + 1,
            "paired_differences": comparisons, "replicates": [list(r) for r in reps]}


def effects_table(analysis) -> str:
    rows = []
    for e in sorted(analysis["effects"], key=lambda e: -abs(e["effect"])):
        rows.append({"factor": e["factor"] + (" (dummy column)" if e["dummy"] else ""),
                     "low": f"{100 * e['mean_low']:.2f}", "high": f"{100 * e['mean_high']:.2f}",
                     "effect": f"{100 * e['effect']:+.2f}",
                     "ci": "n/a (1 replicate)" if math.isnan(e["se"]) else
                     f"[{100 * e['ci_low']:+.2f}, {100 * e['ci_high']:+.2f}]",
                     "p": e["p_value"]})
    return markdown_table(rows, ["factor", "low", "high", "effect", "ci", "p"],
                          ["factor", "mean acc. low (%)", "mean acc. high (%)", "effect (points)", "95 % CI",
                           "p (t-test)"])


def runs_table(analysis, factor_names) -> str:
    rows = []
    for r in analysis["runs"]:
        row = {"run": r["run"], "params": r["parameters"], "acc": pct(r["accuracy_mean"], r["accuracy_std"]),
               "s": f"{r['train_time_s_mean']:.1f}"}
        row.update({f: r["levels"][f] for f in factor_names})
        if "mlp_accuracy_mean" in r:
            flag = " (over budget)" if r["mlp"]["over_budget"] else ""
            row["mlp"] = f"{pct(r['mlp_accuracy_mean'], r['mlp_accuracy_std'])} [{r['mlp']['parameters']}{flag}]"
        rows.append(row)
    cols = ["run", *factor_names, "params", "acc", "mlp", "s"]
    return markdown_table(rows, cols, ["run", *factor_names, "params", "quantum acc. %", "matched MLP acc. % [params]",
                                       "train s"])


def baselines_table(analysis) -> str:
    rows = [{"head": name, "params": b["parameters"], "acc": pct(b["accuracy_mean"], b["accuracy_std"])}
            for name, b in analysis["baselines"].items()]
    best = analysis["runs"][analysis["best_run"] - 1]
    rows.insert(0, {"head": f"quantum, best design run ({analysis['best_run']})", "params": best["parameters"],
                    "acc": pct(best["accuracy_mean"], best["accuracy_std"])})
    table = markdown_table(rows, ["head", "params", "acc"], ["head", "parameters", "test accuracy %"])
    lines = [table]
    for name, d in analysis["paired_differences"].items():
        lines.append(f"- {name}: {100 * d['mean']:+.2f} +- {100 * d['std']:.2f} points over {d['n']} paired "
                     f"replicates (paired t-test p = {d['p_value']:.3g})")
    return "\n".join(lines)


def plot(analysis, out_dir: Path) -> List[str]:
    plt = setup_matplotlib()
    files = []
    effects = sorted(analysis["effects"], key=lambda e: abs(e["effect"]))
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(effects) + 1.5))
    y = np.arange(len(effects))
    values = [100 * e["effect"] for e in effects]
    errors = None
    if not any(math.isnan(e["se"]) for e in effects):
        errors = [[100 * (e["effect"] - e["ci_low"]) for e in effects],
                  [100 * (e["ci_high"] - e["effect"]) for e in effects]]
    colors = ["0.6" if e["dummy"] else ("tab:green" if e["effect"] > 0 else "tab:red") for e in effects]
    ax.barh(y, values, xerr=errors, color=colors, capsize=3)
    ax.set_yticks(y, [e["factor"] for e in effects])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("main effect on test accuracy (points, high - low), 95 % CI")
    ax.set_title("Screening: main effects (grey: dummy columns)")
    fig.tight_layout()
    fig.savefig(out_dir / "effects.png", dpi=100)
    plt.close(fig)
    files.append("effects.png")

    fig, ax = plt.subplots(figsize=(9, 4))
    runs = analysis["runs"]
    qs = [r["encoder_qubits"] for r in runs]
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.15, 0.15, len(runs))
    ax.errorbar(np.array(qs) + jitter, [100 * r["accuracy_mean"] for r in runs],
                yerr=[100 * r["accuracy_std"] for r in runs], fmt="o", color="tab:blue",
                label="quantum head (design runs)")
    for r, x in zip(runs, np.array(qs) + jitter):
        ax.annotate(f"{r['parameters']}", (x, 100 * r["accuracy_mean"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    base = analysis["baselines"]
    if "logreg" in base:
        b = base["logreg"]
        ax.axhline(100 * b["accuracy_mean"], color="tab:orange", ls="--",
                   label=f"logistic regression, full embedding ({b['parameters']} params)")
    trunc = sorted((v["features"], v) for k, v in base.items() if k.startswith("logreg_first"))
    if trunc:
        ax.plot([math.log2(f) for f, _ in trunc], [100 * v["accuracy_mean"] for _, v in trunc], "s--",
                color="tab:purple", label="logistic regression on the first 2^Q features")
    mlps = {}
    for r in runs:
        if "mlp_accuracy_mean" in r:
            mlps.setdefault(r["mlp"]["hidden_size"], r)
    styles = [":", "-.", (0, (1, 3)), (0, (5, 2, 1, 2))]
    for k, (hidden, r) in enumerate(sorted(mlps.items())):
        flag = ", over budget" if r["mlp"]["over_budget"] else ""
        ax.axhline(100 * r["mlp_accuracy_mean"], color="tab:green", ls=styles[k % len(styles)],
                   label=f"MLP hidden={hidden} ({r['mlp']['parameters']} params{flag})")
    ax.set_xlabel("encoder qubits Q (labels: head parameters)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("Accuracy against qubits, with classical baselines")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy_vs_qubits.png", dpi=100)
    plt.close(fig)
    files.append("accuracy_vs_qubits.png")
    return files


def run_screening(config: Dict[str, Any], data: StudyData, out_dir, workers: int = 1, use_ray: bool = False,
                  threads_per_worker: int = 1, log=print) -> Dict[str, Any]:
    """Run (or resume) the study and write ``results.json``, ``results.md`` and the plots into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tasks, plan = screening_tasks(config, data)
    results = run_tasks(tasks, data, out_dir, workers, use_ray, threads_per_worker, log)
    analysis = analyse(config, plan, results, data)
    factor_names = list(config["factors"])
    report = {"config": config, "data": data.description, "design": plan["design"].tolist(),
              "columns": plan["columns"], "points": plan["points"], **analysis,
              "wall_time_s": time.perf_counter() - start,
              "run_time_s_total": float(sum(r.get("wall_time_s", 0) for r in results.values())),
              "execution": {"workers": workers, "ray": use_ray, "threads_per_worker": threads_per_worker}}
    plots = plot(analysis, out_dir)
    report["plots"] = plots
    write_json(out_dir / "results.json", report)
    reps = plan["replicates"]
    text = "\n\n".join([
        f"# Screening study\n\nData: {data.description}. Design: {config.get('design')} "
        f"({len(plan['points'])} runs) x {len(reps)} replicates (fold, seed) = {len(reps) * len(plan['points'])} "
        f"quantum trainings.",
        "## Main effects (test accuracy)", effects_table(analysis),
        "## Design runs", runs_table(analysis, factor_names),
        "## Best run against the classical baselines (same splits)", baselines_table(analysis),
    ])
    (out_dir / "results.md").write_text(text + "\n")
    log(text)
    return report
