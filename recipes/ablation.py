"""Ablation study of the quantum head: remove or replace one module at a time (QPU module, re-uploading, multiple
encoders, long-range connectivity, the whole head by a matched MLP; optionally frozen vs LoRA body), paired against
the full model on the same splits and seeds.

    python recipes/ablation.py                              # configuration/studies/ablation.yaml, SST-2, MiniLM
    python recipes/ablation.py --workers 2 --include-lora   # LoRA through the SST-2 engine: slow on a CPU
    python recipes/ablation.py --synthetic --epochs 1       # offline smoke run on random embeddings

Writes to --output-dir: results.json, results.md, ablation.png and runs/<id>.json (a rerun skips finished runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modeling_qllm.experiments.studies.ablation import run_ablation
from modeling_qllm.experiments.studies.common import (
    add_common_arguments,
    default_body,
    load_study_data,
    load_study_config,
)

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configuration" / "studies" / "ablation.yaml"))
    p.add_argument("--include-lora", action="store_true",
                   help="also train the full head with a LoRA-tuned body and with a frozen body through the SST-2 "
                        "engine (runner.run_experiment; config 'lora': epochs etc.); off by default: slow")
    p.add_argument("--lora-epochs", type=int, default=None, help="override the config's lora.epochs")
    add_common_arguments(p, "outputs/studies/ablation")
    return p


def main(argv=None) -> dict:
    import torch

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads_per_worker)
    config = load_study_config(args)
    if args.lora_epochs is not None:
        config.setdefault("lora", {})["epochs"] = args.lora_epochs
    if args.include_lora and args.synthetic:
        build_parser().error("--include-lora needs a body and data: it cannot run with --synthetic")
    args.body = args.body or default_body()
    data = load_study_data(args)
    args.embedding_dim = data.dim
    return run_ablation(config, data, args.output_dir, workers=args.workers, use_ray=args.ray,
                        threads_per_worker=args.threads_per_worker, include_lora=args.include_lora, lora_args=args)


if __name__ == "__main__":
    main()
