"""Inference energy per sample of the quantum head: our simulator (timed on this machine's CPU, or GPU if present)
against a QPU model, with the qubit count where they cross (the paper: 46 qubits).

    python recipes/energy.py                                   # configuration/studies/energy.yaml
    python recipes/energy.py --qubits 4 6 8 --fit-min-qubits 4 # a quick run
    python recipes/energy.py --reuse-measurements             # refit / remodel (edited QPU figures) without timing

Writes to --output-dir: results.json (timings, fit, QPU model, cross-overs over shots and QPU power), results.md and
energy.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modeling_qllm.experiments.studies.common import load_yaml
from modeling_qllm.experiments.studies.energy import run_energy_study

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configuration" / "studies" / "energy.yaml"))
    p.add_argument("--qubits", type=int, nargs="+", default=None, help="override simulator.qubits (even numbers)")
    p.add_argument("--fit-min-qubits", type=int, default=None, help="override simulator.fit_min_qubits")
    p.add_argument("--repeats", type=int, default=None, help="override simulator.repeats")
    p.add_argument("--device", default=None, help="override simulator.device (auto, cpu, cuda)")
    p.add_argument("--cpu-power-w", type=float, default=None,
                   help="CPU power in W (default: --threads x simulator.cpu_power_w_per_core)")
    p.add_argument("--reuse-measurements", action="store_true",
                   help="refit and remodel from the timings in --output-dir/results.json instead of timing again")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the timed simulator")
    p.add_argument("--output-dir", default="outputs/studies/energy")
    return p


def main(argv=None) -> dict:
    import torch

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_yaml(args.config)
    sim = config.setdefault("simulator", {})
    for key, value in (("qubits", args.qubits), ("fit_min_qubits", args.fit_min_qubits), ("repeats", args.repeats),
                       ("device", args.device), ("cpu_power_w", args.cpu_power_w)):
        if value is not None:
            sim[key] = value
    sim["threads"] = args.threads
    measurements = None
    if args.reuse_measurements:
        import json

        stored = json.loads((Path(args.output_dir) / "results.json").read_text())
        measurements = stored["measurements"]
        sim["threads"] = stored["config"].get("simulator", {}).get("threads", args.threads)
    return run_energy_study(config, args.output_dir, measurements=measurements)


if __name__ == "__main__":
    main()
