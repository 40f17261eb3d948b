"""Shared fixtures: tiny random text-encoder configs and a tokenizer over a small vocabulary (all offline)."""

from __future__ import annotations

import os

import pytest
import torch

# The tests run tiny models: one intra-op thread beats several contending ones by far on small or busy machines
# (the plugin tests: about 26 s instead of 50-80 s on 2 loaded cores). QLLM_TEST_THREADS=N overrides.
torch.set_num_threads(int(os.environ.get("QLLM_TEST_THREADS", "1")))

# Special tokens first (BERT order), then the words of the tests' synthetic sentences.
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a this that movie film plot acting story was is very really quite not "
    "good great fine superb lovely bad awful poor boring terrible"
).split()


@pytest.fixture
def tiny_bert_config():
    """A 2-layer, 32-wide random BERT config (``hidden_size=32``, ``vocab_size=99``)."""
    from transformers import BertConfig

    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


@pytest.fixture
def tiny_mpnet_config():
    """A 2-layer, 32-wide random MPNet config (the architecture of all-mpnet-base-v2)."""
    from transformers import MPNetConfig

    return MPNetConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


@pytest.fixture(scope="session")
def make_tokenizer():
    """Factory: ``make_tokenizer(words=None)`` -> a new ``BertTokenizer`` over ``TINY_VOCAB`` (or the given words).

    Built with ``vocab={...}``: in transformers 5 ``BertTokenizer(vocab_file=...)`` silently ignores the file.
    """
    from transformers import BertTokenizer

    def make(words=None):
        tokens = TINY_VOCAB if words is None else ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(words)
        return BertTokenizer(vocab={token: i for i, token in enumerate(tokens)})

    return make


@pytest.fixture
def c_kernels():
    """``modeling_qllm.cpu_kernels``, built. CI machines have a C compiler, so there an unbuildable kernel is a
    failure; elsewhere (no compiler) the tests that need the kernels skip, naming the reason."""
    import modeling_qllm.cpu_kernels as cpu_kernels

    if not cpu_kernels.available():
        reason = f"no C kernels: {cpu_kernels.unavailable_reason()}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI machines have a C compiler")
        pytest.skip(reason)
    return cpu_kernels
