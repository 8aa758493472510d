"""The command lines on bad input: one line naming the option or file and the problem, exit status 2
for usage errors, no traceback, and nothing made before the configuration is checked
(main.py, preprocessing.preprocess, plot.all; predict.py in test_predict.py)."""
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import main
import plot.all as plot_all
from models import Emulator, build_model
from plot import cli, evaluation, style
from preprocessing import crocus_files
from preprocessing import preprocess as pp
from tests.conftest import TINY_BUDGET
from tests.crocus_fixtures import SEASON, make_pair, write_pair
from utils.config import Config, UsageError, build_parser
from utils.devices import resolve_device
from utils.provenance import sha256

REPO = Path(__file__).resolve().parents[1]
NO_CUDA = "CUDA is not available on this machine"


def configure_error(argv) -> str:
    with pytest.raises(UsageError) as error:
        main.configure(argv)
    return str(error.value)


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with 2 CUDA devices, as far as the checks can tell."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# ---------------------------------------------------------------------------------------------
# main.py

def test_main_bad_values_name_their_option(tmp_path):
    (tmp_path / "typed.json").write_text('{"epochs": "abc"}')
    (tmp_path / "broken.json").write_text('{"epochs": 3,')
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "no_shards").mkdir()
    cases = {
        ("--model", "nosuch"): "--model 'nosuch': not a model; known: cnn_seed, optical_budget",
        ("--device", "tpu"): "--device 'tpu': expected cpu, cuda, cuda:N or auto",
        ("--epochs", "abc"): "--epochs: expected an integer, got 'abc'",
        ("--epochs", "0"): "--epochs: must be >= 1, got 0",
        ("--lr", "-1"): "--lr: must be > 0 and finite, got -1.0",
        ("--lr=nan",): "--lr: must be > 0 and finite, got nan",
        ("--weight_decay", "-1e-5"): "--weight_decay: must be >= 0 and finite, got -1e-05",
        ("--num_workers", "-2"): "--num_workers: must be >= 0, got -2",
        ("--max_minutes", "soon"): "--max_minutes: expected a number, got 'soon'",
        ("--ship", "maybe"): "--ship: expected true or false, got 'maybe'",
        ("--schedule", "linear"): "--schedule: 'linear' is not one of onecycle, cosine, constant",
        ("--epoch", "3"): "--epoch: not a configuration key (see --help for the keys)",
        ("--model_settings", "[64]"): "--model_settings: expected a JSON object such as '{\"hidden\": [64, 64]}', "
                                      "got '[64]'",
        ("--model_settings", '{"nosuch": 1}'): "--model_settings {\"nosuch\": 1}: model 'optical_budget': unknown "
                                               "settings ['nosuch']; known: ['hidden', 'n_depths', 'n_described', "
                                               "'n_shallow', 'n_surface', 'shallow_layers', 'truncation', "
                                               "'wavelengths_nm']",
        ("--target", "foo"): "--target 'foo': not a label source; known: crocus, tartes",
        ("--resume", str(tmp_path / "nosuch")): f"--resume {tmp_path / 'nosuch'}: no such directory",
        ("--resume", str(tmp_path / "empty_run")): f"--resume {tmp_path / 'empty_run'}: no last.pt in it (not a run "
                                                   "directory of main.py, or the run stopped before its first epoch "
                                                   "ended)",
        ("--config", str(tmp_path / "nosuch.json")): f"--config {tmp_path / 'nosuch.json'}: no such file",
        ("--config", str(tmp_path / "typed.json")): f"--config {tmp_path / 'typed.json'}: --epochs: expected an "
                                                    "integer, got \"abc\"",
        ("--embedded", "false", "--crocus_dir", str(tmp_path / "nosuch")):
            f"--crocus_dir {tmp_path / 'nosuch'}: no such directory (--embedded true generates the embedded seasons "
            "there)",
        ("--crocus_dir=", "--shard_dir", str(tmp_path / "no_shards")):
            f"--shard_dir {tmp_path / 'no_shards'}: no complete shard, and no --crocus_dir to make them from",
    }
    for argv, message in cases.items():
        assert configure_error(list(argv)) == message, argv
    assert configure_error(["--model_settings", "{bad"]).startswith("--model_settings: not valid JSON (")
    assert configure_error(["--config", str(tmp_path / "broken.json")]).startswith(
        f"--config {tmp_path / 'broken.json'}: not valid JSON (")
    assert configure_error(["--model_settings", '{"hidden": "wide"}']).startswith(
        "--model_settings {\"hidden\": \"wide\"}: not valid settings of model 'optical_budget' (")


def test_main_device_not_on_this_machine(monkeypatch):
    if not torch.cuda.is_available():
        assert configure_error(["--device", "cuda:7"]) == f"--device 'cuda:7': {NO_CUDA}"
        assert configure_error(["--device", "cuda"]) == f"--device 'cuda': {NO_CUDA}"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert configure_error(["--device", "cuda:7"]) == \
        "--device 'cuda:7': this machine has 2 CUDA device(s), cuda:0 to cuda:1"
    assert main.configure(["--device", "cuda:1"])[0].device == "cuda:1"


def test_resolve_device_with_cuda(two_gpus):
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"device 'cuda:2': this machine has 2 CUDA device\(s\)"):
        resolve_device("cuda:2")


def test_the_configuration_is_checked_before_any_data_is_made(monkeypatch):
    def making_data(*args, **kwargs):
        raise AssertionError("data made before the configuration was checked")

    for name in ("prepare_data", "generate", "write_sampled_shard", "preprocess", "run", "setup_distributed"):
        monkeypatch.setattr(main, name, making_data)
    with pytest.raises(UsageError, match="--target 'foo': not a label source"):
        main.main(["--target", "foo"])
    with pytest.raises(UsageError, match="--lr: must be > 0"):
        main.main(["--quick", "--lr", "-1"])


def test_data_only_builds_the_data_and_trains_nothing(monkeypatch):
    built = []
    monkeypatch.setattr(main, "prepare_data", built.append)
    monkeypatch.setattr(main, "run", lambda *args: pytest.fail("--data_only trained"))
    assert main.main(["--data_only", "--quick"]) == {}
    [config] = built
    assert config.shard_dir == "cache/quick/shards" and config.sampled_train == 2000


def test_the_script_prints_one_line_and_exits_2(tmp_path):
    start = time.time()
    result = subprocess.run([sys.executable, "main.py", "--target", "foo"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        "main.py: error: --target 'foo': not a label source; known: crocus, tartes"
    assert time.time() - start < 60  # refused at once, not after generating data
    result = subprocess.run([sys.executable, "main.py", "--crocus_dir", str(tmp_path / "crocus"), "--validation",
                             "nosuch"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("main.py: error: --validation: ")
    assert not (tmp_path / "crocus").exists()


def test_main_help_says_what_ships():
    text = build_parser().format_help()
    assert "ships its model" not in text
    assert "--ship true also copies the selected model and its report to data/" in text
    assert "--data_only" in text


def test_main_help_describes_every_key_and_the_energy_budget():
    text = build_parser().format_help()
    lines = text.splitlines()
    for key in asdict(Config()):
        [index] = [i for i, line in enumerate(lines) if line.startswith(f"  --{key} ")]
        assert len(lines[index + 1].split()) >= 3, key  # a few words under each key and its default
    assert "albedo emulator" not in text and "albedo emulator" not in main.__doc__
    assert "energy budget" in text and "energy budget" in main.__doc__.split("\n\n")[0]
    # --quick measured 27 s: one figure everywhere
    assert "about 30 s" in text and "about 30 s" in main.__doc__ and "about a minute" not in text + main.__doc__


@pytest.fixture
def no_data_made(monkeypatch):
    def making_data(*args, **kwargs):
        raise AssertionError("data made before the configuration was checked")

    for name in ("prepare_data", "generate", "write_sampled_shard", "preprocess", "run", "setup_distributed"):
        monkeypatch.setattr(main, name, making_data)


def test_split_mistakes_are_refused_before_any_data_is_made(tmp_path, no_data_made):
    crocus = ["--crocus_dir", str(tmp_path / "crocus"), "--shard_dir", str(tmp_path / "shards")]
    with pytest.raises(UsageError, match=r"^--validation: the seasons of .*crocus: the validation split \['foo'\] "
                                         r"matches no shard; shards: \['Alpes/2010080106_2011080106', "):
        main.main([*crocus, "--validation", "foo"])
    with pytest.raises(UsageError, match=r"^--train, --validation, --test: .*: 2 season\(s\) .*; the default split "
                                         r"needs 3"):
        main.main([*crocus, "--embedded_seasons", "2"])
    with pytest.raises(UsageError, match=r"^--embedded_start_day 400, --embedded_days 10: "):
        main.main([*crocus, "--embedded_start_day", "400", "--embedded_days", "10"])
    # Named splits on the embedded seasons to come: accepted
    config, _ = main.configure([*crocus, "--test", "2013080106_2014080106", "--validation",
                                "Alpes/2012080106_2013080106"])
    assert config.test == ["2013080106_2014080106"]
    assert not (tmp_path / "crocus").exists() and not (tmp_path / "shards").exists()


def test_own_data_get_a_shard_folder_of_their_own(tmp_path):
    """Own Crocus files without --shard_dir: never the cache of the embedded data (a later default
    run would train on them); each data folder its own."""
    (tmp_path / "mine" / "Alpes" / "PRO").mkdir(parents=True)
    for season in ("2001080106_2002080106", "2002080106_2003080106", "2003080106_2004080106"):
        (tmp_path / "mine" / "Alpes" / "PRO" / f"PRO_{season}.nc").write_text("")
    own = ["--crocus_dir", str(tmp_path / "mine"), "--embedded", "false"]
    default = main.configure([])[0]
    mine = main.configure(own)[0]
    quick = main.configure(["--quick", *own])[0]
    assert default.shard_dir == "cache/embedded/shards"
    assert mine.shard_dir.startswith("cache/shards/mine-") and quick.shard_dir == mine.shard_dir
    assert main.configure([*own, "--shard_dir", str(tmp_path / "chosen")])[0].shard_dir == str(tmp_path / "chosen")
    (tmp_path / "other").mkdir()
    (tmp_path / "mine").rename(tmp_path / "other" / "mine")
    moved = main.configure(["--crocus_dir", str(tmp_path / "other" / "mine"), "--embedded", "false"])[0]
    assert moved.shard_dir.startswith("cache/shards/mine-") and moved.shard_dir != mine.shard_dir


def test_no_line_for_an_empty_split(shard_dir):
    paths = sorted(shard_dir.glob("Alpes/*"))
    lines = main.split_lines({"train": paths[:2], "validation": paths[2:], "test": paths[2:], "wide_range": []})
    assert len(lines) == 3 and not any("wide_range" in line for line in lines)
    assert lines[0].startswith("     train:     640 profiles from ")


# ---------------------------------------------------------------------------------------------
# preprocessing.preprocess

PREPROCESS = "python -m preprocessing.preprocess: error: "


def preprocess_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        pp.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_preprocess_bad_options(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    out = ["--output", str(tmp_path / "out")]
    cases = {
        ("--input", "/nonexistent"): "--input /nonexistent: no such directory",
        ("--input", str(tmp_path / "file")): f"--input {tmp_path / 'file'}: not a directory",
        ("--input", str(tmp_path / "empty")): f"--input {tmp_path / 'empty'}: no <region>/PRO/PRO_<season>.nc "
                                              "file in it",
    }
    for argv, message in cases.items():
        assert preprocess_error([*argv, *out], capsys) == PREPROCESS + message
    inputs = ["--input", str(tmp_path / "empty")]
    assert preprocess_error([*inputs, *out, "--workers", "0"], capsys) == PREPROCESS + "--workers: must be >= 1, got 0"
    assert preprocess_error([*inputs, *out, "--point-chunk", "0"], capsys) == \
        PREPROCESS + "--point-chunk: must be >= 1, got 0"
    assert preprocess_error([*inputs, "--output", str(tmp_path / "file")], capsys) == \
        PREPROCESS + f"--output {tmp_path / 'file'}: not a directory"
    assert preprocess_error([*inputs, *out, "--target", "foo"], capsys).startswith(
        PREPROCESS + "argument --target: invalid choice: 'foo'")
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError, match="/nonexistent: no such directory"):
        pp.preprocess("/nonexistent", tmp_path / "out")


def test_a_missing_file_is_reported_missing(tmp_path):
    with pytest.raises(crocus_files.InputError, match=f"^{tmp_path / 'PRO_x.nc'}: missing: no such file$"):
        crocus_files._open(tmp_path / "PRO_x.nc", None, crocus_files.POINT_CHUNK)


def _nan_in_a_present_layer(pro, forcing):
    pro.SNOWSSA.values[0, 30, 0, 1] = float("nan")  # found while the shard is written, in its second pass
    return pro, forcing


def test_failed_pairs_leave_no_empty_region_folder(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    write_pair(inputs, "Alpes", *make_pair())
    write_pair(inputs, "Pyrenees", *_nan_in_a_present_layer(*make_pair()))
    # A PRO file that glob finds but that is not there (a dangling link): missing, not unreadable.
    jura_pro, _ = write_pair(inputs, "Jura", *make_pair())
    jura_pro.unlink()
    jura_pro.symlink_to(tmp_path / "moved.nc")
    (out / "Vosges").mkdir(parents=True)  # there before the run: kept, empty or not
    summary = pp.preprocess(inputs, out)
    assert summary.written == [f"Alpes/{SEASON}"]
    assert "NaN in present layer" in summary.failed[f"Pyrenees/{SEASON}"]
    assert summary.failed[f"Jura/{SEASON}"] == f"{jura_pro}: missing: no such file"
    assert sorted(p.name for p in out.iterdir()) == ["Alpes", "Vosges"]

    # Every pair failing: not even the output folder stays.
    shutil.rmtree(inputs / "Alpes")
    summary = pp.preprocess(inputs, tmp_path / "new_out")
    assert len(summary.failed) == 2 and not (tmp_path / "new_out").exists()


def test_a_shard_is_kept_only_for_the_files_it_was_made_from(tmp_path):
    """Shards record their source (files, sizes, times, label source): a shard of other files with
    the same region and season, or of files made again, is made anew, never kept as complete."""
    embedded, own, out = tmp_path / "embedded", tmp_path / "own", tmp_path / "shards"
    embedded_pro, _ = write_pair(embedded, "Alpes", *make_pair(points=2, hours=48))
    own_pro, _ = write_pair(own, "Alpes", *make_pair(points=2, hours=48, seed=1))
    shard = out / "Alpes" / SEASON

    def made_from():
        return json.loads((shard / "info.json").read_text())["source"]["pro_file"]["path"]

    assert pp.preprocess(embedded, out).written == [f"Alpes/{SEASON}"]
    assert pp.preprocess(embedded, out).skipped == [f"Alpes/{SEASON}"]
    summary = pp.preprocess(own, out)
    assert summary.written == [f"Alpes/{SEASON}"] and made_from() == str(own_pro.resolve())
    assert f"(replaced a shard of {embedded_pro.resolve()})" in str(summary)
    assert pp.preprocess(embedded, out).written == [f"Alpes/{SEASON}"] and made_from() == str(embedded_pro.resolve())
    os.utime(embedded_pro, ns=(0, 0))  # the same files, made again
    summary = pp.preprocess(embedded, out)
    assert summary.written == [f"Alpes/{SEASON}"] and "(replaced the shard of an earlier version of these files)" in \
        str(summary)


# ---------------------------------------------------------------------------------------------
# plot.all

@pytest.fixture
def shipped_elsewhere(tmp_path, monkeypatch):
    """A fresh clone as plot.all sees it: a shipped model of the shipped configuration and the
    shipped splits, none of their shards. (An untrained tiny model: the shipped data/emulator.pt
    may be of an older format while a new one is trained; its configuration is read as it is.)"""
    shipped = tmp_path / "data"
    shipped.mkdir()
    model, settings = build_model("optical_budget", TINY_BUDGET)
    config = torch.load(REPO / "data" / "emulator.pt", weights_only=True)["config"]
    Emulator("optical_budget", asdict(settings), model, {}, config, {}).save(shipped / "emulator.pt")
    splits = json.loads((REPO / "data" / "emulator_splits.json").read_text())
    splits = {name: [str(tmp_path / path) for path in paths] for name, paths in splits.items()}
    (shipped / "emulator_splits.json").write_text(json.dumps(splits))
    monkeypatch.setattr(evaluation, "SHIPPED_DIR", shipped)
    return shipped


def plot_all_exit(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        plot_all.main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exit_.value.code, err.strip().splitlines()[-1]


def test_plot_all_on_a_fresh_clone_says_what_to_run(shipped_elsewhere, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, line = plot_all_exit([], capsys)
    assert code == 1
    # the shipped model's data: six embedded seasons (README, "Results")
    assert line.startswith(f"python -m plot.all: error: {tmp_path}/cache/embedded6/shards/Alpes/2010080106_2011080106 "
                           f"and 8 other shard(s) of {shipped_elsewhere} missing: build the data first with "
                           "`python main.py --data_only --crocus_dir cache/embedded6/crocus --shard_dir "
                           "cache/embedded6/shards --embedded_seasons 6 --sampled_train 1200000 --sampled_truncation "
                           "600000` (no training)"), line
    # A model trained on other data: the command builds that data.
    emulator = Emulator.load(shipped_elsewhere / "emulator.pt")
    emulator.config = {**asdict(Config()), "shard_dir": "elsewhere/shards", "sampled_train": 1000}
    emulator.save(shipped_elsewhere / "emulator.pt")
    assert "`python main.py --data_only --shard_dir elsewhere/shards --sampled_train 1000`" in \
        plot_all_exit([], capsys)[1]


def test_plot_all_writes_outside_graphs_unless_asked(shipped_elsewhere, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(plot_all, "plot_all", lambda run, out, device: calls.append(out))
    plot_all.main([])
    plot_all.main(["--out", "graphs"])
    assert calls == [None, Path("graphs")]  # None: plot_all's default, runs/graphs/<run>/
    assert not style.RUN_GRAPHS.is_relative_to(style.GRAPHS)
    # A folder per run under runs/graphs/: the shipped model's folder and the start of its hash, a run
    # directory's name; the scripts that also run alone take the same.
    shipped = style.RUN_GRAPHS / f"data-{sha256(shipped_elsewhere / 'emulator.pt')[:8]}"
    assert cli.run_graphs(None) == shipped
    assert cli.parser("", "scatter").parse_args([]).out == shipped / "scatter"
    run_dir = tmp_path / "optical_budget-20260101-120000"
    run_dir.mkdir()
    shutil.copy(shipped_elsewhere / "emulator.pt", run_dir / "best.pt")
    (run_dir / "splits.json").write_text("{}")
    (run_dir / "config.json").write_text(json.dumps({"model": "cnn_seed"}))
    assert cli.parser("", "scatter").parse_args(["--run", str(run_dir)]).out == \
        style.RUN_GRAPHS / "optical_budget-20260101-120000" / "scatter"
    assert evaluation.open_run(run_dir).name == "albedo-only CNN emulator (cnn_seed), run optical_budget-20260101-120000"
    assert evaluation.open_run(shipped_elsewhere).name == "energy-budget emulator (optical_budget), shipped model " \
                                                          "data/emulator.pt"
    with pytest.raises(SystemExit):
        cli.parser("", "scatter").parse_args(["--run", str(tmp_path / "nosuch")])
    assert "--run " in capsys.readouterr().err


def test_plot_all_bad_options(shipped_elsewhere, tmp_path, capsys):
    no_cuda = NO_CUDA if not torch.cuda.is_available() else "CUDA device(s)"
    assert plot_all_exit(["--device", "cuda:7"], capsys) == \
        (2, f"python -m plot.all: error: argument --device: device 'cuda:7': {no_cuda}")
    assert plot_all_exit(["--run", str(tmp_path / "nosuch")], capsys) == \
        (2, f"python -m plot.all: error: --run {tmp_path / 'nosuch'}: no such directory")
    assert plot_all_exit(["--run", str(tmp_path)], capsys) == \
        (2, f"python -m plot.all: error: --run {tmp_path}: neither a run directory (no best.pt) nor a shipped model "
            "(no emulator.pt)")


def test_plot_all_help(capsys):
    with pytest.raises(SystemExit):
        plot_all.main(["--help"])
    text = capsys.readouterr().out
    assert "ships its model" not in text
    assert "python -m plot.all --out graphs" in text and "python main.py --data_only" in text
