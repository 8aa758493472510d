"""The configuration of a training run: one dataclass of plain values.

Read from defaults, then an optional JSON file (`--config run.json`), then `--key value` pairs on
the command line. The resolved configuration is saved in the run directory and inside every
checkpoint, so that a model file says how it was made.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class Config:
    # Data. Crocus seasons laid out as <region>/{FORCING,PRO}/ under crocus_dir, preprocessed into
    # shard_dir (a cache: a complete shard is kept while the files it was made from are unchanged).
    # With `embedded`, the project's synthetic seasons are generated in crocus_dir first when absent
    # (delete the cache to change their settings). Own data (another crocus_dir) without a shard_dir
    # of their own get cache/shards/<name>-<hash of the path> (main.own_shard_dir), never this default.
    # An empty crocus_dir trains on the shards already in shard_dir.
    crocus_dir: str = "cache/embedded/crocus"
    shard_dir: str = "cache/embedded/shards"
    embedded: bool = True
    embedded_region: str = "Alpes"
    embedded_seasons: int = 4
    embedded_points: int = 12
    embedded_start_day: int = 0  # a window of each season, in days from Aug 1 (0 days: whole seasons)
    embedded_days: int = 0
    target: str = "crocus"  # label source handed to preprocessing.preprocess
    preprocess_workers: int = 1
    # Split by whole seasons and regions: entries match a shard's "region", "season" or
    # "region/season". Empty validation/test lists take the latest seasons (by name): the last for
    # test, the one before for validation; an empty train list takes every remaining shard.
    train: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    # Times each training season's rows are drawn per epoch: keeps the seasons' weight in training
    # when many wide-domain profiles join them.
    season_repeats: int = 1
    # Wide-domain profiles (preprocessing/profile_sampler.py), labelled by the TARTES labeller and
    # cached in sampled_dir: sampled_train and sampled_validation profiles join the seasons of those
    # splits; sampled_test profiles, drawn with a seed of their own that no run changes, make the
    # wide-range test set, reported beside the test seasons; sampled_truncation more training profiles,
    # drawn alike but kept only where SURFEX's truncation changes the albedo, where the errors are
    # largest. 0: none.
    sampled_dir: str = "cache/sampled"
    sampled_train: int = 300_000
    sampled_truncation: int = 0
    sampled_validation: int = 20_000
    sampled_test: int = 50_000
    # Model: a name from models.MODELS and overrides of its settings dataclass.
    model: str = "optical_budget"
    model_settings: dict = field(default_factory=dict)
    # Optimisation.
    loss: str = "mse"  # mse | l1: of the albedo
    # weight of the absorbed profile's squared errors (energy-budget models): 0.3 gave a better
    # albedo than 1 for the same profile error
    profile_weight: float = 0.3
    lr: float = 3e-3
    weight_decay: float = 1e-5
    schedule: str = "onecycle"  # onecycle | cosine | constant
    grad_clip: float = 1.0
    batch_size: int = 512
    epochs: int = 80
    # Time budget of one invocation, data preparation included: no epoch starts that would end past
    # it (testing and the report follow). The learning-rate schedule follows `epochs`.
    max_minutes: float = 13.0
    # Epochs without a better validation loss before stopping: at its peak learning rate, the
    # one-cycle schedule leaves validation noisy for up to about 20 epochs.
    patience: int = 20
    # The model kept: "last", the final epoch's (the one-cycle schedule ends at a low learning rate,
    # and an MSE loss can be led by a few outliers: the default run with "loss" stopped early at epoch
    # 67 of 80 and kept epoch 47, test albedo MAE 0.00070); "loss", the epoch of lowest validation
    # loss, with early stopping after `patience` epochs without a better one.
    select: str = "last"
    # Execution.
    device: str = "auto"  # cpu | cuda | cuda:N | auto
    num_workers: int = 1
    threads: int = 0  # torch CPU threads per process; 0: the cores not taken by data-loading workers, shared out
    seed: int = 0
    run_dir: str = ""  # empty: runs/<model>-<date>-<time>
    tensorboard: bool = False
    overwrite: bool = False  # start afresh in a run_dir that holds an earlier run (else an error)
    ship: bool = False  # copy the selected model and its report to ship_dir
    ship_dir: str = "data"


# Settings that change how long or where a run goes on, not what it computes: a resumed run may
# change them; any other change would make it a different experiment.
RESUMABLE_OVERRIDES = {"max_minutes", "device", "num_workers", "threads", "tensorboard"}

# `--quick`: the same path on tiny data and a tiny budget, for CI and smoke tests.
QUICK = dict(
    crocus_dir="cache/quick/crocus",
    shard_dir="cache/quick/shards",
    sampled_dir="cache/quick/sampled",
    sampled_train=2000,
    sampled_validation=500,
    sampled_test=1000,
    embedded_points=1,
    embedded_start_day=61,  # October to February
    embedded_days=150,
    epochs=3,
    max_minutes=1.5,
    batch_size=128,
    num_workers=0,
    run_dir="runs/quick",
    overwrite=True,
)
CHOICES = {"loss": ("mse", "l1"), "schedule": ("onecycle", "cosine", "constant"), "select": ("loss", "last")}
# Lower bounds of numeric settings: (bound, strict). NaN fails every bound.
BOUNDS = {
    **{name: (1, False) for name in ("embedded_seasons", "embedded_points", "preprocess_workers", "batch_size",
                                     "epochs", "patience", "season_repeats")},
    **{name: (0, False) for name in ("num_workers", "threads", "seed", "max_minutes", "embedded_start_day",
                                     "embedded_days", "sampled_train", "sampled_truncation", "sampled_validation",
                                     "sampled_test",
                                     "weight_decay", "grad_clip", "profile_weight")},
    "lr": (0, True),
}
FINITE = ("lr", "weight_decay", "grad_clip", "profile_weight")  # max_minutes may be inf: no time budget


class UsageError(ValueError):
    """A bad command-line option or configuration value, said in one line that names the option or
    file. The entry points print it as `<prog>: error: <message>` and exit with status 2, as argparse
    does for the errors it finds itself."""


def check_type(name: str, value, kind: str):
    """`value` of the Config field `name` (from a JSON file or a checkpoint) if it has the field's type."""
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind == "list[str]":
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    elif kind == "dict":
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, str)
    if not ok:
        expected = {"bool": "true or false", "int": "an integer", "float": "a number", "dict": "a JSON object",
                    "list[str]": "a list of strings"}.get(kind, "a string")
        raise UsageError(f"--{name}: expected {expected}, got {json.dumps(value, default=repr)}")
    return value


def check_config(config: Config) -> Config:
    """`config` if each of its values has its field's type, choices and range; else a UsageError naming
    the first bad one."""
    for f in fields(Config):
        setattr(config, f.name, check_type(f.name, getattr(config, f.name), f.type))
    for name, choices in CHOICES.items():
        if getattr(config, name) not in choices:
            raise UsageError(f"--{name}: {getattr(config, name)!r} is not one of {', '.join(choices)}")
    for name, (low, strict) in BOUNDS.items():
        value = getattr(config, name)
        if not (value > low if strict else value >= low) or (name in FINITE and not math.isfinite(value)):
            raise UsageError(f"--{name}: must be {'>' if strict else '>='} {low}{' and finite' * (name in FINITE)}, "
                             f"got {value}")
    return config


def config_from_dict(values: dict, base: Config | None = None) -> Config:
    """A Config from `base` (defaults if None) with `values` replacing fields, checked (check_config);
    unknown keys and bad values raise UsageError."""
    known = {f.name for f in fields(Config)}
    unknown = set(values) - known
    if unknown:
        raise UsageError(f"unknown configuration key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(known))}")
    merged = asdict(base or Config())
    merged.update(values)
    return check_config(Config(**merged))


def load_config(path: str | Path) -> Config:
    """The Config of a JSON file of configuration values (UsageError naming the file when it is bad)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--config {path}: {'a directory, not a file' if path.is_dir() else 'no such file'}")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"--config {path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise UsageError(f"--config {path}: expected a JSON object of configuration values")
    try:
        return config_from_dict(values)
    except UsageError as error:
        raise UsageError(f"--config {path}: {error}") from None


def parse_value(name: str, text: str):
    """A command-line string as the type of the Config field `name`."""
    kind = {f.name: f.type for f in fields(Config)}[name]
    if kind == "bool":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise UsageError(f"--{name}: expected true or false, got {text!r}")
        return text.lower() in ("true", "1", "yes")
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise UsageError(f"--{name}: expected {'an integer' if kind == 'int' else 'a number'}, "
                             f"got {text!r}") from None
    if kind == "list[str]":
        return [item for item in text.split(",") if item]
    if kind == "dict":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError(f"--{name}: not valid JSON ({error}): {text!r}") from None
        if not isinstance(value, dict):
            raise UsageError(f"--{name}: expected a JSON object such as '{{\"hidden\": [64, 64]}}', got {text!r}")
        return value
    return text


def parse_overrides(items: list[str]) -> dict:
    """`--key value` and `--key=value` pairs into a dict of typed values."""
    known = {f.name for f in fields(Config)}
    values, i = {}, 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--"):
            raise UsageError(f"unexpected argument {item!r}: overrides are --key value")
        key, _, text = item[2:].partition("=")
        if key not in known:
            raise UsageError(f"--{key}: not a configuration key (see --help for the keys)")
        if not _:
            if i + 1 >= len(items):
                raise UsageError(f"--{key}: missing value")
            i += 1
            text = items[i]
        values[key] = parse_value(key, text)
        i += 1
    return values


# A few words on each configuration key, for --help (the comments of Config say more).
KEY_HELP = {
    "crocus_dir": "Crocus seasons <region>/{PRO,FORCING}/ to learn from; empty: the shards of shard_dir as they are",
    "shard_dir": "preprocessed samples (a cache); own data without it: cache/shards/<name of crocus_dir>-<hash>",
    "embedded": "generate the project's synthetic seasons in crocus_dir when they are missing",
    "embedded_region": "region name of the embedded seasons",
    "embedded_seasons": "number of embedded seasons (the default split needs 3)",
    "embedded_points": "virtual points per embedded season",
    "embedded_start_day": "first day of each embedded season, from Aug 1 (0: the whole season)",
    "embedded_days": "days of each embedded season (0: to its end)",
    "target": "labels: crocus (ASN_VEG of the PRO file) or tartes (the project's TARTES labeller)",
    "preprocess_workers": "seasons preprocessed in parallel",
    "train": "training seasons or regions, comma-separated (empty: all the others)",
    "validation": "validation seasons or regions (empty: the season before the test season)",
    "test": "test seasons or regions (empty: the last season by name)",
    "season_repeats": "times each training season's rows are drawn per epoch",
    "sampled_dir": "cache of the wide-domain profiles (preprocessing/profile_sampler.py)",
    "sampled_train": "wide-domain profiles added to training (0: none)",
    "sampled_truncation": "more wide-domain training profiles, kept only where SURFEX's truncation changes the albedo "
                          "(0: none)",
    "sampled_validation": "wide-domain profiles added to validation (0: none)",
    "sampled_test": "profiles of the wide-range test set, the same for every run (0: none)",
    "model": "architecture: optical_budget (energy budget) or cnn_seed (albedo only)",
    "model_settings": "JSON overrides of the model's settings, such as '{\"hidden\": [64, 64]}'",
    "loss": "loss of the albedo: mse or l1",
    "profile_weight": "weight of the absorbed profile's errors in the loss (energy-budget models)",
    "lr": "peak learning rate",
    "weight_decay": "AdamW weight decay",
    "schedule": "learning-rate schedule: onecycle, cosine or constant",
    "grad_clip": "gradient norm clipping (0: none)",
    "batch_size": "profiles per training step",
    "epochs": "epochs of the learning-rate schedule",
    "max_minutes": "time budget of the run, data included: no epoch starts that would end past it",
    "patience": "epochs without a better validation loss before stopping",
    "select": "the model kept: loss (the epoch of lowest validation loss) or last (the final epoch's)",
    "device": "cpu, cuda, cuda:N or auto",
    "num_workers": "data-loading worker processes",
    "threads": "torch CPU threads per process (0: the free cores, shared out)",
    "seed": "random seed of the model, the data order and the wide-domain draws of training",
    "run_dir": "where the run writes (empty: runs/<model>-<date>-<time>)",
    "tensorboard": "write TensorBoard logs in the run directory",
    "overwrite": "replace an earlier run in run_dir instead of refusing",
    "ship": "copy the selected model and its report to ship_dir",
    "ship_dir": "where --ship true copies the model (data/: the model predict.py and export.py use)",
}


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    keys = "\n".join(f"  --{f.name} {json.dumps(getattr(defaults, f.name))}\n      {KEY_HELP[f.name]}"
                     for f in fields(Config))
    parser = argparse.ArgumentParser(
        prog="main.py", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train, select and evaluate an emulator of TARTES' energy budget (the albedo, the shortwave\n"
                    "absorbed in each snow layer and by the soil). A plain `python main.py` runs the embedded\n"
                    "default and writes everything to runs/<model>-<date>-<time>/ (--run_dir);\n"
                    "--ship true also copies the selected model and its report to data/ (--ship_dir).",
        epilog="configuration keys and their defaults (utils/config.py); override with --key value,\n"
               "lists comma-separated, model_settings as JSON:\n" + keys)
    parser.add_argument("--config", help="JSON file of configuration values")
    parser.add_argument("--quick", action="store_true", help="tiny data and budget (about 30 s): a smoke test")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--data_only", action="store_true",
                        help="build the data of the configuration (embedded seasons, shards and wide-domain "
                             "profiles, cached under cache/) and stop: no training")
    parser.add_argument("--evaluate", metavar="MODEL_FILE",
                        help="no training: the test report of MODEL_FILE (a run's best.pt, data/emulator.pt) on the "
                             "test seasons and wide-range test set of the configuration it was trained with (--key "
                             "value changes it), written to --run_dir as test_report.md and .json; --ship true also "
                             "copies them to --ship_dir when it holds MODEL_FILE")
    return parser
