"""Shots, readout error and depolarizing gate noise: statistics of the estimators, the exact density matrix against
an independent dense Kraus-operator simulation, and trajectories against the density matrix."""

import doctest
import itertools
import math

import pytest
import torch

import modeling_qllm.noise as noise_module
from modeling_qllm.circuits import Gate, angle_encoding_gates, pqc_gates
from modeling_qllm.noise import (
    DENSITY_MATRIX_MAX_QUBITS,
    NOISE_METHOD_CHOICES,
    NOISE_SCOPE_CHOICES,
    NoiseModel,
    apply_readout_error,
    density_matrix_probabilities,
    measure_probabilities,
    measure_z,
    sample_counts,
)
from modeling_qllm.statevector import Depolarizing, compile_gates, expval_z, run_circuit, zero_state

F64 = torch.float64
C128 = torch.complex128


def random_states(batch, n, generator):
    s = torch.randn(batch, 2**n, dtype=F64, generator=generator)
    return s / s.norm(dim=1, keepdim=True)


def small_circuit(n=3):
    """Encoding, a PQC, lone CNOTs and RYs on both sides of a CNOT: every gate kind the noise sees."""
    return angle_encoding_gates(n) + pqc_gates(n, 1, 2, "first") + (Gate("CNOT", (2, 0)), Gate("RY", (1,), "input", 0))


# ---------------------------------------------------------------------------------------------------------------
# An independent dense Kraus-operator simulator (complex, textbook matrices, torch.kron; wire 0 most significant)
# ---------------------------------------------------------------------------------------------------------------
PAULI = {
    "I": torch.eye(2, dtype=C128),
    "X": torch.tensor([[0, 1], [1, 0]], dtype=C128),
    "Y": torch.tensor([[0, -1j], [1j, 0]], dtype=C128),
    "Z": torch.tensor([[1, 0], [0, -1]], dtype=C128),
}


def kron_on(n, ops):
    """Tensor product with ``ops[w]`` on wire ``w`` and the identity elsewhere."""
    out = torch.ones(1, 1, dtype=C128)
    for w in range(n):
        out = torch.kron(out, ops.get(w, PAULI["I"]))
    return out


def dense_gate(n, gate, weights, inputs_row):
    if gate.name == "CNOT":
        c, t = gate.wires
        p0 = torch.tensor([[1, 0], [0, 0]], dtype=C128)
        p1 = torch.tensor([[0, 0], [0, 1]], dtype=C128)
        return kron_on(n, {c: p0}) + kron_on(n, {c: p1, t: PAULI["X"]})
    theta = float(weights[gate.index] if gate.source == "weight" else inputs_row[gate.index])
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return kron_on(n, {gate.wires[0]: torch.tensor([[c, -s], [s, c]], dtype=C128)})


def kraus_depolarizing(n, wires, p):
    letters = list(itertools.product("IXYZ", repeat=len(wires)))
    ops = [math.sqrt(1 - p) * kron_on(n, {})]
    for word in letters[1:]:  # every non-identity Pauli word, equally likely
        ops.append(math.sqrt(p / (len(letters) - 1)) * kron_on(n, {w: PAULI[l] for w, l in zip(wires, word)}))
    return ops


def kraus_probabilities(state_row, gates, weights, n, inputs_row, p1, p2):
    psi = state_row.to(C128)
    rho = torch.outer(psi, psi.conj())
    for gate in gates:
        u = dense_gate(n, gate, weights, inputs_row)
        rho = u @ rho @ u.conj().T
        kraus = kraus_depolarizing(n, gate.wires, p2 if gate.name == "CNOT" else p1)
        assert torch.allclose(sum(k.conj().T @ k for k in kraus), torch.eye(2**n, dtype=C128))  # trace preserving
        rho = sum(k @ rho @ k.conj().T for k in kraus)
    return torch.diagonal(rho).real


def test_docstring_examples():
    assert doctest.testmod(noise_module).failed == 0


# ---------------------------------------------------------------------------------------------------------------
# NoiseModel validation
# ---------------------------------------------------------------------------------------------------------------
def test_defaults_are_exact():
    model = NoiseModel()
    assert model.shots is None and not model.gate_noise and model.readout_error == 0
    assert (model.scope, model.method) == ("qpu", "auto")
    assert NOISE_SCOPE_CHOICES == ("qpu", "all")
    assert NOISE_METHOD_CHOICES == ("auto", "density_matrix", "trajectories")


@pytest.mark.parametrize("shots", [0, -1, True, False, 2.5, "100"])
def test_bad_shots(shots):
    with pytest.raises(ValueError, match=rf"shots={shots!r}; expected None \(exact expectations\) or a positive integer"):
        NoiseModel(shots=shots)


@pytest.mark.parametrize("field", ["depolarizing_1q", "depolarizing_2q", "readout_error"])
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "0.1", None])
def test_probabilities_outside_unit_interval(field, value):
    with pytest.raises(ValueError, match=rf"^{field}=.*; expected a probability in \[0, 1\]$"):
        NoiseModel(**{field: value})


@pytest.mark.parametrize("field", ["depolarizing_1q", "depolarizing_2q", "readout_error"])
def test_probability_bounds_are_inclusive(field):
    NoiseModel(**{field: 0})
    NoiseModel(**{field: 1.0})


def test_bad_scope_and_method():
    with pytest.raises(ValueError, match=r"noise_scope='qpus'; expected one of \('qpu', 'all'\)"):
        NoiseModel(scope="qpus")
    methods = r"\('auto', 'density_matrix', 'trajectories'\)"
    with pytest.raises(ValueError, match=rf"noise_method='exact'; expected one of {methods}"):
        NoiseModel(method="exact")


def test_method_selection():
    auto = NoiseModel(depolarizing_1q=0.1)
    assert auto.gate_noise and NoiseModel(depolarizing_2q=0.1).gate_noise
    assert auto.uses_density_matrix(DENSITY_MATRIX_MAX_QUBITS)
    assert not auto.uses_density_matrix(DENSITY_MATRIX_MAX_QUBITS + 1)
    assert NoiseModel(method="density_matrix").uses_density_matrix(12)
    assert not NoiseModel(method="trajectories").uses_density_matrix(2)


def test_measured_wires_must_be_leading():
    state = zero_state(1, 3, torch.empty(0, dtype=F64))
    with pytest.raises(ValueError, match=r"measured wires must be the leading wires 0..k-1; got \[1\]"):
        measure_z(state, 3, [1], None)
    with pytest.raises(ValueError, match=r"got \[1, 0\]"):
        NoiseModel().expval(state, pqc_gates(3, 1, 1), torch.zeros(6, dtype=F64), 3, [1, 0])


def test_density_matrix_refuses_large_registers():
    with pytest.raises(ValueError, match=r"a density matrix of 13 qubits has 4\*\*13 entries per sample; use trajectories"):
        density_matrix_probabilities(zero_state(1, 13, torch.empty(0)), (), torch.zeros(0), 13, None, 0.1, 0.1)


# ---------------------------------------------------------------------------------------------------------------
# Exact paths
# ---------------------------------------------------------------------------------------------------------------
def test_noiseless_model_equals_exact_expectations():
    n, g = 3, torch.Generator().manual_seed(0)
    gates = small_circuit(n)
    state = random_states(4, n, g)
    weights, inputs = torch.randn(9, dtype=F64, generator=g), torch.randn(4, n, dtype=F64, generator=g)
    exact = expval_z(run_circuit(state, gates, weights, n, inputs=inputs), n, [0, 1])
    torch.testing.assert_close(NoiseModel().expval(state, gates, weights, n, [0, 1], inputs=inputs), exact)
    # active=False ignores shots, gate noise and readout error alike
    noisy = NoiseModel(shots=3, depolarizing_1q=0.3, depolarizing_2q=0.3, readout_error=0.2)
    torch.testing.assert_close(noisy.expval(state, gates, weights, n, [0, 1], inputs=inputs, active=False), exact)


def test_density_matrix_without_noise_equals_pure_state():
    n, g = 3, torch.Generator().manual_seed(1)
    gates = small_circuit(n)
    state = random_states(5, n, g)
    weights, inputs = torch.randn(9, dtype=F64, generator=g), torch.randn(5, n, dtype=F64, generator=g)
    probs = density_matrix_probabilities(state, gates, weights, n, inputs, 0.0, 0.0)
    pure = run_circuit(state, gates, weights, n, inputs=inputs) ** 2
    torch.testing.assert_close(probs, pure, atol=1e-12, rtol=0)


@pytest.mark.parametrize("p1, p2", [(0.1, 0.2), (0.0, 0.5), (0.3, 0.0), (1.0, 1.0)])
def test_density_matrix_matches_dense_kraus_simulation(p1, p2):
    n, g = 3, torch.Generator().manual_seed(2)
    gates = small_circuit(n)
    state = random_states(2, n, g)
    weights, inputs = torch.randn(9, dtype=F64, generator=g), torch.randn(2, n, dtype=F64, generator=g)
    probs = density_matrix_probabilities(state, gates, weights, n, inputs, p1, p2)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, dtype=F64), atol=1e-12, rtol=0)  # trace 1
    assert (probs >= -1e-12).all()
    for row in range(2):
        expected = kraus_probabilities(state[row], gates, weights, n, inputs[row], p1, p2)
        torch.testing.assert_close(probs[row], expected, atol=1e-12, rtol=0)


def test_single_cnot_with_certain_two_qubit_error():
    """Hand count: after CNOT on |00> with p2 = 1, 3 of the 15 Paulis (IZ, ZI, ZZ) leave |00>, 4 lead to each other."""
    start = zero_state(1, 2, torch.empty(0, dtype=F64))
    probs = density_matrix_probabilities(start, (Gate("CNOT", (0, 1)),), torch.zeros(0), 2, None, 0.0, 1.0)
    torch.testing.assert_close(probs, torch.tensor([[3, 4, 4, 4]], dtype=F64) / 15)


def test_density_matrix_gradients():
    n, g = 2, torch.Generator().manual_seed(3)
    gates = angle_encoding_gates(n) + pqc_gates(n, 1, 1)
    state = random_states(2, n, g).requires_grad_(True)
    weights = torch.randn(4, dtype=F64, generator=g, requires_grad=True)
    inputs = torch.randn(2, n, dtype=F64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s, w, x: density_matrix_probabilities(s, gates, w, n, x, 0.1, 0.2), (state, weights, inputs)
    )


# ---------------------------------------------------------------------------------------------------------------
# Readout error
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("r", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_readout_error_scales_expectations_exactly(r):
    n, g = 3, torch.Generator().manual_seed(4)
    gates = small_circuit(n)
    state = random_states(4, n, g)
    weights, inputs = torch.randn(9, dtype=F64, generator=g), torch.randn(4, n, dtype=F64, generator=g)
    exact = NoiseModel().expval(state, gates, weights, n, [0, 1], inputs=inputs)
    got = NoiseModel(readout_error=r).expval(state, gates, weights, n, [0, 1], inputs=inputs)
    torch.testing.assert_close(got, (1 - 2 * r) * exact, atol=1e-12, rtol=0)
    # with gate noise too (density-matrix path): readout acts after it
    rates = dict(depolarizing_1q=0.1, depolarizing_2q=0.1)
    gate_noise = NoiseModel(**rates).expval(state, gates, weights, n, [0, 1], inputs=inputs)
    both = NoiseModel(readout_error=r, **rates).expval(state, gates, weights, n, [0, 1], inputs=inputs)
    torch.testing.assert_close(both, (1 - 2 * r) * gate_noise, atol=1e-12, rtol=0)


def test_readout_error_flips_bits_independently():
    probs = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64)  # |00>
    r = 0.1
    expected = torch.tensor([[(1 - r) ** 2, (1 - r) * r, r * (1 - r), r * r]], dtype=F64)
    torch.testing.assert_close(apply_readout_error(probs, 2, r), expected)


# ---------------------------------------------------------------------------------------------------------------
# Shots
# ---------------------------------------------------------------------------------------------------------------
def test_sample_counts_add_up_and_follow_zero_probabilities():
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype=F64)
    counts = sample_counts(probs, 37, torch.Generator().manual_seed(0))
    assert counts.dtype == F64 and counts.shape == (2, 4)
    assert counts.sum(dim=1).tolist() == [37.0, 37.0]
    assert counts[0, 2:].tolist() == [0.0, 0.0] and counts[1].tolist() == [0.0, 0.0, 0.0, 37.0]


@pytest.mark.parametrize("shots", [1, 10, 100])
@pytest.mark.parametrize("readout", [0.0, 0.1])
def test_shot_estimator_is_unbiased_with_the_binomial_variance(shots, readout):
    """R independent estimates of two <Z> from S shots: mean -> <Z>, variance -> (1 - <Z>^2) / S.

    Tolerances come from standard errors: the mean's is sqrt(var / R); the sample variance's is
    sqrt((m4 - var^2) / R) with m4 the fourth central moment, estimated from the same samples. At 6 standard errors a
    false alarm is about a 1e-8 event, while with R = 20000 a bias of 0.05 at S = 1 (0.005 at S = 100) or a variance
    off by 10 % (a wrongly scaled estimator, or S - 1 in place of S at S = 10) is caught.
    """
    n, repeats = 3, 20000
    gates = pqc_gates(n, 1, 2)
    weights = torch.tensor([0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0], dtype=F64)
    state = zero_state(1, n, weights).expand(repeats, -1)
    model = NoiseModel(shots=shots, readout_error=readout, generator=torch.Generator().manual_seed(shots))
    estimates = model.expval(state, gates, weights, n, [0, 1])
    exact = NoiseModel(readout_error=readout).expval(state[:1], gates, weights, n, [0, 1])[0]
    assert (exact.abs() < 0.9).all() and (exact.abs() > 0.2).all()  # a non-trivial operating point
    # every estimate is a sample mean of +-1 outcomes
    # (a sum of S terms +-1: an integer of the parity of S, up to the rounding of the straight-through sum)
    total = torch.round(estimates * shots)
    torch.testing.assert_close(estimates * shots, total, atol=1e-9, rtol=0)
    assert ((total - shots) % 2 == 0).all()
    var = (1 - exact**2) / shots
    mean_se = (var / repeats).sqrt()
    assert ((estimates.mean(dim=0) - exact).abs() < 6 * mean_se).all(), (estimates.mean(dim=0), exact, mean_se)
    centred = estimates - estimates.mean(dim=0)
    var_se = (((centred**4).mean(dim=0) - var**2).clamp_min(0) / repeats).sqrt()
    assert (var_se < 0.03 * var).all()  # the test has the power claimed above
    assert ((estimates.var(dim=0) - var).abs() < 6 * var_se).all(), (estimates.var(dim=0), var, var_se)


def test_shot_noise_shrinks_like_one_over_square_root_of_shots():
    n = 2
    gates = pqc_gates(n, 1, 1)
    weights = torch.tensor([1.0, 0.5, -0.7, 0.3], dtype=F64)
    state = zero_state(2000, n, weights)
    spread = {}
    for shots in (16, 1024):
        model = NoiseModel(shots=shots, generator=torch.Generator().manual_seed(0))
        spread[shots] = model.expval(state, gates, weights, n, [0]).std().item()
    assert 5 < spread[16] / spread[1024] < 11  # sqrt(64) = 8


def test_shots_are_reproducible_with_a_seeded_generator():
    n = 3
    gates = pqc_gates(n, 1, 1)
    weights = torch.linspace(-1, 1, 6, dtype=F64)
    state = zero_state(8, n, weights)
    a = NoiseModel(shots=5, generator=torch.Generator().manual_seed(7)).expval(state, gates, weights, n, [0])
    b = NoiseModel(shots=5, generator=torch.Generator().manual_seed(7)).expval(state, gates, weights, n, [0])
    assert torch.equal(a, b)


@pytest.mark.parametrize("gate_noise", [False, True])
def test_straight_through_gradient_equals_the_exact_gradient(gate_noise):
    n, g = 3, torch.Generator().manual_seed(5)
    gates = small_circuit(n)
    state = random_states(6, n, g)
    inputs0 = torch.randn(6, n, dtype=F64, generator=g)
    weights0 = torch.randn(9, dtype=F64, generator=g)
    rates = dict(depolarizing_1q=0.05, depolarizing_2q=0.1) if gate_noise else {}
    upstream = torch.randn(6, 2, dtype=F64, generator=g)

    def value_and_grads(model):
        weights, inputs = weights0.clone().requires_grad_(True), inputs0.clone().requires_grad_(True)
        z = model.expval(state, gates, weights, n, [0, 1], inputs=inputs)
        return (z.detach(),) + torch.autograd.grad((z * upstream).sum(), (weights, inputs))

    exact = value_and_grads(NoiseModel(readout_error=0.1, **rates))
    sampled = value_and_grads(NoiseModel(shots=7, readout_error=0.1, generator=torch.Generator().manual_seed(0), **rates))
    assert not torch.allclose(sampled[0], exact[0])  # the forward value is the sample...
    torch.testing.assert_close(sampled[1], exact[1], atol=1e-12, rtol=0)  # ...the gradient that of the exact value
    torch.testing.assert_close(sampled[2], exact[2], atol=1e-12, rtol=0)


def test_measure_probabilities_on_full_and_marginal_distributions():
    n, g = 3, torch.Generator().manual_seed(6)
    state = random_states(4, n, g)
    probs = state**2
    expected = expval_z(state, n, [0, 1])
    torch.testing.assert_close(measure_probabilities(probs, n, [0, 1], None), expected)
    marginal = probs.reshape(4, 4, 2).sum(dim=2)
    torch.testing.assert_close(measure_probabilities(marginal, 2, [0, 1], None, marginal=True), expected)
    torch.testing.assert_close(measure_z(state, n, [0, 1], NoiseModel(shots=3), exact=True), expected)


# ---------------------------------------------------------------------------------------------------------------
# Trajectories against the density matrix
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p1, p2", [(0.05, 0.1), (0.3, 0.5)])
def test_trajectories_converge_to_the_density_matrix(p1, p2):
    n, rows = 3, 4000
    g = torch.Generator().manual_seed(8)
    gates = small_circuit(n)
    state = random_states(1, n, g)
    weights, inputs = torch.randn(9, dtype=F64, generator=g), torch.randn(1, n, dtype=F64, generator=g)
    exact = density_matrix_probabilities(state, gates, weights, n, inputs, p1, p2)[0]
    noiseless = density_matrix_probabilities(state, gates, weights, n, inputs, 0.0, 0.0)[0]
    generator = torch.Generator().manual_seed(9)
    model = NoiseModel(depolarizing_1q=p1, depolarizing_2q=p2, method="trajectories", generator=generator)
    # every measured wire: the trajectory average of <Z> against the density matrix's, within 5 standard errors
    z = model.expval(state.expand(rows, -1), gates, weights, n, [0, 1, 2], inputs=inputs.expand(rows, -1))
    z_exact = NoiseModel(depolarizing_1q=p1, depolarizing_2q=p2, method="density_matrix").expval(
        state, gates, weights, n, [0, 1, 2], inputs=inputs
    )[0]
    se = z.std(dim=0) / math.sqrt(rows)
    assert ((z.mean(dim=0) - z_exact).abs() < 5 * se + 1e-9).all(), (z.mean(dim=0), z_exact, se)
    # and the full distribution: the noise moves it away from the pure result, the trajectories follow
    program = compile_gates(gates, n, fuse=False)
    out = run_circuit(state.expand(rows, -1), program, weights, inputs=inputs.expand(rows, -1),
                      noise=Depolarizing(p1, p2, torch.Generator().manual_seed(10)))
    probs = out**2
    se = probs.std(dim=0) / math.sqrt(rows)
    assert ((probs.mean(dim=0) - exact).abs() < 5 * se + 1e-9).all(), (probs.mean(dim=0), exact, se)
    assert (exact - noiseless).abs().max() > 10 * se.max()  # the test can tell noise from no noise


def test_noisy_expval_backpropagates_on_both_methods():
    n, g = 3, torch.Generator().manual_seed(11)
    gates = small_circuit(n)
    state = random_states(4, n, g)
    for method in ("density_matrix", "trajectories"):
        weights = torch.randn(9, dtype=F64, generator=g, requires_grad=True)
        inputs = torch.randn(4, n, dtype=F64, generator=g, requires_grad=True)
        model = NoiseModel(shots=20, depolarizing_1q=0.05, depolarizing_2q=0.05, readout_error=0.02, method=method)
        z = model.expval(state, gates, weights, n, [0], inputs=inputs)
        assert z.shape == (4, 1) and z.dtype == F64
        z.sum().backward()
        assert torch.isfinite(weights.grad).all() and weights.grad.abs().sum() > 0
        assert torch.isfinite(inputs.grad).all() and inputs.grad.abs().sum() > 0
