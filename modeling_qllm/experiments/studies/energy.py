"""Inference energy per sample: our simulator (measured) against a QPU (modelled), and the qubit count where they
cross.

* **Simulator.** For each register size ``Q`` of a paper-shaped head family (two encoders of ``Q/2`` qubits,
  concatenated, so module 2 runs on ``Q`` qubits, as in the paper's best 2 x 7 = 14-qubit head), the forward pass of
  module 2 (the part a QPU would run) is timed on a batch, ``repeats`` times, after a warm-up; the median time per
  sample times a stated power gives joules per sample. The fit is log-linear, ``log2 E = log2 a + b Q``
  (``E = a 2^(bQ)``), on the sizes ``>= fit_min_qubits`` (small registers are dominated by fixed overheads). A state
  vector costs ``Q 2^Q``-ish work per circuit of depth ``~Q``, so ``b`` a little above 1 is expected.
* **QPU.** ``E = shots x (circuit duration + readout + per-shot overhead) x system power``, with the circuit of module
  2 at ``Q`` qubits from the same gate lists (``circuits.count_gates``): with ``parallel_gates`` the duration is the
  ASAP schedule's makespan (gates on disjoint qubits overlap), otherwise the gates run one after another (a single
  trapped-ion chain). CNOT is counted as one native two-qubit gate.
* **Cross-over.** The smallest ``Q`` where the fitted simulator energy exceeds the QPU's (bisection on the
  continuous fit, QPU energy interpolated linearly in ``Q``, which it is for this ansatz), for every platform, shot
  count and power scale of the sweep.

Example:
    >>> fit = fit_exponential([10, 12, 14], [2.0**-10, 2.0**-8, 2.0**-6])   # E = 2^(Q - 20)
    >>> round(fit["b"], 6), round(fit["a"] * 2**20, 6)
    (1.0, 1.0)
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ...circuits import count_gates
from ...heads import QuantumHead
from .common import markdown_table, setup_matplotlib, write_json

DEFAULT_FAMILY = {"num_encoders": 2, "merge": "concat", "encoder_layers": 2, "encoder_connectivity": 2,
                  "reupload_blocks": 2, "reupload_layers": 2, "reupload_connectivity": 2, "final_layers": 2,
                  "final_connectivity": 2, "share_reupload_weights": True, "measured_qubits": 1}


def family_head(qubits: int, family: Dict[str, Any], embedding_size: int = 384, device="cpu") -> QuantumHead:
    """The head of the family whose module 2 has ``qubits`` qubits (``qubits / num_encoders`` per encoder with
    concat, ``qubits`` per encoder otherwise; connectivities capped at each register's size - 1)."""
    family = {**DEFAULT_FAMILY, **family}
    per_encoder = qubits // family["num_encoders"] if family["merge"] == "concat" else qubits
    if family["merge"] == "concat" and per_encoder * family["num_encoders"] != qubits:
        raise ValueError(f"{qubits} qubits do not split over {family['num_encoders']} concatenated encoders")
    fit = "pad" if 2**per_encoder >= embedding_size else "truncate"
    # Connectivity is capped at register size - 1 (a 2-qubit encoder of the Q = 4 head links its pair with C = 1).
    family["encoder_connectivity"] = min(family["encoder_connectivity"], per_encoder - 1)
    for key in ("reupload_connectivity", "final_connectivity"):
        family[key] = min(family[key], qubits - 1)
    with torch.device(device):
        return QuantumHead(embedding_size, 2, encoder_qubits=per_encoder, amplitude_fit=fit, **family)


def qpu_gates(qubits: int, family: Dict[str, Any]):
    """Module 2's gate list at ``qubits`` (built on the meta device: no state is allocated)."""
    with torch.device("meta"):
        return family_head(qubits, family, device="meta").qpu_gates


def circuit_duration(gates, gate_1q_s: float, gate_2q_s: float, parallel: bool) -> float:
    """Seconds one run of ``gates`` takes: ASAP makespan with ``parallel`` (gates on disjoint wires overlap),
    else the sum of all gate times.

    Example:
        >>> from modeling_qllm.circuits import Gate
        >>> g = [Gate("RY", (0,)), Gate("RY", (1,)), Gate("CNOT", (0, 1))]
        >>> circuit_duration(g, 1.0, 10.0, True), circuit_duration(g, 1.0, 10.0, False)
        (11.0, 12.0)
    """
    if not parallel:
        counts = count_gates(gates)
        return counts["RY"] * gate_1q_s + counts["CNOT"] * gate_2q_s
    free: Dict[int, float] = {}
    for gate in gates:
        t = gate_2q_s if gate.name == "CNOT" else gate_1q_s
        start = max(free.get(w, 0.0) for w in gate.wires)
        for w in gate.wires:
            free[w] = start + t
    return max(free.values()) if free else 0.0


def qpu_energy(qubits: int, family: Dict[str, Any], platform: Dict[str, Any], shots: int,
               power_scale: float = 1.0) -> Dict[str, float]:
    """Joules per sample on a QPU platform (see the module docstring), with the pieces it is made of."""
    gates = qpu_gates(qubits, family)
    counts = count_gates(gates)
    duration = circuit_duration(gates, float(platform["gate_1q_s"]), float(platform["gate_2q_s"]),
                                bool(platform.get("parallel_gates", False)))
    per_shot = duration + float(platform["readout_s"]) + float(platform.get("shot_overhead_s", 0.0))
    power = float(platform["power_w"]) * power_scale
    return {"qubits": qubits, "gates_1q": counts["RY"], "gates_2q": counts["CNOT"], "circuit_s": duration,
            "shot_s": per_shot, "seconds_per_sample": shots * per_shot, "energy_j": shots * per_shot * power}


def measure_simulator(qubits: Sequence[int], family: Dict[str, Any], embedding_size: int = 384,
                      device: str = "cpu", max_batch: int = 64, memory_budget_bytes: float = 2**28,
                      repeats: int = 3, log=print) -> List[Dict[str, Any]]:
    """Median seconds per sample of module 2's forward pass (no gradient) at each size, on ``device``.

    The batch is ``max_batch`` capped so that one state batch (``batch x 2^Q`` float32) stays within
    ``memory_budget_bytes``; the full head's forward (module 1 too) is timed as well, for the record.
    """
    out = []
    for q in qubits:
        torch.manual_seed(0)
        head = family_head(q, family, embedding_size, device=device)
        batch = int(max(1, min(max_batch, memory_budget_bytes // (4 * 2**q))))
        merged = torch.rand(batch, head.qpu_qubits, device=device) * 2 - 1
        x = torch.randn(batch, embedding_size, device=device)

        def timed(fn):
            with torch.no_grad():
                fn()  # warm-up
                times = []
                for _ in range(repeats):
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    fn()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t)
            return float(np.median(times)) / batch

        module2 = timed(lambda: head.qpu_expectations(merged))
        full = timed(lambda: head(x))
        counts = count_gates(head.qpu_gates)
        out.append({"qubits": q, "batch": batch, "seconds_per_sample": module2, "full_head_seconds_per_sample": full,
                    "gates_1q": counts["RY"], "gates_2q": counts["CNOT"], "device": device,
                    "parameters": head.parameter_counts()["total"]})
        log(f"Q={q:2d}: batch {batch:3d}, module 2 {1e3 * module2:9.3f} ms/sample, whole head {1e3 * full:9.3f} "
            f"ms/sample ({counts['RY']} RY + {counts['CNOT']} CNOT)")
    return out


def fit_exponential(qubits: Sequence[float], energy: Sequence[float]) -> Dict[str, float]:
    """Least-squares fit of ``log2 E = log2 a + b Q``; returns ``a``, ``b``, and ``r2`` (of the log fit)."""
    q = np.asarray(qubits, dtype=float)
    y = np.log2(np.asarray(energy, dtype=float))
    if len(q) < 2:
        raise ValueError("the exponential fit needs at least 2 register sizes")
    b, log_a = np.polyfit(q, y, 1)
    pred = log_a + b * q
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(((y - pred) ** 2).sum()) / ss if ss > 0 else 1.0
    return {"a": float(2**log_a), "b": float(b), "r2": r2}


def exponential(fit: Dict[str, float], q) -> np.ndarray:
    return fit["a"] * np.power(2.0, fit["b"] * np.asarray(q, dtype=float))


def crossover(fit: Dict[str, float], qpu_q: Sequence[float], qpu_e: Sequence[float],
              q_max: float = 200.0) -> Optional[float]:
    """Smallest ``Q`` (continuous) where the simulator's fitted energy reaches the QPU's, the QPU energy taken linear
    in ``Q`` (least squares through ``qpu_q, qpu_e``): the first ``Q`` in ``[1, q_max]`` where the simulator stops
    being cheaper (bisection, to 1e-6), 1.0 if it already costs more at ``Q = 1``, None if it never does.

    Example:
        >>> crossover({"a": 1.0, "b": 1.0}, [0, 10], [64.0, 64.0])   # 2^Q = 64 at Q = 6
        6.0
    """
    slope, intercept = np.polyfit(np.asarray(qpu_q, float), np.asarray(qpu_e, float), 1)

    def gap(q):
        return math.log2(fit["a"]) + fit["b"] * q - math.log2(max(intercept + slope * q, 1e-300))

    lo = 1.0
    if gap(lo) >= 0:
        return lo
    grid = np.arange(1.0, q_max + 1e-9, 0.5)
    for a, b in zip(grid[:-1], grid[1:]):
        if gap(b) >= 0:
            for _ in range(60):
                mid = (a + b) / 2
                a, b = (mid, b) if gap(mid) < 0 else (a, mid)
            return float(round(b, 6))
    return None


def run_energy_study(config: Dict[str, Any], out_dir, measurements: Optional[List[Dict]] = None,
                     log=print) -> Dict[str, Any]:
    """Measure (unless ``measurements`` are given), fit, model the QPUs, find the cross-overs; write
    ``results.json``, ``results.md`` and ``energy.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    sim = config.get("simulator", {})
    family = {**DEFAULT_FAMILY, **config.get("family", {})}
    device = sim.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        power = float(sim.get("gpu_power_w", 700.0))
        power_note = f"GPU: {power:g} W, {sim.get('gpu_power_source', 'stated board power')}"
    elif sim.get("cpu_power_w") is not None:
        power = float(sim["cpu_power_w"])
        power_note = f"CPU: {power:g} W as given"
    else:
        threads = int(sim.get("threads", torch.get_num_threads()))
        per_core = float(sim.get("cpu_power_w_per_core", 10.0))
        power = per_core * threads
        power_note = f"CPU: {threads} busy core(s) x {per_core:g} W ({sim.get('cpu_power_source', 'assumption')})"
    if measurements is None:
        measurements = measure_simulator(sim.get("qubits", [4, 6, 8, 10, 12, 14, 16]), family,
                                         int(sim.get("embedding_size", 384)), device, int(sim.get("max_batch", 64)),
                                         float(sim.get("memory_budget_bytes", 2**28)), int(sim.get("repeats", 3)), log)
    for m in measurements:
        m["energy_j"] = m["seconds_per_sample"] * power
    fit_min = sim.get("fit_min_qubits", 10)
    used = [m for m in measurements if m["qubits"] >= fit_min]
    if len(used) < 2:
        used = measurements[-2:]
    fit = fit_exponential([m["qubits"] for m in used], [m["energy_j"] for m in used])
    fit["qubits_used"] = [m["qubits"] for m in used]
    qpu = config.get("qpu", {})
    platforms = qpu.get("platforms", {})
    grid_q = list(range(int(qpu.get("model_qubits_min", 4)), int(qpu.get("model_qubits_max", 64)) + 1, 2))
    default_shots = int(qpu.get("shots", 1000))
    shot_sweep = [int(s) for s in qpu.get("shots_sweep", [100, 1000, 10000])]
    power_sweep = [float(p) for p in qpu.get("power_scale_sweep", [0.1, 1.0, 10.0])]
    curves, crossings = {}, []
    for name, platform in platforms.items():
        base = [qpu_energy(q, family, platform, 1) for q in grid_q]  # one shot, nominal power
        curves[name] = base
        for shots in sorted(set(shot_sweep + [default_shots])):
            for scale in sorted(set(power_sweep + [1.0])):
                energies = [b["energy_j"] * shots * scale for b in base]
                # The QPU energy is a function of Q; the simulator power is kept (CPU or GPU as measured).
                q_star = crossover(fit, grid_q, energies, q_max=float(qpu.get("crossover_search_max", 400)))
                crossings.append({"platform": name, "shots": shots, "qpu_power_scale": scale,
                                  "qpu_power_w": float(platform["power_w"]) * scale, "crossover_qubits": q_star})
    nominal = {c["platform"]: c["crossover_qubits"] for c in crossings
               if c["shots"] == default_shots and c["qpu_power_scale"] == 1.0}
    # Sensitivity to the fit: the asymptotic state-vector law (gates ~ Q, work per gate ~ 2^Q, i.e. E ~ Q 2^Q)
    # anchored at the largest measured register, instead of the fitted slope (which cache effects can steepen).
    top = max(measurements, key=lambda m: m["qubits"])
    anchored = {}
    for name, base in curves.items():
        energies = [b["energy_j"] * default_shots for b in base]
        slope, intercept = np.polyfit(grid_q, energies, 1)
        q = float(top["qubits"])
        while q < float(qpu.get("crossover_search_max", 400)):
            sim_e = top["energy_j"] * (q / top["qubits"]) * 2.0 ** (q - top["qubits"])
            if sim_e >= intercept + slope * q:
                break
            q += 0.1
        anchored[name] = round(q, 1) if q < float(qpu.get("crossover_search_max", 400)) else None
    report = {"config": config, "device": device, "simulator_power_w": power, "family": family,
              "measurements": measurements, "fit": fit, "qpu_curves": curves, "crossovers": crossings,
              "nominal_crossover": nominal, "paper_crossover_qubits": 46,
              "anchored_crossover": {"model": f"E = E(Q={top['qubits']}) x (Q / {top['qubits']}) x "
                                              f"2^(Q - {top['qubits']})",
                                     "crossover_qubits": anchored},
              "simulator_power_note": power_note, "wall_time_s": time.perf_counter() - start}
    report["plot"] = plot(report, grid_q, default_shots, out_dir)
    write_json(out_dir / "results.json", report)
    text = render(report, default_shots)
    (out_dir / "results.md").write_text(text + "\n")
    log(text)
    return report


def render(report, shots) -> str:
    fit = report["fit"]
    meas = markdown_table(
        [{"q": m["qubits"], "batch": m["batch"], "ms": 1e3 * m["seconds_per_sample"],
          "full": 1e3 * m["full_head_seconds_per_sample"], "j": m["energy_j"],
          "gates": f"{m['gates_1q']} + {m['gates_2q']}"} for m in report["measurements"]],
        ["q", "batch", "ms", "full", "j", "gates"],
        ["Q", "batch", "module 2 ms/sample", "whole head ms/sample", "J/sample (module 2)", "RY + CNOT"])
    rows = []
    for c in report["crossovers"]:
        q = c["crossover_qubits"]
        rows.append({"platform": c["platform"], "shots": c["shots"], "power": c["qpu_power_w"],
                     "q": "none below search limit" if q is None else f"{q:.1f}"})
    cross = markdown_table(rows, ["platform", "shots", "power", "q"], ["QPU", "shots", "QPU power W", "cross-over Q"])
    nominal = ", ".join(f"{k}: {'none' if v is None else f'{v:.1f}'} qubits"
                        for k, v in report["nominal_crossover"].items())
    per_decade = math.log2(10) / fit["b"] if fit["b"] > 0 else float("nan")
    memory = ", ".join(f"{gib} GiB: Q <= {int(math.log2(gib * 2**30 / 4))}" for gib in (128, 80, 1024))
    return "\n\n".join([
        f"# Energy study\n\nSimulator: {report['device']}, {report['simulator_power_w']:g} W "
        f"({report['simulator_power_note']}). Fit on Q in {fit['qubits_used']}: "
        f"E = {fit['a']:.3g} x 2^({fit['b']:.3f} Q) "
        f"J/sample (R^2 = {fit['r2']:.4f}).", meas,
        f"Cross-over at {shots} shots, nominal QPU power: {nominal} (the paper: 46 qubits). A factor of 10 in shots, "
        f"in QPU power or (inversely) in simulator power moves it by log2(10)/b = {per_decade:.1f} qubits. One "
        f"float32 real state vector fits in {memory}; beyond that the simulator line is an extrapolation to a "
        "machine that does not exist at that size.",
        "Sensitivity: with the asymptotic state-vector law instead of the fit "
        f"({report['anchored_crossover']['model']}), "
        "the cross-over at the nominal figures is " + ", ".join(
            f"{k}: {'none' if v is None else f'{v:.1f}'} qubits"
            for k, v in report["anchored_crossover"]["crossover_qubits"].items()) + ".", cross])


def plot(report, grid_q, shots, out_dir: Path) -> str:
    plt = setup_matplotlib()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    meas = report["measurements"]
    ax.semilogy([m["qubits"] for m in meas], [m["energy_j"] for m in meas], "ko",
                label=f"simulator, measured ({report['device']})")
    qs = np.linspace(min(grid_q[0], meas[0]["qubits"]), grid_q[-1], 200)
    fit = report["fit"]
    ax.semilogy(qs, exponential(fit, qs), "k--", label=f"fit {fit['a']:.2g} x 2^({fit['b']:.2f} Q)")
    for name, base in report["qpu_curves"].items():
        ax.semilogy(grid_q, [b["energy_j"] * shots for b in base], label=f"QPU {name}, {shots} shots")
        q_star = report["nominal_crossover"].get(name)
        if q_star is not None:
            ax.axvline(q_star, ls=":", color=ax.lines[-1].get_color())
    ax.axvline(46, color="tab:red", alpha=0.3, lw=3, label="paper's cross-over (46)")
    ax.set_xlabel("qubits Q (module 2)")
    ax.set_ylabel("inference energy per sample (J)")
    ax.set_title("Simulator vs QPU energy")
    ax.legend(fontsize=7)
    ax = axes[1]
    for name in report["qpu_curves"]:
        for scale, marker in ((0.1, "v"), (1.0, "o"), (10.0, "^")):
            pts = [(c["shots"], c["crossover_qubits"]) for c in report["crossovers"]
                   if c["platform"] == name and c["qpu_power_scale"] == scale and c["crossover_qubits"] is not None]
            if pts:
                pts.sort()
                ax.plot(*zip(*pts), marker=marker, label=f"{name}, QPU power x{scale:g}")
    ax.axhline(46, color="tab:red", alpha=0.3, lw=3)
    ax.set_xscale("log")
    ax.set_xlabel("shots per sample")
    ax.set_ylabel("cross-over qubits")
    ax.set_title("How the cross-over moves")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "energy.png", dpi=100)
    plt.close(fig)
    return "energy.png"
