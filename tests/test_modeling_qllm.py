"""QuantumSequenceClassification: outputs and losses, pooling, the cached-embedding path, freezing, from_body,
classical heads, bad input, and checkpoints whose config does not match their weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification, BertModel
from transformers.modeling_outputs import SequenceClassifierOutput

from modeling_qllm import LinearHead, MLPHead, QLLMConfig, QuantumHead, QuantumSequenceClassification, add_sentence_embeddings

SENTENCES = ["a good movie", "this film was really awful", "the plot is boring", "great acting"]


def build(body_config, seed=0, **settings):
    torch.manual_seed(seed)
    return QuantumSequenceClassification(QLLMConfig(body_config=body_config, **settings))


@pytest.fixture
def model(tiny_bert_config):
    return build(tiny_bert_config).eval()


@pytest.fixture
def batch(make_tokenizer):
    return make_tokenizer()(SENTENCES, padding=True, return_tensors="pt")


@pytest.fixture
def body_dir(tmp_path, tiny_bert_config):
    """A tiny random BERT saved like a pretrained text encoder."""
    torch.manual_seed(1)
    BertModel(tiny_bert_config, add_pooling_layer=False).save_pretrained(tmp_path / "body")
    return tmp_path / "body"


# -- outputs and losses -----------------------------------------------------------------------------------------------
def test_forward_returns_sequence_classifier_output(model, batch):
    out = model(**batch)
    assert isinstance(out, SequenceClassifierOutput)
    assert out.logits.shape == (4, 2) and out.loss is None
    logits, = model(**batch, return_dict=False)
    assert torch.equal(logits, out.logits)


def test_single_label_loss_is_cross_entropy(model, batch):
    labels = torch.tensor([1, 0, 0, 1])
    out = model(**batch, labels=labels)
    assert torch.allclose(out.loss, nn.functional.cross_entropy(out.logits, labels))
    assert model.config.problem_type == "single_label_classification"
    loss, logits = model(**batch, labels=labels, return_dict=False)
    assert torch.equal(loss, out.loss)


def test_multi_label_loss_is_bce_with_logits(tiny_bert_config, batch):
    model = build(tiny_bert_config, num_labels=3).eval()
    labels = torch.tensor([[1.0, 0, 1], [0, 0, 0], [0, 1, 1], [1, 1, 1]])
    out = model(**batch, labels=labels)
    assert out.logits.shape == (4, 3)
    assert torch.allclose(out.loss, nn.functional.binary_cross_entropy_with_logits(out.logits, labels))
    assert model.config.problem_type == "multi_label_classification"


def test_regression_loss_with_one_label_is_mse(tiny_bert_config, batch):
    model = build(tiny_bert_config, num_labels=1).eval()
    targets = torch.tensor([0.5, -1.0, 2.0, 0.0])
    out = model(**batch, labels=targets)
    assert out.logits.shape == (4, 1)
    assert torch.allclose(out.loss, nn.functional.mse_loss(out.logits.squeeze(-1), targets))
    assert model.config.problem_type == "regression"
    assert torch.allclose(model(**batch, labels=targets[:, None]).loss, out.loss)  # (batch, 1) targets too


def test_regression_with_several_outputs(tiny_bert_config, batch):
    model = build(tiny_bert_config, num_labels=2, problem_type="regression").eval()
    targets = torch.randn(4, 2)
    out = model(**batch, labels=targets)
    assert torch.allclose(out.loss, nn.functional.mse_loss(out.logits, targets))


def test_loss_backpropagates_to_the_head_only_when_frozen(tiny_bert_config, batch):
    model = build(tiny_bert_config)
    model(**batch, labels=torch.tensor([1, 0, 0, 1])).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())
    assert all(p.grad is None for p in model.body.parameters())


# -- embeddings and pooling -------------------------------------------------------------------------------------------
def test_sentence_embeddings_path_equals_body_path(model, batch):
    embeddings = model.embed(**batch)
    assert embeddings.shape == (4, 32)
    assert torch.equal(model(sentence_embeddings=embeddings).logits, model(**batch).logits)
    assert torch.equal(model.classify(embeddings), model(**batch).logits)


def test_mean_pooling_ignores_padding(model, batch, make_tokenizer):
    hidden = model.body(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose(model.embed(**batch), (hidden * mask).sum(1) / mask.sum(1))
    alone = make_tokenizer()(SENTENCES[0], return_tensors="pt")  # no padding at all
    assert torch.allclose(model.embed(**alone)[0], model.embed(**batch)[0], atol=1e-6)


def test_mean_pooling_without_attention_mask_averages_every_token(model, batch):
    hidden = model.body(input_ids=batch["input_ids"]).last_hidden_state
    assert torch.allclose(model.embed(input_ids=batch["input_ids"]), hidden.mean(1))


def test_cls_pooling_and_normalisation(tiny_bert_config, batch):
    cls_model = build(tiny_bert_config, pooling="cls").eval()
    hidden = cls_model.body(**batch).last_hidden_state
    assert torch.equal(cls_model.embed(**batch), hidden[:, 0])
    normed = build(tiny_bert_config, pooling="cls", normalize_embeddings=True).eval()
    embeddings = normed.embed(**batch)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(4))
    assert torch.allclose(embeddings, nn.functional.normalize(hidden[:, 0], dim=-1))


def test_add_sentence_embeddings_on_a_dataset(model, make_tokenizer):
    from datasets import Dataset

    tokenizer = make_tokenizer()
    dataset = Dataset.from_dict({"text": SENTENCES, "label": [1, 0, 0, 1]})
    model.train()
    out = add_sentence_embeddings(dataset, model, tokenizer, batch_size=3)
    assert model.training  # mode restored
    assert out.column_names == ["text", "label", "sentence_embeddings"] and len(out) == 4
    model.eval()
    expected = model.embed(**tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    got = torch.tensor(out["sentence_embeddings"])
    assert got.shape == (4, 32) and torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"dataset has no 'sentence' column; columns are \['text', 'label'\]"):
        add_sentence_embeddings(dataset, model, tokenizer, text_column="sentence")


# -- freezing and optimizer groups ------------------------------------------------------------------------------------
def test_freeze_body(tiny_bert_config):
    frozen = build(tiny_bert_config)
    assert not any(p.requires_grad for p in frozen.body.parameters())
    assert all(p.requires_grad for p in frozen.classifier.parameters())
    trained = build(tiny_bert_config, freeze_body=False)
    assert all(p.requires_grad for p in trained.parameters())


def test_frozen_body_stays_in_eval_mode(model, batch):
    model.train()
    assert model.training and model.classifier.training and not model.body.training
    assert torch.equal(model.embed(**batch), model.embed(**batch))  # no dropout in a fixed feature extractor
    model.unfreeze_body()
    model.train()
    assert model.body.training


def test_unfreeze_body(model):
    model.unfreeze_body()
    assert model.config.freeze_body is False
    assert all(p.requires_grad for p in model.parameters())


def test_parameter_groups(model):
    groups = model.parameter_groups(head_lr=1e-2, body_lr=1e-4)
    assert len(groups) == 1 and groups[0]["lr"] == 1e-2
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.classifier.parameters()}
    model.unfreeze_body()
    head, body = model.parameter_groups(head_lr=1e-2, body_lr=1e-4, weight_decay=0.01)
    assert (head["lr"], head["weight_decay"], body["lr"], body["weight_decay"]) == (1e-2, 0.0, 1e-4, 0.01)
    assert {id(p) for p in body["params"]} == {id(p) for p in model.body.parameters()}
    assert len(head["params"]) + len(body["params"]) == len(list(model.parameters()))
    torch.optim.AdamW(model.parameter_groups(head_lr=1e-2, body_lr=1e-4))  # accepted by an optimizer
    assert model.parameter_groups(head_lr=1e-2)[1]["lr"] == 1e-2  # body_lr defaults to head_lr


def test_parameter_counts(model):
    counts = model.parameter_counts()
    assert counts["head.total"] == sum(p.numel() for p in model.classifier.parameters())
    assert counts["body.total"] == sum(p.numel() for p in model.body.parameters()) and counts["body.trainable"] == 0


# -- from_body --------------------------------------------------------------------------------------------------------
def test_from_body_defaults(body_dir):
    model = QuantumSequenceClassification.from_body(str(body_dir))
    assert isinstance(model.classifier, QuantumHead)
    assert model.config.num_labels == 2 and model.config.freeze_body and model.config.head_type == "quantum"
    assert model.config.encoder_qubits is None and model.classifier.encoder_qubits == 5  # 32 amplitudes
    assert model.classifier.amplitude_fit == "pad" and model.config.name_or_path == str(body_dir)
    assert model.config.body_config.hidden_size == 32
    saved = load_file(body_dir / "model.safetensors")  # the body's weights, not one re-initialised on load
    body = model.body.state_dict()
    assert all(torch.equal(body[name], tensor) for name, tensor in saved.items())
    assert not any(p.requires_grad for p in model.body.parameters())


def test_from_body_with_labels_settings_or_config(body_dir, tiny_bert_config):
    labelled = QuantumSequenceClassification.from_body(str(body_dir), id2label={"0": "neg", "1": "neu", "2": "pos"},
                                                       merge="concat", head_type="quantum")
    assert labelled.config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert labelled.config.label2id == {"neg": 0, "neu": 1, "pos": 2}
    assert labelled.classifier.readout.out_features == 3 and labelled.classifier.qpu_qubits == 10
    regression = QuantumSequenceClassification.from_body(str(body_dir), num_labels=1, head_type="linear")
    assert isinstance(regression.classifier, LinearHead) and regression.config.num_labels == 1
    given = QuantumSequenceClassification.from_body(str(body_dir), config=QLLMConfig(body_config=tiny_bert_config, num_encoders=1))
    assert given.classifier.num_encoders == 1
    with pytest.raises(ValueError, match=r"pass either a config or settings, not both; got config and \['merge'\]"):
        QuantumSequenceClassification.from_body(str(body_dir), config=QLLMConfig(), merge="sum")


def test_from_body_of_an_mpnet(tmp_path, tiny_mpnet_config):
    AutoModel.from_config(tiny_mpnet_config).save_pretrained(tmp_path / "mpnet")
    model = QuantumSequenceClassification.from_body(str(tmp_path / "mpnet")).eval()
    assert model.config.body_config.model_type == "mpnet"
    assert model(input_ids=torch.tensor([[0, 7, 8, 2]])).logits.shape == (1, 2)


# -- classical heads in the same class ---------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, head_class", [
    (dict(head_type="linear"), LinearHead),
    (dict(head_type="mlp", mlp_hidden_size=8), MLPHead),
    (dict(head_type="mlp", mlp_hidden_size="match_quantum"), MLPHead),
    (dict(head_type="quantum"), QuantumHead),
])  # fmt: skip
def test_heads_train_and_reload(tmp_path, tiny_bert_config, batch, settings, head_class):
    model = build(tiny_bert_config, **settings)
    assert isinstance(model.classifier, head_class)
    if settings.get("mlp_hidden_size") == "match_quantum":
        budget = QLLMConfig(body_config=tiny_bert_config).quantum_parameter_count()
        assert sum(p.numel() for p in model.classifier.parameters()) <= budget
    embeddings = model.eval().embed(**batch).detach()
    labels = torch.tensor([1, 0, 0, 1])
    optimizer = torch.optim.Adam(model.parameter_groups(head_lr=0.05))
    model.train()
    losses = []
    for _ in range(15):
        loss = model(sentence_embeddings=embeddings, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    model.save_pretrained(tmp_path)
    reloaded = QuantumSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(reloaded.classifier, head_class)
    assert torch.equal(reloaded(**batch).logits, model(**batch).logits)


def test_reload_keeps_the_body_frozen(tmp_path, model):
    model.save_pretrained(tmp_path)
    reloaded = QuantumSequenceClassification.from_pretrained(tmp_path)
    assert not any(p.requires_grad for p in reloaded.body.parameters())
    assert all(p.requires_grad for p in reloaded.classifier.parameters())


def test_local_auto_classes(tmp_path, model, batch, tiny_bert_config):
    config = QLLMConfig(body_config=tiny_bert_config)
    assert type(AutoModel.from_config(config)) is QuantumSequenceClassification
    assert type(AutoModelForSequenceClassification.from_config(config)) is QuantumSequenceClassification
    model.save_pretrained(tmp_path)
    for auto in (AutoModel, AutoModelForSequenceClassification):
        loaded = auto.from_pretrained(tmp_path)
        assert type(loaded) is QuantumSequenceClassification
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


# -- bad input ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head_type", ["quantum", "linear", "mlp"])
def test_wrong_embedding_width(tiny_bert_config, head_type):
    model = build(tiny_bert_config, head_type=head_type)
    with pytest.raises(ValueError, match=r"sentence embeddings have shape \(3, 48\); the head expects \(batch, 32\)"):
        model(sentence_embeddings=torch.randn(3, 48))
    with pytest.raises(ValueError, match=r"sentence embeddings have shape \(32,\); the head expects \(batch, 32\)"):
        model(sentence_embeddings=torch.randn(32))


@pytest.mark.parametrize("head_type", ["quantum", "linear", "mlp"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_embeddings(tiny_bert_config, head_type, value):
    embeddings = torch.randn(4, 32)
    embeddings[2, 5] = value
    with pytest.raises(ValueError, match=r"sentence embeddings has non-finite values \(NaN or inf\) in rows \[2\]"):
        build(tiny_bert_config, head_type=head_type)(sentence_embeddings=embeddings)


def test_empty_batch(model):
    with pytest.raises(ValueError, match="empty batch: input_ids has 0 rows"):
        model(input_ids=torch.zeros(0, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="empty batch: the head got 0 sentence embeddings"):
        model(sentence_embeddings=torch.zeros(0, 32))


def test_no_input(model):
    with pytest.raises(ValueError, match=r"pass input_ids \(or inputs_embeds\), or precomputed sentence_embeddings"):
        model(labels=torch.tensor([0]))


@pytest.mark.parametrize("labels, match", [
    (torch.tensor([0, 1, 2, 1]), r"label 2 at position 2 is out of range; expected class indices in \[0, 2\)"),
    (torch.tensor([0, -1, 1, 1]), r"label -1 at position 1 is out of range"),
    (torch.tensor([0, 1]), r"2 labels for a batch of 4"),
])  # fmt: skip
def test_bad_class_labels(model, labels, match):
    with pytest.raises(ValueError, match=match):
        model(sentence_embeddings=torch.randn(4, 32), labels=labels)


def test_float_labels_for_a_single_label_problem(tiny_bert_config):
    model = build(tiny_bert_config, problem_type="single_label_classification")
    with pytest.raises(ValueError, match="single-label targets must be integer class indices; got dtype torch.float32"):
        model(sentence_embeddings=torch.randn(2, 32), labels=torch.tensor([0.0, 1.0]))


def test_multi_label_targets_of_the_wrong_shape(tiny_bert_config):
    model = build(tiny_bert_config, num_labels=3, problem_type="multi_label_classification")
    with pytest.raises(ValueError, match=r"multi-label targets have shape \(2, 2\); expected \(2, 3\)"):
        model(sentence_embeddings=torch.randn(2, 32), labels=torch.ones(2, 2))


# -- checkpoints whose config does not match their weights -----------------------------------------------------------
def edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("changes, match", [
    # 6 qubits: more encoder and PQC weights than saved
    (dict(encoder_qubits=6), r"shapes differ for classifier.encoder_weights \(checkpoint \(2, 25\), config \(2, 30\)\)"),
    (dict(encoder_layers=3), r"shapes differ for classifier.encoder_weights"),
    (dict(id2label={"0": "a", "1": "b", "2": "c"}), r"shapes differ for classifier.readout.bias"),
    # another head: its weights are missing and the saved ones unused
    (dict(head_type="linear"), r"missing from the checkpoint: \['classifier.linear.bias', 'classifier.linear.weight'\]; "
                               r"not used by the config: \['classifier.encoder_weights'"),
])  # fmt: skip
def test_checkpoint_that_does_not_match_its_config_raises(tmp_path, model, changes, match):
    model.save_pretrained(tmp_path)
    edit_config(tmp_path, **changes)
    for loader in (QuantumSequenceClassification, AutoModelForSequenceClassification):
        with pytest.raises(ValueError, match=r"does not match its config \(.*" + match):
            loader.from_pretrained(tmp_path)


def test_checkpoint_with_an_edited_body_config_raises(tmp_path, model):
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["body_config"]["num_hidden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"missing from the checkpoint: \['body.encoder.layer.2"):
        QuantumSequenceClassification.from_pretrained(tmp_path)
    config["body_config"]["num_hidden_layers"] = 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"not used by the config: \['body.encoder.layer.1"):
        QuantumSequenceClassification.from_pretrained(tmp_path)


def test_ignore_mismatched_sizes_reinitialises_deliberately(tmp_path, model, batch):
    model.save_pretrained(tmp_path)
    reloaded, info = QuantumSequenceClassification.from_pretrained(
        tmp_path, id2label={0: "a", 1: "b", 2: "c"}, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert {key for key, _, _ in info["mismatched_keys"]} == {"classifier.readout.weight", "classifier.readout.bias"}
    assert reloaded(**batch).logits.shape == (4, 3)
    # everything else came from the checkpoint
    assert torch.equal(reloaded.classifier.encoder_weights, model.classifier.encoder_weights)
    assert torch.equal(reloaded.classifier.qpu_weights, model.classifier.qpu_weights)


def test_matching_checkpoint_reports_nothing(tmp_path, model):
    model.save_pretrained(tmp_path)
    _, info = QuantumSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]



def test_another_config_on_the_same_body_config_leaves_a_model_alone(tiny_bert_config, batch):
    # regression: QLLMConfig used to alias its body_config and reset its attention implementation, after which the
    # first model's body attended to padding tokens
    model = build(tiny_bert_config).eval()
    before = model(**batch).logits
    QLLMConfig(body_config=tiny_bert_config, head_type="linear")
    QLLMConfig(body_config=model.config.body_config)
    assert torch.equal(model(**batch).logits, before)


def test_keys_the_body_class_ignores_are_not_errors():
    from modeling_qllm.modeling_qllm import check_loading_info

    class Body(nn.Module):  # as DebertaV2PreTrainedModel: old checkpoints hold unused position embeddings
        _keys_to_ignore_on_load_unexpected = ["position_embeddings"]

    info = {"missing_keys": set(), "mismatched_keys": set(), "unexpected_keys": {"body.embeddings.position_embeddings"}}
    check_loading_info(info, "ckpt", Body())
    with pytest.raises(ValueError, match=r"checkpoint ckpt does not match its config \(not used by the config"):
        check_loading_info(info, "ckpt", None)


def test_sentence_transformer_pooling_follows_modules_json(tmp_path):
    import json

    from modeling_qllm.modeling_qllm import sentence_transformer_pooling

    assert sentence_transformer_pooling(str(tmp_path)) == {}  # a plain transformers folder declares nothing
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert sentence_transformer_pooling(str(tmp_path)) == {"normalize_embeddings": True, "pooling": "cls"}
