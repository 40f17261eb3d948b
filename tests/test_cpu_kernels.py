"""The one-pass C kernels against the PyTorch kernels they replace: every op kind, dtype, coefficient layout and
control position; the whole-program call; bounds checks; and the fallback when no compiler is available."""

import doctest
import os
import random
import subprocess
import sys

import pytest
import torch

import modeling_qllm.cpu_kernels as cpu_kernels
from modeling_qllm.statevector import _controlled_halves, _halves, mix_

pytestmark = pytest.mark.usefixtures("c_kernels")  # fails under CI, skips elsewhere when they cannot be built


def test_docstring_examples():
    assert doctest.testmod(cpu_kernels).failed == 0


def reference_pair_update(state, n, target, control, coefficients, active, with_overlap):
    """The same update with the PyTorch views: (controlled) halves mixed by ``mix_``."""
    state = state.clone()
    overlap = None
    if with_overlap:
        batch = state.shape[1] // 2
        a, b = _halves(state, n, target)
        overlap = (b[..., batch:] * a[..., :batch] - a[..., batch:] * b[..., :batch]).double().sum(dim=(0, 1))
    sets = [(None, 0)] if control < 0 else [(0, 0), (1, 4)]
    for value, row in sets:
        if not active[0 if value is None else value]:
            continue
        halves = _halves(state, n, target) if value is None else _controlled_halves(state, n, control, target, value)
        m = [coefficients[row + k] for k in range(4)]  # (1,) or (ncols,): broadcast along the last axis
        mix_(*halves, *m)
    return state, overlap


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("per_column", [False, True])
def test_pair_update_matches_the_torch_kernels(dtype, per_column):
    rng = random.Random(0)
    g = torch.Generator().manual_seed(0)
    for trial in range(40):
        n = rng.randint(1, 5)
        ncols = 2 * rng.randint(1, 5)
        target = rng.randrange(n)
        control = rng.choice([-1] + [w for w in range(n) if w != target])
        active = (rng.random() < 0.8, rng.random() < 0.8)
        coefficients = torch.randn(8, ncols if per_column else 1, dtype=dtype, generator=g)
        state = torch.randn(2**n, ncols, dtype=dtype, generator=g)
        # the overlap is read on the pairs the update touches: ask for it when every pair is touched
        with_overlap = rng.random() < 0.7 and (active[0] if control < 0 else all(active))
        expected, expected_overlap = reference_pair_update(state, n, target, control, coefficients, active, with_overlap)
        overlap = torch.zeros(ncols // 2, dtype=torch.float64) if with_overlap else None
        cpu_kernels.pair_update_(state, n, target, control, coefficients, active, overlap)
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(state, expected, **tol, msg=f"trial {trial}: n={n} t={target} c={control}")
        if with_overlap:
            torch.testing.assert_close(overlap, expected_overlap, **tol)


def test_run_program_equals_its_ops_one_by_one():
    g = torch.Generator().manual_seed(1)
    n, ncols = 4, 6
    weight_table = torch.randn(3, 8, 1, dtype=torch.float64, generator=g)
    input_table = torch.randn(2, 8, ncols, dtype=torch.float64, generator=g)
    fixed_table = torch.randn(1, 8, 1, dtype=torch.float64, generator=g)
    ops = torch.tensor([[1, -1, 0, 2, 1, 0, 0], [3, 0, 2, 0, 0, 1, -1], [0, 2, 1, 1, 1, 1, 1],
                        [2, 3, 0, 0, 1, 1, -1], [3, -1, 1, 0, 1, 0, 2]])  # fmt: skip
    state = torch.randn(2**n, ncols, dtype=torch.float64, generator=g)
    expected, expected_overlaps = state.clone(), torch.zeros(3, ncols // 2, dtype=torch.float64)
    for target, control, source, index, a0, a1, row in ops.tolist():
        table = (weight_table, input_table, fixed_table)[source]
        cpu_kernels.pair_update_(expected, n, target, control, table[index], (a0, a1),
                                 expected_overlaps[row] if row >= 0 else None)  # fmt: skip
    overlaps = torch.zeros(3, ncols // 2, dtype=torch.float64)
    cpu_kernels.run_program_(state, cpu_kernels.KernelProgram(ops.tolist(), n), weight_table, input_table, fixed_table,
                             overlaps)  # fmt: skip
    assert torch.equal(state, expected) and torch.equal(overlaps, expected_overlaps)


@pytest.mark.parametrize(
    "row, what",
    [([4, -1, 0, 0, 1, 0, -1], "target"), ([1, 1, 0, 0, 1, 1, -1], "control"), ([1, -1, 0, 3, 1, 0, -1], "index"),
     ([1, -1, 1, 0, 1, 0, -1], "index"), ([1, -1, 0, 0, 1, 0, 5], "overlap row")],
)  # fmt: skip
def test_run_program_rejects_out_of_range_ops_before_touching_memory(row, what):
    state = torch.zeros(16, 2)
    with pytest.raises(ValueError, match=what):
        program = cpu_kernels.KernelProgram([row], 4)  # target / control: rejected here, once
        cpu_kernels.run_program_(state, program, torch.zeros(3, 8, 1), None, torch.zeros(1, 8, 1),
                                 torch.zeros(1, 1, dtype=torch.float64))  # fmt: skip


def test_a_state_that_does_not_match_the_register_is_rejected():
    program = cpu_kernels.KernelProgram([[1, -1, 0, 0, 1, 0, -1]], 4)
    with pytest.raises(ValueError, match=r"\(2\*\*4, ncols\) tensor; got \(8, 2\)"):
        cpu_kernels.run_program_(torch.zeros(8, 2), program, torch.zeros(1, 8, 1), None, torch.zeros(1, 8, 1))
    with pytest.raises(ValueError, match=r"\(2\*\*4, ncols\) tensor; got \(8, 2\)"):
        cpu_kernels.pair_update_(torch.zeros(8, 2), 4, 0, -1, torch.zeros(8, 1))
    with pytest.raises(ValueError, match="target=3, control=-1 on 3 qubits"):
        cpu_kernels.pair_update_(torch.zeros(8, 2), 3, 3, -1, torch.zeros(8, 1))


def test_bad_coefficients_and_overlap_buffers_are_rejected():
    state = torch.zeros(8, 4)
    with pytest.raises(ValueError, match="coefficients must be"):
        cpu_kernels.pair_update_(state, 3, 0, -1, torch.zeros(8, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="3 columns; expected 1 or 4"):
        cpu_kernels.pair_update_(state, 3, 0, -1, torch.zeros(8, 3))
    with pytest.raises(ValueError, match="overlap must be"):
        cpu_kernels.pair_update_(state, 3, 0, -1, torch.zeros(8, 1), overlap=torch.zeros(2))


def test_supports_only_contiguous_float_cpu_states_and_can_be_turned_off():
    assert cpu_kernels.supports(torch.zeros(4, 2))
    assert not cpu_kernels.supports(torch.zeros(2, 4).t())
    assert not cpu_kernels.supports(torch.zeros(4, 2, dtype=torch.float16))
    previous = cpu_kernels.set_enabled(False)
    try:
        assert not cpu_kernels.supports(torch.zeros(4, 2))
    finally:
        cpu_kernels.set_enabled(previous)


def _fresh_process_reason(env_update, tmp_path):
    env = dict(os.environ, QLLM_KERNEL_CACHE=str(tmp_path), **env_update)
    code = "import modeling_qllm.cpu_kernels as k; print(k.available(), '|', k.unavailable_reason())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout


def test_environment_switch_and_a_failing_compiler_fall_back_with_a_reason(tmp_path):
    assert _fresh_process_reason({"QLLM_CPU_KERNELS": "0"}, tmp_path).startswith("False | turned off by QLLM_CPU")
    out = _fresh_process_reason({"CC": "false"}, tmp_path)
    assert out.startswith("False | building them failed"), out
    assert _fresh_process_reason({}, tmp_path).startswith("True | None")  # and the build lands in the cache
    assert any(name.endswith(".so") for name in os.listdir(tmp_path))
