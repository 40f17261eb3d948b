import dataclasses

import pytest
from huggingface_hub import ModelCard

from modeling_qllm.experiments.model_card import DEFAULT_TEMPLATE, CardInfo, ResultRow, render_model_card


def sample_info(**changes) -> CardInfo:
    info = CardInfo(
        repo_id="qllm-org/qllm-sst2-14q",
        model_name="qllm-sst2-14q",
        body="sentence-transformers/paraphrase-mpnet-base-v2",
        dataset="SetFit/sst2",
        dataset_name="SST-2",
        num_labels=2,
        label_names=["negative", "positive"],
        head_settings={"encoder_qubits": 10, "num_encoders": 4, "merge": "concat"},
        parameter_counts={"encoders": 640, "reuploading": 224, "readout": 22},
        protocol="paper protocol: 256 per label, 85/15 split, 5 folds x 2 seeds",
        results=[ResultRow("single-encoder", 0.8810, 0.0050, 10, 300),
                 ResultRow("quantum-14q", 0.8923, 0.0041, 10, 886, 0.8915, 0.0043)],
        primary_result="quantum-14q",
        baselines=[ResultRow("logistic_regression", 0.8901, 0.0038, 10, 769, 0.8899, 0.004, "coef_ + intercept_"),
                   ResultRow("svm", 0.8877, 0.0040, 10, 240_000, None, None, "support vectors x 768")],
        wall_time_s=1234.5,
        tags=["sst2", "qllm"],
        limitations=["Trained with exact expectation values (no shot noise)."],
    )
    return dataclasses.replace(info, **changes)


def test_template_is_the_repository_file():
    assert DEFAULT_TEMPLATE.is_file() and DEFAULT_TEMPLATE.parent.name == "model_cards"


def test_rendered_card_metadata_parses():
    card = ModelCard(render_model_card(sample_info()))
    data = card.data
    assert data.license == "apache-2.0" and data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification" and data.base_model == "sentence-transformers/paraphrase-mpnet-base-v2"
    assert data.datasets == ["SetFit/sst2"]
    assert data.tags[:3] == ["qllm", "quantum-machine-learning", "text-classification"]
    assert "sst2" in data.tags and data.tags.count("qllm") == 1
    assert data.model_name == "qllm-sst2-14q"
    acc, f1 = data.eval_results
    assert (acc.metric_type, acc.metric_value, acc.dataset_type, acc.dataset_name, acc.dataset_split) == (
        "accuracy", 0.8923, "SetFit/sst2", "SST-2", "test")
    assert acc.task_type == "text-classification" and "mean over 10 runs" in acc.metric_name
    assert (f1.metric_type, f1.metric_value, f1.metric_args) == ("f1", 0.8915, {"average": "macro"})


def test_rendered_card_text():
    text = ModelCard(render_model_card(sample_info())).text
    assert 'AutoModelForSequenceClassification.from_pretrained("qllm-org/qllm-sst2-14q", trust_remote_code=True)' in text
    assert 'pipeline("text-classification"' in text
    assert "| quantum-14q (this model) | 89.23 ± 0.41 | 89.15 ± 0.43 | 10 | 886 |" in text
    assert "| single-encoder | 88.10 ± 0.50 | n/a | 10 | 300 |" in text
    assert "| svm | 88.77 ± 0.40 | n/a | 10 | 240,000 | support vectors x 768 |" in text
    assert "| `num_encoders` | `4` |" in text and "| reuploading | 224 |" in text
    assert "paper protocol: 256 per label" in text and "1234.5 s" in text
    assert "+3.14" in text and "did not reproduce" in text and "not run on a quantum computer" in text
    assert "Trained with exact expectation values (no shot noise)." in text
    assert "arXiv:2504.08732" in text and "eprint        = {2504.08732}" in text and "@inproceedings" in text
    assert "Quantum Large Language Model Fine-Tuning" in text and "IEEE" in text


def test_primary_defaults_to_first_result_and_no_f1():
    card = ModelCard(render_model_card(sample_info(primary_result=None, baselines=[])))
    (acc,) = card.data.eval_results
    assert acc.metric_value == 0.8810
    assert "Classical baselines" not in card.text


def test_strings_are_escaped_in_front_matter():
    card = ModelCard(render_model_card(sample_info(model_name='qllm: "quoted" #1', dataset_name="SST-2: sentences")))
    assert card.data.model_name == 'qllm: "quoted" #1' and card.data.eval_results[0].dataset_name == "SST-2: sentences"


def test_custom_template(tmp_path):
    template = tmp_path / "t.md"
    template.write_text("---\nlicense: {{ license | json }}\n---\n{{ primary.name }} on {{ dataset_name }}\n")
    assert render_model_card(sample_info(), template_path=template) == '---\nlicense: "apache-2.0"\n---\nquantum-14q on SST-2\n'


def test_card_errors(tmp_path):
    with pytest.raises(ValueError, match=r"label_names has 1 entries \(\['neg'\]\) but num_labels is 2"):
        render_model_card(sample_info(label_names=["neg"]))
    with pytest.raises(ValueError, match=r"quantum-14q.accuracy_mean is 89.2; expected a fraction in \[0, 1\]"):
        render_model_card(sample_info(results=[ResultRow("quantum-14q", 89.2, 0.4, 5, 886)]))
    with pytest.raises(ValueError, match=r"primary_result 'best' is not among the results \['single-encoder', 'quantum-14q'\]"):
        render_model_card(sample_info(primary_result="best"))
    with pytest.raises(ValueError, match="results is empty"):
        render_model_card(sample_info(results=[]))
    with pytest.raises(ValueError, match="svm.n_runs is 0"):
        render_model_card(sample_info(baselines=[ResultRow("svm", 0.8, 0.0, 0, 10)]))
    with pytest.raises(ValueError, match="repo_id must look like 'namespace/name', got 'qllm'"):
        render_model_card(sample_info(repo_id="qllm"))
    with pytest.raises(ValueError, match="Card template .*nope.md not found"):
        render_model_card(sample_info(), template_path=tmp_path / "nope.md")
