import pytest
import torch
from transformers import BertTokenizer

from modeling_qllm.experiments.embeddings import EmbeddingCache, embed_texts

VOCAB = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "film", "very", "a"])}


def byte_features(texts):
    """A real, deterministic text -> vector map: length, byte sum and vowel count of each text."""
    return torch.tensor([[len(t), sum(t.encode()), sum(c in "aeiou" for c in t)] for t in texts], dtype=torch.float32)


class CountingEmbed:
    def __init__(self):
        self.calls, self.texts_seen = 0, 0

    def __call__(self, texts):
        self.calls += 1
        self.texts_seen += len(texts)
        return byte_features(texts)


def test_cache_computes_once_across_instances(tmp_path):
    fn, texts = CountingEmbed(), ["a good film", "a bad film", "very good"]
    first = EmbeddingCache(tmp_path).get_or_compute(texts, fn, key="bytes-v1")
    second = EmbeddingCache(tmp_path).get_or_compute(texts, fn, key="bytes-v1")
    assert fn.calls == 1 and fn.texts_seen == 3
    assert torch.equal(first, byte_features(texts)) and torch.equal(second, first)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1 and not list(tmp_path.glob("*.tmp"))


def test_cache_key_and_texts_and_order_matter(tmp_path):
    cache, fn = EmbeddingCache(tmp_path), CountingEmbed()
    cache.get_or_compute(["x", "y"], fn, key="k1")
    cache.get_or_compute(["x", "y"], fn, key="k2")
    cache.get_or_compute(["y", "x"], fn, key="k1")
    cache.get_or_compute(["xy"], fn, key="k1")
    assert fn.calls == 4
    assert cache.fingerprint(["ab", "c"], "k") != cache.fingerprint(["a", "bc"], "k")
    assert cache.path_for(["x", "y"], "k1").is_file()


def test_cache_errors(tmp_path):
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(ValueError, match=r"embed_fn must return a \(batch, dim\) tensor with 2 rows, got \(3, 3\)"):
        cache.get_or_compute(["a", "b"], lambda t: byte_features(t + ["c"]), key="k")
    with pytest.raises(ValueError, match="embed_fn must return .* got list"):
        cache.get_or_compute(["a"], lambda t: [[1.0]], key="k")
    with pytest.raises(ValueError, match="texts is empty"):
        cache.get_or_compute([], byte_features, key="k")
    with pytest.raises(ValueError, match="key must be a non-empty string"):
        cache.get_or_compute(["a"], byte_features, key="")
    with pytest.raises(ValueError, match=r"texts must be strings, got 3 \(int\)"):
        cache.get_or_compute(["a", 3], byte_features, key="k")


def _tokenizer(**kwargs):
    return BertTokenizer(vocab=VOCAB, **kwargs)


def id_sum_embed(input_ids, attention_mask, token_type_ids=None):
    """(sum of ids, number of real tokens, sum of token types) over the unpadded positions."""
    mask = attention_mask.float()
    types = token_type_ids.float() if token_type_ids is not None else torch.full_like(mask, -1.0)
    return torch.stack([(input_ids * mask).sum(1), mask.sum(1), (types * mask).sum(1)], dim=1)


def test_embed_texts_batches_match_one_by_one():
    tok, texts = _tokenizer(), ["a good film", "bad", "very very good film", "film"]
    out = embed_texts(id_sum_embed, tok, texts, batch_size=3, show_progress=False)
    one = torch.cat([embed_texts(id_sum_embed, tok, [t], batch_size=1, show_progress=False) for t in texts])
    assert torch.equal(out, one)
    # [CLS] a good film [SEP] -> 2 + 8 + 4 + 6 + 3 = 23 over 5 tokens; BERT passes token_type_ids (all 0)
    assert out[0].tolist() == [23.0, 5.0, 0.0]


class TinyBody(torch.nn.Module):
    """An embedding bag with dropout, so eval mode matters."""

    def __init__(self):
        super().__init__()
        self.emb, self.drop = torch.nn.Embedding(len(VOCAB), 4), torch.nn.Dropout(0.5)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return (self.drop(self.emb(input_ids)) * attention_mask[..., None]).sum(1)


def test_embed_texts_module_eval_mode_restored_and_deterministic():
    torch.manual_seed(0)
    body, tok = TinyBody().train(), _tokenizer()
    a = embed_texts(body, tok, ["a good film", "bad"], batch_size=2, show_progress=False)
    b = embed_texts(body, tok, ["a good film", "bad"], batch_size=1, show_progress=False)
    assert body.training and torch.allclose(a, b)
    assert a.shape == (2, 4) and a.device.type == "cpu"


def test_embed_texts_never_truncates_silently():
    tok = _tokenizer(model_max_length=4)
    with pytest.raises(ValueError, match=r"texts\[1\] has 6 tokens, more than the tokenizer's model_max_length=4"):
        embed_texts(id_sum_embed, tok, ["good", "very good bad film"], show_progress=False)
    out = embed_texts(id_sum_embed, tok, ["very good bad film"], max_length=4, show_progress=False)
    assert out[0, 1].item() == 4.0  # truncated on purpose


def test_embed_texts_errors():
    tok = _tokenizer()
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        embed_texts(id_sum_embed, tok, ["a"], batch_size=0)
    with pytest.raises(ValueError, match=r"texts\[1\] is None \(NoneType\), expected a string"):
        embed_texts(id_sum_embed, tok, ["a", None])
    with pytest.raises(ValueError, match="texts is empty"):
        embed_texts(id_sum_embed, tok, [], show_progress=False)
    with pytest.raises(ValueError, match=r"model_or_fn must return a \(batch, dim\) tensor with 1 rows, got \(1, 3, 9\)"):
        embed_texts(lambda input_ids, **_: torch.zeros(1, 3, 9), tok, ["a"], show_progress=False)


def test_cache_with_embed_texts(tmp_path):
    tok, cache, calls = _tokenizer(), EmbeddingCache(tmp_path), []

    def fn(texts):
        calls.append(texts)
        return embed_texts(id_sum_embed, tok, texts, batch_size=2, show_progress=False)

    texts = ["good film", "bad film", "a film"]
    for _fold in range(3):
        emb = cache.get_or_compute(texts, fn, key="id-sum")
    assert len(calls) == 1 and emb.shape == (3, 3)
