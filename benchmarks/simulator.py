"""Our batched real simulator against PennyLane on the paper-shaped head: forward + backward, time and peak memory.

Every measurement runs in a fresh subprocess (one backend, one register size, one batch): that is the honest way to
read a peak resident set size (``VmHWM``), and it lets the parent kill a case that runs out of memory or time and
print ``OOM`` / ``timeout`` instead of crashing.

Backends:
    ours f32 / ours f64   QuantumHead on CPU (adjoint backward, one-pass C kernels), float32 / float64
    ours torch-kernels f32  the same with the PyTorch kernels (cpu_kernels.set_enabled(False)): what the C
                          kernels replace, and what runs where no C compiler is found
    ours cuda f32 / f64   the same on CUDA (only when torch.cuda.is_available()); memory = max_memory_allocated
    default.qubit         head_to_pennylane(head, "default.qubit", diff_method="backprop"): PennyLane's torch
                          backprop with parameter broadcasting over the batch, complex128
    lightning.qubit       head_to_pennylane(head, "lightning.qubit", diff_method="adjoint"): it
                          does not broadcast (PennyLane splits the batch into one tape per sample), so only
                          ``--lightning-samples`` samples are timed and the time is scaled linearly to the batch

For our backends it also prints the achieved bandwidth: the bytes a simulator that reads and writes the state once
per gate must move (forward, and backward on [psi | grad]) divided by the time, beside the GB/s of ``copy_`` on one
chunk's state measured in the same process (the roofline: in cache on a CPU, HBM on a GPU).

Usage:
    python benchmarks/simulator.py                         # full grid: qubits 4 8 10 12 14 16, batch 16 256
    python benchmarks/simulator.py --qubits 4 8 --batch 16 --repeats 5 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEAD_SHAPE = dict(
    num_labels=2,
    num_encoders=2,
    merge="mean",
    encoder_layers=2,
    encoder_connectivity=2,
    reupload_blocks=2,
    share_reupload_weights=True,
    reupload_layers=2,
    reupload_connectivity=2,
    final_layers=2,
    final_connectivity=2,
    extra_column="last",
    measured_qubits=1,
)

CPU_BACKENDS = ["ours-f32", "ours-f64", "ours-torch-kernels-f32", "default.qubit", "lightning.qubit"]
CUDA_BACKENDS = ["ours-cuda-f32", "ours-cuda-f64"]
PENNYLANE_BACKENDS = ("default.qubit", "lightning.qubit")


def describe_shape() -> str:
    s = HEAD_SHAPE
    return (
        f"head: E={s['num_encoders']} encoders of Q qubits (amplitude encoding of a 2**Q-wide embedding, no fit "
        f"needed; PQC M={s['encoder_layers']} C={s['encoder_connectivity']}), merge={s['merge']} -> module 2 on Q "
        f"qubits: N={s['reupload_blocks']} re-uploading blocks (angle scale pi, PQC1 M={s['reupload_layers']} "
        f"C={s['reupload_connectivity']}, shared), PQC2 M={s['final_layers']} C={s['final_connectivity']}, extra RY "
        f"column {s['extra_column']}, <Z> on {s['measured_qubits']} qubit, Linear(1 -> 2)"
    )


# ----------------------------------------------------------------------------------------------------------------
# Worker: one measurement in this process
# ----------------------------------------------------------------------------------------------------------------
def _proc_status_kb(field: str, pid: str = "self") -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def state_traffic_bytes(head, batch: int, itemsize: int) -> int:
    """Bytes the simulator must move for one forward + backward if every gate reads and writes the state once: the
    roofline's numerator. The backward un-applies every gate to psi and its gradient side by side (twice as wide)."""
    from modeling_qllm.statevector import compile_gates

    def passes(gates, qubits):
        return len(compile_gates(gates, qubits).ops)

    encoder_rows = head._occupied_amplitudes() if head._use_matrix(batch) else batch
    encoder = head.num_encoders * passes(head.encoder_gates, head.encoder_qubits) * encoder_rows * 2**head.encoder_qubits
    qpu = passes(head.qpu_gates, head.qpu_qubits) * batch * 2**head.qpu_qubits
    return 2 * itemsize * 3 * (encoder + qpu)


def copy_bandwidth_gbs(numel: int, dtype, device, seconds: float = 0.5) -> float:
    """Read + write GB/s of ``copy_`` between two buffers of ``numel`` elements: the roofline's denominator."""
    import torch

    source = torch.randn(numel, dtype=dtype, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    sync = torch.cuda.synchronize if source.is_cuda else (lambda: None)
    sync()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        target.copy_(source)
        runs += 1
    sync()
    return 2 * numel * source.element_size() * runs / (time.perf_counter() - start) / 1e9


def worker(spec: dict) -> dict:
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])  # OMP_NUM_THREADS (lightning's OpenMP) is set by the parent

    from modeling_qllm import cpu_kernels
    from modeling_qllm.heads import QuantumHead

    backend, qubits, batch = spec["backend"], spec["qubits"], spec["batch"]
    cpu_kernels.set_enabled("torch-kernels" not in backend)
    if backend.startswith("ours") and "torch-kernels" not in backend and not cpu_kernels.available():
        raise RuntimeError(f"the C kernels are unavailable: {cpu_kernels.unavailable_reason()}")
    cuda = backend.startswith("ours-cuda")
    dtype = torch.float32 if backend.endswith("f32") else torch.float64
    device = torch.device("cuda" if cuda else "cpu")
    if backend in PENNYLANE_BACKENDS:
        import pennylane  # noqa: F401  (imported before the baseline so that its import is not counted)

        from modeling_qllm.pennylane_bridge import head_to_pennylane
    baseline_kb = _proc_status_kb("VmRSS")

    torch.manual_seed(0)
    head = QuantumHead(embedding_size=2**qubits, encoder_qubits=qubits, **HEAD_SHAPE).to(device=device, dtype=dtype)
    samples = batch
    if backend == "default.qubit":
        forward = head_to_pennylane(head, "default.qubit", diff_method="backprop")
    elif backend == "lightning.qubit":
        forward = head_to_pennylane(head, "lightning.qubit", diff_method="adjoint")
        samples = min(batch, spec["lightning_samples"])
    else:
        forward = head
    x = torch.randn(samples, 2**qubits, dtype=dtype, generator=torch.Generator().manual_seed(1)).to(device)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def step() -> float:
        head.zero_grad(set_to_none=True)
        sync()
        start = time.perf_counter()
        forward(x).sum().backward()
        sync()
        return time.perf_counter() - start

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    warmup = step()
    # A run longer than the case budget is dominated by the arithmetic, not by one-time costs: it is its own
    # measurement (repeats = 0, reported as one run) so that the largest cases stay affordable.
    repeats = min(spec["repeats"], int(spec["case_seconds"] // max(warmup, 1e-9)))
    times = [step() for _ in range(repeats)] or [warmup]
    result = {
        "time_s": statistics.median(times) * batch / samples,
        "warmup_s": warmup * batch / samples,
        "repeats": repeats,
        "samples": samples,
        "peak_mb": None,
    }
    if backend.startswith("ours"):
        from modeling_qllm.statevector import _chunks

        rows = _chunks(batch, qubits, device, x.element_size())[0][1]  # the state size each kernel call streams
        result["achieved_gbs"] = state_traffic_bytes(head, batch, x.element_size()) / result["time_s"] / 1e9
        result["copy_gbs"] = copy_bandwidth_gbs(rows * 2**qubits, dtype, device)
    if cuda:
        result["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_kb = _proc_status_kb("VmHWM")
        if peak_kb is not None and baseline_kb is not None:
            result["peak_mb"] = (peak_kb - baseline_kb) / 1024
    return result


# ----------------------------------------------------------------------------------------------------------------
# Parent: one guarded subprocess per measurement
# ----------------------------------------------------------------------------------------------------------------
def run_guarded(spec: dict, timeout_s: float, memory_limit_mb: float) -> dict:
    """Run one worker; kill it past ``timeout_s`` or when its resident memory passes ``memory_limit_mb``."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    env = dict(os.environ)
    if spec.get("threads"):
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(spec["threads"])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    start, seen_mb, reason = time.monotonic(), 0.0, None
    while process.poll() is None:
        rss_kb = _proc_status_kb("VmRSS", str(process.pid))
        if rss_kb is not None:
            seen_mb = max(seen_mb, rss_kb / 1024)
            if rss_kb / 1024 > memory_limit_mb:
                reason = "OOM"
        if time.monotonic() - start > timeout_s:
            reason = "timeout"
        if reason:
            process.kill()
            process.wait()
            return {"error": reason, "seen_mb": seen_mb, "elapsed_s": time.monotonic() - start}
        time.sleep(0.02)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        oom = process.returncode in (-9, 137) or "out of memory" in stderr.lower() or "MemoryError" in stderr
        tail = stderr.strip().splitlines()[-1:] or [f"exit {process.returncode}"]
        return {"error": "OOM" if oom else "error", "detail": tail[0][:200], "seen_mb": seen_mb}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": "error", "detail": "no result line"}


def fmt_time(result: Optional[dict]) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return result["error"]
    t = result["time_s"]
    text = f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"
    return text + ("*" if result["samples"] != result.get("batch", result["samples"]) else "")


def fmt_mem(result: Optional[dict]) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return f">{result['seen_mb'] / 1024:.1f} GB" if result.get("seen_mb") and result["error"] == "OOM" else "-"
    mb = result.get("peak_mb")
    if mb is None:
        return "?"
    return f"{mb:.0f} MB" if mb < 1024 else f"{mb / 1024:.1f} GB"


def fmt_bandwidth(result: Optional[dict]) -> str:
    if not result or "achieved_gbs" not in result:
        return "-"
    return f"{result['achieved_gbs']:.0f} ({result['copy_gbs']:.0f})"


def fmt_ratio(numerator: Optional[dict], denominator: Optional[dict]) -> str:
    if not numerator or not denominator or "error" in numerator or "error" in denominator:
        return "-"
    return f"{numerator['time_s'] / denominator['time_s']:.1f}x"


def engine_fingerprint() -> str:
    """Short hash of the simulator's source files: a table must not mix engine versions edited mid-run."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("circuits.py", "statevector.py", "noise.py", "heads.py", "pennylane_bridge.py"):
        try:
            with open(os.path.join(REPO, "modeling_qllm", name), "rb") as handle:
                digest.update(handle.read())
        except OSError:
            digest.update(name.encode())
    return digest.hexdigest()[:12]


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "modeling_qllm"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        return out.stdout.strip() + (" (modeling_qllm has uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def memory_available_mb() -> float:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 8192.0


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 8, 10, 12, 14, 16], help="register sizes Q (>= 3)")
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 256], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up; the median is reported")
    parser.add_argument("--case-seconds", type=float, default=30.0,
                        help="fewer repeats when warm-up x repeats would pass this many seconds; a warm-up longer "
                             "than this is itself the (single) measurement")
    parser.add_argument("--skip-pennylane-above", type=int, default=16, help="no PennyLane runs above this many qubits")
    parser.add_argument("--lightning-samples", type=int, default=4,
                        help="samples timed on lightning.qubit (no broadcasting); the time is scaled to the batch")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement subprocess")
    parser.add_argument("--memory-limit-gb", type=float, default=None,
                        help="kill a measurement past this resident size (default: 60%% of MemAvailable)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per measurement (torch and OpenMP); default: the libraries' own choice. "
                             "Use 1 on a shared machine: spinning OpenMP threads on busy cores cost 2-15x")
    parser.add_argument("--backends", nargs="+", default=None, help=f"subset of {CPU_BACKENDS + CUDA_BACKENDS}")
    parser.add_argument("--markdown", action="store_true", help="print a README-ready markdown table")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return

    import torch

    backends = list(args.backends or CPU_BACKENDS + (CUDA_BACKENDS if torch.cuda.is_available() else []))
    if not torch.cuda.is_available():
        backends = [b for b in backends if not b.startswith("ours-cuda")]
    limit_mb = args.memory_limit_gb * 1024 if args.memory_limit_gb else 0.6 * memory_available_mb()
    cpu = os.cpu_count()
    fingerprint = engine_fingerprint()
    print("# simulator benchmark: forward + backward w.r.t. all weights (loss = sum of logits)")
    print(f"# code: git {git_revision()}, engine source hash {fingerprint}")
    print(f"# {describe_shape()}")
    threads = args.threads or torch.get_num_threads()
    print(f"# machine: {cpu} CPU cores, torch {torch.__version__}, {threads} thread(s) per measurement "
          f"({'--threads' if args.threads else 'default'}), "
          f"cuda: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print(f"# one fresh subprocess per measurement; one warm-up, then the median of up to {args.repeats} runs "
          f"(fewer when one run is long: about {args.case_seconds:.0f} s of repeats per measurement; a first run "
          f"longer than that is the measurement); time per batch")
    print(f"# load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())} (other processes share "
          f"these cores: absolute times are noisy, ratios measured side by side less so)")
    print(f"# memory: CPU = peak RSS (VmHWM) minus RSS after imports, CUDA = torch.cuda.max_memory_allocated; "
          f"a measurement is killed past {limit_mb / 1024:.1f} GB RSS (OOM) or {args.timeout:.0f} s (timeout)")
    print(f"# default.qubit: backprop, batch broadcasting, torch interface, complex128; lightning.qubit: adjoint "
          f"(Jacobian on execution), no broadcasting: {args.lightning_samples} samples timed, time scaled linearly "
          f"to the batch (marked *), memory is that of the subset")
    print("# ours: encoder_strategy='auto' (runs the encoder on the 2**Q basis states instead of the batch when "
          "cheaper); ratios: PennyLane time / ours (f64: same precision; f32: the training default), and the PyTorch "
          "kernels / the C kernels", flush=True)
    print("# GB/s: bytes a one-read-one-write-per-gate simulator moves (forward + backward on [psi | grad]) / time, "
          "beside copy_ between two buffers of one chunk's state (the in-cache roofline on a CPU)", flush=True)

    results: Dict[tuple, dict] = {}
    began = time.monotonic()
    for qubits in args.qubits:
        for batch in args.batch:
            for backend in backends:
                if backend in PENNYLANE_BACKENDS and qubits > args.skip_pennylane_above:
                    continue
                spec = dict(backend=backend, qubits=qubits, batch=batch, repeats=args.repeats, threads=args.threads,
                            case_seconds=args.case_seconds, lightning_samples=args.lightning_samples)
                started = time.monotonic()
                result = run_guarded(spec, args.timeout, limit_mb)
                result["batch"] = batch
                results[(qubits, batch, backend)] = result
                runs = f"{result['repeats'] or 1} run(s), " if "repeats" in result else ""
                detail = f", {result['detail']}" if "detail" in result else ""
                print(f"  Q={qubits:2d} batch={batch:4d} {backend:16s} {fmt_time(result):>12s} {fmt_mem(result):>9s}"
                      f"  ({runs}{time.monotonic() - started:.0f} s wall{detail})", flush=True)

    header = ["Q", "batch"] + [f"{b} time" for b in backends]
    ratios = [(b, ours) for b in backends if b in PENNYLANE_BACKENDS for ours in ("ours-f32", "ours-f64")
              if ours in backends]
    if "ours-torch-kernels-f32" in backends and "ours-f32" in backends:
        ratios.append(("ours-torch-kernels-f32", "ours-f32"))
    header += [f"{b} / {ours}" for b, ours in ratios]
    header += [f"{b} mem" for b in backends]
    ours = [b for b in backends if b.startswith("ours")]
    header += [f"{b} GB/s (copy GB/s)" for b in ours]
    rows = []
    for qubits in args.qubits:
        for batch in args.batch:
            get = lambda b: results.get((qubits, batch, b))  # noqa: E731
            row = [str(qubits), str(batch)] + [fmt_time(get(b)) for b in backends]
            row += [fmt_ratio(get(b), get(ours)) for b, ours in ratios]
            row += [fmt_mem(get(b)) for b in backends]
            row += [fmt_bandwidth(get(b)) for b in ours]
            rows.append(row)
    print()
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    print(f"\n* lightning.qubit: {args.lightning_samples} samples timed, scaled linearly to the batch. "
          f"OOM: killed past the {limit_mb / 1024:.1f} GB guard (the peak it had reached is shown as >X GB).")
    print(f"# total {time.monotonic() - began:.0f} s; load average at the end: "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if engine_fingerprint() != fingerprint:
        print(f"# WARNING: the engine's source changed during the run ({fingerprint} -> {engine_fingerprint()}): "
              f"rows measured before and after the change are not comparable; run again")


if __name__ == "__main__":
    main()
