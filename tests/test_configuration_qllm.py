"""QLLMConfig: fields and defaults, validation at construction, JSON round trips, head presets."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoConfig, BertConfig, DistilBertConfig

from modeling_qllm import QLLMConfig
from modeling_qllm.configuration_qllm import AUTO_MAP, QUANTUM_HEAD_FIELDS
from modeling_qllm.modeling_qllm import build_head
from modeling_qllm.presets import available_head_presets, load_head_preset


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def body_768():
    """A 768-wide body config (the paper's embedding width); only heads are ever built on it here."""
    return BertConfig(vocab_size=99, hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=37)


# -- fields and defaults ---------------------------------------------------------------------------------------------
def test_defaults(tiny_bert_config):
    config = QLLMConfig(body_config=tiny_bert_config)
    assert config.model_type == "qllm"
    assert (config.head_type, config.pooling, config.freeze_body, config.normalize_embeddings) == ("quantum", "mean", True, False)
    assert (config.num_encoders, config.encoder_qubits, config.merge, config.amplitude_fit) == (2, None, "mean", "pad")
    assert (config.reupload_blocks, config.measured_qubits, config.extra_column) == (2, 1, "last")
    assert config.angle_scale == math.pi and config.init_scale == math.pi and config.shots is None
    assert (config.backend, config.mlp_hidden_size, config.num_labels) == ("torch", 64, 2)
    assert config.embedding_size == 32 and config.num_outputs == 2
    assert config.auto_map == AUTO_MAP


def test_every_head_field_is_stored_and_reaches_the_head(tiny_bert_config):
    settings = dict(
        num_encoders=3, encoder_qubits=6, encoder_layers=3, encoder_connectivity=1, amplitude_fit="project",
        merge="concat", reupload_blocks=3, reupload_layers=2, reupload_connectivity=2, share_reupload_weights=False,
        final_layers=2, final_connectivity=3, extra_column="first", measured_qubits=2, angle_scale=1.5, shots=100,
        depolarizing_1q=0.01, depolarizing_2q=0.02, readout_error=0.03, noise_scope="all",
        noise_method="trajectories", init_scale=0.5, encoder_strategy="gates",
    )  # fmt: skip
    assert set(settings) == set(QUANTUM_HEAD_FIELDS)
    config = QLLMConfig(body_config=tiny_bert_config, num_labels=3, **settings)
    assert config.quantum_head_kwargs() == settings
    head = build_head(config)
    assert (head.num_encoders, head.encoder_qubits, head.qpu_qubits, head.measured_qubits) == (3, 6, 18, 2)
    assert head.merge == "concat" and head.projection is not None and head.readout.out_features == 3
    assert head.noise.shots == 100 and head.init_scale == 0.5


def test_classifier_and_body_fields(tiny_bert_config):
    config = QLLMConfig(body_config=tiny_bert_config, head_type="mlp", mlp_hidden_size=7, mlp_dropout=0.2,
                        pooling="cls", normalize_embeddings=True, freeze_body=False, backend="torch")
    assert (config.head_type, config.resolved_mlp_hidden_size(), config.mlp_dropout) == ("mlp", 7, 0.2)
    assert (config.pooling, config.normalize_embeddings, config.freeze_body) == ("cls", True, False)


def test_body_config_nested_from_object_dict_or_default(tiny_bert_config):
    from_object = QLLMConfig(body_config=tiny_bert_config)
    from_dict = QLLMConfig(body_config=tiny_bert_config.to_dict())
    assert isinstance(from_dict.body_config, BertConfig)
    assert from_dict.body_config.to_dict() == from_object.body_config.to_dict()
    assert QLLMConfig().body_config.model_type == "bert" and QLLMConfig().embedding_size == 768


def test_body_config_is_copied_not_aliased(tiny_bert_config):
    tiny_bert_config._attn_implementation = "sdpa"
    config = QLLMConfig(body_config=tiny_bert_config)
    assert config.body_config is not tiny_bert_config
    assert tiny_bert_config._attn_implementation == "sdpa"  # the caller's config is not modified


def test_embedding_size_of_other_bodies():
    distil = DistilBertConfig(vocab_size=99, dim=48, n_layers=1, n_heads=4, hidden_dim=37)
    assert QLLMConfig(body_config=distil).embedding_size == 48


# -- validation: one case per documented error ---------------------------------------------------------------------
CONFIG_ERRORS = [
    (dict(head_type="svm"), r"head_type='svm'; expected one of \('quantum', 'linear', 'mlp'\)"),
    (dict(pooling="max"), r"pooling='max'; expected one of \('mean', 'cls'\)"),
    (dict(backend="qiskit"), r"backend='qiskit'; expected one of \('torch', 'pennylane'\)"),
    (dict(backend="pennylane", head_type="linear"), r"backend='pennylane' simulates the quantum head; head_type is 'linear'"),
    (dict(head_type="mlp", mlp_hidden_size=0), r"mlp_hidden_size=0; expected a positive integer or 'match_quantum'"),
    (dict(head_type="mlp", mlp_hidden_size="big"), r"mlp_hidden_size='big'; expected a positive integer or 'match_quantum'"),
    (dict(mlp_dropout=1.0), r"mlp_dropout=1.0; expected a probability in \[0, 1\)"),
    (dict(problem_type="ranking"), r"problem_type='ranking'; expected None \(inferred\) or one of \('regression'"),
    (dict(num_labels=1, problem_type="single_label_classification"), r"requires `num_labels > 1`"),
    (dict(freeze_body="yes"), r"freeze_body='yes'; expected True or False"),
    (dict(normalize_embeddings=1), r"normalize_embeddings=1; expected True or False"),
    (dict(share_reupload_weights=None), r"share_reupload_weights=None; expected True or False"),
    # circuit settings, validated at construction through the head built on the meta device
    (dict(merge="max"), r"merge='max'; expected one of \('concat', 'mean', 'sum'\)"),
    (dict(amplitude_fit="crop"), r"amplitude_fit='crop'; expected one of"),
    (dict(encoder_qubits=4), r"amplitude_fit='pad' cannot fit embedding_size=32 into encoder_qubits=4"),
    (dict(amplitude_fit="truncate"), r"amplitude_fit='truncate' with embedding_size=32 <= 32 amplitudes"),
    (dict(extra_column="middle"), r"extra_column='middle'; expected one of"),
    (dict(encoder_strategy="fast"), r"encoder_strategy='fast'; expected one of"),
    (dict(noise_scope="chip"), r"noise_scope='chip'; expected one of"),
    (dict(noise_method="exact"), r"noise_method='exact'; expected one of"),
    (dict(num_encoders=0), r"num_encoders=0; expected an integer >= 1"),
    (dict(reupload_blocks=0), r"reupload_blocks=0; expected an integer >= 1"),
    (dict(encoder_connectivity=9), r"connectivity=9"),
    (dict(measured_qubits=6), r"measured_qubits=6; expected 1 <= measured_qubits <= 5"),
    (dict(shots=0), r"shots=0; expected None \(exact expectations\) or a positive integer"),
    (dict(depolarizing_1q=1.5), r"depolarizing_1q=1.5; expected a probability in \[0, 1\]"),
    (dict(readout_error=-0.1), r"readout_error=-0.1; expected a probability"),
    (dict(num_labels=0), r"num_labels=0; expected a positive integer"),
    # the quantum head of these settings has 14 parameters; an MLP on 32 features needs at least 37
    (dict(head_type="mlp", mlp_hidden_size="match_quantum", encoder_layers=0, extra_column="none"),
     r"budget of 14 parameters is below the smallest MLP"),
]  # fmt: skip


@pytest.mark.parametrize("settings, match", CONFIG_ERRORS, ids=[" ".join(f"{k}={v}" for k, v in s.items()) for s, _ in CONFIG_ERRORS])
def test_invalid_settings_raise_at_construction(tiny_bert_config, settings, match):
    with pytest.raises(ValueError, match=match):
        QLLMConfig(body_config=tiny_bert_config, **settings)


def test_circuit_settings_are_not_checked_for_classical_heads(tiny_bert_config):
    # a linear head ignores the circuit settings, so an impossible circuit does not block it
    assert QLLMConfig(body_config=tiny_bert_config, head_type="linear", encoder_qubits=4).head_type == "linear"


# -- serialisation ---------------------------------------------------------------------------------------------------
def test_json_round_trip_is_exact(tiny_bert_config):
    config = QLLMConfig(body_config=tiny_bert_config, id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1}, num_encoders=3, merge="concat", shots=64,
                        head_type="mlp", mlp_hidden_size="match_quantum", pooling="cls", freeze_body=False)
    text = config.to_json_string()
    data = json.loads(text)  # plain JSON: no tensors or objects
    assert data["body_config"]["hidden_size"] == 32 and data["mlp_hidden_size"] == "match_quantum"
    again = QLLMConfig.from_dict(data)
    assert again.to_json_string() == text
    assert again.to_dict() == config.to_dict()
    assert isinstance(again.body_config, BertConfig)
    assert again.id2label == {0: "negative", 1: "positive"}  # integer keys again after JSON's strings


def test_save_pretrained_round_trip(tmp_path, tiny_bert_config):
    config = QLLMConfig(body_config=tiny_bert_config, num_labels=3, encoder_qubits=6, reupload_blocks=3, shots=10)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "qllm" and saved["auto_map"] == AUTO_MAP
    for loaded in (QLLMConfig.from_pretrained(tmp_path), AutoConfig.from_pretrained(tmp_path)):
        assert type(loaded) is QLLMConfig
        assert {**loaded.to_dict(), "_name_or_path": ""} == config.to_dict()  # only the source path differs
        assert loaded.body_config.to_dict() == config.body_config.to_dict()


def test_auto_config_knows_qllm():
    assert type(AutoConfig.for_model("qllm")) is QLLMConfig


# -- presets ----------------------------------------------------------------------------------------------------------
def test_available_presets():
    assert {"linear", "mlp_matched", "paper_best_14q", "paper_multi_encoder", "paper_single_encoder_10q"} <= set(
        available_head_presets()
    )


@pytest.mark.parametrize("name", ["linear", "paper_best_14q", "paper_multi_encoder", "paper_single_encoder_10q"])
def test_presets_build_on_a_768_body(body_768, name):
    settings = load_head_preset(name)
    assert not any(key.startswith("_") for key in settings)  # comments dropped
    config = QLLMConfig(body_config=body_768, **settings)
    head = build_head(config)
    assert head(torch.randn(2, 768)).shape == (2, 2)
    if config.head_type == "quantum":
        assert n_params(head) == config.quantum_parameter_count()


def test_paper_best_14q_has_886_parameters(body_768):
    config = QLLMConfig(body_config=body_768, **load_head_preset("paper_best_14q"))
    head = build_head(config)
    assert config.quantum_parameter_count() == 886
    assert n_params(head) == 886 and head.parameter_counts()["total"] == 886
    assert head.qpu_qubits == 14


def test_single_encoder_preset_pads_768_into_10_qubits(body_768):
    head = build_head(QLLMConfig(body_config=body_768, **load_head_preset("paper_single_encoder_10q")))
    assert (head.num_encoders, head.encoder_qubits, head.amplitude_fit) == (1, 10, "pad")


def test_preset_by_path_and_errors(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"_comment": "x", "head_type": "mlp", "mlp_hidden_size": 3}))
    assert load_head_preset(path) == {"head_type": "mlp", "mlp_hidden_size": 3}
    assert load_head_preset(str(path)) == {"head_type": "mlp", "mlp_hidden_size": 3}
    with pytest.raises(ValueError, match=r"unknown head preset 'nope'; expected a JSON file or one of \["):
        load_head_preset("nope")
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object of QLLMConfig fields"):
        load_head_preset(bad)


# -- match_quantum ----------------------------------------------------------------------------------------------------
def test_match_quantum_mlp_has_no_more_parameters_than_the_quantum_head(tiny_bert_config):
    config = QLLMConfig(body_config=tiny_bert_config, head_type="mlp", mlp_hidden_size="match_quantum")
    budget = config.quantum_parameter_count()
    mlp = build_head(config)
    hidden = config.resolved_mlp_hidden_size()
    assert n_params(mlp) <= budget
    assert n_params(mlp) + (32 + 1 + 2) > budget  # one more hidden unit would exceed the budget
    assert mlp.net[0].out_features == hidden


def test_mlp_matched_preset_with_the_paper_head(body_768):
    settings = {**load_head_preset("paper_best_14q"), **load_head_preset("mlp_matched")}
    config = QLLMConfig(body_config=body_768, **settings)
    assert config.head_type == "mlp" and config.quantum_parameter_count() == 886
    mlp = build_head(config)
    assert config.resolved_mlp_hidden_size() == 1 and n_params(mlp) == 773 <= 886
