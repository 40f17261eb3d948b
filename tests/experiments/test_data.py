import json

import datasets
import numpy as np
import pytest

from modeling_qllm.experiments import data as data_mod
from modeling_qllm.experiments.data import (
    Split,
    load_text_classification,
    merge_splits,
    paper_splits,
    standard_splits,
    validate_dataset,
)


def _dsd(**splits):
    return datasets.DatasetDict({name: datasets.Dataset.from_dict(cols) for name, cols in splits.items()})


def _balanced(n_per_label, num_labels=2):
    labels = [i % num_labels for i in range(n_per_label * num_labels)]
    return {"text": [f"sentence {i}" for i in range(len(labels))], "label": labels}


# ---------------------------------------------------------------- loading


def test_load_local_folder_detects_format_per_split(tmp_path):
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps({"text": t, "label": l})
                                                    for t, l in [("a", 0), ("b", 1), ("c", 1)]))
    (tmp_path / "validation.csv").write_text("text,label\nd,0\ne,1\n")
    datasets.Dataset.from_dict({"text": ["f"], "label": [0]}).to_parquet(str(tmp_path / "test.parquet"))
    dsd = load_text_classification(tmp_path)
    assert list(dsd) == ["train", "validation", "test"]
    assert [dsd[s].num_rows for s in dsd] == [3, 2, 1]
    assert list(dsd["validation"]["text"]) == ["d", "e"] and list(dsd["test"]["label"]) == [0]


def test_load_renames_user_columns_and_keeps_others(tmp_path):
    rows = [{"sentence": "good", "target": 1, "id": 7}, {"sentence": "bad", "target": 0, "id": 8}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    dsd = load_text_classification(str(tmp_path), text_column="sentence", label_column="target")
    assert sorted(dsd["train"].column_names) == ["id", "label", "text"]
    assert list(dsd["train"]["text"]) == ["good", "bad"] and list(dsd["train"]["label"]) == [1, 0]


def test_load_rename_errors(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "a", "sentence": "b", "label": 0}))
    with pytest.raises(ValueError, match=r"Column 'review' not found in split 'train'; columns found: \['text'"):
        load_text_classification(tmp_path, text_column="review")
    with pytest.raises(ValueError, match="a column 'text' already exists"):
        load_text_classification(tmp_path, text_column="sentence")


def test_load_local_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        load_text_classification(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="is not a directory"):
        load_text_classification(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"No split files in .*found \['notes.txt'\]"):
        load_text_classification(tmp_path)
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "a", "label": 0}))
    (tmp_path / "train.csv").write_text("text,label\na,0\n")
    with pytest.raises(ValueError, match=r"Ambiguous split 'train'.*train.jsonl.*train.csv"):
        load_text_classification(tmp_path)


def test_hub_id_goes_to_load_dataset(monkeypatch):
    calls = []

    def recording_load_dataset(source, **kwargs):  # records the call; the Hub is unreachable here
        calls.append((source, kwargs))
        return _dsd(train={"sentence": ["x"], "label": [0]})

    monkeypatch.setattr(data_mod.datasets, "load_dataset", recording_load_dataset)
    dsd = load_text_classification("SetFit/sst2", text_column="sentence", revision="main")
    assert calls == [("SetFit/sst2", {"revision": "main"})]
    assert dsd["train"].column_names == ["text", "label"]


# ---------------------------------------------------------------- validation


def test_validate_infers_num_labels():
    assert validate_dataset(_dsd(train={"text": ["a", "b", "c"], "label": [0, 2, 1]})) == 3
    assert validate_dataset(_dsd(train={"text": ["a"], "label": [0]}), num_labels=4) == 4
    ds = datasets.Dataset.from_dict({"text": ["a"], "label": [0]},
                                    features=datasets.Features({"text": datasets.Value("string"),
                                                                "label": datasets.ClassLabel(names=["n", "p", "x"])}))
    assert validate_dataset(datasets.DatasetDict({"train": ds})) == 3


def test_validate_errors():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['text'\]; columns found: \['sentence', 'label'\]"):
        validate_dataset(_dsd(train={"sentence": ["a"], "label": [0]}))
    with pytest.raises(ValueError, match=r"Split 'test' is empty"):
        validate_dataset(_dsd(train={"text": ["a"], "label": [0]}, test={"text": [], "label": []}))
    with pytest.raises(ValueError, match=r"Text at row 1 of split 'train' is None \(NoneType\)"):
        validate_dataset(_dsd(train={"text": ["a", None], "label": [0, 1]}))
    with pytest.raises(ValueError, match=r"Label 1.0 at row 0 of split 'train' is not an integer \(float\)"):
        validate_dataset(_dsd(train={"text": ["a", "b"], "label": [1.0, 0.0]}))
    with pytest.raises(ValueError, match=r"Label 'pos' at row 0 .* is not an integer"):
        validate_dataset(_dsd(train={"text": ["a"], "label": ["pos"]}))
    with pytest.raises(ValueError, match=r"Label 2 at row 2 of split 'validation' is out of range \[0, 2\)"):
        validate_dataset(_dsd(train={"text": ["a"], "label": [0]},
                              validation={"text": ["a", "b", "c"], "label": [0, 1, 2]}), num_labels=2)
    with pytest.raises(ValueError, match=r"Label -1 at row 0 of split 'test' is out of range"):
        validate_dataset(_dsd(train={"text": ["a"], "label": [0]}, test={"text": ["b"], "label": [-1]}))
    with pytest.raises(ValueError, match="num_labels must be a positive integer, got 0"):
        validate_dataset(_dsd(train={"text": ["a"], "label": [0]}), num_labels=0)
    with pytest.raises(ValueError, match="no splits"):
        validate_dataset(datasets.DatasetDict())


# ---------------------------------------------------------------- merge and protocols


def test_merge_order_and_feature_mismatch():
    dsd = _dsd(test={"text": ["c"], "label": [1]}, extra={"text": ["d"], "label": [0]},
               train={"text": ["a"], "label": [0], "id": [5]}, validation={"text": ["b"], "label": [1]})
    merged = merge_splits(dsd)
    assert list(merged["text"]) == ["a", "b", "c", "d"] and merged.column_names == ["text", "label"]
    with pytest.raises(ValueError, match="Cannot merge splits with different features"):
        merge_splits(_dsd(train={"text": ["a"], "label": [0]}, test={"text": ["b"], "label": [0.5]}))


def test_paper_splits_sizes_disjoint_stratified_and_covering():
    dsd = _dsd(train=_balanced(300), test=_balanced(50))
    splits = paper_splits(dsd, per_label=256, folds=3, seed=1)
    assert [s.name for s in splits] == ["fold0", "fold1", "fold2"]
    for s in splits:
        assert isinstance(s, Split) and len(s.dataset) == 700
        assert (len(s.train), len(s.validation), len(s.test)) == (435, 77, 188)
        all_idx = np.concatenate([s.train, s.validation, s.test])
        assert len(np.unique(all_idx)) == 700 and all_idx.min() == 0 and all_idx.max() == 699
        labels = np.asarray(s.dataset["label"])
        assert np.bincount(labels[np.concatenate([s.train, s.validation])]).tolist() == [256, 256]
        assert sorted(np.bincount(labels[s.validation]).tolist()) == [38, 39]
        assert np.all(np.diff(s.train) > 0) and "seed=1" in s.note
    assert not np.array_equal(splits[0].train, splits[1].train)  # folds draw different samples


def test_paper_splits_deterministic_given_seed():
    dsd = _dsd(train=_balanced(40))
    a = paper_splits(dsd, per_label=10, folds=2, seed=3)
    b = paper_splits(dsd, per_label=10, folds=2, seed=3)
    c = paper_splits(dsd, per_label=10, folds=2, seed=4)
    for x, y in zip(a, b):
        assert all(np.array_equal(getattr(x, k), getattr(y, k)) for k in ("train", "validation", "test"))
    assert not np.array_equal(a[0].train, c[0].train)


def test_paper_splits_three_labels_largest_remainder():
    (s,) = paper_splits(_dsd(train=_balanced(12, num_labels=3)), per_label=10, folds=1)
    labels = np.asarray(s.dataset["label"])
    assert (len(s.train), len(s.validation), len(s.test)) == (25, 5, 6)
    assert np.bincount(labels[s.validation], minlength=3).tolist() == [2, 2, 1]
    datasets_ = s.datasets()
    assert [datasets_[k].num_rows for k in ("train", "validation", "test")] == [25, 5, 6]


def test_paper_splits_errors():
    dsd = _dsd(train={"text": ["t"] * 15, "label": [0] * 10 + [1] * 5})
    with pytest.raises(ValueError, match=r"needs 8 rows per label, but label\(s\) \[1\] have fewer; "
                                         r"counts per label: \{0: 10, 1: 5\}"):
        paper_splits(dsd, per_label=8)
    with pytest.raises(ValueError, match=r"label\(s\) \[2\] have fewer; counts per label: \{0: 10, 1: 5, 2: 0\}"):
        paper_splits(dsd, per_label=4, num_labels=3)
    with pytest.raises(ValueError, match="per_label must be a positive integer, got 0"):
        paper_splits(dsd, per_label=0)
    with pytest.raises(ValueError, match="train_fraction must lie strictly between 0 and 1, got 1.0"):
        paper_splits(dsd, per_label=4, train_fraction=1.0)
    with pytest.raises(ValueError, match="folds must be a positive integer, got 0"):
        paper_splits(dsd, per_label=4, folds=0)
    with pytest.raises(ValueError, match="leaves 0 of 8 sampled rows for train"):
        paper_splits(dsd, per_label=4, train_fraction=0.1)


def test_standard_splits():
    (s,) = standard_splits(_dsd(test={"text": ["e"], "label": [0]}, train={"text": ["a", "b"], "label": [0, 1]},
                                validation={"text": ["c", "d"], "label": [1, 0]}))
    assert s.name == "standard" and "own train/validation/test" in s.note
    assert (s.train.tolist(), s.validation.tolist(), s.test.tolist()) == ([0, 1], [2, 3], [4])
    assert list(s.datasets()["test"]["text"]) == ["e"]


def test_standard_splits_without_test_says_so():
    (s,) = standard_splits(_dsd(train={"text": ["a"], "label": [0]}, validation={"text": ["c"], "label": [1]}))
    assert s.test.tolist() == s.validation.tolist() == [1]
    assert "validation split is also used as the test set" in s.note


def test_standard_splits_without_validation_suggests_paper_protocol():
    with pytest.raises(ValueError, match=r"missing \['validation'\].*Use paper_splits"):
        standard_splits(_dsd(train={"text": ["a"], "label": [0]}, test={"text": ["b"], "label": [1]}))


# ---------------------------------------------------------------- real data


def test_paper_protocol_on_sst2(shared_data):
    dsd = load_text_classification(shared_data / "sst2")
    assert validate_dataset(dsd) == 2
    splits = paper_splits(dsd, per_label=256, train_fraction=0.85, folds=5, seed=0)
    assert len(splits) == 5 and len(splits[0].dataset) == 9613
    labels = np.asarray(splits[0].dataset["label"])
    for s in splits:
        assert (len(s.train), len(s.validation), len(s.test)) == (435, 77, 9101)
        assert np.bincount(labels[np.concatenate([s.train, s.validation])]).tolist() == [256, 256]
        assert not set(s.test) & (set(s.train) | set(s.validation))
    (std,) = standard_splits(dsd)
    assert (len(std.train), len(std.validation), len(std.test)) == (6920, 872, 1821)
