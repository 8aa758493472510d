"""Train, select, evaluate and ship an emulator of TARTES' energy budget as Crocus uses it: the
broadband albedo, the shortwave absorbed in each snow layer and by the soil.

    python main.py                        the embedded default, end to end (about 10 minutes on 2 cores)
    python main.py --quick                the same path on tiny data, about 30 s
    python main.py --config run.json --epochs 20 --device cuda:1
    python main.py --resume runs/cnn_seed-20260101-120000
    python main.py --data_only            build the cached data only (what `python -m plot.all` needs)
    python main.py --evaluate RUN_DIR/best.pt --run_dir RUN_DIR
                                          a model file's test report (again), without training
    torchrun --nproc_per_node=4 main.py --device cuda

The experiment, top to bottom: configuration -> data (embedded seasons generated and preprocessed
into cached shards) -> split by whole seasons -> model, its normalisation fitted on the training
seasons -> training with selection on validation -> the test seasons evaluated once -> report and
learning curve -> with --ship true, the selected model and its report are copied to data/.

--evaluate MODEL_FILE runs only the last steps, on a model file: its test report on the test seasons
and the wide-range test set of the configuration it was trained with (--key value changes the keys
that select the data), written to --run_dir as a run's report. It reports a model again when the
report gains figures, without retraining it.
"""
from __future__ import annotations

import os

# Before torch loads OpenMP: busy-waiting threads slow training tenfold when the cores are shared
# with other work (measured on 2 cores: 9 ms instead of 0.6 ms per profile and step).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hashlib
import json
import random
import re
import shutil
import sys
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from dataset import ShardDataset, profile_arguments, split_seasons, split_shards
from models import DOMAIN_WARNING, MODELS, Emulator, build_model, count_macs, count_parameters
from plot import learning_curves
from preprocessing.preprocess import TARGET_SOURCES, preprocess
from preprocessing.profile_sampler import write_sampled_shard
from preprocessing.synthetic import RealYear, generate, plan_season, season_name
from features import fit_normalisation
from preprocessing.shards import INFO_FILE, find_shards
from training import load_checkpoint, train
from utils.config import (QUICK, RESUMABLE_OVERRIDES, Config, UsageError, build_parser, config_from_dict,
                          load_config, parse_overrides)
from utils.crocus_rules import cleanup_rows
from utils.devices import Distributed, resolve_device, setup_distributed
from utils.files import copy_file, save_json, write_text
from utils.memory import keep_freed_memory
from utils.provenance import provenance, sha256
from utils.report import report_markdown, test_report
from utils.run_files import (CHECKPOINT, CONFIG, DOMAIN, LEARNING_CURVES, METRICS, SELECTED, SHIPPED, SPLITS, TEST_REPORT,
                             TEST_REPORT_MARKDOWN)



def configure(argv: list[str]) -> tuple[Config, dict | None]:
    """The run's configuration, and the checkpoint to continue from with --resume. The whole
    configuration is checked here, before any data is made: a bad value raises UsageError naming
    its option."""
    args, rest = build_parser().parse_known_args(argv)
    overrides = parse_overrides(rest)
    if args.resume:
        if args.config or args.quick:
            raise UsageError("--resume continues a run with its own configuration: no --config or --quick")
        changed = set(overrides) - RESUMABLE_OVERRIDES
        if changed:
            raise UsageError(f"--resume: {', '.join(sorted(changed))} cannot change in a resumed run "
                             f"(only {', '.join(sorted(RESUMABLE_OVERRIDES))} can)")
        resume = Path(args.resume)
        if not resume.is_dir():
            raise UsageError(f"--resume {resume}: no such directory")
        if not (resume / CHECKPOINT).is_file():
            raise UsageError(f"--resume {resume}: no {CHECKPOINT} in it (not a run directory of main.py, "
                             "or the run stopped before its first epoch ended)")
        checkpoint = load_checkpoint(resume)
        config = config_from_dict({**checkpoint["config"], **overrides, "run_dir": args.resume})
        return check_run_config(config), checkpoint
    config = load_config(args.config) if args.config else Config()
    if args.quick:
        config = config_from_dict(QUICK, config)
    config = config_from_dict(overrides, config)
    return check_run_config(own_shard_dir(config)), None


def configure_evaluation(argv: list[str]) -> Config:
    """The configuration of --evaluate MODEL_FILE: the one the model was trained with, changed by
    --key value; where and how the evaluation runs (device, threads, run_dir, where the report goes,
    empty: runs/<model>-evaluation-<date>-<time>; ship) come from the command line only. Checked as
    a run's (check_run_config)."""
    args, rest = build_parser().parse_known_args(argv)
    if args.config or args.quick or args.resume or args.data_only:
        raise UsageError("--evaluate reports a model file on the data of its own configuration (change its keys "
                         "with --key value): no --config, --quick, --resume or --data_only")
    overrides = parse_overrides(rest)
    try:
        trained_with = Emulator.load(args.evaluate).config
    except (FileNotFoundError, ValueError) as e:  # "<path>: no emulator file", "<path>: not an emulator file ..."
        raise UsageError(f"--evaluate {e}") from None
    own = {key: getattr(Config(), key) for key in (*RESUMABLE_OVERRIDES, "run_dir", "ship")}
    return check_run_config(config_from_dict({**trained_with, **own, **overrides}))


# The shard caches of the built-in data, each made from its own crocus_dir only.
BUILT_IN_SHARD_DIRS = {Config().shard_dir: Config().crocus_dir, QUICK["shard_dir"]: QUICK["crocus_dir"]}


def own_shard_dir(config: Config) -> Config:
    """Own Crocus data (a crocus_dir other than the built-in one) given without a shard_dir of their
    own get one: cache/shards/<name of crocus_dir>-<hash of its path>, never the cache of the
    built-in data (a later default run would otherwise train on them)."""
    built_in = BUILT_IN_SHARD_DIRS.get(config.shard_dir)
    if config.crocus_dir and built_in is not None and Path(config.crocus_dir).resolve() != Path(built_in).resolve():
        crocus_dir = Path(config.crocus_dir).resolve()
        digest = hashlib.sha256(str(crocus_dir).encode()).hexdigest()[:8]
        config.shard_dir = f"cache/shards/{crocus_dir.name}-{digest}"
    return config


def check_run_config(config: Config) -> Config:
    """What utils.config cannot check alone: the model and its settings, the label source, the device
    and where the data comes from."""
    if config.model not in MODELS:
        raise UsageError(f"--model {config.model!r}: not a model; known: {', '.join(sorted(MODELS))}")
    try:
        build_model(config.model, config.model_settings)
    except ValueError as e:
        raise UsageError(f"--model_settings {json.dumps(config.model_settings)}: {e}") from None
    except TypeError as e:  # a value of the wrong type, found when the model is built
        raise UsageError(f"--model_settings {json.dumps(config.model_settings)}: not valid settings of model "
                         f"{config.model!r} ({e})") from None
    if config.target not in TARGET_SOURCES:
        raise UsageError(f"--target {config.target!r}: not a label source; known: {', '.join(sorted(TARGET_SOURCES))}")
    try:
        resolve_device(config.device)
    except ValueError as e:  # "device 'cuda:7': ..."
        raise UsageError(f"--{e}") from None
    if config.crocus_dir and not config.embedded:
        if not Path(config.crocus_dir).is_dir():
            raise UsageError(f"--crocus_dir {config.crocus_dir}: no such directory (--embedded true generates the "
                             "embedded seasons there)")
        if not any(Path(config.crocus_dir).glob("*/PRO/PRO_*.nc")):
            raise UsageError(f"--crocus_dir {config.crocus_dir}: no <region>/PRO/PRO_<season>.nc file")
    if not config.crocus_dir and not find_shards(config.shard_dir):
        raise UsageError(f"--shard_dir {config.shard_dir}: no complete shard, and no --crocus_dir to make them from")
    check_split(config)
    return config


def planned_seasons(config: Config) -> dict[str, tuple[str, str]]:
    """{"region/season": (region, season)} of the shards the run will split, known before any data is
    made: those already in shard_dir, the seasons of crocus_dir's PRO files and, with embedded, those
    still to generate. UsageError when the embedded window leaves no season."""
    keys = []
    for shard in find_shards(config.shard_dir):
        info = json.loads((shard / INFO_FILE).read_text())
        keys.append((str(info["region"]), str(info["season"])))
    if config.crocus_dir:
        pro_files = list(Path(config.crocus_dir).glob("*/PRO/PRO_*.nc"))
        keys += [(pro.parent.parent.name, pro.stem.removeprefix("PRO_")) for pro in pro_files]
        if config.embedded:
            real = RealYear.load()  # the names of the seasons generate() writes: their windows, whatever the seed
            try:
                keys += [(config.embedded_region, season_name(plan_season(
                    real, k, 0, config.embedded_start_day, config.embedded_days or None)))
                    for k in range(config.embedded_seasons)]
            except ValueError as e:  # a window past the end of the season
                raise UsageError(f"--embedded_start_day {config.embedded_start_day}, --embedded_days "
                                 f"{config.embedded_days}: {e}") from None
    return {f"{region}/{season}": (region, season) for region, season in keys}


def check_split(config: Config) -> None:
    """UsageError naming the option when the split by seasons cannot be made from the seasons the run
    will have (a --validation or --test that matches none, fewer than 3 seasons for the default
    split): found before any data is made."""
    keys = planned_seasons(config)
    source = f"the seasons of {config.crocus_dir or config.shard_dir}"
    try:
        split_seasons(keys, config.train, config.validation, config.test, source)
    except ValueError as e:
        split = re.search(r"the (train|validation|test) split", str(e))
        raise UsageError(f"{f'--{split[1]}' if split else '--train, --validation, --test'}: {e}") from None


# Seeds of the wide-domain draws: training and validation follow the run's seed; the wide-range
# test set is the same for every run, so that runs compare.
SAMPLED_TEST_SEED = 2026


def sampled_draws(config: Config) -> dict[str, tuple[Path, int, int]]:
    """Per split with wide-domain profiles: the shard caching them, their number and seed
    ("train_truncation": the training profiles in SURFEX's truncation regime)."""
    draws = {"train": (config.sampled_train, 10_000 + config.seed),
             "train_truncation": (config.sampled_truncation, 30_000 + config.seed),
             "validation": (config.sampled_validation, 20_000 + config.seed),
             "test": (config.sampled_test, SAMPLED_TEST_SEED)}
    return {split: (Path(config.sampled_dir) / f"{split}_{size}_seed{seed}", size, seed)
            for split, (size, seed) in draws.items() if size > 0}


def prepare_data(config: Config) -> None:
    """Shards of the Crocus seasons in crocus_dir (the embedded ones generated first when absent;
    an empty crocus_dir uses shard_dir as it is) and of the wide-domain profiles; complete shards
    are kept from earlier runs."""
    for split, (path, size, seed) in sampled_draws(config).items():
        write_sampled_shard(path, size, seed, truncation_regime=split == "train_truncation")
    if not config.crocus_dir:
        return
    crocus_dir = Path(config.crocus_dir)
    if config.embedded:  # seasons already written with the same generator and settings are kept
        print(f"embedded data: {config.embedded_seasons} seasons of {config.embedded_points} points in {crocus_dir}")
        generate(crocus_dir, region=config.embedded_region, seasons=config.embedded_seasons,
                 points=config.embedded_points, start_day=config.embedded_start_day,
                 days=config.embedded_days or None)
    if not crocus_dir.is_dir():
        raise FileNotFoundError(f"{crocus_dir}: no Crocus data (set crocus_dir, or embedded true)")
    # The embedded seasons carry each point's soil albedo (ALB_SOIL); users' runs do not: 0.2.
    preprocess(crocus_dir, config.shard_dir, target=config.target, workers=config.preprocess_workers,
               **({"soil_albedo": "ALB_SOIL"} if config.embedded else {}))


def start_run_dir(config: Config, resuming: bool, dist: Distributed) -> Path:
    name = config.run_dir or f"runs/{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(dist.all_gather(name)[0])  # rank 0's clock names the run
    if dist.is_main and not resuming:
        if (run_dir / CHECKPOINT).exists():
            if not config.overwrite:
                raise FileExistsError(f"{run_dir} holds a run: --resume {run_dir}, another --run_dir, or --overwrite true")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    return run_dir


def ship(run_dir: Path, ship_dir: Path) -> None:
    ship_dir.mkdir(parents=True, exist_ok=True)
    for source, name in SHIPPED.items():
        copy_file(run_dir / source, ship_dir / name)
    print(f"shipped {', '.join(SHIPPED.values())} to {ship_dir}")


def splits_of(config: Config) -> dict[str, list[Path]]:
    """The shards of each split: seasons by config (each training season season_repeats times), the
    wide-domain draws joining training and validation, and the wide-range test set."""
    splits = split_shards(config.shard_dir, config.train, config.validation, config.test)
    splits["train"] = splits["train"] * config.season_repeats
    sampled = {split: path for split, (path, _, _) in sampled_draws(config).items()}
    for split, draw in (("train", "train"), ("train", "train_truncation"), ("validation", "validation")):
        splits[split] += [sampled[draw]] if draw in sampled else []
    splits["wide_range"] = [sampled["test"]] if "test" in sampled else []
    return splits


def split_lines(splits: dict[str, list[Path]]) -> list[str]:
    """A line per split: its profiles and shards; an empty one (the wide-range test set with
    --sampled_test 0) is left out."""
    return [f"{name:>10}: {sum(len(ShardDataset([p])) for p in paths):7d} profiles from "
            f"{', '.join(p.name for p in paths)}" for name, paths in splits.items() if paths]


def report_details(emulator: Emulator, run_dir: Path, splits: dict[str, list[Path]], training: dict | None = None
                   ) -> dict:
    """What a test report says of its model before the figures: its size, its selection on
    validation and, given train's summary, how training ended; the run directory, the software
    and the shards of each split."""
    selection = {"selected_epoch": "epoch", "validation_loss": "val_loss", "validation_mae": "val_mae"}
    return {"model": emulator.model_name, "parameters": count_parameters(emulator.model),
            "macs_per_profile": count_macs(emulator.model),
            **{name: emulator.info[key] for name, key in selection.items() if key in emulator.info},
            **({"epochs_trained": training["epochs"], "stopped_by": training["stopped"]} if training else {}),
            "run_dir": str(run_dir), "provenance": provenance(),
            "splits": {name: [p.name for p in paths] for name, paths in splits.items()}}


def emulator_outputs(emulator: Emulator, dataset: ShardDataset, device) -> tuple[dict, dict, int]:
    """What users get from `emulator` on every row of `dataset` (`Emulator.energy_budget`, or
    `predict` for an albedo model), the labels, by name, float64 arrays (absent layers 0), and the
    number of rows of SURFEX's clean-up regime, which the emulator hands to the labeller (shards
    hold lit rows with snow only)."""
    parts, targets, labelled = [], [], 0
    for rows in dataset.chunks():
        profiles = profile_arguments(rows["layers"], rows["mask"], rows["scalars"])
        with warnings.catch_warnings():  # the wide-range test set lies beyond the training data by design
            warnings.filterwarnings("ignore", message=DOMAIN_WARNING)
            if emulator.model.BUDGET:
                out = emulator.energy_budget(**profiles, device=device)
                parts.append({"albedo": out.albedo, "absorbed": np.nan_to_num(out.absorbed), "soil": out.soil})
            else:
                parts.append({"albedo": emulator.predict(**profiles, device=device)})
        targets.append({name: rows[name].astype(np.float64) for name in parts[-1]})
        labelled += int(cleanup_rows(*(profiles[name] for name in ("ssa", "density", "soot", "dust"))).sum())
    return ({name: np.concatenate([p[name] for p in parts]) for name in parts[0]},
            {name: np.concatenate([t[name] for t in targets]) for name in targets[0]}, labelled)


def test_reports(emulator: Emulator, splits: dict[str, list[Path]], details: dict, device) -> tuple[dict, str]:
    """The selected model as users load it, once on each test set: the report and its markdown."""
    report, markdown = dict(details), ""
    evaluated = {"test": ("test report", "the test seasons", details),
                 "wide_range": ("Wide-range test set", "the wide-range test set", {
                     "profiles": f"drawn over the whole input domain (preprocessing/profile_sampler.py, seed "
                                 f"{SAMPLED_TEST_SEED})"})}
    for name, (title, data, listed) in evaluated.items():
        if not splits[name]:
            continue
        dataset = ShardDataset(splits[name])
        prediction, target, labelled = emulator_outputs(emulator, dataset, device)
        report[name] = test_report(prediction, target, dataset.report_columns())
        report[name]["labeller_rows"] = labelled
        listed = {**listed, "rows of SURFEX's clean-up regime, given the labeller's outputs": labelled}
        title = f"{emulator.model_name}: {title}" if name == "test" else title
        markdown += ("\n" if markdown else "") + report_markdown(report[name], title, listed, data=data)
        overall = report[name]["overall"]
        line = (f"{name} ({overall['n']} profiles): albedo MAE {overall['albedo']['mae']:.5f}  RMSE "
                f"{overall['albedo']['rmse']:.5f}  bias {overall['albedo']['bias']:+.5f}  p99 |error| "
                f"{overall['albedo']['p99_abs_error']:.5f}")
        if "profile" in overall:
            line += (f"; top layer MAE {overall['top_layer']['mae']:.5f}, profile error "
                     f"{overall['profile']['mean']:.5f}")
        print(line)
    return report, markdown


def run(config: Config, checkpoint: dict | None, dist: Distributed) -> dict:
    start = time.time()
    # More threads than cores (several processes, their data-loading workers, or other jobs) slow
    # torch's CPU kernels many times over: by default, the cores the workers leave, shared out.
    cores = (os.cpu_count() or 1) - config.num_workers * dist.world_size
    torch.set_num_threads(config.threads or max(1, cores // dist.world_size))
    keep_freed_memory()  # large CPU tensors otherwise cost page faults at every step (utils/memory.py)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    # Data, split by whole seasons.
    if dist.is_main:
        prepare_data(config)
    dist.barrier()
    splits = splits_of(config)
    run_dir = start_run_dir(config, checkpoint is not None, dist)
    # without the rows of SURFEX's clean-up regime, which Emulator hands to the labeller (dataset.ShardDataset)
    train_set = ShardDataset(splits["train"], learnable=True)
    val_set = ShardDataset(splits["validation"], learnable=True)
    if dist.is_main:
        print("\n".join(split_lines(splits)))

    # Model: identical initial weights on every rank; dropout then differs between ranks. Its
    # feature normalisation and the declared input domain come from the training seasons only
    # (a resumed run takes both from its checkpoint).
    model, settings = build_model(config.model, config.model_settings)
    domain = checkpoint["domain"] if checkpoint else train_set.input_domain()
    if not checkpoint:
        fit_normalisation(model, train_set.model_inputs())
    if dist.is_main:
        save_json(asdict(config), run_dir / CONFIG)
        save_json(domain, run_dir / DOMAIN)
        save_json({name: [str(p) for p in paths] for name, paths in splits.items()}, run_dir / SPLITS)
        print(f"model {config.model}: {count_parameters(model):,} parameters, "
              f"{count_macs(model):,} multiply-accumulates per profile; device {dist.device}, "
              f"{dist.world_size} process(es); run directory {run_dir}")
    torch.manual_seed(config.seed + dist.rank)

    summary = train(config, model, settings, domain, train_set, val_set, run_dir, dist,
                    deadline=start + 60 * config.max_minutes, checkpoint=checkpoint)
    if not dist.is_main:
        return summary

    # The test seasons and the wide-range test set, once, with the selected model as users load it.
    emulator = Emulator.load(run_dir / SELECTED, device=dist.device)
    report, markdown = test_reports(emulator, splits, report_details(emulator, run_dir, splits, summary), dist.device)
    save_json(report, run_dir / TEST_REPORT)
    write_text(run_dir / TEST_REPORT_MARKDOWN, markdown)
    learning_curves.plot(run_dir, out=run_dir)
    print(f"results in {run_dir}: {SELECTED}, {METRICS}, {LEARNING_CURVES}, {TEST_REPORT_MARKDOWN}, {TEST_REPORT} "
          f"({time.time() - start:.0f} s)")
    if config.ship:
        ship(run_dir, Path(config.ship_dir))
    return report


def evaluate_model(model_file: Path, config: Config) -> dict:
    """--evaluate: the test report of a model file on the test sets of `config`, in config.run_dir
    under a run's names; with ship, also in ship_dir under the shipped names, where ship_dir holds
    this model. A run directory that holds another model keeps its own report (UsageError)."""
    run_dir = Path(config.run_dir or f"runs/{config.model}-evaluation-{time.strftime('%Y%m%d-%H%M%S')}")
    if (run_dir / SELECTED).is_file() and sha256(run_dir / SELECTED) != sha256(model_file):
        raise UsageError(f"--run_dir {run_dir}: its {SELECTED} is another model than {model_file}")
    shipped = Path(config.ship_dir) / SHIPPED[SELECTED]
    if config.ship and not (shipped.is_file() and sha256(shipped) == sha256(model_file)):
        raise UsageError(f"--ship true: {shipped} is not {model_file} (--evaluate ships the report of the shipped "
                         "model only)")
    if config.threads:
        torch.set_num_threads(config.threads)
    prepare_data(replace(config, sampled_train=0, sampled_truncation=0, sampled_validation=0))  # the test sets only
    splits = splits_of(config)
    device = resolve_device(config.device)
    emulator = Emulator.load(model_file, device=device)
    run_dir.mkdir(parents=True, exist_ok=True)
    report, markdown = test_reports(emulator, splits, report_details(emulator, run_dir, splits), device)
    save_json(report, run_dir / TEST_REPORT)
    write_text(run_dir / TEST_REPORT_MARKDOWN, markdown)
    print(f"report of {model_file} in {run_dir}: {TEST_REPORT_MARKDOWN}, {TEST_REPORT}")
    if config.ship:
        for name in (TEST_REPORT, TEST_REPORT_MARKDOWN):
            copy_file(run_dir / name, Path(config.ship_dir) / SHIPPED[name])
        print(f"shipped {SHIPPED[TEST_REPORT_MARKDOWN]}, {SHIPPED[TEST_REPORT]} to {config.ship_dir}")
    return report


def main(argv: list[str] | None = None) -> dict:
    """The command line, in process: bad options raise UsageError (the script prints it in one line
    and exits with status 2). With --data_only, the data is built and nothing else is done; with
    --evaluate MODEL_FILE, the model file is reported on the test sets and nothing else is done."""
    argv = sys.argv[1:] if argv is None else argv
    options = build_parser().parse_known_args(argv)[0]
    if (options.data_only or options.evaluate) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("--data_only and --evaluate run in one process: python main.py ..., not under torchrun")
    if options.evaluate:
        return evaluate_model(Path(options.evaluate), configure_evaluation(argv))
    config, checkpoint = configure(argv)
    if options.data_only:
        prepare_data(config)
        print(f"data ready: shards in {config.shard_dir}, wide-domain profiles in {config.sampled_dir}")
        return {}
    dist = setup_distributed(config.device)
    try:
        return run(config, checkpoint, dist)
    finally:
        dist.close()


if __name__ == "__main__":
    try:
        main()
    except UsageError as e:
        build_parser().error(str(e))
