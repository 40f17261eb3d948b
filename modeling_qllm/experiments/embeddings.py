"""Embeddings of a frozen body: batched computation and an on-disk cache (safetensors).

A frozen body maps each text to the same vector in every fold, seed and screening run, so it should run once per
text. :class:`EmbeddingCache` stores one ``(N, d)`` tensor per (key, texts) pair; the key must name everything
that changes the vectors (body id and revision, pooling, max length, dtype), since the cache cannot look inside
the function.

Example:
    >>> import tempfile, torch
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> fn = lambda texts: torch.tensor([[float(len(t))] for t in texts])
    >>> cache.get_or_compute(["a", "bcd"], fn, key="length-v1").squeeze(1).tolist()
    [1.0, 3.0]
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

try:  # tqdm comes with transformers/datasets; the progress bar is optional
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


def _check_embeddings(out: Any, n: int, where: str) -> torch.Tensor:
    """Raise unless ``out`` is a 2-D tensor with ``n`` rows."""
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != n:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{where} must return a (batch, dim) tensor with {n} rows, got {shape}.")
    return out


class EmbeddingCache:
    """A folder of ``<sha256>.safetensors`` files, one per (key, list of texts).

    Args:
        directory: where the files live (created if missing).

    Example:
        >>> import tempfile, torch
        >>> cache = EmbeddingCache(tempfile.mkdtemp())
        >>> calls = []
        >>> def fn(texts):
        ...     calls.append(len(texts))
        ...     return torch.ones(len(texts), 4)
        >>> _ = cache.get_or_compute(["x", "y"], fn, key="ones")
        >>> _ = cache.get_or_compute(["x", "y"], fn, key="ones")
        >>> calls
        [2]
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def fingerprint(texts: list[str], key: str) -> str:
        """SHA-256 of the key and the texts (length-prefixed, so no two lists share a fingerprint by joining)."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string naming the body and its settings, got {key!r}.")
        digest = hashlib.sha256()
        for part in [key, *texts]:
            if not isinstance(part, str):
                raise ValueError(f"texts must be strings, got {part!r} ({type(part).__name__}).")
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "little") + data)
        return digest.hexdigest()

    def path_for(self, texts: list[str], key: str) -> Path:
        """The file that holds (or will hold) the embeddings of ``texts`` under ``key``."""
        return self.directory / f"{self.fingerprint(texts, key)}.safetensors"

    def get_or_compute(self, texts: list[str], embed_fn: Callable[[list[str]], torch.Tensor], key: str) -> torch.Tensor:
        """Return the ``(len(texts), d)`` embeddings, calling ``embed_fn(texts)`` only if they are not stored yet."""
        texts = list(texts)
        if not texts:
            raise ValueError("texts is empty; there is nothing to embed.")
        path = self.path_for(texts, key)
        if path.is_file():
            return _check_embeddings(load_file(path)["embeddings"], len(texts), f"cache file {path}")
        emb = _check_embeddings(embed_fn(texts), len(texts), "embed_fn")
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        os.close(fd)
        try:  # write then rename, so a crash never leaves a half-written file under the final name
            save_file({"embeddings": emb.detach().cpu().contiguous()}, tmp, metadata={"key": key, "rows": str(len(texts))})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return emb


@torch.no_grad()
def embed_texts(
    model_or_fn: Callable[..., torch.Tensor],
    tokenizer: Any,
    texts: list[str],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    max_length: int | None = None,
    show_progress: bool = True,
) -> torch.Tensor:
    """Embed ``texts`` in batches with ``model_or_fn(input_ids=..., attention_mask=..., [token_type_ids=...])``.

    The callable must return a ``(batch, dim)`` tensor (a pooled embedding). An ``nn.Module`` is put in eval mode
    for the call and restored afterwards; it must already sit on ``device``. Texts are never truncated silently:
    with ``max_length=None`` a text longer than ``tokenizer.model_max_length`` raises; pass ``max_length`` to
    truncate on purpose.

    Returns:
        A CPU tensor ``(len(texts), dim)`` in the dtype the callable returned.

    Example:
        >>> from transformers import BertTokenizer
        >>> tok = BertTokenizer(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4})
        >>> fn = lambda input_ids, attention_mask, **_: attention_mask.sum(1, keepdim=True).float()
        >>> embed_texts(fn, tok, ["a", "a a a"], batch_size=1, show_progress=False).squeeze(1).tolist()
        [3.0, 5.0]
    """
    texts = list(texts)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ValueError(f"texts[{bad}] is {texts[bad]!r} ({type(texts[bad]).__name__}), expected a string.")
    limit = getattr(tokenizer, "model_max_length", None)
    check_length = max_length is None and isinstance(limit, int) and limit < 10**6
    was_training = isinstance(model_or_fn, torch.nn.Module) and model_or_fn.training
    if was_training:
        model_or_fn.eval()
    outputs = []
    try:
        # Batches of similar length pad little: sorting by length makes embedding several times faster.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(texts), batch_size)
        if show_progress and tqdm is not None:
            starts = tqdm(starts, desc="embedding", unit="batch")
        for start in starts:
            rows = order[start:start + batch_size]
            batch = [texts[i] for i in rows]
            enc = tokenizer(batch, padding=True, truncation=max_length is not None, max_length=max_length,
                            return_tensors="pt")
            if check_length and enc["input_ids"].shape[1] > limit:
                lengths = enc["attention_mask"].sum(1)
                i = int(lengths.argmax())
                raise ValueError(f"texts[{rows[i]}] has {int(lengths[i])} tokens, more than the tokenizer's "
                                 f"model_max_length={limit}; pass max_length= to truncate on purpose.")
            inputs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
            outputs.append(_check_embeddings(model_or_fn(**inputs), len(batch), "model_or_fn").detach().cpu())
    finally:
        if was_training:
            model_or_fn.train()
    if not outputs:
        raise ValueError("texts is empty; there is nothing to embed.")
    embeddings = torch.cat(outputs)
    return embeddings[torch.argsort(torch.tensor(order))]
