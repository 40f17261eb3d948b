"""Noise study: test accuracy of the head against the number of shots and against depolarizing rates,

(a) trained and evaluated under each setting (the head learns with the noisy device), and
(b) trained exactly, then evaluated under each setting (the trained weights copied into a head built with the noisy
    settings: what a model trained in simulation meets on a device).

Noise acts on module 2 (``noise_scope: qpu``, the paper's QPU part) unless the head says otherwise;
``noise_method: auto`` simulates gate noise with an exact density matrix up to 7 qubits, trajectories above.

Config (``configuration/studies/noise.yaml``)::

    folds: 2
    seeds: [0]
    train: {epochs: 10, lr: 0.01, batch_size: 32}
    head: {type: quantum, encoder_qubits: 6, ...}
    shots: [100, 1000, 10000, null]           # null: exact expectations
    depolarizing:                             # name -> rates
      trapped-ion-like: {depolarizing_1q: 1.0e-4, depolarizing_2q: 1.0e-2}

Example:
    >>> from modeling_qllm.experiments.studies.common import StudyData
    >>> cfg = {"folds": 1, "seeds": [0], "head": {"encoder_qubits": 2}, "shots": [10, None],
    ...        "depolarizing": {"p": {"depolarizing_1q": 0.01, "depolarizing_2q": 0.05}}}
    >>> sorted(noise_settings(cfg))
    ['depolarizing:p', 'exact', 'shots:10']
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np

from ..statistics import mean_std
from .common import StudyData, markdown_table, pct, replicates, run_tasks, setup_matplotlib, write_json


def noise_settings(config: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """``{setting name: head overrides}``: ``exact``, ``shots:<S>`` and ``depolarizing:<name>``."""
    settings = {"exact": {"shots": None, "depolarizing_1q": 0.0, "depolarizing_2q": 0.0}}
    for shots in config.get("shots", [100, 1000, 10000, None]):
        if shots is not None:
            settings[f"shots:{int(shots)}"] = {"shots": int(shots), "depolarizing_1q": 0.0, "depolarizing_2q": 0.0}
    for name, rates in (config.get("depolarizing") or {}).items():
        settings[f"depolarizing:{name}"] = {"shots": None, "depolarizing_1q": float(rates.get("depolarizing_1q", 0)),
                                            "depolarizing_2q": float(rates.get("depolarizing_2q", 0)),
                                            "readout_error": float(rates.get("readout_error", 0))}
    return settings


def noise_tasks(config: Dict[str, Any], data: StudyData):
    settings = noise_settings(config)
    reps = replicates(data, int(config.get("folds", 2)), config.get("seeds", [0]))
    head = {"type": "quantum", "noise_method": "auto", **config["head"]}
    train = {"epochs": 10, "lr": 0.01, "batch_size": 32, **config.get("train", {})}
    tasks = []
    for name, overrides in settings.items():
        for split, seed in reps:
            task = {"id": f"{name.replace(':', '_')}-fold{split}-seed{seed}", "kind": "head", "split": split,
                    "seed": seed, "head": {**head, **overrides}, "train": train}
            if name == "exact":  # (b): the exact-trained head, evaluated under every setting
                task["evaluate_under"] = {n: o for n, o in settings.items() if n != "exact"}
            tasks.append(task)
    return tasks, settings, reps


def analyse(settings, reps, results) -> Dict[str, Any]:
    rows = []
    for name, overrides in settings.items():
        trained = [results[f"{name.replace(':', '_')}-fold{f}-seed{s}"]["accuracy"] for f, s in reps]
        if name == "exact":
            exact_eval = trained
        else:
            exact_eval = [results[f"exact-fold{f}-seed{s}"]["evaluated_under"][name]["accuracy"] for f, s in reps]
        a, b = mean_std(trained), mean_std(exact_eval)
        rows.append({"setting": name, **{k: overrides.get(k) for k in ("shots", "depolarizing_1q", "depolarizing_2q")},
                     "trained_noisy_mean": a[0], "trained_noisy_std": a[1], "trained_noisy": trained,
                     "trained_exact_mean": b[0], "trained_exact_std": b[1], "trained_exact": exact_eval,
                     "train_time_s_mean": float(np.mean([results[f"{name.replace(':', '_')}-fold{f}-seed{s}"]
                                                         ["train_time_s"] for f, s in reps]))})
    return {"rows": rows, "replicates": [list(r) for r in reps]}


def table(analysis) -> str:
    rows = [{"setting": r["setting"], "shots": "exact" if r["shots"] is None else r["shots"],
             "p1": r["depolarizing_1q"], "p2": r["depolarizing_2q"],
             "a": pct(r["trained_noisy_mean"], r["trained_noisy_std"]),
             "b": pct(r["trained_exact_mean"], r["trained_exact_std"]), "s": f"{r['train_time_s_mean']:.1f}"}
            for r in analysis["rows"]]
    return markdown_table(rows, ["setting", "shots", "p1", "p2", "a", "b", "s"],
                          ["setting", "shots", "1q depolarizing", "2q depolarizing",
                           "(a) trained + evaluated noisy, acc. %", "(b) trained exact, evaluated noisy, acc. %",
                           "train s (a)"])


def plot(analysis, out_dir: Path):
    plt = setup_matplotlib()
    rows = analysis["rows"]
    exact = next(r for r in rows if r["setting"] == "exact")
    shot_rows = sorted((r for r in rows if r["setting"].startswith("shots:")), key=lambda r: r["shots"])
    rate_rows = sorted((r for r in rows if r["setting"].startswith("depolarizing:")),
                       key=lambda r: r["depolarizing_2q"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    if shot_rows:
        xs = [r["shots"] for r in shot_rows]
        x_exact = 10 ** (math.log10(max(xs)) + 1)
        for key, label, marker in (("trained_noisy", "(a) trained with these shots", "o-"),
                                   ("trained_exact", "(b) trained exact, evaluated with shots", "s--")):
            ax.errorbar(xs + [x_exact], [100 * r[f"{key}_mean"] for r in shot_rows] + [100 * exact[f"{key}_mean"]],
                        yerr=[100 * r[f"{key}_std"] for r in shot_rows] + [100 * exact[f"{key}_std"]], fmt=marker,
                        label=label, capsize=3)
        ax.set_xscale("log")
        ax.set_xticks(xs + [x_exact], [str(x) for x in xs] + ["exact"])
    ax.set_xlabel("shots per expectation")
    ax.set_ylabel("test accuracy %")
    ax.set_title("Accuracy against shots")
    ax.legend(fontsize=7)
    ax = axes[1]
    if rate_rows:
        xs = [r["depolarizing_2q"] for r in rate_rows]
        x_zero = 10 ** (math.log10(min(xs)) - 1)
        for key, label, marker in (("trained_noisy", "(a) trained with this noise", "o-"),
                                   ("trained_exact", "(b) trained exact, evaluated noisy", "s--")):
            ax.errorbar([x_zero] + xs, [100 * exact[f"{key}_mean"]] + [100 * r[f"{key}_mean"] for r in rate_rows],
                        yerr=[100 * exact[f"{key}_std"]] + [100 * r[f"{key}_std"] for r in rate_rows], fmt=marker,
                        label=label, capsize=3)
        ax.set_xscale("log")
        labels = [f"{r['depolarizing_2q']:g}\n({r['depolarizing_1q']:g})" for r in rate_rows]
        ax.set_xticks([x_zero] + xs, ["0"] + labels)
    ax.set_xlabel("2q depolarizing rate (1q rate)")
    ax.set_title("Accuracy against gate noise (exact shots)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "noise.png", dpi=100)
    plt.close(fig)
    return "noise.png"


def run_noise_study(config: Dict[str, Any], data: StudyData, out_dir, workers: int = 1, use_ray: bool = False,
                    threads_per_worker: int = 1, log=print) -> Dict[str, Any]:
    """Run (or resume) the study; write ``results.json``, ``results.md`` and ``noise.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tasks, settings, reps = noise_tasks(config, data)
    results = run_tasks(tasks, data, out_dir, workers, use_ray, threads_per_worker, log)
    analysis = analyse(settings, reps, results)
    analysis["plot"] = plot(analysis, out_dir)
    report = {"config": config, "data": data.description, "settings": settings, **analysis,
              "wall_time_s": time.perf_counter() - start}
    write_json(out_dir / "results.json", report)
    text = "\n\n".join([
        f"# Noise study\n\nData: {data.description}. {len(reps)} replicates (fold, seed). Noise on "
        f"{config['head'].get('noise_scope', 'qpu')} scope; gate noise simulated with noise_method="
        f"{config['head'].get('noise_method', 'auto')} (density matrix up to 7 qubits).", table(analysis)])
    (out_dir / "results.md").write_text(text + "\n")
    log(text)
    return report
