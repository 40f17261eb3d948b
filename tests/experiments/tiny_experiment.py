"""A tiny random BERT body (with its tokenizer) and a tiny JSONL sentiment dataset, built offline in code.

Shared by ``tests/experiments/test_runner.py`` and ``tests/recipes/test_sst2_recipe.py`` (imported as a plain
module: ``tests/experiments`` is put on ``sys.path`` by that folder's conftest, and by the recipe test itself).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER = "the a this that movie film plot acting story was is very really quite".split()
POSITIVE = "good great fine superb lovely".split()
NEGATIVE = "bad awful poor boring terrible".split()
VOCAB = SPECIAL + FILLER + POSITIVE + NEGATIVE

# 32-wide embedding: 5 qubits hold it exactly; one encoder keeps the head (and the run) small.
TINY_HEAD = {"num_encoders": 1, "encoder_qubits": 5, "encoder_layers": 1, "encoder_connectivity": 1,
             "reupload_blocks": 1, "reupload_layers": 1, "reupload_connectivity": 1, "final_layers": 1,
             "final_connectivity": 1}


def build_tiny_body(folder: Path, seed: int = 0) -> Path:
    """Save a 1-layer, 32-wide random BERT and a ``BertTokenizer`` over :data:`VOCAB` to ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB) + 3, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    # transformers 5 ignores BertTokenizer(vocab_file=...): build from the dict, then save.
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(VOCAB)})
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(folder)
    return Path(folder)


def sentence(rng: random.Random, label: int) -> str:
    """A short sentence whose label is the polarity of its one sentiment word."""
    word = rng.choice(POSITIVE if label else NEGATIVE)
    return " ".join([rng.choice(["the", "this", "that"]), rng.choice(["movie", "film", "plot", "acting", "story"]),
                     rng.choice(["was", "is"]), *rng.sample(["very", "really", "quite"], rng.randint(0, 2)), word])


def write_split(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def build_tiny_data(folder: Path, sizes=(40, 12, 12), seed: int = 0, text_key: str = "text",
                    label_key: str = "label") -> Path:
    """train/validation/test ``.jsonl`` files with balanced labels 0/1 (``sizes`` rows each)."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "validation", "test"), sizes):
        rows = [{text_key: sentence(rng, i % 2), label_key: i % 2} for i in range(n)]
        write_split(folder / f"{split}.jsonl", rows)
    return folder
