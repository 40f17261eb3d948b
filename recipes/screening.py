"""Screening study of main effects of the quantum head's settings (Plackett-Burman or 2^(k-p) design), with the
classical baselines on the same embeddings and splits.

    python recipes/screening.py                                   # configuration/studies/screening.yaml, SST-2, MiniLM
    python recipes/screening.py --workers 2                       # two local processes
    python recipes/screening.py --ray --workers 2                 # on Ray (pip install 'modeling_qllm[ray]')
    python recipes/screening.py --synthetic --epochs 1            # offline smoke run on random embeddings

Writes to --output-dir: results.json (design, every run, effects with confidence intervals, baselines),
results.md (tables), effects.png, accuracy_vs_qubits.png, and runs/<id>.json (one per finished run; a rerun of the
same command skips them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modeling_qllm.experiments.studies.common import add_common_arguments, load_study_config, load_study_data
from modeling_qllm.experiments.studies.screening import run_screening

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configuration" / "studies" / "screening.yaml"))
    add_common_arguments(p, "outputs/studies/screening")
    return p


def main(argv=None) -> dict:
    import torch

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads_per_worker)
    config = load_study_config(args)
    if args.epochs is not None:
        config["mlp_epochs"] = args.epochs
    data = load_study_data(args)
    return run_screening(config, data, args.output_dir, workers=args.workers, use_ray=args.ray,
                         threads_per_worker=args.threads_per_worker)


if __name__ == "__main__":
    main()
