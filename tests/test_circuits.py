"""Gate lists of the paper's long-range PQC (figure 3), angle encoding and the bookkeeping helpers."""

import doctest

import pytest

import modeling_qllm.circuits as circuits_module
from modeling_qllm.circuits import (
    EXTRA_COLUMN_CHOICES,
    Gate,
    angle_encoding_gates,
    check_register,
    count_gates,
    num_inputs,
    num_weights,
    pqc_gates,
    pqc_num_params,
)


def _layer_gates(n, connectivity, first_index):
    """One layer written out by hand: for d = 1..C, for i: CNOT(i -> (i+d) % n), RY on the target."""
    gates, k = [], first_index
    for d in range(1, connectivity + 1):
        for i in range(n):
            t = (i + d) % n
            gates += [Gate("CNOT", (i, t)), Gate("RY", (t,), "weight", k)]
            k += 1
    return gates


def test_docstring_examples():
    assert doctest.testmod(circuits_module).failed == 0


# ---------------------------------------------------------------------------------------------------------------
# The paper's figure 3
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra_column", ["first", "last"])
def test_figure_3_has_28_parameters(extra_column):
    gates = pqc_gates(n_qubits=4, layers=3, connectivity=2, extra_column=extra_column)
    assert pqc_num_params(4, 3, 2, extra_column) == 28
    assert num_weights(gates) == 28
    assert count_gates(gates) == {"RY": 28, "CNOT": 24}
    # every angle is read exactly once, numbered 0..27 in application order
    assert [g.index for g in gates if g.name == "RY"] == list(range(28))


def test_figure_3_first_layer_is_written_out():
    gates = pqc_gates(4, 3, 2, extra_column="none")
    expected_first_layer = [
        ("CNOT", (0, 1)), ("RY", (1,)), ("CNOT", (1, 2)), ("RY", (2,)),
        ("CNOT", (2, 3)), ("RY", (3,)), ("CNOT", (3, 0)), ("RY", (0,)),   # offset 1, wrap-around 3 -> 0
        ("CNOT", (0, 2)), ("RY", (2,)), ("CNOT", (1, 3)), ("RY", (3,)),
        ("CNOT", (2, 0)), ("RY", (0,)), ("CNOT", (3, 1)), ("RY", (1,)),   # offset 2
    ]
    assert [(g.name, g.wires) for g in gates[:16]] == expected_first_layer
    assert len(gates) == 3 * 16
    # the three layers are identical up to the angle indices
    for layer in range(3):
        assert [(g.name, g.wires) for g in gates[16 * layer : 16 * (layer + 1)]] == expected_first_layer


@pytest.mark.parametrize("n, layers, connectivity", [(2, 1, 1), (3, 2, 2), (5, 2, 3), (6, 1, 5), (7, 3, 2)])
def test_gate_order_matches_the_definition(n, layers, connectivity):
    gates = pqc_gates(n, layers, connectivity, extra_column="none")
    expected = []
    for layer in range(layers):
        expected += _layer_gates(n, connectivity, layer * n * connectivity)
    assert list(gates) == expected
    assert pqc_num_params(n, layers, connectivity, "none") == layers * n * connectivity


def test_every_cnot_is_followed_by_an_ry_on_its_target():
    gates = pqc_gates(5, 2, 3, extra_column="last")
    for i, gate in enumerate(gates):
        if gate.name == "CNOT":
            nxt = gates[i + 1]
            assert nxt.name == "RY" and nxt.wires == (gate.wires[1],) and nxt.source == "weight"
            assert gate.wires[0] != gate.wires[1]


def test_offsets_run_from_1_to_connectivity():
    gates = pqc_gates(6, 1, 3, extra_column="none")
    offsets = [(g.wires[1] - g.wires[0]) % 6 for g in gates if g.name == "CNOT"]
    assert offsets == [1] * 6 + [2] * 6 + [3] * 6


# ---------------------------------------------------------------------------------------------------------------
# Extra column
# ---------------------------------------------------------------------------------------------------------------
def test_extra_column_first():
    gates = pqc_gates(3, 1, 1, extra_column="first")
    assert gates[:3] == tuple(Gate("RY", (w,), "weight", w) for w in range(3))
    assert list(gates[3:]) == _layer_gates(3, 1, first_index=3)
    assert num_weights(gates) == pqc_num_params(3, 1, 1, "first") == 6


def test_extra_column_last():
    gates = pqc_gates(3, 1, 1, extra_column="last")
    assert list(gates[:6]) == _layer_gates(3, 1, first_index=0)
    assert gates[6:] == tuple(Gate("RY", (w,), "weight", 3 + w) for w in range(3))
    assert num_weights(gates) == pqc_num_params(3, 1, 1, "last") == 6


def test_extra_column_none():
    gates = pqc_gates(3, 1, 1, extra_column="none")
    assert list(gates) == _layer_gates(3, 1, first_index=0)
    assert pqc_num_params(3, 1, 1, "none") == 3


def test_default_extra_column_is_last():
    assert pqc_gates(4, 2, 2) == pqc_gates(4, 2, 2, extra_column="last")
    assert pqc_num_params(4, 2, 2) == pqc_num_params(4, 2, 2, "last") == 20


def test_zero_layers_is_just_the_extra_column():
    assert pqc_gates(4, 0, 1, extra_column="first") == tuple(Gate("RY", (w,), "weight", w) for w in range(4))
    assert pqc_gates(4, 0, 1, extra_column="none") == ()
    assert pqc_num_params(4, 0, 3, "last") == 4


# ---------------------------------------------------------------------------------------------------------------
# Weight offsets, angle encoding, counters
# ---------------------------------------------------------------------------------------------------------------
def test_weight_offset_shifts_every_index():
    base = pqc_gates(4, 2, 2, "last")
    shifted = pqc_gates(4, 2, 2, "last", weight_offset=100)
    assert len(base) == len(shifted)
    for a, b in zip(base, shifted):
        assert (a.name, a.wires, a.source) == (b.name, b.wires, b.source)
        assert (a.index is None and b.index is None) or b.index == a.index + 100
    assert num_weights(shifted) == 100 + pqc_num_params(4, 2, 2, "last")


def test_two_pqcs_with_offsets_tile_the_weight_vector():
    first = pqc_gates(3, 1, 2, "first")
    second = pqc_gates(3, 2, 1, "last", weight_offset=num_weights(first))
    indices = [g.index for g in first + second if g.source == "weight"]
    assert indices == list(range(pqc_num_params(3, 1, 2, "first") + pqc_num_params(3, 2, 1, "last")))


def test_angle_encoding():
    gates = angle_encoding_gates(4)
    assert gates == tuple(Gate("RY", (w,), "input", w) for w in range(4))
    assert num_inputs(gates) == 4 and num_weights(gates) == 0
    shifted = angle_encoding_gates(3, feature_offset=5)
    assert shifted == tuple(Gate("RY", (w,), "input", 5 + w) for w in range(3))
    assert num_inputs(shifted) == 8


def test_counters_on_mixed_lists():
    gates = angle_encoding_gates(3) + pqc_gates(3, 1, 1, "none")
    assert num_inputs(gates) == 3
    assert num_weights(gates) == 3
    assert count_gates(gates) == {"RY": 6, "CNOT": 3}
    assert num_weights(()) == 0 and num_inputs(()) == 0
    assert count_gates(()) == {"RY": 0, "CNOT": 0}


def test_gate_is_frozen_and_hashable():
    gate = Gate("RY", (0,), "weight", 3)
    with pytest.raises(AttributeError):
        gate.index = 4
    assert {gate, Gate("RY", (0,), "weight", 3)} == {gate}


# ---------------------------------------------------------------------------------------------------------------
# Documented errors
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("connectivity", [0, 4, 5, -1])
def test_connectivity_out_of_range(connectivity):
    with pytest.raises(ValueError, match=rf"connectivity={connectivity} on 4 qubits; expected 1 <= connectivity <= 3"):
        pqc_gates(4, 1, connectivity)
    with pytest.raises(ValueError, match=rf"connectivity={connectivity}"):
        pqc_num_params(4, 1, connectivity)


def test_connectivity_equal_to_n_qubits_is_rejected_but_n_minus_1_is_fine():
    assert pqc_num_params(5, 1, 4, "none") == 20
    with pytest.raises(ValueError, match="connectivity=5 on 5 qubits"):
        pqc_gates(5, 1, 5)


def test_connectivity_must_be_an_integer():
    with pytest.raises(ValueError, match=r"connectivity=1\.0"):
        pqc_gates(4, 1, 1.0)


@pytest.mark.parametrize("extra_column", ["middle", "First", None, ""])
def test_bad_extra_column(extra_column):
    with pytest.raises(ValueError, match=r"extra_column=.*expected one of \('first', 'last', 'none'\)"):
        pqc_gates(4, 1, 1, extra_column=extra_column)
    assert EXTRA_COLUMN_CHOICES == ("first", "last", "none")


@pytest.mark.parametrize("layers", [-1, -5, 1.5])
def test_bad_layers(layers):
    with pytest.raises(ValueError, match=rf"layers={layers!r}; expected an integer >= 0"):
        pqc_gates(4, layers, 1)


@pytest.mark.parametrize("n_qubits", [1, 0, -2, 2.0])
def test_too_few_qubits(n_qubits):
    with pytest.raises(ValueError, match=rf"n_qubits={n_qubits!r}; the long-range ansatz needs an integer >= 2"):
        pqc_gates(n_qubits, 1, 1)


def test_check_register_names_the_circuit():
    with pytest.raises(ValueError, match=r"^encoder PQC: connectivity=3 on 3 qubits"):
        check_register(3, 3, 1, "last", where="encoder PQC")
    check_register(3, 2, 0, "none")  # valid: no error
