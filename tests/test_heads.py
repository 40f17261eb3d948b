"""Classification heads: the paper's QuantumHead (shapes, parameter counts, merge and sharing switches, encoder
strategies, gradients, training, noise, errors) and the classical baselines."""

import doctest

import pytest
import torch
from torch import nn

import modeling_qllm.heads as heads_module
from modeling_qllm.circuits import pqc_num_params
from modeling_qllm.heads import (
    LinearHead,
    MLPHead,
    QuantumHead,
    default_encoder_qubits,
    merged_width,
    mlp_hidden_for_budget,
    mlp_num_parameters,
)

F64 = torch.float64

TINY = dict(num_encoders=2, encoder_qubits=3, encoder_layers=1, encoder_connectivity=1, reupload_blocks=2)


def numel(module):
    return sum(p.numel() for p in module.parameters())


def embeddings(batch, size, seed=0, dtype=torch.float32):
    return torch.randn(batch, size, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def test_docstring_examples():
    assert doctest.testmod(heads_module).failed == 0


# ---------------------------------------------------------------------------------------------------------------
# Shapes and parameter counts
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_labels", [1, 2, 5])
def test_output_shape(num_labels):
    head = QuantumHead(8, num_labels, **TINY)
    assert head(embeddings(6, 8)).shape == (6, num_labels)
    assert head(embeddings(1, 8)).shape == (1, num_labels)


def test_default_encoder_qubits():
    assert default_encoder_qubits(768) == 10
    assert default_encoder_qubits(384) == 9
    assert default_encoder_qubits(512) == 9
    assert default_encoder_qubits(513) == 10
    assert default_encoder_qubits(2) == default_encoder_qubits(1) == 2
    assert QuantumHead(384, 2, encoder_layers=0, reupload_blocks=1).encoder_qubits == 9


def test_parameter_counts_per_module():
    head = QuantumHead(
        12, 3, num_encoders=3, encoder_qubits=4, encoder_layers=2, encoder_connectivity=2, merge="concat",
        reupload_blocks=3, reupload_layers=1, reupload_connectivity=1, final_layers=2, final_connectivity=3,
        measured_qubits=2,
    )
    expected = {
        "projection": 0,
        "encoders": 3 * (2 * 4 * 2 + 4),      # 3 encoders of 20 angles
        "reupload_pqc1": 1 * 12 + 12,        # shared PQC1 on 12 qubits
        "final_pqc2": 2 * 12 * 3 + 12,
        "readout": 2 * 3 + 3,                # Linear(2 -> 3)
    }
    expected["total"] = sum(expected.values())
    assert head.parameter_counts() == expected
    assert expected["total"] == numel(head) == 177
    assert head.encoder_weights.shape == (3, 20)
    assert head.qpu_weights.shape == (24 + 84,)
    assert head.qpu_qubits == 12


def test_paper_preset_has_886_parameters():
    """The reconstructed best point of the paper: 2 encoders of 7 qubits (768 -> 128 amplitudes, truncated),
    concatenated onto 14 qubits, 10 layers everywhere, connectivity 2."""
    head = QuantumHead(
        768, 2, num_encoders=2, encoder_qubits=7, amplitude_fit="truncate", merge="concat", encoder_layers=10,
        reupload_layers=10, reupload_connectivity=2, final_layers=10, final_connectivity=2,
    )
    counts = head.parameter_counts()
    assert counts == {"projection": 0, "encoders": 294, "reupload_pqc1": 294, "final_pqc2": 294, "readout": 4, "total": 886}
    assert numel(head) == 886
    assert head.qpu_qubits == 14
    torch.manual_seed(0)
    logits = head(embeddings(2, 768))
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())


def test_circuits_without_parameters_are_valid():
    """Zero layers and no extra column: every PQC is empty, only the readout trains, both strategies still agree."""
    kw = dict(num_encoders=2, encoder_qubits=3, encoder_connectivity=1, encoder_layers=0, reupload_layers=0,
              final_layers=0, extra_column="none")
    head = QuantumHead(8, 2, encoder_strategy="gates", **kw)
    counts = head.parameter_counts()
    assert counts == {"projection": 0, "encoders": 0, "reupload_pqc1": 0, "final_pqc2": 0, "readout": 4, "total": 4}
    matrix = QuantumHead(8, 2, encoder_strategy="matrix", **kw)
    matrix.load_state_dict(head.state_dict())
    x = embeddings(3, 8)
    torch.testing.assert_close(head(x), matrix(x))
    head(x).sum().backward()
    assert head.readout.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("extra_column", ["first", "last", "none"])
def test_counts_follow_pqc_num_params(extra_column):
    head = QuantumHead(8, 2, extra_column=extra_column, **TINY, merge="concat", reupload_layers=2, final_layers=1)
    counts = head.parameter_counts()
    assert counts["encoders"] == 2 * pqc_num_params(3, 1, 1, extra_column)
    assert counts["reupload_pqc1"] == pqc_num_params(6, 2, 1, extra_column)
    assert counts["final_pqc2"] == pqc_num_params(6, 1, 1, extra_column)
    assert counts["total"] == numel(head)


def test_amplitude_fit_project_adds_a_linear_layer():
    pad = QuantumHead(6, 2, amplitude_fit="pad", **TINY)
    project = QuantumHead(6, 2, amplitude_fit="project", **TINY)
    assert pad.projection is None and pad.parameter_counts()["projection"] == 0
    assert isinstance(project.projection, nn.Linear)
    assert project.parameter_counts()["projection"] == 6 * 8 + 8
    assert project.parameter_counts()["total"] == pad.parameter_counts()["total"] + 56 == numel(project)
    assert project(embeddings(3, 6)).shape == (3, 2)


# ---------------------------------------------------------------------------------------------------------------
# Merge and weight sharing
# ---------------------------------------------------------------------------------------------------------------
def test_merged_width():
    assert merged_width(3, 4, "concat") == 12
    assert merged_width(3, 4, "mean") == merged_width(3, 4, "sum") == 4


def test_merge_readouts():
    readouts = torch.arange(12.0).reshape(1, 2, 6).repeat(2, 1, 1)  # (batch, E=2, Q_c=6)
    for merge, expected in (
        ("concat", torch.arange(12.0)),
        ("mean", torch.arange(6.0) + 3),
        ("sum", 2 * torch.arange(6.0) + 6),
    ):
        head = QuantumHead(40, 2, num_encoders=2, encoder_qubits=6, encoder_layers=0, merge=merge, reupload_blocks=1)
        assert head.qpu_qubits == (12 if merge == "concat" else 6)
        torch.testing.assert_close(head.merge_readouts(readouts), expected.repeat(2, 1))


@pytest.mark.parametrize("merge", ["concat", "mean", "sum"])
def test_forward_is_encode_merge_qpu_readout(merge):
    head = QuantumHead(8, 2, merge=merge, **TINY).double()
    x = embeddings(5, 8, dtype=F64)
    readouts = head.encode(x)
    assert readouts.shape == (5, 2, 3)
    assert (readouts.abs() <= 1 + 1e-12).all()
    merged = {"concat": readouts.flatten(1), "mean": readouts.mean(1), "sum": readouts.sum(1)}[merge]
    expected = head.readout(head.qpu_expectations(merged))
    torch.testing.assert_close(head(x), expected, atol=1e-12, rtol=0)


def test_sum_and_mean_differ_by_the_number_of_encoders():
    mean = QuantumHead(8, 2, merge="mean", **TINY).double()
    total = QuantumHead(8, 2, merge="sum", **TINY).double()
    total.load_state_dict(mean.state_dict())
    x = embeddings(4, 8, dtype=F64)
    merged = mean.merge_readouts(mean.encode(x))
    torch.testing.assert_close(total(x), mean.readout(mean.qpu_expectations(2 * merged)), atol=1e-12, rtol=0)
    assert not torch.allclose(total(x), mean(x))


def test_unshared_reupload_weights():
    kw = dict(TINY, reupload_blocks=3, reupload_layers=1, reupload_connectivity=1, merge="mean")
    shared = QuantumHead(8, 2, share_reupload_weights=True, **kw).double()
    unshared = QuantumHead(8, 2, share_reupload_weights=False, **kw).double()
    size = pqc_num_params(3, 1, 1, "last")
    assert shared.parameter_counts()["reupload_pqc1"] == size
    assert unshared.parameter_counts()["reupload_pqc1"] == 3 * size
    assert unshared.parameter_counts()["total"] - shared.parameter_counts()["total"] == 2 * size
    # block b of the unshared head reads angles b*size .. (b+1)*size - 1; PQC2 follows them
    blocks = [g.index for g in unshared.qpu_gates if g.source == "weight"]
    assert sorted(set(blocks)) == list(range(3 * size + pqc_num_params(3, 1, 1, "last")))
    # an unshared head whose three blocks hold the same angles is the shared head
    state = shared.state_dict()
    pqc1, pqc2 = state["qpu_weights"][:size], state["qpu_weights"][size:]
    unshared.load_state_dict({**state, "qpu_weights": torch.cat((pqc1, pqc1, pqc1, pqc2))})
    x = embeddings(4, 8, dtype=F64)
    torch.testing.assert_close(unshared(x), shared(x), atol=1e-12, rtol=0)
    # and with different angles per block, it is not
    with torch.no_grad():
        unshared.qpu_weights[size : 2 * size] += 0.5
    assert not torch.allclose(unshared(x), shared(x))


# ---------------------------------------------------------------------------------------------------------------
# Encoder strategies and gradients
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "embedding_size, encoder_qubits, fit",
    [(12, 4, "pad"), (40, 5, "truncate"), (10, 3, "project"), (16, 4, "pad")],
)
def test_matrix_and_gates_strategies_agree(embedding_size, encoder_qubits, fit):
    kw = dict(
        num_encoders=2, encoder_qubits=encoder_qubits, encoder_layers=2, encoder_connectivity=2, amplitude_fit=fit,
        merge="concat", reupload_blocks=1,
    )
    gates = QuantumHead(embedding_size, 3, encoder_strategy="gates", **kw).double()
    matrix = QuantumHead(embedding_size, 3, encoder_strategy="matrix", **kw).double()
    matrix.load_state_dict(gates.state_dict())
    x = embeddings(7, embedding_size, dtype=F64)
    results = []
    for head in (gates, matrix):
        inp = x.clone().requires_grad_(True)
        logits = head(inp)
        loss = (logits * torch.linspace(-1, 1, 21, dtype=F64).reshape(7, 3)).sum()
        grads = torch.autograd.grad(loss, [inp] + list(head.parameters()))
        results.append((logits.detach(),) + grads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_auto_strategy_agrees_with_gates_for_small_and_large_batches():
    kw = dict(num_encoders=1, encoder_qubits=3, encoder_layers=1, amplitude_fit="pad", reupload_blocks=1)
    auto = QuantumHead(5, 2, encoder_strategy="auto", **kw).double()
    gates = QuantumHead(5, 2, encoder_strategy="gates", **kw).double()
    gates.load_state_dict(auto.state_dict())
    for batch in (1, 200):
        x = embeddings(batch, 5, dtype=F64)
        torch.testing.assert_close(auto(x), gates(x), atol=1e-10, rtol=0)


def test_gradcheck_whole_head():
    """Finite differences against autograd for every parameter and the embeddings (float64)."""
    head = QuantumHead(6, 2, amplitude_fit="project", measured_qubits=2, **TINY).double()
    names = [name for name, _ in head.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in head.parameters())
    x = embeddings(3, 6, dtype=F64).requires_grad_(True)

    def logits(x, *params):
        return torch.func.functional_call(head, dict(zip(names, params)), (x,))

    assert torch.autograd.gradcheck(logits, (x,) + params)


def _toy_problem(n=64, d=8, seed=0):
    """Class 0 puts its mass on the first half of the embedding, class 1 on the second half: separable after
    normalisation, and not by sign alone (which amplitude encoding could not see)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = 0.1 * torch.randn(n, d, generator=g)
    strong = torch.rand(n, d // 2, generator=g) + 0.5
    x[labels == 0, : d // 2] += strong[labels == 0]
    x[labels == 1, d // 2 :] += strong[labels == 1]
    return x, labels


def test_training_reduces_the_loss():
    x, y = _toy_problem()
    torch.manual_seed(0)
    kw = dict(num_encoders=1, encoder_qubits=3, encoder_layers=2, reupload_blocks=1, merge="mean", init_scale=1.0)
    head = QuantumHead(8, 2, **kw)
    frozen = QuantumHead(8, 2, **kw)
    frozen.load_state_dict(head.state_dict())
    loss_fn = nn.CrossEntropyLoss()
    initial = loss_fn(head(x), y).item()
    optimizer = torch.optim.Adam(head.parameters(), lr=0.1)
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_fn(head(x), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = loss_fn(head(x), y).item()
        untouched = loss_fn(frozen(x), y).item()
        accuracy = (head(x).argmax(dim=1) == y).float().mean().item()
    assert untouched == pytest.approx(initial)
    assert final < 0.25 * initial and final < 0.2, (initial, final)
    assert accuracy >= 0.9
    # every circuit parameter moved: gradients reach all of them
    for (name, p), (_, q) in zip(head.named_parameters(), frozen.named_parameters()):
        assert not torch.allclose(p, q), name


# ---------------------------------------------------------------------------------------------------------------
# dtype
# ---------------------------------------------------------------------------------------------------------------
def test_float64_head():
    head = QuantumHead(8, 2, **TINY)
    x = embeddings(4, 8)
    single = head(x)
    head.double()
    assert all(p.dtype == F64 for p in head.parameters())
    double = head(x)  # float32 embeddings are cast to the head's dtype
    assert double.dtype == F64
    torch.testing.assert_close(double.float(), single, atol=1e-5, rtol=0)
    double.sum().backward()
    assert head.qpu_weights.grad.dtype == F64


# ---------------------------------------------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "noise",
    [
        dict(depolarizing_1q=0.02, depolarizing_2q=0.05, noise_method="trajectories"),
        dict(depolarizing_1q=0.02, depolarizing_2q=0.05, noise_method="density_matrix"),
        dict(depolarizing_1q=0.02, depolarizing_2q=0.05),  # auto: density matrix on 3 qubits
        dict(shots=50),
        dict(shots=50, readout_error=0.05, depolarizing_2q=0.05, noise_scope="all"),
        dict(shots=20, depolarizing_1q=0.02, noise_method="trajectories", noise_scope="all"),
    ],
)
def test_noisy_head_runs_and_backpropagates(noise):
    head = QuantumHead(8, 2, **TINY, **noise)
    x = embeddings(5, 8)
    logits = head(x)
    assert logits.shape == (5, 2) and torch.isfinite(logits).all()
    logits.logsumexp(dim=1).sum().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_readout_only_noise_is_deterministic_and_scales_the_expectation():
    exact = QuantumHead(8, 2, **TINY).double()
    noisy = QuantumHead(8, 2, readout_error=0.1, **TINY).double()
    noisy.load_state_dict(exact.state_dict())
    x = embeddings(4, 8, dtype=F64)
    merged = exact.merge_readouts(exact.encode(x))
    torch.testing.assert_close(noisy.qpu_expectations(merged), 0.8 * exact.qpu_expectations(merged), atol=1e-12, rtol=0)
    # scope "qpu": the encoders stay exact
    torch.testing.assert_close(noisy.encode(x), exact.encode(x), atol=1e-12, rtol=0)


def test_shots_in_the_head_are_reproducible_with_a_generator():
    head = QuantumHead(8, 2, shots=10, **TINY)
    x = embeddings(6, 8)
    head.noise.generator = torch.Generator().manual_seed(0)
    a = head(x)
    head.noise.generator = torch.Generator().manual_seed(0)
    b = head(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, head(x))


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------
def test_wrong_embedding_width():
    head = QuantumHead(8, 2, **TINY)
    with pytest.raises(ValueError, match=r"sentence embeddings have shape \(3, 7\); the head expects \(batch, 8\)"):
        head(torch.randn(3, 7))
    with pytest.raises(ValueError, match=r"sentence embeddings have shape \(8,\); the head expects \(batch, 8\)"):
        head(torch.randn(8))


def test_empty_batch():
    with pytest.raises(ValueError, match="empty batch: the head got 0 sentence embeddings"):
        QuantumHead(8, 2, **TINY)(torch.randn(0, 8))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_embeddings(bad):
    x = torch.randn(4, 8)
    x[3, 0] = bad
    with pytest.raises(ValueError, match=r"sentence embeddings has non-finite values \(NaN or inf\) in rows \[3\]"):
        QuantumHead(8, 2, **TINY)(x)


def test_zero_embedding():
    x = torch.randn(3, 8)
    x[1] = 0
    with pytest.raises(ValueError, match=r"cannot amplitude-encode a zero vector: rows \[1\]"):
        QuantumHead(8, 2, **TINY)(x)


def test_merged_width_too_small_for_connectivity():
    kw = dict(num_encoders=2, encoder_qubits=3, encoder_connectivity=1, merge="mean")
    with pytest.raises(ValueError, match=r"re-uploading PQC1: connectivity=3 on 3 qubits; expected 1 <= connectivity <= 2"):
        QuantumHead(8, 2, reupload_connectivity=3, **kw)
    with pytest.raises(ValueError, match=r"final PQC2: connectivity=4 on 3 qubits"):
        QuantumHead(8, 2, final_connectivity=4, **kw)
    # concat widens the register to 6 qubits: the same connectivity is fine there
    QuantumHead(8, 2, reupload_connectivity=3, final_connectivity=4, **{**kw, "merge": "concat"})


def test_encoder_register_errors_name_the_encoder():
    with pytest.raises(ValueError, match=r"encoder PQC: connectivity=3 on 3 qubits"):
        QuantumHead(8, 2, encoder_qubits=3, encoder_connectivity=3)
    with pytest.raises(ValueError, match=r"encoder PQC: layers=-1"):
        QuantumHead(8, 2, encoder_qubits=3, encoder_layers=-1, encoder_connectivity=1)


def test_measured_qubits_out_of_range():
    for measured in (0, 7):
        message = rf"measured_qubits={measured}; expected 1 <= measured_qubits <= 6 \(module 2's qubits\)"
        with pytest.raises(ValueError, match=message):
            QuantumHead(8, 2, measured_qubits=measured, merge="concat", **TINY)
    assert QuantumHead(8, 2, measured_qubits=6, merge="concat", **TINY)(embeddings(2, 8)).shape == (2, 2)


def test_pad_with_too_few_qubits():
    with pytest.raises(
        ValueError,
        match=r"amplitude_fit='pad' cannot fit embedding_size=20 into encoder_qubits=4 \(16 amplitudes\); "
        r"use 'truncate', 'project', or at least 5 qubits",
    ):
        QuantumHead(20, 2, encoder_qubits=4, amplitude_fit="pad")


@pytest.mark.parametrize("embedding_size", [16, 10])
def test_truncate_with_too_many_qubits(embedding_size):
    message = (
        rf"amplitude_fit='truncate' with embedding_size={embedding_size} <= 16 amplitudes \(encoder_qubits=4\) "
        r"drops nothing; use 'pad'"
    )
    with pytest.raises(ValueError, match=message):
        QuantumHead(embedding_size, 2, encoder_qubits=4, amplitude_fit="truncate")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(merge="max"), r"merge='max'; expected one of \('concat', 'mean', 'sum'\)"),
        (dict(amplitude_fit="crop"), r"amplitude_fit='crop'; expected one of \('pad', 'truncate', 'project'\)"),
        (dict(extra_column="middle"), r"extra_column='middle'; expected one of \('first', 'last', 'none'\)"),
        (dict(encoder_strategy="fast"), r"encoder_strategy='fast'; expected one of \('auto', 'gates', 'matrix'\)"),
        (dict(noise_scope="encoders"), r"noise_scope='encoders'; expected one of \('qpu', 'all'\)"),
        (dict(noise_method="exact"), r"noise_method='exact'; expected one of \('auto', 'density_matrix', 'trajectories'\)"),
        (dict(shots=0), r"shots=0; expected None"),
        (dict(depolarizing_1q=2.0), r"depolarizing_1q=2.0; expected a probability in \[0, 1\]"),
        (dict(num_encoders=0), r"num_encoders=0; expected an integer >= 1"),
        (dict(reupload_blocks=0), r"reupload_blocks=0; expected an integer >= 1"),
    ],
)
def test_invalid_settings(kwargs, message):
    base = dict(num_encoders=2, encoder_qubits=3, encoder_connectivity=1)
    with pytest.raises(ValueError, match=message):
        QuantumHead(8, 2, **{**base, **kwargs})


@pytest.mark.parametrize("embedding_size, num_labels, message", [
    (0, 2, r"embedding_size=0; expected a positive integer"),
    (8.0, 2, r"embedding_size=8.0; expected a positive integer"),
    (8, 0, r"num_labels=0; expected a positive integer"),
])
def test_invalid_sizes(embedding_size, num_labels, message):
    with pytest.raises(ValueError, match=message):
        QuantumHead(embedding_size, num_labels)


# ---------------------------------------------------------------------------------------------------------------
# Classical baselines
# ---------------------------------------------------------------------------------------------------------------
def test_linear_head():
    head = LinearHead(384, 3)
    assert head(embeddings(5, 384)).shape == (5, 3)
    assert head.parameter_counts() == {"linear": 384 * 3 + 3, "total": 1155} and numel(head) == 1155
    with pytest.raises(ValueError, match=r"the head expects \(batch, 384\)"):
        head(torch.randn(2, 383))
    with pytest.raises(ValueError, match="empty batch"):
        head(torch.randn(0, 384))


def test_mlp_head():
    head = MLPHead(384, 2, hidden_size=8)
    assert head(embeddings(4, 384)).shape == (4, 2)
    assert head.parameter_counts() == {"mlp": 3098, "total": 3098} and numel(head) == 3098
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match=rf"hidden_size={bad!r}; expected a positive integer"):
            MLPHead(384, 2, hidden_size=bad)
    with pytest.raises(ValueError, match="non-finite"):
        head(torch.full((2, 384), float("nan")))


@pytest.mark.parametrize(
    "embedding_size, num_labels, budget",
    [(768, 2, 886), (768, 2, 771 + 2), (768, 2, 771 * 2 + 1), (768, 2, 771 * 2 + 2), (384, 3, 10_000), (32, 5, 5000)],
)
def test_mlp_hidden_for_budget_is_the_largest_fit(embedding_size, num_labels, budget):
    hidden = mlp_hidden_for_budget(embedding_size, num_labels, budget)
    assert MLPHead(embedding_size, num_labels, hidden).parameter_counts()["total"] <= budget
    assert MLPHead(embedding_size, num_labels, hidden + 1).parameter_counts()["total"] > budget


def test_mlp_hidden_for_budget_exact_values():
    assert mlp_hidden_for_budget(768, 2, 886) == 1
    assert mlp_hidden_for_budget(768, 2, 773) == 1  # exactly one unit: 768 + 1 + 2 + 2
    assert mlp_hidden_for_budget(768, 2, 1543) == 1
    assert mlp_hidden_for_budget(768, 2, 1544) == 2
    assert mlp_hidden_for_budget(10, 2, 1000) == 76  # 76 * 13 + 2 = 990 <= 1000 < 1003


def test_mlp_num_parameters_matches_the_module():
    for d, h, labels in ((768, 1, 2), (384, 8, 2), (10, 76, 2), (32, 5, 7)):
        assert mlp_num_parameters(d, h, labels) == numel(MLPHead(d, labels, hidden_size=h))


def test_mlp_hidden_for_budget_error():
    with pytest.raises(
        ValueError,
        match=r"a budget of 772 parameters is below the smallest MLP \(hidden=1\) for embedding_size=768, "
        r"num_labels=2, which has 773",
    ):
        mlp_hidden_for_budget(768, 2, 772)


@pytest.mark.parametrize("name, args", [
    ("embedding_size", (0, 2, 1000)),
    ("num_labels", (768, -1, 1000)),
    ("budget", (768, 2, 0)),
    ("budget", (768, 2, 886.0)),
    ("embedding_size", (True, 2, 1000)),
])
def test_mlp_hidden_for_budget_rejects_non_positive_integers(name, args):
    bad = args[("embedding_size", "num_labels", "budget").index(name)]
    with pytest.raises(ValueError, match=rf"^{name} must be a positive integer, got {bad!r}$"):
        mlp_hidden_for_budget(*args)


@pytest.mark.parametrize("bad", [-1.0, 7.0, "pi"])
def test_init_scale_out_of_range_is_a_value_error(bad):
    with pytest.raises(ValueError, match=r"init_scale=.*expected a number in \[0, 2pi\]"):
        QuantumHead(16, 2, encoder_qubits=4, init_scale=bad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_c_and_torch_kernels_give_the_same_head_outputs_and_gradients(monkeypatch, c_kernels, dtype):
    """The whole paper-shaped head (encoders, re-uploading, PQC2) through both CPU kernel sets, chunked batches."""
    import modeling_qllm.statevector as statevector

    cpu_kernels = c_kernels
    monkeypatch.setattr(statevector, "CPU_CHUNK_AMPLITUDES", 2**12)  # chunks of 32 (f32) / 16 (f64) samples
    torch.manual_seed(0)
    head = QuantumHead(embedding_size=256, encoder_qubits=8, num_encoders=2, encoder_strategy="gates",
                       reupload_blocks=2, num_labels=3).to(dtype)  # fmt: skip
    x = torch.randn(150, 256, dtype=dtype)  # 150 samples: several chunks, the last one short
    results = []
    for enabled in (True, False):
        previous = cpu_kernels.set_enabled(enabled)
        try:
            head.zero_grad()
            logits = head(x)
            (logits * torch.arange(3, dtype=dtype)).sum().backward()
            results.append((logits.detach(), [p.grad.clone() for p in head.parameters()]))
        finally:
            cpu_kernels.set_enabled(previous)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(results[0][0], results[1][0], **tol)
    for grad_c, grad_torch in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(grad_c, grad_torch, **tol)
