"""Where to train a head: the device policy of the recipes and studies, which says what it picked and why.

A quantum head's cost is the number of amplitudes it pushes through each gate, ``batch * 2**qubits``. On a GPU
every gate is at least one kernel launch (about 5-10 us whatever its size, several launches per gate with the
PyTorch kernels), so small circuits are launch-bound there; on a CPU our one-pass C kernels cost about 0.14 ns per
amplitude per gate (measured: 14 qubits, batch 256, 2-core EPYC, ``benchmarks/simulator.py``). The two meet near
``30 us / 0.14 ns ~ 2**18`` amplitudes: below :data:`GPU_MIN_AMPLITUDES` the CPU is used even when a GPU is
present. This threshold comes from those two figures, not from a GPU measurement (none was available when it was
set); ``--device cuda`` / ``cpu`` override it. A body that trains (LoRA or full fine-tuning) always goes to the GPU:
the transformer dominates there.

Example:
    >>> choice = choose_device("auto", n_qubits=10, batch_size=32, cuda_available=True)
    >>> choice.device.type, choice.reason
    ('cpu', 'auto: a 10-qubit head at batch 32 is 2**15 amplitudes per gate, below the 2**18 where a GPU stops being launch-bound')
    >>> choose_device("auto", n_qubits=16, batch_size=32, cuda_available=True).device.type
    'cuda'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

GPU_MIN_AMPLITUDES = 2**18
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DeviceChoice:
    """The device picked and a sentence saying why (printed by the recipes and stored with their results)."""

    device: torch.device
    reason: str

    def __str__(self) -> str:
        return f"{self.device} ({self.reason})"


def head_qubits(head: torch.nn.Module) -> int:
    """The largest register a head simulates (0 for classical heads)."""
    return max(getattr(head, "encoder_qubits", 0), getattr(head, "qpu_qubits", 0))


def choose_device(
    requested: str = "auto",
    *,
    n_qubits: int,
    batch_size: int,
    trains_body: bool = False,
    cuda_available: Optional[bool] = None,
) -> DeviceChoice:
    """Pick ``cpu`` or ``cuda`` for training a head of ``n_qubits`` (0: classical) at ``batch_size``.

    Args:
        requested: ``"auto"`` (the policy above), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (kept as asked).
        trains_body: the body's weights train too (LoRA or full fine-tuning): a GPU whenever there is one.
        cuda_available: for tests; ``None`` asks ``torch.cuda.is_available()``.
    """
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if not isinstance(requested, str) or requested.split(":")[0] not in DEVICE_CHOICES:
        raise ValueError(f"device={requested!r}; expected one of {DEVICE_CHOICES} or 'cuda:N'")
    if requested != "auto":
        if requested.startswith("cuda") and not cuda:
            raise ValueError(f"device={requested!r} but torch sees no CUDA device; use 'cpu' or 'auto'")
        return DeviceChoice(torch.device(requested), "requested")
    if not cuda:
        return DeviceChoice(torch.device("cpu"), "auto: no CUDA device")
    if trains_body:
        return DeviceChoice(torch.device("cuda"), "auto: the body trains, and a transformer belongs on the GPU")
    if n_qubits == 0:
        return DeviceChoice(torch.device("cpu"), "auto: a classical head on cached embeddings is launch-bound on a GPU")
    amplitudes = batch_size * 2**n_qubits
    size = f"a {n_qubits}-qubit head at batch {batch_size} is 2**{math.log2(amplitudes):.3g} amplitudes per gate"
    threshold = f"2**{int(math.log2(GPU_MIN_AMPLITUDES))}"
    if amplitudes < GPU_MIN_AMPLITUDES:
        reason = f"auto: {size}, below the {threshold} where a GPU stops being launch-bound"
        return DeviceChoice(torch.device("cpu"), reason)
    return DeviceChoice(torch.device("cuda"), f"auto: {size}, at least the {threshold} where a GPU pays off")
