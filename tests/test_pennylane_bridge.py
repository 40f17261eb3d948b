"""The PennyLane bridge: our simulator and PennyLane run the same gate lists and must agree to float precision.

Hardware plugins (``ionq.simulator``, ``qiskit.remote``, ...) are not installed here and need network access and
credentials, so they cannot be tested: the bridge only passes the device name through to ``qml.device`` (checked
below by the error PennyLane raises for an unknown name), and every gate it queues is an ``RY`` or a ``CNOT``, which
all of them accept.
"""

import random

import pytest
import torch

pytest.importorskip("pennylane")

import pennylane as qml  # noqa: E402

from modeling_qllm.circuits import Gate, angle_encoding_gates, pqc_gates  # noqa: E402
from modeling_qllm.heads import QuantumHead, merged_width  # noqa: E402
from modeling_qllm.noise import NoiseModel  # noqa: E402
from modeling_qllm.pennylane_bridge import (  # noqa: E402
    circuit_qnode,
    draw,
    draw_head,
    gates_to_pennylane,
    head_to_pennylane,
    noise_rates,
    run_qnode,
    two_qubit_depolarizing_kraus,
)
from modeling_qllm.statevector import Depolarizing, amplitude_encode, expval_z, run_circuit  # noqa: E402

DTYPE = torch.float64
ATOL = 1e-6


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------
def random_head_kwargs(rng: random.Random) -> dict:
    """Random but small head settings covering every switch of the head."""
    while True:
        num_encoders = rng.randint(1, 3)
        encoder_qubits = rng.randint(2, 4)
        merge = rng.choice(["concat", "mean", "sum"])
        width = merged_width(num_encoders, encoder_qubits, merge)
        if width <= 8:
            break
    fit = rng.choice(["pad", "truncate", "project"])
    size = 2**encoder_qubits
    embedding_size = {
        "pad": rng.randint(max(1, size // 2), size),
        "truncate": rng.randint(size + 1, 2 * size),
        "project": rng.randint(2, 12),
    }[fit]
    return dict(
        embedding_size=embedding_size,
        num_labels=rng.randint(1, 3),
        num_encoders=num_encoders,
        encoder_qubits=encoder_qubits,
        encoder_layers=rng.randint(0, 2),
        encoder_connectivity=rng.randint(1, encoder_qubits - 1),
        amplitude_fit=fit,
        merge=merge,
        reupload_blocks=rng.randint(1, 3),
        reupload_layers=rng.randint(0, 2),
        reupload_connectivity=rng.randint(1, min(3, width - 1)),
        share_reupload_weights=rng.random() < 0.5,
        final_layers=rng.randint(0, 2),
        final_connectivity=rng.randint(1, min(3, width - 1)),
        extra_column=rng.choice(["first", "last", "none"]),
        measured_qubits=rng.randint(1, min(width, 3)),
        angle_scale=rng.choice([torch.pi, 1.0, 0.5]),
        encoder_strategy=rng.choice(["auto", "gates", "matrix"]),
    )


def make_head(seed: int, **overrides) -> QuantumHead:
    kwargs = random_head_kwargs(random.Random(seed))
    kwargs.update(overrides)
    # Keep the random settings that were not overridden valid for the overridden register sizes.
    width = merged_width(kwargs["num_encoders"], kwargs["encoder_qubits"], kwargs["merge"])
    limits = {"encoder_connectivity": kwargs["encoder_qubits"] - 1, "reupload_connectivity": width - 1,
              "final_connectivity": width - 1, "measured_qubits": width}
    for name, limit in limits.items():
        if name not in overrides:
            kwargs[name] = min(kwargs[name], limit)
    torch.manual_seed(seed)
    return QuantumHead(**kwargs).to(DTYPE)


def random_gates(rng: random.Random, n_qubits: int, n_gates: int, n_inputs: int = 0):
    gates, k = [], 0
    for _ in range(n_gates):
        kind = rng.random()
        if kind < 0.4:
            control, target = rng.sample(range(n_qubits), 2)
            gates.append(Gate("CNOT", (control, target)))
        elif kind < 0.8 or not n_inputs:
            gates.append(Gate("RY", (rng.randrange(n_qubits),), "weight", k))
            k += 1
        else:
            gates.append(Gate("RY", (rng.randrange(n_qubits),), "input", rng.randrange(n_inputs)))
    return tuple(gates), k


def random_states(batch: int, n_qubits: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return amplitude_encode(torch.randn(batch, 2**n_qubits, generator=generator, dtype=DTYPE), n_qubits)


# ----------------------------------------------------------------------------------------------------------------
# Single circuits
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_random_circuit_matches_run_circuit(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 5)
    n_inputs = rng.randint(0, 3)
    gates, n_weights = random_gates(rng, n, rng.randint(5, 30), n_inputs)
    torch.manual_seed(seed)
    weights = torch.rand(n_weights, dtype=DTYPE) * 6 - 3
    inputs = torch.rand(4, n_inputs, dtype=DTYPE) * 6 - 3 if n_inputs else None
    states = random_states(4, n, seed)
    ours = expval_z(run_circuit(states, gates, weights, n, inputs=inputs), n, range(n))
    qnode = circuit_qnode(gates, n, "default.qubit", state_prep="amplitude")
    theirs = run_qnode(qnode, weights, state=states, inputs=inputs)
    assert theirs.shape == (4, n)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)


def test_zero_state_prep_and_input_angles_match():
    gates = angle_encoding_gates(3) + pqc_gates(3, 2, 2, "first")
    torch.manual_seed(0)
    weights = torch.randn(3 * 2 * 2 + 3, dtype=DTYPE)
    inputs = torch.randn(5, 3, dtype=DTYPE)
    start = torch.zeros(5, 8, dtype=DTYPE)
    start[:, 0] = 1
    ours = expval_z(run_circuit(start, gates, weights, 3, inputs=inputs), 3, [0, 1])
    qnode = circuit_qnode(gates, 3, state_prep="zero", wires_measured=[0, 1])
    torch.testing.assert_close(run_qnode(qnode, weights, inputs=inputs), ours, atol=ATOL, rtol=0)


def test_loop_equals_broadcast_and_single_rows():
    gates = pqc_gates(3, 1, 2)
    weights = torch.linspace(-1, 1, 9, dtype=DTYPE)
    states = random_states(3, 3, 1)
    qnode = circuit_qnode(gates, 3)
    broadcast = run_qnode(qnode, weights, state=states, broadcast=True)
    looped = run_qnode(qnode, weights, state=states, broadcast=False)
    torch.testing.assert_close(broadcast, looped, atol=1e-12, rtol=0)
    torch.testing.assert_close(run_qnode(qnode, weights, state=states[1]), broadcast[1:2], atol=1e-12, rtol=0)


def test_short_feature_vector_is_amplitude_embedded_with_zero_padding():
    features = torch.tensor([[3.0, 4.0, 0.0, 1.0, 2.0]], dtype=DTYPE)
    gates = pqc_gates(3, 1, 1)
    weights = torch.linspace(0.1, 0.6, 6, dtype=DTYPE)
    ours = expval_z(run_circuit(amplitude_encode(features, 3, "pad"), gates, weights, 3), 3, range(3))
    theirs = run_qnode(circuit_qnode(gates, 3), weights, state=features)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------------------------------------------
# Whole heads
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_random_head_matches_pennylane(seed):
    head = make_head(seed)
    x = torch.randn(5, head.embedding_size, dtype=DTYPE, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ours = head(x)
        theirs = head_to_pennylane(head, "default.qubit")(x)
    assert theirs.shape == ours.shape == (5, head.num_labels)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)


def test_module_outputs_match_stage_by_stage():
    head = make_head(3, merge="concat", num_encoders=2, encoder_qubits=3, amplitude_fit="pad", embedding_size=7)
    x = torch.randn(4, 7, dtype=DTYPE)
    bridge = head_to_pennylane(head)
    with torch.no_grad():
        torch.testing.assert_close(bridge.encode(x), head.encode(x), atol=ATOL, rtol=0)
        merged = head.merge_readouts(head.encode(x))
        torch.testing.assert_close(bridge.qpu_expectations(merged), head.qpu_expectations(merged), atol=ATOL, rtol=0)


def test_gradients_match_adjoint():
    head = make_head(
        7, num_encoders=2, encoder_qubits=3, amplitude_fit="project", embedding_size=6, merge="concat",
        share_reupload_weights=False, reupload_blocks=2, measured_qubits=2, num_labels=3, encoder_strategy="gates",
    )
    x = torch.randn(6, 6, dtype=DTYPE, generator=torch.Generator().manual_seed(0))
    cotangent = torch.randn(6, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(1))

    def gradients(forward):
        head.zero_grad()
        (forward(x) * cotangent).sum().backward()
        return {name: p.grad.clone() for name, p in head.named_parameters()}

    ours = gradients(head)
    theirs = gradients(head_to_pennylane(head, "default.qubit", diff_method="backprop"))
    assert set(ours) == {"projection.weight", "projection.bias", "encoder_weights", "qpu_weights", "readout.weight",
                         "readout.bias"}
    for name in ours:
        torch.testing.assert_close(theirs[name], ours[name], atol=ATOL, rtol=0, msg=name)


def test_lightning_qubit_matches():
    pytest.importorskip("pennylane_lightning")
    head = make_head(
        11, num_encoders=2, encoder_qubits=3, merge="mean", amplitude_fit="pad", embedding_size=8, encoder_layers=1,
        reupload_layers=1, final_layers=1, extra_column="last",
    )
    x = torch.randn(3, 8, dtype=DTYPE, generator=torch.Generator().manual_seed(2))

    def run(forward):
        head.zero_grad()
        out = forward(x)
        out.sum().backward()
        return out.detach(), {name: p.grad.clone() for name, p in head.named_parameters()}

    ours, ours_grads = run(head)
    theirs, their_grads = run(head_to_pennylane(head, "lightning.qubit", diff_method="adjoint"))
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)
    for name in ours_grads:
        torch.testing.assert_close(their_grads[name], ours_grads[name], atol=ATOL, rtol=0, msg=name)


def test_shots_become_qnode_shots_and_still_differentiate():
    head = make_head(4, num_encoders=1, encoder_qubits=2, merge="mean", amplitude_fit="pad", embedding_size=4,
                     reupload_blocks=1, extra_column="last", shots=50)
    bridge = head_to_pennylane(head)
    # noise_scope="qpu" (the default): the encoders stay exact, as in the head; module 2 samples.
    assert bridge.qpu_qnode.qllm_info["shots"] == 50 and bridge.encoder_qnode.qllm_info["shots"] is None
    x = torch.randn(2, 4, dtype=DTYPE)
    head.zero_grad()
    out = bridge(x)
    out.sum().backward()  # parameter shift; the rows run one by one (it rejects broadcast trainable inputs)
    assert out.shape == (2, head.num_labels) and head.qpu_weights.grad is not None


# ----------------------------------------------------------------------------------------------------------------
# Noise: our exact density matrix against default.mixed
# ----------------------------------------------------------------------------------------------------------------
def test_two_qubit_depolarizing_kraus_is_the_channel():
    import numpy as np

    kraus = two_qubit_depolarizing_kraus(0.3)
    assert len(kraus) == 16
    np.testing.assert_allclose(sum(k.conj().T @ k for k in kraus), np.eye(4), atol=1e-12)
    rho = np.zeros((4, 4), dtype=complex)
    rho[0, 0] = 1
    out = sum(k @ rho @ k.conj().T for k in kraus)
    # (1 - p) |00><00| + p/15 (4 I - |00><00|): the 16 Paulis average to the maximally mixed state.
    expected = (1 - 0.3) * rho + 0.3 / 15 * (4 * np.eye(4) - rho)
    np.testing.assert_allclose(out, expected, atol=1e-12)


@pytest.mark.parametrize("n_qubits", [3, 4, 5])
def test_noisy_circuit_matches_default_mixed(n_qubits):
    rng = random.Random(n_qubits)
    gates, n_weights = random_gates(rng, n_qubits, 18, n_inputs=2)
    gates = gates + pqc_gates(n_qubits, 1, 2, weight_offset=n_weights)
    n_weights += n_qubits * 2 + n_qubits
    torch.manual_seed(n_qubits)
    weights = torch.randn(n_weights, dtype=DTYPE)
    inputs = torch.randn(3, 2, dtype=DTYPE)
    states = random_states(3, n_qubits, n_qubits)
    model = NoiseModel(depolarizing_1q=0.03, depolarizing_2q=0.07, readout_error=0.04, method="density_matrix")
    wires = list(range(n_qubits - 1))
    ours = model.expval(states, gates, weights, n_qubits, wires, inputs=inputs)
    qnode = circuit_qnode(gates, n_qubits, "default.mixed", wires_measured=wires, noise=model)
    theirs = run_qnode(qnode, weights, state=states, inputs=inputs)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)


@pytest.mark.parametrize("scope", ["qpu", "all"])
def test_noisy_head_matches_default_mixed(scope):
    head = make_head(
        5, num_encoders=2, encoder_qubits=3, merge="concat", amplitude_fit="pad", embedding_size=8, reupload_blocks=1,
        reupload_layers=1, final_layers=1, reupload_connectivity=2, final_connectivity=1, measured_qubits=2,
        depolarizing_1q=0.02, depolarizing_2q=0.05, readout_error=0.03, noise_scope=scope,
        noise_method="density_matrix",
    )
    x = torch.randn(3, 8, dtype=DTYPE, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours = head(x)
        theirs = head_to_pennylane(head, "default.mixed")(x)
        ideal = head_to_pennylane(head, "default.qubit", noise=None)(x)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)
    assert (theirs - ideal).abs().max() > 1e-3  # the noise does something


def test_readout_only_noise_matches():
    gates = pqc_gates(3, 1, 2)
    weights = torch.linspace(-2, 2, 9, dtype=DTYPE)
    states = random_states(2, 3, 9)
    model = NoiseModel(readout_error=0.1)
    ours = model.expval(states, gates, weights, 3, [0, 1])
    qnode = circuit_qnode(gates, 3, "default.mixed", wires_measured=[0, 1], noise=model)
    theirs = run_qnode(qnode, weights, state=states)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)


def test_readout_via_device_argument_matches_or_is_the_known_pennylane_bug():
    # default.mixed(readout_prob=p) crashes in PennyLane 0.45 (issue #9612: the float reaches code expecting a list
    # of channels), which is why the bridge queues BitFlip channels by default. Once fixed, both routes must agree.
    gates = pqc_gates(3, 1, 2)
    weights = torch.linspace(-2, 2, 9, dtype=DTYPE)
    states = random_states(2, 3, 9)
    model = NoiseModel(readout_error=0.1)
    qnode = circuit_qnode(gates, 3, "default.mixed", wires_measured=[0, 1], noise=model, readout="device")
    try:
        theirs = run_qnode(qnode, weights, state=states)
    except TypeError as error:
        assert "not iterable" in str(error)
        return
    torch.testing.assert_close(theirs, model.expval(states, gates, weights, 3, [0, 1]), atol=ATOL, rtol=0)


def test_gates_to_pennylane_queues_channels_after_each_gate():
    gates = (Gate("RY", (0,), "weight", 0), Gate("CNOT", (0, 1)), Gate("RY", (1,), "input", 0))
    with qml.queuing.AnnotatedQueue() as queue:
        gates_to_pennylane(gates, torch.tensor([0.1]), torch.tensor([0.2]), noise=Depolarizing(0.01, 0.02))
    names = [op.name for op in qml.tape.QuantumScript.from_queue(queue).operations]
    assert names == ["RY", "DepolarizingChannel", "CNOT", "QubitChannel", "RY", "DepolarizingChannel"]
    assert noise_rates(Depolarizing(0.01, 0.02)) == (0.01, 0.02, 0.0, None)


# ----------------------------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------------------------
def test_draw_shows_ry_and_cnot_wires():
    text = draw((Gate("CNOT", (0, 2)), Gate("RY", (2,), "weight", 0)), 3)
    lines = {line.split(":")[0]: line for line in text.splitlines()}
    assert "RY" in lines["2"] and "X" in lines["2"]  # CNOT target, then the rotation
    assert "●" in lines["0"]  # CNOT control
    assert "●" not in lines["1"] and "X" not in lines["1"]


def test_draw_head_text_and_angles():
    head = make_head(2, encoder_qubits=3, num_encoders=1, merge="mean", amplitude_fit="pad", embedding_size=8,
                     encoder_layers=1, encoder_connectivity=1)
    drawings = draw_head(head)
    assert set(drawings) == {"encoder", "qpu"}
    for text, n in ((drawings["encoder"], head.encoder_qubits), (drawings["qpu"], head.qpu_qubits)):
        assert "RY" in text and "●" in text and "X" in text
        assert [line.split(":")[0] for line in text.splitlines() if line.strip()][:n] == [str(w) for w in range(n)]
    assert "|Ψ⟩" in drawings["encoder"]
    with_angles = draw_head(head, decimals=2)["encoder"]
    assert f"RY({head.encoder_weights[0, -1].item():.2f})" in with_angles or "RY(" in with_angles


def test_draw_mpl_returns_figures():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = make_head(2, encoder_qubits=2, num_encoders=1, merge="mean", amplitude_fit="pad", embedding_size=4)
    figures = draw_head(head, mpl=True)
    for fig, _ in figures.values():
        assert hasattr(fig, "savefig")
        plt.close(fig)


# ----------------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------------
def test_gate_noise_on_a_pure_state_device_raises():
    with pytest.raises(ValueError, match="default.mixed"):
        circuit_qnode(pqc_gates(3, 1, 1), 3, "default.qubit", noise=NoiseModel(depolarizing_1q=0.1))


def test_readout_error_needs_default_mixed():
    with pytest.raises(ValueError, match="readout_error=0.1 needs a mixed-state simulator"):
        circuit_qnode(pqc_gates(3, 1, 1), 3, "lightning.qubit", noise=NoiseModel(readout_error=0.1))
    with pytest.raises(ValueError, match="readout='device' needs device='default.mixed'"):
        circuit_qnode(pqc_gates(3, 1, 1), 3, "ionq.simulator", noise=NoiseModel(readout_error=0.1), readout="device")
    with pytest.raises(ValueError, match="readout='sample'"):
        circuit_qnode(pqc_gates(3, 1, 1), 3, readout="sample")


def test_noisy_head_on_default_qubit_raises_but_ideal_runs():
    head = make_head(1, depolarizing_2q=0.1)
    with pytest.raises(ValueError, match="cannot apply depolarizing channels"):
        head_to_pennylane(head, "default.qubit")
    head_to_pennylane(head, "default.qubit", noise=None)


def test_bad_arguments_raise():
    gates = pqc_gates(3, 1, 1)
    with pytest.raises(ValueError, match="state_prep='basis'"):
        circuit_qnode(gates, 3, state_prep="basis")
    with pytest.raises(ValueError, match=r"wires_measured=\[3\]"):
        circuit_qnode(gates, 3, wires_measured=[3])
    with pytest.raises(ValueError, match="the gates act on wire 2; n_qubits=2"):
        circuit_qnode(gates, 2)
    with pytest.raises(TypeError, match="expected None, a NoiseModel"):
        circuit_qnode(gates, 3, noise=0.1)
    with pytest.raises(ValueError, match="needs state="):
        circuit_qnode(gates, 3)(torch.zeros(6))
    with pytest.raises(ValueError, match="reads an input feature; pass inputs_row="):
        circuit_qnode(angle_encoding_gates(3), 3, state_prep="zero")(torch.zeros(0))
    with pytest.raises(ValueError, match="noise='all'"):
        head_to_pennylane(make_head(1), noise="all")


def test_device_name_is_passed_through_to_pennylane():
    # A hardware plugin is selected by name exactly like this; here it is not installed, so PennyLane says so.
    with pytest.raises(qml.exceptions.DeviceError, match="ionq.simulator"):
        circuit_qnode(pqc_gates(3, 1, 1), 3, "ionq.simulator")
