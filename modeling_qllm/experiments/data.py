"""Text-classification data: loading, validation and the evaluation protocols (splits).

Every protocol returns :class:`Split` objects whose index arrays point into one *merged* dataset (see
:func:`merge_splits`), so a frozen body can embed the merged texts once and every fold or seed selects rows of
that one embedding matrix.

Example:
    >>> from modeling_qllm.experiments.data import load_text_classification, validate_dataset, paper_splits
    >>> dsd = load_text_classification("../shared/data/sst2")          # doctest: +SKIP
    >>> validate_dataset(dsd)                                            # doctest: +SKIP
    2
    >>> [len(s.train), len(s.validation), len(s.test)] == [435, 77, 9101]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import datasets
import numpy as np

SPLIT_NAMES = ("train", "validation", "test")
"""Split files looked for in a local folder, in merge order."""

FILE_FORMATS = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}
"""File extension -> `datasets` packaged builder."""


def _find_split_file(folder: Path, split: str) -> Path | None:
    """Return the one file ``<split>.<ext>`` of a known format in ``folder``, None if there is none."""
    found = [folder / f"{split}.{ext}" for ext in FILE_FORMATS if (folder / f"{split}.{ext}").is_file()]
    if len(found) > 1:
        raise ValueError(
            f"Ambiguous split {split!r} in {folder}: found {[p.name for p in found]}; keep exactly one file per split."
        )
    return found[0] if found else None


def load_text_classification(
    source: str | Path, text_column: str = "text", label_column: str = "label", **load_kwargs
) -> datasets.DatasetDict:
    """Load a text-classification dataset and name its columns ``text`` and ``label``.

    Args:
        source: a local folder with split files ``train``/``validation``/``test`` (each ``.jsonl``, ``.json``,
            ``.csv`` or ``.parquet``, detected per split; at least one must exist), or a Hub dataset id, which is
            passed to ``datasets.load_dataset(source, **load_kwargs)``.
        text_column: the user's name of the text column, renamed to ``text``.
        label_column: the user's name of the label column, renamed to ``label``.

    Returns:
        A ``DatasetDict`` with the splits found; other columns are kept unchanged.

    Example:
        >>> dsd = load_text_classification("../shared/data/sst2")  # doctest: +SKIP
        >>> dsd["train"].num_rows                                  # doctest: +SKIP
        6920
    """
    path = Path(source).expanduser()
    if path.exists() or str(source).startswith(("/", ".", "~")):
        if not path.is_dir():
            raise ValueError(f"Local dataset source {str(source)!r} is not a directory; expected a folder with "
                             f"split files such as train.jsonl, validation.jsonl, test.jsonl.")
        files = {split: _find_split_file(path, split) for split in SPLIT_NAMES}
        files = {split: f for split, f in files.items() if f is not None}
        if not files:
            present = sorted(p.name for p in path.iterdir())
            raise ValueError(
                f"No split files in {path}: expected {list(SPLIT_NAMES)} with an extension in "
                f"{list(FILE_FORMATS)}; found {present}."
            )
        dsd = datasets.DatasetDict(
            {
                split: datasets.load_dataset(FILE_FORMATS[f.suffix[1:]], data_files=str(f), split="train")
                for split, f in files.items()
            }
        )
    else:
        dsd = datasets.load_dataset(str(source), **load_kwargs)
        if not isinstance(dsd, datasets.DatasetDict):
            raise ValueError(f"load_dataset({str(source)!r}) returned {type(dsd).__name__}, expected a DatasetDict; "
                             "do not pass split=...")
    for column, target in ((text_column, "text"), (label_column, "label")):
        if column == target:
            continue
        for split, ds in dsd.items():
            if column not in ds.column_names:
                raise ValueError(f"Column {column!r} not found in split {split!r}; columns found: {ds.column_names}.")
            if target in ds.column_names:
                raise ValueError(f"Cannot rename {column!r} to {target!r} in split {split!r}: a column {target!r} "
                                 f"already exists (columns: {ds.column_names}).")
        dsd = dsd.rename_column(column, target)
    return dsd


def validate_dataset(dsd: datasets.DatasetDict, num_labels: int | None = None) -> int:
    """Check a dataset before any training and return the number of labels.

    Raises a ``ValueError`` that names the split, row and value for: an empty split, a missing ``text`` or
    ``label`` column (listing the columns found), a text that is not a string, a label that is not an integer,
    or a label outside ``[0, num_labels)``. When ``num_labels`` is None it is inferred: the ``ClassLabel``
    size if the label feature is one, else the largest label + 1.

    Example:
        >>> dsd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})})
        >>> validate_dataset(dsd)
        2
    """
    if len(dsd) == 0:
        raise ValueError("The DatasetDict has no splits.")
    for split, ds in dsd.items():
        missing = [c for c in ("text", "label") if c not in ds.column_names]
        if missing:
            raise ValueError(
                f"Split {split!r} lacks column(s) {missing}; columns found: {ds.column_names}. Pass "
                "text_column=/label_column= to load_text_classification to rename yours."
            )
        if ds.num_rows == 0:
            raise ValueError(f"Split {split!r} is empty (0 rows).")
    inferred = num_labels is None
    if inferred:
        class_label = next((ds.features["label"] for ds in dsd.values()
                            if isinstance(ds.features["label"], datasets.ClassLabel)), None)
        num_labels = class_label.num_classes if class_label is not None else None
    elif not isinstance(num_labels, Integral) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}.")
    largest = -1
    for split, ds in dsd.items():
        for row, text in enumerate(ds["text"]):
            if not isinstance(text, str):
                raise ValueError(f"Text at row {row} of split {split!r} is {text!r} ({type(text).__name__}), "
                                 "expected a string.")
        for row, label in enumerate(ds["label"]):
            if isinstance(label, bool) or not isinstance(label, Integral):
                raise ValueError(f"Label {label!r} at row {row} of split {split!r} is not an integer "
                                 f"({type(label).__name__}); expected class ids 0..num_labels-1.")
            if label < 0 or (num_labels is not None and label >= num_labels):
                bound = num_labels if num_labels is not None else "num_labels"
                raise ValueError(f"Label {label} at row {row} of split {split!r} is out of range [0, {bound}).")
            largest = max(largest, int(label))
    return int(num_labels) if num_labels is not None else largest + 1


def merge_splits(dsd: datasets.DatasetDict) -> datasets.Dataset:
    """Concatenate the ``text`` and ``label`` columns of all splits: train, validation, test, then others by name.

    Example:
        >>> dsd = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"text": ["b"], "label": [1]}),
        ...                             "train": datasets.Dataset.from_dict({"text": ["a"], "label": [0]})})
        >>> list(merge_splits(dsd)["text"])
        ['a', 'b']
    """
    order = [s for s in SPLIT_NAMES if s in dsd] + sorted(s for s in dsd if s not in SPLIT_NAMES)
    parts = [dsd[s].select_columns(["text", "label"]) for s in order]
    features = {s: p.features for s, p in zip(order, parts)}
    if any(f != parts[0].features for f in features.values()):
        raise ValueError(f"Cannot merge splits with different features: {features}. Cast them to one type first.")
    return datasets.concatenate_datasets(parts)


@dataclass(frozen=True)
class Split:
    """One train/validation/test partition, as sorted row indices into ``dataset`` (a merged dataset).

    Example:
        >>> ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]})
        >>> s = Split("fold0", ds, np.array([0]), np.array([1]), np.array([2]))
        >>> list(s.datasets()["test"]["text"])
        ['c']
    """

    name: str
    dataset: datasets.Dataset
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    note: str = ""

    def datasets(self) -> datasets.DatasetDict:
        """The three subsets as a ``DatasetDict`` (rows selected, nothing else changed)."""
        return datasets.DatasetDict({k: self.dataset.select(getattr(self, k)) for k in SPLIT_NAMES})


def _stratified_counts(counts: dict[int, int], total_out: int) -> dict[int, int]:
    """Share ``total_out`` among labels proportionally to ``counts`` (largest remainder, ties to the lower label)."""
    total = sum(counts.values())
    ideal = {c: total_out * n / total for c, n in counts.items()}
    share = {c: math.floor(v) for c, v in ideal.items()}
    by_remainder = sorted(counts, key=lambda c: (-(ideal[c] - share[c]), c))
    for c in by_remainder[: total_out - sum(share.values())]:
        share[c] += 1
    return share


def paper_splits(
    dsd: datasets.DatasetDict,
    per_label: int = 256,
    train_fraction: float = 0.85,
    folds: int = 5,
    seed: int = 0,
    num_labels: int | None = None,
) -> list[Split]:
    """The paper's protocol: merge all splits, sample ``per_label`` rows per label, split them stratified.

    For fold ``f`` the sample is drawn without replacement with ``numpy.random.default_rng((seed, f))``;
    ``floor(train_fraction * n)`` rows go to train and the rest to validation (435/77 for 2 x 256), stratified by
    label; every merged row not sampled is the test set (9,101 rows for SST-2's 9,613).

    Args:
        num_labels: if given, every label in ``range(num_labels)`` must have ``per_label`` rows; otherwise the
            labels present in the data are used.

    Example:
        >>> ds = datasets.Dataset.from_dict({"text": [str(i) for i in range(40)], "label": [0, 1] * 20})
        >>> s = paper_splits(datasets.DatasetDict({"train": ds}), per_label=10, train_fraction=0.8, folds=2)
        >>> [s[0].name, len(s[0].train), len(s[0].validation), len(s[0].test)]
        ['fold0', 16, 4, 20]
    """
    if not isinstance(per_label, Integral) or per_label < 1:
        raise ValueError(f"per_label must be a positive integer, got {per_label!r}.")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction!r}.")
    if not isinstance(folds, Integral) or folds < 1:
        raise ValueError(f"folds must be a positive integer, got {folds!r}.")
    merged = merge_splits(dsd)
    labels = np.asarray(merged["label"])
    classes = list(range(num_labels)) if num_labels is not None else sorted(int(c) for c in np.unique(labels))
    counts = {c: int((labels == c).sum()) for c in classes}
    short = {c: n for c, n in counts.items() if n < per_label}
    if short:
        raise ValueError(f"The paper protocol needs {per_label} rows per label, but label(s) {sorted(short)} have "
                         f"fewer; counts per label: {counts}. Lower per_label or use standard_splits.")
    n_sample = per_label * len(classes)
    n_train = math.floor(train_fraction * n_sample + 1e-9)
    if n_train == 0:  # validation is never empty: train_fraction < 1 leaves it at least one row
        raise ValueError(f"train_fraction={train_fraction} leaves 0 of {n_sample} sampled rows for train; "
                         "raise train_fraction or per_label.")
    n_val_per = _stratified_counts({c: per_label for c in classes}, n_sample - n_train)
    splits = []
    for fold in range(folds):
        rng = np.random.default_rng((seed, fold))
        train, val = [], []
        for c in classes:
            picked = rng.choice(np.flatnonzero(labels == c), size=per_label, replace=False)
            val.append(picked[: n_val_per[c]])
            train.append(picked[n_val_per[c]:])
        train, val = np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
        test = np.setdiff1d(np.arange(len(labels)), np.concatenate([train, val]))
        note = (f"paper protocol: {per_label} per label sampled from {len(labels)} merged rows "
                f"(seed={seed}, fold={fold}); train {len(train)}, validation {len(val)}, test {len(test)}")
        splits.append(Split(f"fold{fold}", merged, train, val, test, note))
    return splits


def standard_splits(dsd: datasets.DatasetDict) -> list[Split]:
    """The dataset's own train/validation/test, as one :class:`Split` named ``"standard"`` (in a list).

    A missing validation split is an error (use :func:`paper_splits` instead); a missing test split makes the
    validation split serve as test, which the returned ``note`` says.

    Example:
        >>> tr = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
        >>> va = datasets.Dataset.from_dict({"text": ["c"], "label": [1]})
        >>> s, = standard_splits(datasets.DatasetDict({"train": tr, "validation": va}))
        >>> [s.train.tolist(), s.validation.tolist(), s.test.tolist()]
        [[0, 1], [2], [2]]
    """
    missing = [s for s in ("train", "validation") if s not in dsd]
    if missing:
        raise ValueError(f"standard_splits needs 'train' and 'validation' splits; missing {missing}, found "
                         f"{list(dsd)}. Use paper_splits (sampled, stratified) or add the split files.")
    parts = {s: dsd[s] for s in SPLIT_NAMES if s in dsd}
    merged = merge_splits(datasets.DatasetDict(parts))
    ranges, start = {}, 0
    for s, ds in parts.items():
        ranges[s] = np.arange(start, start + ds.num_rows)
        start += ds.num_rows
    note = "standard protocol: the dataset's own train/validation/test splits"
    if "test" not in ranges:
        ranges["test"] = ranges["validation"]
        note = ("standard protocol: no test split, so the validation split is also used as the test set; "
                "test scores are not independent of model selection")
    return [Split("standard", merged, ranges["train"], ranges["validation"], ranges["test"], note)]
