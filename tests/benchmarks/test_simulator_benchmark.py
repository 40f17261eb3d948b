"""The simulator benchmark runs end to end on a tiny grid and prints its table with the ratio columns."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "simulator.py"


@pytest.mark.filterwarnings("ignore")
def test_tiny_grid_prints_times_memory_and_ratios():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--qubits", "3", "--batch", "4", "--repeats", "1", "--threads", "1",
         "--backends", "ours-f32", "ours-torch-kernels-f32", "default.qubit", "--markdown"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| 3 | 4 |")]
    assert len(table) == 1, out.stdout
    cells = [c.strip() for c in table[0].strip("|").split("|")]
    header = [line for line in out.stdout.splitlines() if line.startswith("| Q |")][0]
    assert "default.qubit / ours-f32" in header and "ours-torch-kernels-f32 / ours-f32" in header
    assert all(c.endswith("ms") or c.endswith(" s") for c in cells[2:5]), cells  # three times
    assert all(c.endswith("x") for c in cells[5:7]), cells  # two ratios
    assert "ours-f32 GB/s (copy GB/s)" in header
    assert all(re.fullmatch(r"\d+ \(\d+\)", c) for c in cells[-2:]), cells  # achieved and copy bandwidth
