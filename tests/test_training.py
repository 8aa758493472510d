import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from models import Emulator, build_model, count_parameters
from tests.conftest import SEASONS, TINY_BUDGET, TINY_CNN
from training import load_checkpoint
from utils.run_files import CHECKPOINT, METRICS, SELECTED

REPO = Path(__file__).resolve().parents[1]


def arguments(shard_dir, run_dir, *extra, model="cnn_seed"):
    """A small run on ready-made shards (no Crocus data to preprocess)."""
    settings = TINY_CNN if model == "cnn_seed" else TINY_BUDGET
    return ["--crocus_dir", "", "--shard_dir", str(shard_dir), "--run_dir", str(run_dir), "--device", "cpu",
            "--num_workers", "0", "--threads", "1", "--batch_size", "64", "--model", model,
            "--model_settings", json.dumps(settings), "--sampled_train", "0", "--sampled_validation", "0",
            "--sampled_test", "0", "--ship_dir", str(Path(run_dir).parent / "shipped"), *extra]


def metrics(run_dir):
    with open(Path(run_dir) / METRICS) as f:
        return list(csv.DictReader(f))


def test_quick_run_end_to_end(tmp_path):
    """`python main.py --quick`, its data cached under tmp_path instead of cache/quick."""
    report = main.main(["--quick", "--crocus_dir", str(tmp_path / "crocus"), "--shard_dir", str(tmp_path / "shards"),
                        "--sampled_dir", str(tmp_path / "sampled"), "--run_dir", str(tmp_path / "run"),
                        "--ship_dir", str(tmp_path / "shipped"), "--threads", "1"])
    run_dir = tmp_path / "run"
    for name in (SELECTED, CHECKPOINT, METRICS, "learning_curves.png", "test_report.md", "test_report.json",
                 "config.json", "domain.json"):
        assert (run_dir / name).is_file(), name
    overall = report["test"]["overall"]
    assert overall["n"] > 0 and 0 < overall["albedo"]["mae"] < 0.2
    assert overall["albedo"]["rmse"] >= overall["albedo"]["mae"] and 0 < overall["profile"]["mean"] < 0.5
    assert sum(b["n"] for b in report["test"]["by"]["cos_illum"]["bins"]) == overall["n"]
    assert report["model"] == "optical_budget" and len(metrics(run_dir)) == 3
    assert report["parameters"] == count_parameters(build_model("optical_budget")[0])
    assert report["provenance"]["git_commit"]
    wide = report["wide_range"]["overall"]
    assert wide["n"] == 1000 and 0 < wide["albedo"]["mae"] < 0.2
    assert not (tmp_path / "shipped").exists()  # only --ship true ships
    emulator = Emulator.load(run_dir / SELECTED)
    albedo = emulator.predict(np.full((2, 3), 0.05), np.full((2, 3), 30.0), np.full((2, 3), 250.0), np.zeros((2, 3)),
                              np.zeros((2, 3)), [0.3, 0.8], [0.0, 500.0], [100.0, 80.0])
    assert np.all((albedo > 0.3) & (albedo < 1))
    assert emulator.info["provenance"]["git_commit"]


@pytest.mark.parametrize("model", ["optical_budget", "cnn_seed"])
def test_resume_continues_exactly(shard_dir, tmp_path, model):
    main.main(arguments(shard_dir, tmp_path / "straight", "--epochs", "2", model=model))
    # A time budget of 0 stops after one epoch, like an interrupted run; the resumed one finishes.
    first = main.main(arguments(shard_dir, tmp_path / "resumed", "--epochs", "2", "--max_minutes", "0", model=model))
    assert first["stopped_by"] == "time budget" and len(metrics(tmp_path / "resumed")) == 1
    second = main.main(["--resume", str(tmp_path / "resumed")])
    assert second["epochs_trained"] == 2

    straight, resumed = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    for name, tensor in straight["model_state"].items():
        assert torch.equal(tensor, resumed["model_state"][name]), name
    assert straight["scheduler"]["last_epoch"] == resumed["scheduler"]["last_epoch"] > 0
    for row_a, row_b in zip(metrics(tmp_path / "straight"), metrics(tmp_path / "resumed"), strict=True):
        assert {k: v for k, v in row_a.items() if k != "epoch_seconds"} == \
               {k: v for k, v in row_b.items() if k != "epoch_seconds"}

    with pytest.raises(ValueError, match="cannot change in a resumed run"):
        main.main(["--resume", str(tmp_path / "resumed"), "--lr", "0.1"])
    with pytest.raises(FileExistsError, match="holds a run"):
        main.main(arguments(shard_dir, tmp_path / "straight"))


def test_training_steps_on_the_compiled_physics_are_the_torch_forms(shard_dir):
    """On a CPU in one process the steps take the compiled physics (training.uses_compiled_physics):
    the same outputs, loss and gradients as through the model's torch form, to float32 rounding."""
    from dataset import ShardDataset, split_shards
    from features import fit_normalisation
    from training import loss_of, predict_batch, uses_compiled_physics
    from utils.config import Config
    from utils.devices import Distributed

    dataset = ShardDataset(split_shards(shard_dir, [], [], [])["train"])
    torch.manual_seed(0)
    model, _ = build_model("optical_budget")
    fit_normalisation(model, dataset.model_inputs())
    cpu = torch.device("cpu")
    assert uses_compiled_physics(model, Distributed(0, 1, cpu))
    assert not uses_compiled_physics(model, Distributed(0, 2, cpu))  # DDP: through the wrapped forward
    assert not uses_compiled_physics(build_model("cnn_seed")[0], Distributed(0, 1, cpu))
    batch = dataset[np.arange(200)]
    steps = []
    for compiled in (True, False):
        model.zero_grad()
        prediction = predict_batch(model, batch, cpu, compiled)
        loss = loss_of(prediction, batch, Config())
        loss.backward()
        steps.append((prediction, loss, [p.grad.clone() for p in model.parameters()]))
    (compiled, loss, gradients), (expected, expected_loss, expected_gradients) = steps
    for name in expected:
        torch.testing.assert_close(compiled[name], expected[name], rtol=0, atol=1e-6)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-4, atol=0)
    for got, want in zip(gradients, expected_gradients, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-6 * float(want.abs().max()))


def test_two_process_distributed_run_on_cpu(shard_dir, tmp_path):
    run_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "main.py",
               *arguments(shard_dir, run_dir, "--epochs", "1", model="optical_budget")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in run_dir.glob("*.pt")) == [SELECTED, CHECKPOINT]
    assert not list(run_dir.glob("*tmp*"))
    checkpoint = load_checkpoint(run_dir)
    assert len(checkpoint["rng"]) == 2 and checkpoint["progress"]["epoch"] == 1 and len(metrics(run_dir)) == 1
    assert result.stdout.count("test (") == 1  # rank 0 alone evaluates and reports


def test_non_finite_loss_aborts(tmp_path, write_profiles_shard):
    for i, season in enumerate(SEASONS):
        write_profiles_shard(tmp_path / "shards" / "Alpes" / season, "Alpes", season, 20, seed=i)
    target = np.load(tmp_path / "shards" / "Alpes" / SEASONS[0] / "albedo.npy", mmap_mode="r+")
    target[3] = np.nan
    target.flush()
    with pytest.raises(FloatingPointError, match="non-finite training loss .* at epoch 1"):
        main.main(arguments(tmp_path / "shards", tmp_path / "run", "--epochs", "1"))


def test_configuration_from_file_and_command_line(tmp_path):
    (tmp_path / "run.json").write_text('{"epochs": 3, "validation": ["Alpes/2011080106_2012080106"]}')
    config, checkpoint = main.configure(["--config", str(tmp_path / "run.json"), "--lr", "3e-4",
                                         "--test=2013080106_2014080106", "--tensorboard", "true"])
    assert checkpoint is None and config.epochs == 3 and config.lr == 3e-4 and config.tensorboard
    assert config.validation == ["Alpes/2011080106_2012080106"] and config.test == ["2013080106_2014080106"]
    assert not config.ship and not main.configure([])[0].ship
    assert main.configure(["--ship", "true"])[0].ship
    with pytest.raises(ValueError, match="--epoch: not a configuration key"):
        main.configure(["--epoch", "3"])
    with pytest.raises(ValueError, match="schedule: 'linear' is not one of"):
        main.configure(["--schedule", "linear"])


def test_select_last_keeps_the_final_epoch(shard_dir, tmp_path):
    """--select last: the selected model is the last epoch's, whatever its validation loss."""
    report = main.main(arguments(shard_dir, tmp_path / "last", "--epochs", "3", "--select", "last"))
    assert report["selected_epoch"] == 3
    final = load_checkpoint(tmp_path / "last")["model_state"]
    selected = Emulator.load(tmp_path / "last" / SELECTED).model.state_dict()
    for name, tensor in final.items():
        assert torch.equal(tensor, selected[name]), name
    with pytest.raises(ValueError, match="select: 'best' is not one of"):
        main.configure(["--select", "best"])


def test_season_repeats_draws_each_training_season_that_many_times(shard_dir, tmp_path):
    """--season_repeats 2: every training season's shard twice in the training split, the others once."""
    config, _ = main.configure(arguments(shard_dir, tmp_path / "run", "--season_repeats", "2"))
    once = main.splits_of(main.config_from_dict({"season_repeats": 1}, config))
    twice = main.splits_of(config)
    assert twice["train"] == once["train"] * 2
    assert twice["validation"] == once["validation"] and twice["test"] == once["test"]
    assert len(main.ShardDataset(twice["train"])) == 2 * len(main.ShardDataset(once["train"]))
    with pytest.raises(ValueError, match="--season_repeats: must be >= 1"):
        main.configure(["--season_repeats", "0"])


def test_sampled_truncation_adds_a_training_draw_of_its_own(shard_dir, tmp_path):
    """--sampled_truncation N: a shard of its own (seeded apart from the other draws) joins the
    training split only; 0 (the default) adds none."""
    config, _ = main.configure(arguments(shard_dir, tmp_path / "run", "--sampled_train", "100",
                                         "--sampled_truncation", "50", "--sampled_dir", str(tmp_path / "sampled")))
    draws = main.sampled_draws(config)
    path, size, seed = draws["train_truncation"]
    assert size == 50 and path.name == f"train_truncation_50_seed{30_000 + config.seed}"
    assert seed not in {s for split, (_, _, s) in draws.items() if split != "train_truncation"}
    splits = main.splits_of(config)
    assert splits["train"][-2:] == [draws["train"][0], path] and path not in splits["validation"] + splits["wide_range"]
    assert "train_truncation" not in main.sampled_draws(main.config_from_dict({"sampled_truncation": 0}, config))
    with pytest.raises(ValueError, match="--sampled_truncation: must be >= 0"):
        main.configure(["--sampled_truncation", "-1"])
