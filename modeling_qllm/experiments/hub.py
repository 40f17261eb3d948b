"""Push a saved model folder (weights, config, remote code, card) to the Hugging Face Hub.

Example:
    >>> push_folder_to_hub("outputs/qllm-sst2", "me/qllm-sst2")  # doctest: +SKIP
    'https://huggingface.co/me/qllm-sst2/commit/...'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from huggingface_hub import HfApi

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def push_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload qllm model",
    endpoint: str | None = None,
) -> str:
    """Create the model repository if needed and upload every file of ``folder`` in one commit (per batch).

    Args:
        folder: a directory written by ``save_pretrained`` (plus README.md etc.); must hold at least one file.
        repo_id: ``"namespace/name"``.
        token: a Hub token; None uses the logged-in token or ``HF_TOKEN``.
        private: create the repository as private (ignored if it exists already).
        commit_message: the commit title.
        endpoint: the Hub URL; None uses ``HF_ENDPOINT`` (read when ``huggingface_hub`` is imported) or
            https://huggingface.co.

    Returns:
        The URL of the commit.

    Example:
        >>> push_folder_to_hub("/tmp/empty-dir-that-does-not-exist", "me/m")
        Traceback (most recent call last):
        ValueError: folder '/tmp/empty-dir-that-does-not-exist' is not a directory; expected the output of save_pretrained.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"folder {str(folder)!r} is not a directory; expected the output of save_pretrained.")
    if not any(p.is_file() for p in path.rglob("*")):
        raise ValueError(f"folder {str(folder)!r} holds no files; nothing to upload.")
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id):
        raise ValueError(f"repo_id must look like 'namespace/name', got {repo_id!r}.")
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(path), repo_id=repo_id, repo_type="model", commit_message=commit_message)
    return info.commit_url
