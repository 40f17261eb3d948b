"""The experiment runner on a tiny random BERT and a tiny JSONL dataset: metrics schema, model folder and card,
resume, bad input, Hub push and load in a fresh process, LoRA / full fine-tuning (slow)."""

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub import ModelCard

from modeling_qllm.experiments import runner
from modeling_qllm.experiments.runner import (
    ExperimentInputError,
    ExperimentSettings,
    format_table,
    run_experiment,
    summarize_runs,
)
from tiny_experiment import TINY_HEAD, build_tiny_body, build_tiny_data, write_split

RUN_KEYS = {"run", "split", "seed", "note", "quantum", "sizes", "baselines", "wall_time_s"}
QUANTUM_KEYS = {"accuracy", "macro_f1", "loss", "validation_accuracy", "validation_loss", "num_parameters",
                "trainable_parameters", "train_time_s", "wall_time_s", "resumed_from", "best_checkpoint", "epochs"}
BASELINE_KEYS = {"name", "accuracy", "macro_f1", "num_parameters", "parameter_note", "wall_time_s", "extra"}
# Loads a saved model folder (or Hub id) where neither this project's package nor peft can be imported.
LOAD_ISOLATED = """
    import sys
    sys.modules["modeling_qllm"] = None  # remote code only
    sys.modules["peft"] = None           # a merged LoRA model needs no peft
    import json, torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    out = {}
    for source in sys.argv[1:]:
        model = AutoModelForSequenceClassification.from_pretrained(source, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=True)
        enc = tokenizer(["the movie was very good", "this plot is awful"], padding=True, return_tensors="pt")
        with torch.no_grad():
            out[source] = {"class": type(model).__module__, "logits": model(**enc).logits.tolist()}
    print(json.dumps(out))
"""


def settings_for(body, data, out, **changes):
    base = dict(body=str(body), data=str(data), output_dir=str(out), folds=2, per_label=8, epochs=2, batch_size=8,
                head=dict(TINY_HEAD), head_preset="tiny", baselines=["logreg"])
    return ExperimentSettings(**{**base, **changes})


def load_isolated(*sources, cwd, env=None):
    """Logits of each saved model/Hub id, computed in a fresh process that cannot import modeling_qllm or peft."""
    env = dict(os.environ if env is None else env, PYTHONPATH="", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(LOAD_ISOLATED), *map(str, sources)], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def local_logits(folder):
    from transformers import AutoTokenizer

    from modeling_qllm import QuantumSequenceClassification

    model = QuantumSequenceClassification.from_pretrained(folder).eval()
    enc = AutoTokenizer.from_pretrained(folder)(["the movie was very good", "this plot is awful"], padding=True,
                                                return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return build_tiny_body(root / "body"), build_tiny_data(root / "data")


@pytest.fixture(scope="session")
def frozen_run(tiny, tmp_path_factory):
    """One frozen-body experiment (2 folds, all baselines), run from an empty working directory."""
    body, data = tiny
    work = tmp_path_factory.mktemp("frozen")
    settings = settings_for(body, data, work / "out", baselines=["logreg", "mlp", "svm"])
    stdout = io.StringIO()
    with contextlib.chdir(work), contextlib.redirect_stdout(stdout):
        metrics = run_experiment(settings)
    return settings, metrics, work, stdout.getvalue()


def test_frozen_run_metrics_schema(frozen_run):
    settings, metrics, work, _ = frozen_run
    saved = json.loads((work / "out" / "metrics.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(metrics["summary"]))
    assert saved["settings"]["head"] == TINY_HEAD and saved["settings"]["finetune"] == "frozen"
    assert [r["run"] for r in saved["runs"]] == ["fold0-seed0", "fold1-seed0"]
    for record in saved["runs"]:
        assert set(record) == RUN_KEYS
        assert set(record["quantum"]) == QUANTUM_KEYS
        assert record["sizes"] == {"train": 13, "validation": 3, "test": 48}  # 2 x 8 sampled, 85/15; 64 rows
        assert set(record["baselines"]) == {"logreg", "mlp_matched", "svm"}
        for result in record["baselines"].values():
            assert set(result) == BASELINE_KEYS and result["num_parameters"] > 0
        assert 0.0 <= record["quantum"]["accuracy"] <= 1.0 and record["quantum"]["loss"] > 0
    quantum_params = saved["head_parameter_counts"]["total"]
    assert saved["runs"][0]["quantum"]["num_parameters"] == quantum_params
    assert saved["runs"][0]["baselines"]["logreg"]["num_parameters"] == 33  # 32-d embedding + bias
    assert saved["runs"][0]["baselines"]["mlp_matched"]["extra"]["budget"] == quantum_params
    for name, s in saved["summary"].items():
        assert s["n_runs"] == 2 and {"accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std",
                                      "wall_time_s_mean", "num_parameters"} <= set(s), name
    accs = [r["quantum"]["accuracy"] for r in saved["runs"]]
    assert saved["summary"]["quantum"]["accuracy_mean"] == pytest.approx(sum(accs) / 2)
    assert {"loss_mean", "loss_std"} <= set(saved["summary"]["quantum"])
    assert set(saved["paired_differences"]) == {f"quantum_minus_{b}" for b in ("logreg", "mlp_matched", "svm")}
    assert saved["environment"]["num_processes"] == 1 and saved["published_run"] == "fold0-seed0"
    if not torch.cuda.is_available():
        assert saved["environment"]["training_device"] == "cpu"
        assert saved["environment"]["device_policy"] == "auto: no CUDA device"
    assert saved["wall_time_s"] > 0 and saved["config"]["encoder_qubits"] == 5


def test_frozen_run_prints_table_and_logs(frozen_run):
    _, metrics, work, stdout = frozen_run
    table = stdout[stdout.index("head "):]
    assert table.rstrip().endswith(format_table(metrics).splitlines()[-1])
    for name in ("quantum", "logreg", "mlp_matched", "svm", "quantum_minus_logreg:", "wall time:"):
        assert name in table
    assert "device policy: training on " in stdout
    for run in ("fold0-seed0", "fold1-seed0"):
        run_dir = work / "out" / "runs" / run
        assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
        assert list((run_dir / "checkpoints").glob("checkpoint-*"))
    assert not (work / "runs").exists()  # no TensorBoard folder in the working directory
    # The frozen body ran once per text: one cached embedding matrix of all 64 merged rows.
    (cache,) = (work / "out" / "embedding_cache").glob("*.safetensors")
    from safetensors.torch import load_file

    assert load_file(cache)["embeddings"].shape == (64, 32)


def test_model_folder_and_card(frozen_run):
    _, metrics, work, _ = frozen_run
    folder = work / "out" / "model"
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSequenceClassification"] == "modeling_qllm.QuantumSequenceClassification"
    assert config["model_type"] == "qllm" and config["id2label"] == {"0": "0", "1": "1"}
    for name in ("model.safetensors", "configuration_qllm.py", "modeling_qllm.py", "heads.py", "tokenizer.json",
                 "tokenizer_config.json", "README.md"):
        assert (folder / name).is_file(), name
    card = ModelCard.load(folder / "README.md")
    (result,) = card.data.eval_results[:1]
    assert result.metric_value == pytest.approx(metrics["summary"]["quantum"]["accuracy_mean"])
    assert card.data.model_name == "out" and card.data.base_model == "body"
    assert card.data.eval_results[1].metric_type == "f1"
    text = card.text
    for name in ("logreg", "mlp_matched", "svm", "paper protocol, 2 split(s) x 1 seed(s)", "fold0, seed 0"):
        assert name in text, name
    assert f"{metrics['head_parameter_counts']['total']:,}" in text


def test_resume_keeps_finished_runs_and_continues_from_checkpoint(tiny, tmp_path, monkeypatch):
    body, data = tiny
    settings = settings_for(body, data, tmp_path / "out", epochs=1)
    run_experiment(settings)
    runs = tmp_path / "out" / "runs"
    fold0 = (runs / "fold0-seed0" / "result.json").stat().st_mtime_ns
    model = (tmp_path / "out" / "model" / "model.safetensors").stat().st_mtime_ns
    (runs / "fold1-seed0" / "result.json").unlink()  # interrupted after fold1's last checkpoint

    trained, embedded = [], []
    train = runner._train_quantum
    monkeypatch.setattr(runner, "_train_quantum", lambda *a, **k: trained.append(a[2].name) or train(*a, **k))
    monkeypatch.setattr(runner, "embed_texts", lambda *a, **k: embedded.append(1))
    metrics = run_experiment(settings)
    assert trained == ["fold1"] and not embedded  # fold0 not retrained; embeddings read from the cache
    assert (runs / "fold0-seed0" / "result.json").stat().st_mtime_ns == fold0
    assert (tmp_path / "out" / "model" / "model.safetensors").stat().st_mtime_ns == model
    fold1 = json.loads((runs / "fold1-seed0" / "result.json").read_text())
    assert fold1["quantum"]["resumed_from"].endswith("fold1-seed0/checkpoints/checkpoint-2")
    assert metrics["summary"]["quantum"]["n_runs"] == 2
    assert metrics["experiment_wall_time_s"] > metrics["wall_time_s"]

    with pytest.raises(ExperimentInputError, match=r"other settings \(epochs: 1 -> 3\)"):
        run_experiment(settings_for(body, data, tmp_path / "out", epochs=3))
    trained.clear()
    more = run_experiment(settings_for(body, data, tmp_path / "out", epochs=1, folds=3))  # adding a fold is fine
    assert trained == ["fold2"] and more["summary"]["quantum"]["n_runs"] == 3


def _rows(folder, split):
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def _relabel(fn, splits=("train", "validation", "test")):
    def apply(folder):
        for split in splits:
            write_split(folder / f"{split}.jsonl", [fn(r) for r in _rows(folder, split)])
    return apply


BAD_DATA = {
    "misnamed text column": (_relabel(lambda r: {"sentence": r["text"], "label": r["label"]}, ["train"]), {},
                             r"Split 'train' lacks column\(s\) \['text'\]; columns found: \['sentence', 'label'\]"),
    "missing label column": (lambda f: None, {"label_column": "sentiment"}, r"Column 'sentiment' not found"),
    "float labels": (_relabel(lambda r: {**r, "label": r["label"] + 0.5}, ["test"]), {},
                     r"Label 0.5 at row 0 of split 'test' is not an integer"),
    "string labels": (_relabel(lambda r: {**r, "label": ["neg", "pos"][r["label"]]}, ["test"]), {},
                      r"Label 'neg' at row 0 of split 'test' is not an integer"),
    "negative labels": (_relabel(lambda r: {**r, "label": r["label"] - 1}, ["validation"]), {},
                        r"Label -1 at row 0 of split 'validation' is out of range"),
    "labels 0 and 2": (_relabel(lambda r: {**r, "label": 2 * r["label"]}), {},
                       r"class ids 0\.\.2 with every class present, but label\(s\) \[1\] never occur"),
    "label beyond label_names": (lambda f: None, {"label_names": ["a", "b", "c"]},
                                 r"label\(s\) \[2\] never occur"),
    "empty split file": (lambda f: (f / "validation.jsonl").write_text(""), {}, r"Split 'validation' is empty"),
    "too few per label": (lambda f: None, {"per_label": 40}, r"needs 40 rows per label, but label\(s\) \[0, 1\]"),
    "standard without validation": (lambda f: (f / "validation.jsonl").unlink(), {"protocol": "standard"},
                                    r"standard_splits needs 'train' and 'validation' splits; missing \['validation'\]"),
    "one class in standard train": (_relabel(lambda r: {**r, "label": 0}, ["train"]), {"protocol": "standard"},
                                    r"training set of split 'standard' has no example of label\(s\) \[1\]"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_input_fails_before_training(case, tiny, tmp_path, monkeypatch):
    body, data = tiny
    corrupt, changes, message = BAD_DATA[case]
    shutil.copytree(data, tmp_path / "data")
    corrupt(tmp_path / "data")
    loaded = []
    monkeypatch.setattr(runner.QuantumSequenceClassification, "from_body", lambda *a, **k: loaded.append(1))
    with pytest.raises(ExperimentInputError, match=message):
        run_experiment(settings_for(body, tmp_path / "data", tmp_path / "out", **changes))
    assert not loaded  # failed before the body was loaded
    assert not (tmp_path / "out" / "model").exists() and not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("changes, message", [
    ({"protocol": "kfold"}, r"protocol='kfold'; expected one of \('paper', 'standard'\)"),
    ({"finetune": "qlora"}, r"finetune='qlora'; expected one of \('frozen', 'lora', 'full'\)"),
    ({"baselines": ["knn"]}, r"unknown baselines \['knn'\]"),
    ({"folds": 0}, r"folds=0; expected a positive integer"),
    ({"seeds": []}, r"seeds=\[\]; expected a non-empty list"),
    ({"seeds": [1, 1]}, r"repeats a seed"),
    ({"train_fraction": 1.0}, r"train_fraction=1.0"),
    ({"label_names": ["x"]}, r"at least 2 distinct names"),
    ({"push_to_hub": "no-namespace"}, r"push_to_hub='no-namespace'; expected a repository id"),
    ({"device": "gpu"}, r"device='gpu'; expected one of \('auto', 'cpu', 'cuda'\)"),
])
def test_settings_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        settings_for("body", "data", "out", **changes)


def test_summarize_and_format_table_from_records():
    def run(acc, name, seed):
        q = {"accuracy": acc, "macro_f1": acc, "loss": 0.5, "wall_time_s": 2.0, "num_parameters": 34}
        b = {"accuracy": 0.5, "macro_f1": 0.4, "wall_time_s": 0.1, "num_parameters": 33, "parameter_note": "w"}
        return {"run": f"{name}-seed{seed}", "split": name, "seed": seed, "quantum": q, "baselines": {"logreg": b}}

    class Template:  # what summarize_runs reads of the model
        class config:
            to_diff_dict = staticmethod(lambda: {"num_encoders": 1})

        class classifier:
            parameter_counts = staticmethod(lambda: {"total": 34})

    records = [run(0.6, "fold0", 0), run(0.8, "fold1", 0)]
    metrics = summarize_runs(records, settings_for("b", "d", "o"), Template, 12.0)
    assert metrics["summary"]["quantum"]["accuracy_mean"] == pytest.approx(0.7)
    assert metrics["summary"]["quantum"]["accuracy_std"] == pytest.approx(0.1414, abs=1e-4)
    assert "loss_mean" not in metrics["summary"]["logreg"]
    assert metrics["paired_differences"]["quantum_minus_logreg"]["mean"] == pytest.approx(0.2)
    table = format_table(metrics).splitlines()
    assert table[1].split()[:4] == ["quantum", "70.00", "+-", "14.14"] and table[2].split()[7] == "-"
    assert table[-1] == "wall time: 12.0 s"


@pytest.fixture
def card_validating_hub(fake_hub, monkeypatch):
    """The fake Hub, also answering ``POST /api/validate-yaml``: huggingface_hub's ``upload_folder`` sends README.md
    there first, and the real Hub rejects a push whose card metadata is invalid. This check is a subset of the
    Hub's: the front matter is a YAML mapping that ``ModelCardData`` accepts, with a string license and ids."""
    import fake_hub as fake_hub_module
    import yaml

    def validate_yaml(match, body):
        content = json.loads(body)["content"]
        errors = []
        try:
            meta = yaml.safe_load(content.split("---")[1])
            ModelCard(content)  # parses model-index into eval results
        except Exception as err:  # noqa: BLE001 - reported to the client as the Hub does
            return 400, {"errors": [{"message": f"invalid YAML: {err}"}]}
        if not isinstance(meta, dict) or not isinstance(meta.get("license"), str):
            errors.append({"message": "metadata must be a mapping with a string license"})
        for key in ("base_model", "datasets"):
            values = meta.get(key) if isinstance(meta.get(key), list) else [meta.get(key)]
            errors += [{"message": f"{key}: {v!r} is not a repo id"} for v in values
                       if v is not None and not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(v))]
        validated.append(meta)
        return (400 if errors else 200), {"errors": errors, "warnings": []}

    validated = []
    route = ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml")
    monkeypatch.setattr(fake_hub_module, "ROUTES", [*fake_hub_module.ROUTES, route])
    fake_hub.validate_yaml = validate_yaml
    fake_hub.validated = validated
    return fake_hub


def test_push_to_hub_then_load_in_fresh_process(frozen_run, card_validating_hub, tmp_path):
    """--push-to-hub: weights, code, config, tokenizer and card reach the Hub; a fresh process without this package
    loads the model by repo id and gets the logits of the saved folder."""
    fake_hub = card_validating_hub
    settings, _, work, _ = frozen_run
    shutil.copytree(work / "out", tmp_path / "out")  # every run finished: the rerun only writes the card and pushes
    with pytest.warns(UserWarning, match=r"the model card will name it 'data'.*pass dataset_id="):
        pushed = run_experiment(settings_for(settings.body, settings.data, tmp_path / "out", body_id="tiny/bert",
                                             baselines=settings.baselines, push_to_hub="me/qllm-tiny"))
    assert pushed["summary"] == frozen_run[1]["summary"]
    sha, files = fake_hub.repos["me/qllm-tiny"]["commits"][-1]
    for name in ("config.json", "model.safetensors", "configuration_qllm.py", "modeling_qllm.py", "heads.py",
                 "statevector.py", "circuits.py", "tokenizer.json", "README.md"):
        assert name in files, name
    card = ModelCard(files["README.md"].decode())
    assert 'from_pretrained("me/qllm-tiny", trust_remote_code=True)' in card.text
    assert card.data.model_name == "qllm-tiny"
    assert fake_hub.validated and fake_hub.validated[-1]["base_model"] == "tiny/bert"

    env = dict(os.environ, HF_ENDPOINT=fake_hub.url, HF_HOME=str(tmp_path / "hf_home"),
               HF_HUB_CACHE=str(tmp_path / "hub_cache"), HF_HUB_DISABLE_TELEMETRY="1")
    remote = load_isolated("me/qllm-tiny", cwd=tmp_path, env=env)["me/qllm-tiny"]
    assert remote["class"].startswith("transformers_modules.")
    assert torch.allclose(torch.tensor(remote["logits"]), local_logits(tmp_path / "out" / "model"), atol=1e-6)
    assert not fake_hub.unhandled


@pytest.mark.slow
@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_finetuned_body_saves_a_model_loadable_without_peft(finetune, tiny, tmp_path):
    from safetensors.torch import load_file

    body, data = tiny
    metrics = run_experiment(settings_for(body, data, tmp_path / "out", finetune=finetune, epochs=1, folds=1,
                                          body_learning_rate=1e-2))
    record = metrics["runs"][0]["quantum"]
    assert record["trainable_parameters"] > record["num_parameters"]  # the body trains too (adapters or all)
    folder = tmp_path / "out" / "model"
    saved = load_file(folder / "model.safetensors")
    assert not any("lora" in k or "modules_to_save" in k or "base_model" in k for k in saved)  # merged, plain names
    original = load_file(body / "model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(saved[f"body.{key}"], original[key])  # the trained (merged) body was saved
    assert json.loads((folder / "config.json").read_text())["freeze_body"] is (finetune == "lora")
    remote = load_isolated(folder, cwd=tmp_path)[str(folder)]
    assert torch.allclose(torch.tensor(remote["logits"]), local_logits(folder), atol=1e-6)
    assert f"trained with {finetune} fine-tuning of the body" in (folder / "README.md").read_text()
