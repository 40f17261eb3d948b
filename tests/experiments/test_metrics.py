import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction

from modeling_qllm.experiments.metrics import ACCURACY_PATH, F1_PATH, compute_metrics_fn, load_metric


def test_local_modules_load_offline_in_a_fresh_process(tmp_path):
    code = (
        "import evaluate, json\n"
        f"acc = evaluate.load({ACCURACY_PATH!r}); f1 = evaluate.load({F1_PATH!r})\n"
        "p, r = [0, 1, 2, 2, 1], [0, 1, 1, 2, 0]\n"
        "print(json.dumps([acc.compute(predictions=p, references=r), f1.compute(predictions=p, references=r)]))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               HF_ENDPOINT="http://127.0.0.1:9")  # any network access would fail loudly
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    acc, f1 = json.loads(out.stdout.strip().splitlines()[-1])
    assert acc == {"accuracy": pytest.approx(0.6)}
    assert f1 == {"f1": pytest.approx(f1_score([0, 1, 1, 2, 0], [0, 1, 2, 2, 1], average="macro"))}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("average", ["macro", "weighted", "micro"])
def test_f1_matches_scikit_learn(seed, average):
    rng = np.random.default_rng(seed)
    ref, pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    pred[pred == 3] = 2  # class 3 never predicted: its F1 is 0 and still counts in the macro average
    got = load_metric("f1").compute(predictions=pred, references=ref, average=average)["f1"]
    assert got == pytest.approx(f1_score(ref, pred, average=average))


def test_f1_binary_and_labels_and_accuracy():
    ref, pred = [0, 1, 1, 0, 1], [0, 1, 0, 1, 1]
    f1 = load_metric("f1")
    assert f1.compute(predictions=pred, references=ref, average="binary")["f1"] == pytest.approx(
        f1_score(ref, pred, average="binary"))
    assert f1.compute(predictions=pred, references=ref, average="binary", pos_label=0)["f1"] == pytest.approx(
        f1_score(ref, pred, average="binary", pos_label=0))
    assert f1.compute(predictions=pred, references=ref, labels=[0, 1, 2])["f1"] == pytest.approx(
        f1_score(ref, pred, average="macro", labels=[0, 1, 2], zero_division=0))
    acc = load_metric("accuracy")
    assert acc.compute(predictions=pred, references=ref)["accuracy"] == accuracy_score(ref, pred) == 0.6
    assert acc.compute(predictions=pred, references=ref, normalize=False)["accuracy"] == 3.0


def test_metric_errors():
    with pytest.raises(ValueError, match=r"average='samples' is not supported; expected one of"):
        load_metric("f1").compute(predictions=[0], references=[0], average="samples")
    with pytest.raises(ValueError, match=r"Unknown local metric 'bleu'; expected one of \['accuracy', 'f1'\]"):
        load_metric("bleu")


def test_compute_metrics_fn_for_trainer():
    fn = compute_metrics_fn()
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 1, 2])
    expected = {"accuracy": 0.5, "macro_f1": pytest.approx(f1_score(labels, [0, 1, 2, 0], average="macro"))}
    assert fn(EvalPrediction(predictions=logits, label_ids=labels)) == expected
    assert fn(((logits, np.zeros((4, 2))), labels)) == expected  # models that return extra outputs
    with pytest.raises(ValueError, match=r"Expected logits \(N, num_labels\) and labels \(N,\), got \(4, 3\) and \(3,\)"):
        fn((logits, labels[:3]))
