import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from safetensors.torch import save_file

from modeling_qllm.experiments.hub import push_folder_to_hub


def hub_env(hub, tmp_path):
    """Environment for a fresh process that talks to the fake hub with its own, empty caches."""
    return dict(os.environ, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf_home"),
                HF_HUB_CACHE=str(tmp_path / "hub_cache"), HF_HUB_DISABLE_PROGRESS_BARS="1",
                HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH="")


def run_python(code, env, cwd):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "qllm", "num_labels": 2}))
    (folder / "modeling_qllm.py").write_text("from .configuration_qllm import X\n")
    (folder / "sub" / "notes.md").write_text("# notes\n")
    return folder


def test_push_then_snapshot_download_in_fresh_process(fake_hub, model_folder, tmp_path):
    url = push_folder_to_hub(model_folder, "me/qllm-test", token="hf_fake", commit_message="first",
                             endpoint=fake_hub.url)
    ((sha, files),) = fake_hub.repos["me/qllm-test"]["commits"][1:]
    assert url == f"{fake_hub.url}/me/qllm-test/commit/{sha}"
    assert sorted(files) == ["config.json", "model.safetensors", "modeling_qllm.py", "sub/notes.md"]

    path = run_python("""
        from huggingface_hub import snapshot_download
        print(snapshot_download("me/qllm-test"))
    """, hub_env(fake_hub, tmp_path), cwd=tmp_path)
    downloaded = {p.relative_to(path).as_posix(): p.read_bytes()
                  for p in __import__("pathlib").Path(path).rglob("*") if p.is_file()}
    expected = {p.relative_to(model_folder).as_posix(): p.read_bytes() for p in model_folder.rglob("*") if p.is_file()}
    assert downloaded == expected
    assert path.endswith(sha) and not fake_hub.unhandled


def test_push_again_is_a_no_op_until_a_file_changes(fake_hub, model_folder):
    endpoint = {"endpoint": fake_hub.url}
    push_folder_to_hub(model_folder, "me/m", **endpoint)
    first = push_folder_to_hub(model_folder, "me/m", **endpoint)
    assert len(fake_hub.repos["me/m"]["commits"]) == 2  # initial + one upload
    (model_folder / "config.json").write_text(json.dumps({"model_type": "qllm", "num_labels": 3}))
    second = push_folder_to_hub(model_folder, "me/m", **endpoint)
    assert second != first and len(fake_hub.repos["me/m"]["commits"]) == 3
    old = first.rsplit("/", 1)[1]
    path = hf_hub_download("me/m", "config.json", revision=old, endpoint=fake_hub.url,
                           cache_dir=model_folder.parent / "cache")
    assert json.loads(open(path).read())["num_labels"] == 2


def test_missing_entries_map_to_huggingface_hub_errors(fake_hub, model_folder, tmp_path):
    push_folder_to_hub(model_folder, "me/m", endpoint=fake_hub.url)
    kwargs = {"endpoint": fake_hub.url, "cache_dir": tmp_path / "cache"}
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("me/m", "adapter_config.json", **kwargs)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("me/other", "config.json", **kwargs)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("me/m", "config.json", revision="v9", **kwargs)


def test_push_uses_the_default_endpoint_when_none_given(fake_hub, model_folder):
    push_folder_to_hub(model_folder, "me/default-endpoint")  # the fixture points the default at the fake hub
    assert "me/default-endpoint" in fake_hub.repos


def test_push_errors(tmp_path):
    with pytest.raises(ValueError, match="is not a directory; expected the output of save_pretrained"):
        push_folder_to_hub(tmp_path / "missing", "me/m")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no files"):
        push_folder_to_hub(tmp_path / "empty", "me/m")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.json").write_text("{}")
    with pytest.raises(ValueError, match="repo_id must look like 'namespace/name', got 'no-namespace'"):
        push_folder_to_hub(tmp_path / "f", "no-namespace")


CONFIG_SRC = '''
from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny-fake-hub"

    def __init__(self, dim=4, **kwargs):
        self.dim = dim
        super().__init__(**kwargs)
'''

MODEL_SRC = '''
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_tiny import TinyConfig


class TinyForSequenceClassification(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = torch.nn.Embedding(10, config.dim)
        self.classifier = torch.nn.Linear(config.dim, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        return SequenceClassifierOutput(logits=self.classifier(self.embed(input_ids).mean(1)))
'''


def test_remote_code_model_round_trip_through_fake_hub(fake_hub, tmp_path, monkeypatch):
    """What the lead does with a real model: save_pretrained with remote code, push, load by repo id elsewhere."""
    pkg = tmp_path / "src" / "tiny_fake_hub_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "configuration_tiny.py").write_text(CONFIG_SRC)
    (pkg / "modeling_tiny.py").write_text(MODEL_SRC)
    monkeypatch.syspath_prepend(str(pkg.parent))
    modeling = importlib.import_module("tiny_fake_hub_pkg.modeling_tiny")
    modeling.TinyConfig.register_for_auto_class()
    modeling.TinyForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
    torch.manual_seed(0)
    model = modeling.TinyForSequenceClassification(modeling.TinyConfig(dim=4, num_labels=3)).eval()
    model.save_pretrained(tmp_path / "out")
    assert (tmp_path / "out" / "modeling_tiny.py").is_file()
    expected = model(torch.tensor([[1, 2, 3]])).logits.tolist()
    push_folder_to_hub(tmp_path / "out", "me/tiny", endpoint=fake_hub.url)

    logits = run_python("""
        import json, torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained("me/tiny", trust_remote_code=True).eval()
        print(json.dumps(model(torch.tensor([[1, 2, 3]])).logits.tolist()))
    """, hub_env(fake_hub, tmp_path), cwd=tmp_path)
    assert json.loads(logits) == expected
    assert any(p.endswith("/modeling_tiny.py") for m, p in fake_hub.requests if m == "GET")
    assert not fake_hub.unhandled
