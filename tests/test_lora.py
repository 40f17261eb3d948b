"""LoRA with peft: default targets per body, the head trained and saved through ``modules_to_save``, an exact
adapter round trip onto a freshly built base (the head must not be silently re-initialised), and merging."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, BertConfig, MPNetConfig

from modeling_qllm import QuantumSequenceClassification
from modeling_qllm.lora import apply_lora, default_lora_targets

TARGETS = {"bert": ["query", "key", "value"], "mpnet": ["q", "k", "v", "o"]}
BODIES = {
    "bert": lambda: BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "mpnet": lambda: MPNetConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
}


@pytest.fixture(scope="module", params=sorted(BODIES))
def trained(request, tmp_path_factory):
    """Per body kind: a tiny encoder saved like a pretrained one, and a LoRA model trained a little on it, its
    trainable parameters before training, the names of those that changed, its logits and its saved adapter."""
    root = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(1)
    AutoModel.from_config(BODIES[request.param]()).save_pretrained(root / "body")
    model = apply_lora(fresh_base(root / "body", seed=0), r=4)
    changed, before = train_a_little(model)
    model.save_pretrained(root / "adapter")
    return {"kind": request.param, "body_dir": root / "body", "model": model, "before": before, "changed": changed,
            "logits": logits(model), "adapter": root / "adapter"}


def inputs():
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(5, 99, (6, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 6:] = 0
    attention_mask[3, 4:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def fresh_base(body_dir, seed):
    torch.manual_seed(seed)  # a different head initialisation for every seed
    return QuantumSequenceClassification.from_body(str(body_dir), num_labels=2)


def train_a_little(model, steps=4):
    batch, labels = inputs(), torch.tensor([0, 1, 1, 0, 1, 0])
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    model.train()
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return {n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, trainable[n])}, trainable


def logits(model):
    with torch.no_grad():
        return model(**inputs()).logits


def test_default_targets():
    assert default_lora_targets("bert") == TARGETS["bert"]
    assert default_lora_targets("mpnet") == TARGETS["mpnet"]
    with pytest.raises(ValueError, match=r"no default LoRA targets for body model_type='gpt2'; pass target_modules="):
        default_lora_targets("gpt2")


def test_apply_lora_adapts_the_attention_and_trains_the_head(trained):
    model = trained["model"]
    adapted = {name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == set(TARGETS[trained["kind"]])
    assert "classifier" in model.modules_to_save
    trainable = set(trained["before"])
    assert trainable == {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n in trainable if ".classifier.modules_to_save.default." in n}
    assert {n.rsplit("default.", 1)[1] for n in head} == {"encoder_weights", "qpu_weights", "readout.weight", "readout.bias"}
    assert all("lora_" in n for n in trainable - head)  # the body's own weights stay frozen
    # a few optimizer steps moved every adapter and every head weight
    assert trained["changed"] == trainable
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable) and head


def test_adapter_round_trip_restores_the_trained_head(trained):
    saved = load_file(trained["adapter"] / "adapter_model.safetensors")
    assert any("classifier" in key and "qpu_weights" in key for key in saved)  # the head travels with the adapter
    assert any("lora_A" in key for key in saved)

    base = fresh_base(trained["body_dir"], seed=123)
    assert not torch.equal(logits(base), trained["logits"])  # another head: a silent re-init could not pass below
    reloaded = PeftModel.from_pretrained(base, trained["adapter"]).eval()
    assert torch.equal(logits(reloaded), trained["logits"])
    head = reloaded.base_model.model.classifier.modules_to_save["default"]
    original = trained["model"].base_model.model.classifier.modules_to_save["default"]
    assert torch.equal(head.qpu_weights, original.qpu_weights)


def test_merge_and_unload_gives_the_same_logits(tmp_path, trained):
    reloaded = PeftModel.from_pretrained(fresh_base(trained["body_dir"], seed=7), trained["adapter"]).eval()
    merged = reloaded.merge_and_unload()
    assert type(merged) is QuantumSequenceClassification
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert torch.allclose(logits(merged), trained["logits"], atol=1e-5)
    merged.save_pretrained(tmp_path / "merged")
    assert torch.equal(logits(QuantumSequenceClassification.from_pretrained(tmp_path / "merged")), logits(merged))


def test_explicit_target_modules(trained):
    target = "value" if trained["kind"] == "bert" else "v"
    model = apply_lora(fresh_base(trained["body_dir"], seed=0), r=2, target_modules=[target])
    adapted = {name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == {target}
