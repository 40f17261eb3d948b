"""The device policy: what it picks for small and large heads, with and without CUDA, and that it says why."""

import doctest

import pytest
import torch

import modeling_qllm.experiments.device as device_module
from modeling_qllm.experiments.device import GPU_MIN_AMPLITUDES, choose_device, head_qubits
from modeling_qllm.experiments.training import train_head
from modeling_qllm.heads import LinearHead, QuantumHead


def test_docstring_examples():
    assert doctest.testmod(device_module).failed == 0


def test_without_cuda_auto_is_the_cpu_and_cuda_requests_fail_naming_the_value():
    choice = choose_device("auto", n_qubits=20, batch_size=256, cuda_available=False)
    assert choice.device == torch.device("cpu") and "no CUDA" in choice.reason
    with pytest.raises(ValueError, match="device='cuda:1' but torch sees no CUDA"):
        choose_device("cuda:1", n_qubits=4, batch_size=8, cuda_available=False)


def test_auto_with_cuda_follows_the_amplitude_threshold():
    small = choose_device("auto", n_qubits=14, batch_size=8, cuda_available=True)  # 2**17 amplitudes
    large = choose_device("auto", n_qubits=14, batch_size=16, cuda_available=True)  # 2**18 amplitudes
    assert GPU_MIN_AMPLITUDES == 2**18
    assert small.device.type == "cpu" and "2**17" in small.reason
    assert large.device.type == "cuda" and "2**18" in large.reason
    assert choose_device("auto", n_qubits=0, batch_size=4096, cuda_available=True).device.type == "cpu"
    assert choose_device("auto", n_qubits=4, batch_size=8, trains_body=True, cuda_available=True).device.type == "cuda"


def test_explicit_requests_are_kept_and_bad_ones_rejected():
    assert choose_device("cpu", n_qubits=30, batch_size=512, cuda_available=True).reason == "requested"
    assert choose_device("cuda", n_qubits=2, batch_size=1, cuda_available=True).device.type == "cuda"
    with pytest.raises(ValueError, match="device='tpu'"):
        choose_device("tpu", n_qubits=2, batch_size=1)


def test_head_qubits_is_the_largest_register():
    head = QuantumHead(embedding_size=64, encoder_qubits=6, num_encoders=2, merge="concat", num_labels=2)
    assert head_qubits(head) == 12 and head_qubits(LinearHead(8, 2)) == 0


def test_train_head_reports_where_it_trained():
    torch.manual_seed(0)
    x, y = torch.randn(40, 8), torch.randint(0, 2, (40,))
    result = train_head(LinearHead(8, 2), x[:20], y[:20], x[20:30], y[20:30], x[30:], y[30:], epochs=1, lr=0.1,
                        batch_size=8, seed=0, device="cpu")  # fmt: skip
    assert result["device"] == "cpu" and result["device_reason"] == "requested"
