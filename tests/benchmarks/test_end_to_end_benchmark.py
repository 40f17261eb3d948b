"""benchmarks/end_to_end.py runs its three stages (embedding, SST-2 recipe, screening) on a tiny body and data."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "experiments"))  # the shared tiny body and data
from tiny_experiment import build_tiny_body, build_tiny_data  # noqa: E402


def test_stages_run_and_the_table_reports_targets(tmp_path):
    body, data = build_tiny_body(tmp_path / "body"), build_tiny_data(tmp_path / "data")
    out = tmp_path / "out"
    command = [sys.executable, str(REPO / "benchmarks" / "end_to_end.py"), "--body", str(body), "--data", str(data),
               "--output-dir", str(out), "--folds", "2", "--epochs", "1", "--per-label", "8", "--screening-folds", "1",
               "--screening-epochs", "1", "--workers", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for stage, target in (("embedding (once)", "-"), ("sst2", "300 s"), ("screening", "1800 s")):
        (row,) = [line for line in lines if line.startswith(f"| {stage} |")]
        assert f"| {target} |" in row
    assert (out / "sst2" / "metrics.json").is_file() and (out / "screening" / "results.json").is_file()
    assert list((out / "embedding_cache").glob("*.safetensors"))
