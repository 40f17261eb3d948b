"""Noise study of the quantum head: test accuracy against shots and depolarizing rates, (a) trained and evaluated
under each setting, (b) trained exact and evaluated under it.

    python recipes/noise_study.py                           # configuration/studies/noise.yaml, SST-2, MiniLM
    python recipes/noise_study.py --workers 2
    python recipes/noise_study.py --synthetic --epochs 1    # offline smoke run on random embeddings

Writes to --output-dir: results.json, results.md, noise.png and runs/<id>.json (a rerun skips finished runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modeling_qllm.experiments.studies.common import add_common_arguments, load_study_config, load_study_data
from modeling_qllm.experiments.studies.noise_study import run_noise_study

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configuration" / "studies" / "noise.yaml"))
    p.add_argument("--head", default=None, help="JSON of head settings overriding the config's head")
    add_common_arguments(p, "outputs/studies/noise")
    return p


def main(argv=None) -> dict:
    import json

    import torch

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads_per_worker)
    config = load_study_config(args)
    if args.head:
        config["head"] = {**config["head"], **json.loads(args.head)}
    data = load_study_data(args)
    return run_noise_study(config, data, args.output_dir, workers=args.workers, use_ray=args.ray,
                           threads_per_worker=args.threads_per_worker)


if __name__ == "__main__":
    main()
