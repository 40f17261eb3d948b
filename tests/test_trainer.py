"""transformers.Trainer on the model: precomputed sentence embeddings and tokenized text, accuracy through
compute_metrics, checkpoints, and resuming from the last checkpoint."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from modeling_qllm import QLLMConfig, QuantumSequenceClassification, add_sentence_embeddings

from modeling_qllm.experiments import compute_metrics_fn  # local `evaluate` modules: accuracy, macro-F1

POSITIVE, NEGATIVE = ["good", "great", "superb", "lovely"], ["bad", "awful", "boring", "terrible"]
STEPS_PER_EPOCH = 4  # 32 sentences, batches of 8


def sentences():
    """32 sentences; the label is 1 exactly when the adjective is a positive one."""
    rows = []
    for subject, adjective in itertools.product(["the movie", "this film", "the plot", "the acting"], POSITIVE + NEGATIVE):
        rows.append({"text": f"{subject} was really {adjective}", "label": int(adjective in POSITIVE)})
    return rows


@pytest.fixture
def model(tiny_bert_config):
    torch.manual_seed(0)
    return QuantumSequenceClassification(QLLMConfig(body_config=tiny_bert_config, id2label={0: "negative", 1: "positive"}))


@pytest.fixture
def text_dataset():
    from datasets import Dataset

    return Dataset.from_list(sentences())


def arguments(output_dir, epochs, **overrides):
    settings = dict(
        output_dir=str(output_dir), use_cpu=True, report_to=[], num_train_epochs=epochs, per_device_train_batch_size=8,
        per_device_eval_batch_size=16, learning_rate=0.05, lr_scheduler_type="constant", logging_steps=1,
        eval_strategy="epoch", save_strategy="epoch", seed=0, disable_tqdm=True, dataloader_num_workers=0,
    )  # fmt: skip
    settings.update(overrides)
    return TrainingArguments(**settings)


def logged_losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def assert_loss_falls(trainer):
    losses = logged_losses(trainer)
    assert np.mean(losses[-STEPS_PER_EPOCH:]) < np.mean(losses[:STEPS_PER_EPOCH]), losses


def test_trainer_on_precomputed_sentence_embeddings(tmp_path, model, text_dataset, make_tokenizer):
    data = add_sentence_embeddings(text_dataset, model, make_tokenizer(), batch_size=16).remove_columns("text")
    trainer = Trainer(model=model, args=arguments(tmp_path, epochs=3), train_dataset=data, eval_dataset=data,
                      compute_metrics=compute_metrics_fn())
    trainer.train()
    assert trainer.state.global_step == 3 * STEPS_PER_EPOCH
    assert_loss_falls(trainer)
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and {"eval_loss", "eval_macro_f1"} <= set(metrics)
    assert any("eval_accuracy" in entry for entry in trainer.state.log_history[:-1])  # evaluated every epoch
    # the body never trained
    assert not any(p.requires_grad for p in model.body.parameters())

    checkpoint = tmp_path / f"checkpoint-{3 * STEPS_PER_EPOCH}"
    for name in ("model.safetensors", "config.json", "optimizer.pt", "trainer_state.json", "modeling_qllm.py"):
        assert (checkpoint / name).is_file(), name
    reloaded = QuantumSequenceClassification.from_pretrained(checkpoint)
    embeddings = torch.tensor(data["sentence_embeddings"][:4])
    assert torch.equal(reloaded(sentence_embeddings=embeddings).logits, model.eval()(sentence_embeddings=embeddings).logits)


def test_trainer_on_tokenized_text(tmp_path, model, text_dataset, make_tokenizer):
    tokenizer = make_tokenizer()
    data = text_dataset.map(lambda batch: tokenizer(batch["text"]), batched=True)
    trainer = Trainer(model=model, args=arguments(tmp_path, epochs=3, save_strategy="no"), train_dataset=data,
                      eval_dataset=data, data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                      compute_metrics=compute_metrics_fn())
    trainer.train()
    assert_loss_falls(trainer)
    assert 0.0 <= trainer.evaluate()["eval_accuracy"] <= 1.0
    # the frozen body saw the same inputs in training and in evaluation (no dropout): the cached path agrees
    cached = add_sentence_embeddings(text_dataset.select(range(4)), model, tokenizer)
    embeddings = torch.tensor(cached["sentence_embeddings"])
    batch = DataCollatorWithPadding(tokenizer)([{k: data[i][k] for k in ("input_ids", "attention_mask")} for i in range(4)])
    model.eval()
    assert torch.allclose(model(sentence_embeddings=embeddings).logits, model(**batch).logits, atol=1e-5)


def test_resume_from_checkpoint(tmp_path, model, text_dataset, make_tokenizer, tiny_bert_config):
    data = add_sentence_embeddings(text_dataset, model, make_tokenizer(), batch_size=16).remove_columns("text")
    first = Trainer(model=model, args=arguments(tmp_path, epochs=2, eval_strategy="no"), train_dataset=data)
    first.train()
    saved = {k: v.clone() for k, v in model.classifier.state_dict().items()}

    def fresh_model(seed):
        torch.manual_seed(seed)
        return QuantumSequenceClassification(QLLMConfig(body_config=tiny_bert_config, id2label={0: "negative", 1: "positive"}))

    # resuming with nothing left to do restores the checkpoint's weights exactly into a differently initialised model
    restored = fresh_model(seed=99)
    assert not torch.equal(restored.classifier.qpu_weights, saved["qpu_weights"])
    again = Trainer(model=restored, args=arguments(tmp_path, epochs=2, eval_strategy="no"), train_dataset=data)
    again.train(resume_from_checkpoint=True)
    for name, tensor in restored.classifier.state_dict().items():
        assert torch.equal(tensor, saved[name]), name

    # and with one more epoch it continues from step 8 (the state, logs included, comes from the checkpoint)
    longer = Trainer(model=fresh_model(seed=98), args=arguments(tmp_path, epochs=3, eval_strategy="no"),
                     train_dataset=data)
    longer.train(resume_from_checkpoint=True)
    assert longer.state.global_step == 3 * STEPS_PER_EPOCH
    steps = [entry["step"] for entry in longer.state.log_history if "loss" in entry]
    assert steps == list(range(1, 3 * STEPS_PER_EPOCH + 1))  # each step logged once: steps 1-8 restored, 9-12 new
    assert (tmp_path / f"checkpoint-{3 * STEPS_PER_EPOCH}" / "model.safetensors").is_file()
