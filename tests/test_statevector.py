"""The batched real state-vector simulator: kernels against dense matrices, the adjoint executor against plain
autograd, encodings, measurement, dtype/device handling and Monte-Carlo noise trajectories."""

import doctest
import math
import random

import pytest
import torch

import modeling_qllm.cpu_kernels as cpu_kernels
import modeling_qllm.statevector as statevector_module
from modeling_qllm.circuits import Gate, angle_encoding_gates, num_weights, pqc_gates
from modeling_qllm.statevector import (
    Depolarizing,
    amplitude_encode,
    apply_cnot,
    apply_ry,
    check_finite,
    cnot_,
    cnot_ry_,
    compile_gates,
    expval_z,
    marginal_probabilities,
    pauli_samples_,
    ry_,
    run_circuit,
    run_circuit_reference,
    z_signs,
    zero_state,
)

F64 = torch.float64
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
]


@pytest.fixture(autouse=True, params=["c-kernels", "torch-kernels"])
def kernels(request):
    """Every test runs twice on CPU: through the one-pass C kernels (when they build) and the PyTorch kernels."""
    if request.param == "c-kernels":
        request.getfixturevalue("c_kernels")  # fails under CI, skips elsewhere when they cannot be built
    previous = cpu_kernels.set_enabled(request.param == "c-kernels")
    yield request.param
    cpu_kernels.set_enabled(previous)


def test_docstring_examples():
    assert doctest.testmod(statevector_module).failed == 0


# ---------------------------------------------------------------------------------------------------------------
# Dense reference matrices (wire 0 = most significant bit, PennyLane's convention)
# ---------------------------------------------------------------------------------------------------------------
I2 = torch.eye(2, dtype=F64)
X = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)
Z = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=F64)
P0 = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=F64)
P1 = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=F64)


def ry_matrix(theta):
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return torch.tensor([[c, -s], [s, c]], dtype=F64)


def half_angle(theta):
    """(cos, sin) of theta/2 as 0-dim tensors, as run_circuit hands them to the kernels."""
    theta = torch.tensor(theta, dtype=F64)
    return torch.cos(theta / 2), torch.sin(theta / 2)


def kron_all(mats):
    out = torch.ones(1, 1, dtype=mats[0].dtype)
    for m in mats:
        out = torch.kron(out, m)
    return out


def on_wire(n, wire, m):
    return kron_all([m if w == wire else I2 for w in range(n)])


def cnot_matrix(n, control, target):
    idle = kron_all([P0 if w == control else I2 for w in range(n)])
    flip = kron_all([P1 if w == control else X if w == target else I2 for w in range(n)])
    return idle + flip


def dense_unitary(gates, n, weights, inputs_row=None):
    u = torch.eye(2**n, dtype=F64)
    for g in gates:
        if g.name == "CNOT":
            m = cnot_matrix(n, *g.wires)
        else:
            angle = weights[g.index] if g.source == "weight" else inputs_row[g.index]
            m = on_wire(n, g.wires[0], ry_matrix(float(angle)))
        u = m @ u
    return u


def random_states(batch, n, dtype=F64, generator=None):
    s = torch.randn(batch, 2**n, dtype=dtype, generator=generator)
    return s / s.norm(dim=1, keepdim=True)


def random_gates(rng, n, length, n_weights=4, n_inputs=3, input_after_cnot=True):
    """A random gate list: CNOT+RY pairs on one target (fused by the compiler), lone CNOTs, lone RYs, with shared
    weight indices and repeated input indices. With ``input_after_cnot=False`` an input RY never directly follows
    a CNOT on its own wire (the only pattern the heads never produce)."""
    gates = []
    while len(gates) < length:
        kind = rng.random()
        source = "weight" if rng.random() < 0.6 else "input"
        index = rng.randrange(n_weights if source == "weight" else n_inputs)
        if kind < 0.45:
            c, t = rng.sample(range(n), 2)
            gates.append(Gate("CNOT", (c, t)))
            if source == "input" and not input_after_cnot:
                source, index = "weight", rng.randrange(n_weights)
            gates.append(Gate("RY", (t,), source, index))
        elif kind < 0.65:
            c, t = rng.sample(range(n), 2)
            gates.append(Gate("CNOT", (c, t)))
        else:
            w = rng.randrange(n)
            prev = gates[-1] if gates else None
            follows_cnot = prev is not None and prev.name == "CNOT" and prev.wires[1] == w
            if source == "input" and not input_after_cnot and follows_cnot:
                source, index = "weight", rng.randrange(n_weights)
            gates.append(Gate("RY", (w,), source, index))
    return tuple(gates)


def values_and_grads(fn, state, weights, inputs, upstream):
    state, weights, inputs = (t.detach().clone().requires_grad_(True) for t in (state, weights, inputs))
    out = fn(state, weights, inputs)
    grads = torch.autograd.grad((out * upstream).sum(), (state, weights, inputs), allow_unused=True)
    grads = tuple(torch.zeros_like(t) if gr is None else gr for t, gr in zip((state, weights, inputs), grads))
    return (out.detach(),) + grads


def compare_with_reference(gates, n, batch, seed, dtype=F64, atol=1e-10):
    g = torch.Generator().manual_seed(seed)
    state = random_states(batch, n, generator=g)
    weights = torch.rand(4, dtype=F64, generator=g) * 4 * math.pi - 2 * math.pi
    inputs = torch.rand(batch, 3, dtype=F64, generator=g) * 4 * math.pi - 2 * math.pi
    upstream = torch.randn(batch, 2**n, dtype=F64, generator=g)
    expected = values_and_grads(
        lambda s, w, x: run_circuit_reference(s, gates, w, n, inputs=x), state, weights, inputs, upstream
    )
    got = values_and_grads(
        lambda s, w, x: run_circuit(s, gates, w, n, inputs=x),
        state.to(dtype), weights.to(dtype), inputs.to(dtype), upstream.to(dtype),
    )
    for name, e, a in zip(("values", "d/dstate", "d/dweights", "d/dinputs"), expected, got):
        assert a.dtype == dtype, name
        torch.testing.assert_close(a.to(F64), e, atol=atol, rtol=0, msg=lambda m: f"{name} ({gates}): {m}")


# ---------------------------------------------------------------------------------------------------------------
# Kernels against dense matrices
# ---------------------------------------------------------------------------------------------------------------
def test_wire_0_is_the_most_significant_bit():
    # X on wire 0 of |00> gives |10>, basis index 2 (PennyLane: qml.state() after qml.PauliX(0) is [0, 0, 1, 0])
    state = zero_state(1, 2, torch.empty(0, dtype=F64))
    out = apply_ry(state, 2, 0, torch.tensor(math.pi, dtype=F64))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 1.0, 0.0]], dtype=F64), atol=1e-15, rtol=0)
    out = apply_ry(state, 2, 1, torch.tensor(math.pi, dtype=F64))
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=F64), atol=1e-15, rtol=0)
    # CNOT(0 -> 1) on |10> gives |11>; CNOT(1 -> 0) on |10> does nothing
    ten = torch.tensor([[0.0, 0.0, 1.0, 0.0]], dtype=F64)
    assert apply_cnot(ten, 2, 0, 1).tolist() == [[0.0, 0.0, 0.0, 1.0]]
    assert apply_cnot(ten, 2, 1, 0).tolist() == ten.tolist()
    # <Z_0> of |10> is -1, <Z_1> is +1
    assert expval_z(ten, 2, [0, 1]).tolist() == [[-1.0, 1.0]]


def test_dense_helpers_agree_with_kron_convention():
    # sanity of the test's own reference: CNOT(0->1) on 2 qubits is the textbook matrix
    expected = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=F64)
    assert torch.equal(cnot_matrix(2, 0, 1), expected)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_ry_kernels_match_dense(n):
    g = torch.Generator().manual_seed(n)
    state = random_states(5, n, generator=g)
    for wire in range(n):
        theta = 0.3 + 1.1 * wire
        expected = state @ on_wire(n, wire, ry_matrix(theta)).T
        torch.testing.assert_close(apply_ry(state, n, wire, torch.tensor(theta, dtype=F64)), expected)
        inplace = state.t().contiguous()  # in-place kernels act on amplitude-major (2**n, batch) states
        ry_(inplace, n, wire, *half_angle(theta))
        torch.testing.assert_close(inplace.t(), expected)


def test_ry_with_one_angle_per_row_matches_dense():
    n, g = 3, torch.Generator().manual_seed(1)
    state = random_states(4, n, generator=g)
    angles = torch.tensor([0.1, -2.0, 3.0, 5.5], dtype=F64)
    out = apply_ry(state, n, 1, angles)
    for row in range(4):
        expected = on_wire(n, 1, ry_matrix(float(angles[row]))) @ state[row]
        torch.testing.assert_close(out[row], expected)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_cnot_kernels_match_dense_for_every_pair(n):
    g = torch.Generator().manual_seed(10 + n)
    state = random_states(3, n, generator=g)
    pairs = [(c, t) for c in range(n) for t in range(n) if c != t]
    assert any(c < t for c, t in pairs) and any(c > t for c, t in pairs)
    for c, t in pairs:
        expected = state @ cnot_matrix(n, c, t).T
        torch.testing.assert_close(apply_cnot(state, n, c, t), expected, atol=0, rtol=0)
        inplace = state.t().contiguous()
        cnot_(inplace, n, c, t)
        torch.testing.assert_close(inplace.t(), expected, atol=0, rtol=0)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_fused_cnot_ry_kernel_and_its_inverse_match_dense(n):
    g = torch.Generator().manual_seed(20 + n)
    state = random_states(3, n, generator=g)
    theta = 1.234
    c_, s_ = half_angle(theta)
    for c in range(n):
        for t in range(n):
            if c == t:
                continue
            u = on_wire(n, t, ry_matrix(theta)) @ cnot_matrix(n, c, t)  # CNOT first, then RY on the target
            forward = state.t().contiguous()
            cnot_ry_(forward, n, c, t, c_, s_)
            torch.testing.assert_close(forward.t(), state @ u.T)
            backward = state.t().contiguous()
            cnot_ry_(backward, n, c, t, c_, s_, inverse=True)
            torch.testing.assert_close(backward.t(), state @ u)  # u^-1 = u^T


def test_pauli_kernel_touches_only_the_chosen_samples():
    n, g = 3, torch.Generator().manual_seed(3)
    state = random_states(5, n, generator=g)
    rows = torch.tensor([1, 3])
    for pauli, m in (("X", X), ("Z", Z)):
        out = state.t().contiguous()
        pauli_samples_(out, n, 2, rows, pauli)
        expected = state.clone()
        expected[rows] = state[rows] @ on_wire(n, 2, m).T
        torch.testing.assert_close(out.t(), expected, atol=0, rtol=0)


@pytest.mark.parametrize("sign_matrix", [True, False])
@pytest.mark.parametrize("n", [2, 3, 4])
def test_expval_z_matches_dense(monkeypatch, n, sign_matrix):
    """Small registers use a cached +-1 matrix, large ones a reduction per wire: both agree with the dense Z."""
    if not sign_matrix:
        monkeypatch.setattr(statevector_module, "SIGN_MATRIX_MAX_ENTRIES", 0)
    g = torch.Generator().manual_seed(30 + n)
    state = random_states(6, n, generator=g)
    wires = list(range(n))[::-1]  # any order
    expected = torch.stack(
        [torch.einsum("bi,ij,bj->b", state, on_wire(n, w, Z), state) for w in wires], dim=1
    )
    torch.testing.assert_close(expval_z(state, n, wires), expected)
    assert z_signs(n, wires, "cpu", F64).shape == (2**n, n)


def test_marginal_probabilities_of_leading_wires():
    n, g = 4, torch.Generator().manual_seed(4)
    state = random_states(3, n, generator=g)
    probs = (state**2).reshape(3, 2, 2, 2, 2)
    torch.testing.assert_close(marginal_probabilities(state, n, 2), probs.sum(dim=(3, 4)).reshape(3, 4))
    torch.testing.assert_close(marginal_probabilities(state, n, 1).sum(dim=1), torch.ones(3, dtype=F64))


# ---------------------------------------------------------------------------------------------------------------
# The adjoint executor against plain autograd
# ---------------------------------------------------------------------------------------------------------------
def test_compile_gates_fuses_cnot_ry_pairs_only_when_asked():
    gates = pqc_gates(3, 1, 1, "first")
    fused = compile_gates(gates, 3)
    assert [op[0] for op in fused.ops] == ["ry"] * 3 + ["cnot_ry"] * 3
    assert (fused.n_qubits, fused.n_weights, fused.n_inputs) == (3, 6, 0)
    unfused = compile_gates(gates, 3, fuse=False)
    assert [op[0] for op in unfused.ops] == ["ry"] * 3 + ["cnot", "ry"] * 3
    # an RY on another wire is not fused into the CNOT
    assert [op[0] for op in compile_gates((Gate("CNOT", (0, 1)), Gate("RY", (0,), "weight", 0)), 2).ops] == ["cnot", "ry"]


def test_compile_gates_rejects_unknown_gates():
    with pytest.raises(ValueError, match=r"unknown gate 'RX'; the ansatz uses 'RY' and 'CNOT'"):
        compile_gates((Gate("RX", (0,), "weight", 0),), 2)


@pytest.mark.parametrize("seed", range(3))
def test_random_unfused_programs_match_reference(seed):
    rng = random.Random(seed)
    for trial in range(12):
        n = rng.randrange(2, 5)
        gates = random_gates(rng, n, rng.randrange(1, 30))
        program = compile_gates(gates, n, fuse=False)
        g = torch.Generator().manual_seed(1000 * seed + trial)
        state = random_states(3, n, generator=g)
        weights = torch.randn(4, dtype=F64, generator=g) * 3
        inputs = torch.randn(3, 3, dtype=F64, generator=g) * 3
        upstream = torch.randn(3, 2**n, dtype=F64, generator=g)
        expected = values_and_grads(
            lambda s, w, x: run_circuit_reference(s, gates, w, n, inputs=x), state, weights, inputs, upstream
        )
        got = values_and_grads(lambda s, w, x: run_circuit(s, program, w, inputs=x), state, weights, inputs, upstream)
        for e, a in zip(expected, got):
            torch.testing.assert_close(a, e, atol=1e-10, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_random_ansatz_like_gate_lists_match_reference(seed):
    """Fused CNOT+RY(weight) pairs, shared weights, repeated inputs; no input RY right after a CNOT on its wire."""
    rng = random.Random(100 + seed)
    for trial in range(12):
        n = rng.randrange(2, 5)
        gates = random_gates(rng, n, rng.randrange(1, 30), input_after_cnot=False)
        compare_with_reference(gates, n, batch=rng.randrange(1, 6), seed=1000 * seed + trial)


@pytest.mark.parametrize("seed", range(3))
def test_random_gate_lists_match_reference(seed):
    """Any gate list the public API accepts, including an input-driven RY fused into the preceding CNOT."""
    rng = random.Random(200 + seed)
    for trial in range(12):
        n = rng.randrange(2, 5)
        gates = random_gates(rng, n, rng.randrange(1, 30))
        compare_with_reference(gates, n, batch=rng.randrange(1, 6), seed=1000 * seed + trial)


@pytest.mark.parametrize("control, target", [(0, 2), (1, 2), (2, 0), (2, 1)])
@pytest.mark.parametrize("batch", [1, 2, 3])
def test_cnot_followed_by_input_ry_on_its_target(control, target, batch):
    """Minimal case of the fused CNOT + per-sample RY: the (batch, 1, 1) angle column must broadcast per row."""
    gates = (Gate("CNOT", (control, target)), Gate("RY", (target,), "input", 0))
    g = torch.Generator().manual_seed(batch)
    state = random_states(batch, 3, generator=g)
    inputs = torch.rand(batch, 1, dtype=F64, generator=g) * 2 * math.pi
    no_weights = torch.zeros(0, dtype=F64)
    # forward alone first: with batch == 2**min(control, target) the wrong broadcast is silent, not an error
    torch.testing.assert_close(
        run_circuit(state, gates, no_weights, 3, inputs=inputs),
        run_circuit_reference(state, gates, no_weights, 3, inputs=inputs),
        atol=1e-12, rtol=0,
    )
    compare_with_reference(gates, 3, batch=batch, seed=batch)


def test_paper_pqc_with_reuploading_matches_reference():
    n = 4
    gates = angle_encoding_gates(n) + pqc_gates(n, 2, 2, "last") + angle_encoding_gates(n) + pqc_gates(n, 2, 2, "first")
    g = torch.Generator().manual_seed(7)
    state = zero_state(5, n, torch.empty(0, dtype=F64))
    weights = torch.randn(20, dtype=F64, generator=g)
    inputs = torch.randn(5, n, dtype=F64, generator=g)
    upstream = torch.randn(5, 2**n, dtype=F64, generator=g)
    expected = values_and_grads(
        lambda s, w, x: run_circuit_reference(s, gates, w, n, inputs=x), state, weights, inputs, upstream
    )
    got = values_and_grads(lambda s, w, x: run_circuit(s, gates, w, n, inputs=x), state, weights, inputs, upstream)
    for e, a in zip(expected, got):
        torch.testing.assert_close(a, e, atol=1e-10, rtol=0)
    # and the whole thing is one dense orthogonal matrix per row
    for row in range(5):
        u = dense_unitary(gates, n, weights, inputs[row])
        torch.testing.assert_close(got[0][row], u @ state[row], atol=1e-12, rtol=0)


def test_float32_agrees_with_float64_reference():
    rng = random.Random(5)
    for trial in range(8):
        n = rng.randrange(2, 6)
        gates = random_gates(rng, n, 40, input_after_cnot=False)
        compare_with_reference(gates, n, batch=4, seed=trial, dtype=torch.float32, atol=2e-5)


def test_gradcheck_small_circuit():
    n = 3
    gates = angle_encoding_gates(n) + pqc_gates(n, 1, 2, "first") + (Gate("RY", (1,), "input", 0), Gate("CNOT", (2, 0)))
    g = torch.Generator().manual_seed(0)
    state = random_states(2, n, generator=g).requires_grad_(True)
    weights = torch.randn(9, dtype=F64, generator=g, requires_grad=True)
    inputs = torch.randn(2, n, dtype=F64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, w, x: run_circuit(s, gates, w, n, inputs=x), (state, weights, inputs))


def test_norm_is_preserved():
    n, g = 5, torch.Generator().manual_seed(9)
    gates = angle_encoding_gates(n) + pqc_gates(n, 3, 2)
    state = random_states(7, n, generator=g)
    weights, inputs = torch.randn(35, dtype=F64, generator=g), torch.randn(7, n, dtype=F64, generator=g)
    out = run_circuit(state, gates, weights, n, inputs=inputs)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(7, dtype=F64), atol=1e-12, rtol=0)


def test_run_circuit_leaves_its_inputs_untouched_and_backward_is_repeatable():
    n, g = 3, torch.Generator().manual_seed(11)
    gates = pqc_gates(n, 2, 2)
    state = random_states(4, n, generator=g).requires_grad_(True)
    weights = torch.randn(15, dtype=F64, generator=g, requires_grad=True)
    before = state.detach().clone()
    out = run_circuit(state, gates, weights, n)
    assert torch.equal(state.detach(), before)
    upstream = torch.randn_like(out)
    first = torch.autograd.grad(out, (state, weights), upstream, retain_graph=True)
    second = torch.autograd.grad(out, (state, weights), upstream)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_non_contiguous_state_is_handled():
    n, g = 3, torch.Generator().manual_seed(12)
    gates = pqc_gates(n, 1, 2)
    state = random_states(2**n, n, generator=g).T.contiguous().T  # same values, column-major storage
    assert not state.is_contiguous()
    weights = torch.randn(9, dtype=F64, generator=g)
    torch.testing.assert_close(run_circuit(state, gates, weights, n), run_circuit_reference(state, gates, weights, n))


def test_program_can_be_reused_and_extra_weights_are_ignored():
    n = 3
    gates = pqc_gates(n, 1, 1)
    program = compile_gates(gates, n)
    state = zero_state(2, n, torch.empty(0, dtype=F64))
    weights = torch.randn(6, dtype=F64)
    longer = torch.cat((weights, torch.randn(4, dtype=F64)))
    torch.testing.assert_close(run_circuit(state, program, weights), run_circuit(state, program, longer))
    torch.testing.assert_close(run_circuit(state, program, weights), run_circuit_reference(state, gates, weights, n))


def test_run_circuit_errors():
    n = 3
    gates = pqc_gates(n, 1, 1)
    state = zero_state(2, n, torch.empty(0))
    with pytest.raises(ValueError, match="run_circuit needs n_qubits when given a gate list"):
        run_circuit(state, gates, torch.zeros(6))
    with pytest.raises(ValueError, match=r"state has shape \(2, 4\); expected \(batch, 8\) for 3 qubits"):
        run_circuit(torch.zeros(2, 4), gates, torch.zeros(6), n)
    with pytest.raises(ValueError, match=r"state has shape \(8,\)"):
        run_circuit(torch.zeros(8), gates, torch.zeros(6), n)
    with pytest.raises(ValueError, match=r"weights has shape \(5,\); the circuit reads 6 angles"):
        run_circuit(state, gates, torch.zeros(5), n)
    with pytest.raises(ValueError, match=r"weights has shape \(2, 3\)"):
        run_circuit(state, gates, torch.zeros(2, 3), n)
    encoding = angle_encoding_gates(n)
    with pytest.raises(ValueError, match="the circuit encodes 3 input features per sample; pass inputs="):
        run_circuit(state, encoding, torch.zeros(0), n)
    with pytest.raises(ValueError, match=r"inputs has shape \(2, 2\); expected \(2, >= 3\)"):
        run_circuit(state, encoding, torch.zeros(0), n, inputs=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"inputs has shape \(3, 3\); expected \(2, >= 3\)"):
        run_circuit(state, encoding, torch.zeros(0), n, inputs=torch.zeros(3, 3))


def test_run_circuit_rejects_one_dimensional_inputs_with_a_value_error():
    """One feature vector without its batch axis: the shape check should name it, not crash on ``shape[1]``."""
    n = 3
    with pytest.raises(ValueError, match=r"inputs has shape \(2,\); expected \(2, >= 3\)"):
        run_circuit(zero_state(2, n, torch.empty(0)), angle_encoding_gates(n), torch.zeros(0), n, inputs=torch.zeros(2))


# ---------------------------------------------------------------------------------------------------------------
# Amplitude encoding
# ---------------------------------------------------------------------------------------------------------------
def test_amplitude_encode_exact_fit_normalises():
    x = torch.tensor([[3.0, 0.0, 4.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=F64)
    out = amplitude_encode(x, 2)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.0, 0.8, 0.0], [0.5, 0.5, 0.5, 0.5]], dtype=F64))
    # any fit is accepted when the size is already right
    for fit in ("pad", "truncate", "project", None):
        torch.testing.assert_close(amplitude_encode(x, 2, fit=fit), out)


def test_amplitude_encode_pad():
    out = amplitude_encode(torch.tensor([[3.0, 4.0, 0.0]]), 3, fit="pad")
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8, 0, 0, 0, 0, 0, 0]]))


def test_amplitude_encode_truncate_drops_trailing_features_before_normalising():
    x = torch.tensor([[1.0, 2.0, 2.0, 0.0, 100.0, -7.0]])
    torch.testing.assert_close(amplitude_encode(x, 2, fit="truncate"), torch.tensor([[1 / 3, 2 / 3, 2 / 3, 0.0]]))


@pytest.mark.parametrize("d, n, fit", [(5, 2, None), (5, 2, "pad"), (3, 2, "truncate"), (3, 2, "project"), (3, 2, "bogus")])
def test_amplitude_encode_size_mismatch_names_d_q_and_the_choices(d, n, fit):
    message = (
        rf"cannot amplitude-encode d={d} features into {n} qubits \(2\*\*{n}=4 amplitudes\) with amplitude_fit={fit!r}; "
        r"choose 'pad' \(needs d < 4\), 'truncate' \(needs d > 4\) or 'project' \(a learned Linear\(d -> 4\)\)"
    )
    with pytest.raises(ValueError, match=message):
        amplitude_encode(torch.ones(2, d), n, fit=fit)


def test_amplitude_encode_rejects_zero_vectors():
    x = torch.ones(4, 4)
    x[1] = 0
    x[3] = 0
    with pytest.raises(ValueError, match=r"cannot amplitude-encode a zero vector: rows \[1, 3\] have norm 0"):
        amplitude_encode(x, 2)
    # zero after padding too
    with pytest.raises(ValueError, match=r"rows \[0\]"):
        amplitude_encode(torch.zeros(1, 3), 2, fit="pad")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_amplitude_encode_rejects_non_finite(bad):
    x = torch.ones(3, 4)
    x[2, 1] = bad
    with pytest.raises(ValueError, match=r"amplitude_encode input has non-finite values \(NaN or inf\) in rows \[2\]"):
        amplitude_encode(x, 2)


def test_amplitude_encode_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"amplitude_encode expects \(batch, features\); got shape \(4,\)"):
        amplitude_encode(torch.ones(4), 2)


def test_check_finite_lists_rows():
    x = torch.zeros(12, 2)
    x[[0, 5, 11], 1] = float("nan")
    with pytest.raises(ValueError, match=r"^thing has non-finite values \(NaN or inf\) in rows \[0, 5, 11\]$"):
        check_finite(x, "thing")
    check_finite(torch.zeros(3, 2), "fine")


# ---------------------------------------------------------------------------------------------------------------
# dtype and device
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_are_preserved(device, dtype):
    n = 3
    like = torch.empty(0, dtype=dtype, device=device)
    start = zero_state(4, n, like)
    assert start.dtype == dtype and start.device.type == device
    assert start[:, 0].tolist() == [1.0] * 4 and start.sum().item() == 4
    encoded = amplitude_encode(torch.randn(4, 6, dtype=dtype, device=device), n, fit="pad")
    assert encoded.dtype == dtype and encoded.device.type == device
    gates = angle_encoding_gates(n) + pqc_gates(n, 1, 2)
    weights = torch.randn(9, dtype=dtype, device=device, requires_grad=True)
    inputs = torch.randn(4, n, dtype=dtype, device=device, requires_grad=True)
    out = run_circuit(encoded, gates, weights, n, inputs=inputs)
    assert out.dtype == dtype and out.device.type == device
    z = expval_z(out, n, [0, 1])
    assert z.dtype == dtype and z.device.type == device and z.shape == (4, 2)
    z.sum().backward()
    assert weights.grad.dtype == dtype and weights.grad.device.type == device
    assert inputs.grad.dtype == dtype and inputs.grad.device.type == device

    def as_cpu64(t):
        return t.detach().double().cpu()

    reference = run_circuit_reference(as_cpu64(encoded), gates, as_cpu64(weights), n, as_cpu64(inputs))
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(as_cpu64(out), reference, atol=atol, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# Monte-Carlo noise trajectories
# ---------------------------------------------------------------------------------------------------------------
def test_depolarizing_active_flag():
    assert not Depolarizing().active
    assert Depolarizing(p1=0.1).active and Depolarizing(p2=0.1).active


def test_inactive_noise_equals_noiseless_and_allows_fusion():
    n = 3
    gates = pqc_gates(n, 1, 2)
    state = random_states(3, n)
    weights = torch.randn(9, dtype=F64)
    program = compile_gates(gates, n)  # fused
    inactive = run_circuit(state, program, weights, noise=Depolarizing())
    torch.testing.assert_close(inactive, run_circuit(state, program, weights))


def test_noise_with_a_fused_program_is_an_error():
    n = 3
    program = compile_gates(pqc_gates(n, 1, 1), n)
    with pytest.raises(ValueError, match=r"noisy trajectories need an unfused program: compile_gates\(..., fuse=False\)"):
        run_circuit(zero_state(1, n, torch.empty(0)), program, torch.zeros(6), noise=Depolarizing(p1=0.1))


def test_noise_with_a_gate_list_compiles_unfused():
    n = 3
    gates = pqc_gates(n, 1, 1)
    noise = Depolarizing(0.2, 0.2, torch.Generator().manual_seed(0))
    out = run_circuit(zero_state(4, n, torch.empty(0)), gates, torch.zeros(6), n, noise=noise)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))


def _noisy(gates, n, p1, p2, seed):
    program = compile_gates(gates, n, fuse=False)

    def fn(state, weights, inputs):  # a fresh, equally seeded generator per call: the same sampled errors
        noise = Depolarizing(p1, p2, torch.Generator().manual_seed(seed))
        return run_circuit(state, program, weights, inputs=inputs, noise=noise)

    return fn


def test_noisy_trajectories_are_reproducible_and_noisy():
    n = 3
    gates = angle_encoding_gates(n) + pqc_gates(n, 2, 2)
    g = torch.Generator().manual_seed(0)
    state = random_states(64, n, generator=g)
    weights, inputs = torch.randn(15, dtype=F64, generator=g), torch.randn(64, n, dtype=F64, generator=g)
    a = _noisy(gates, n, 0.02, 0.03, seed=1)(state, weights, inputs)
    b = _noisy(gates, n, 0.02, 0.03, seed=1)(state, weights, inputs)
    c = _noisy(gates, n, 0.02, 0.03, seed=2)(state, weights, inputs)
    exact = run_circuit(state, gates, weights, n, inputs=inputs)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    hit = ~torch.isclose(a, exact).all(dim=1)
    assert 0 < hit.sum() < 64  # some rows got an error, some did not
    torch.testing.assert_close(a.norm(dim=1), torch.ones(64, dtype=F64))


def test_noisy_trajectory_gradcheck_with_seeded_generator():
    n = 3
    gates = angle_encoding_gates(n) + pqc_gates(n, 1, 2, "first")
    g = torch.Generator().manual_seed(4)
    state = random_states(6, n, generator=g).requires_grad_(True)
    weights = torch.randn(9, dtype=F64, generator=g, requires_grad=True)
    inputs = torch.randn(6, n, dtype=F64, generator=g, requires_grad=True)
    fn = _noisy(gates, n, 0.3, 0.4, seed=3)
    assert not torch.allclose(fn(state, weights, inputs), run_circuit(state, gates, weights, n, inputs=inputs))
    assert torch.autograd.gradcheck(fn, (state, weights, inputs))


def test_noisy_trajectory_equals_the_reference_with_its_errors_inserted():
    """Replay: with p1 = 1 every RY is followed by X, Y or Z; rebuild that trajectory by hand with dense matrices."""
    n = 2
    gates = (Gate("RY", (0,), "weight", 0), Gate("CNOT", (0, 1)), Gate("RY", (1,), "weight", 1))
    weights = torch.tensor([0.7, -1.3], dtype=F64)
    state = zero_state(300, n, weights)
    out = _noisy(gates, n, 1.0, 0.0, seed=5)(state, weights, torch.zeros(300, 0, dtype=F64))
    y = X @ Z  # Y up to the global phase i
    candidates = set()
    for pa in (X, y, Z):
        for pb in (X, y, Z):
            first = on_wire(n, 0, pa) @ on_wire(n, 0, ry_matrix(0.7))
            u = on_wire(n, 1, pb) @ on_wire(n, 1, ry_matrix(-1.3)) @ cnot_matrix(n, 0, 1) @ first
            candidates.add(tuple(round(v, 9) for v in (u[:, 0] ** 2).tolist()))
    seen = {tuple(round(v, 9) for v in (row**2).tolist()) for row in out}
    assert seen <= candidates
    assert len(seen) >= 3


@pytest.mark.parametrize("chunk_amplitudes", [2**4, 2**5 + 3])
def test_chunked_batches_match_reference(monkeypatch, chunk_amplitudes):
    """On a CPU the executor splits the batch into cache-sized chunks: values and all gradients are unchanged,
    including chunks of different sizes (7 rows of 8 amplitudes in chunks of 2 or 4 rows)."""
    import modeling_qllm.statevector as statevector

    monkeypatch.setattr(statevector, "CPU_CHUNK_AMPLITUDES", chunk_amplitudes)
    monkeypatch.setattr(statevector, "CPU_MIN_CHUNK_ROW_BYTES", 1)
    assert len(statevector._chunks(7, 3, torch.device("cpu"))) > 1
    rng = random.Random(7)
    for trial in range(4):
        compare_with_reference(random_gates(rng, 3, 20), 3, batch=7, seed=trial)


def test_chunked_noisy_trajectories_keep_gradients_exact(monkeypatch):
    import modeling_qllm.statevector as statevector

    monkeypatch.setattr(statevector, "CPU_CHUNK_AMPLITUDES", 2**4)
    monkeypatch.setattr(statevector, "CPU_MIN_CHUNK_ROW_BYTES", 1)
    gates = angle_encoding_gates(3) + pqc_gates(3, 1, 2, "first")
    program = compile_gates(gates, 3, fuse=False)
    g = torch.Generator().manual_seed(0)
    state = random_states(5, 3, generator=g).requires_grad_()
    weights = torch.rand(num_weights(gates), dtype=F64, generator=g).requires_grad_()
    inputs = torch.rand(5, 3, dtype=F64, generator=g).requires_grad_()
    noisy = lambda s, w, x: run_circuit(s, program, w, inputs=x, noise=Depolarizing(0.3, 0.3, torch.Generator().manual_seed(3)))
    assert torch.autograd.gradcheck(noisy, (state, weights, inputs))


def test_chunks_on_several_threads_give_bit_identical_values_and_gradients(monkeypatch):
    """With the C kernels the chunks run on torch.get_num_threads() threads; results must not depend on it."""
    import modeling_qllm.statevector as statevector

    monkeypatch.setattr(statevector, "CPU_CHUNK_AMPLITUDES", 2**4)
    monkeypatch.setattr(statevector, "CPU_MIN_CHUNK_ROW_BYTES", 1)
    gates = angle_encoding_gates(4) + pqc_gates(4, 2, 2, "last")
    g = torch.Generator().manual_seed(0)
    state = random_states(37, 4, generator=g)
    weights = torch.rand(num_weights(gates), dtype=F64, generator=g)
    inputs = torch.rand(37, 4, dtype=F64, generator=g)
    results = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            s, w, x = (t.clone().requires_grad_() for t in (state, weights, inputs))
            out = run_circuit(s, gates, w, n_qubits=4, inputs=x)
            (out * torch.linspace(-1, 1, 16, dtype=F64)).sum().backward()
            results.append([out.detach(), s.grad, w.grad, x.grad])
    finally:
        torch.set_num_threads(previous)
    for first, second in zip(*results):
        assert torch.equal(first, second)
