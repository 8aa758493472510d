"""Crocus PRO + SAFRAN FORCING seasons -> shards of (snow profile, light, albedo, energy budget) samples.

    python -m preprocessing.preprocess --input DIR --output OUT [--target crocus|tartes] [--workers N]
                                       [--soil_albedo 0.2|VARIABLE] [--surface_step 900] [--lslope T|F]

DIR holds <region>/PRO/PRO_<begin>_<end>.nc and <region>/FORCING/FORCING_<begin>_<end>.nc
(docs/crocus_files.md); each pair becomes the shard OUT/<region>/<begin>_<end> of
preprocessing/shards.py. The pair is read by preprocessing.crocus_files.Season: a sample is a time
and point of the times common to both files where Crocus called TARTES (snow, WSN_T_ISBA > 0, and
Crocus' daylight), with the light TARTES saw there (utils.solar.crocus_light: the fluxes of Crocus'
last 15-minute step, the sun of SURFEX, the illumination angle on the slope) and the soil albedo of
its point. The labels are the energy budget of preprocessing.tartes_labels (albedo, absorbed
fraction per layer, soil; PRO files hold no absorption profile), with Crocus' rules for the sun
behind the slope and for forcing without diffuse light (from cos_zenith); with --target crocus the
albedo is Crocus' own ASN_VEG.

Memory stays bounded whatever the file size: a first pass over blocks of times x points reads
only the 2-D fields to count the samples, a second pass reads the layer hyperslabs of each block
and fills the shard. Finished shards are skipped, so an interrupted run resumes; a failing pair is
reported at the end and does not stop the others.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from preprocessing.crocus_files import (BLOCK_SAMPLES, POINT_CHUNK, InputError, Pair, Season, find_pairs,
                                        pair_from_name, soil_albedo_argument)
from preprocessing.shards import INFO_FILE, SHARD_FORMAT, Samples, ShardWriter, is_complete, shard_format
from preprocessing.tartes_labels import energy_budget
from utils.config import UsageError
from utils.files import save_json, write_text
from utils.provenance import provenance
from utils.schema import COS_ILLUM, COS_ZENITH, DIFFUSE_SW, DIRECT_SW, LAYER_VARIABLES, SOIL_ALBEDO
from utils.solar import S2M_LIGHT, LightSettings
from utils.tartes_constants import SOIL_ALBEDO as DEFAULT_SOIL_ALBEDO

TARGET_SOURCES = {"crocus": "ASN_VEG", "tartes": "tartes labeller"}
TARGET_DESCRIPTIONS = {
    "crocus": "ASN_VEG, the broadband albedo computed by TARTES inside Crocus (as Crocus wrote it: see selection)",
    "tartes": "preprocessing.tartes_labels.energy_budget (docs/labels.md)"}


# ---------------------------------------------------------------------------------------------
# Labels

def label(season: Season, samples: Samples) -> Samples:
    """The samples with the labeller's energy budget (albedo, absorbed per layer, soil) at their
    light and soil albedo, Crocus' rules of step 0 included (from cos_zenith); the albedo stays
    ASN_VEG where the season reads it (--target crocus)."""
    absent = [np.where(samples.mask, samples.layers[:, k], np.nan) for k in range(len(LAYER_VARIABLES))]
    scalars = samples.scalars
    try:
        budget = energy_budget(*absent, scalars[:, COS_ILLUM], scalars[:, DIRECT_SW], scalars[:, DIFFUSE_SW],
                               soil_albedo=scalars[:, SOIL_ALBEDO], cos_zenith=scalars[:, COS_ZENITH])
    except ValueError as e:
        raise _profile_error(e, season, samples) from e
    albedo = samples.albedo if samples.albedo is not None else budget.albedo
    return dataclasses.replace(samples, albedo=albedo, absorbed=np.nan_to_num(budget.absorbed, nan=0.0),
                               soil=budget.soil)


def _profile_error(error: ValueError, season: Season, samples: Samples) -> InputError:
    """The labeller's "<field>: row <i>[, layer <k>]: <problem>" as the PRO variable, time, point
    (and layer) at fault."""
    match = re.fullmatch(r"(\w+): row (\d+)(, layer \d+)?: (.*)", str(error))
    if not match:
        return InputError(season.pair.pro_file, None, f"the TARTES labeller rejects a profile ({error})")
    field, row, layer, problem = match.groups()
    i = int(row)
    return InputError(season.pair.pro_file, season.names.get(field) or field,
                      f"{problem} at {samples.meta.time.iloc[i]} point {samples.meta.point.iloc[i]}{layer or ''}")


# ---------------------------------------------------------------------------------------------
# Running pairs

@dataclass
class PairResult:
    name: str
    status: str  # "written", "skipped" (already complete) or "failed"
    n_samples: int = 0
    error: str = ""
    seconds: float = 0.0
    note: str = ""  # why a complete shard was written again


@dataclass
class Summary:
    results: list[PairResult] = field(default_factory=list)

    def _names(self, status):
        return [r.name for r in self.results if r.status == status]

    @property
    def written(self) -> list[str]:
        return self._names("written")

    @property
    def skipped(self) -> list[str]:
        return self._names("skipped")

    @property
    def failed(self) -> dict[str, str]:
        return {r.name: r.error for r in self.results if r.status == "failed"}

    @property
    def n_samples(self) -> int:
        return sum(r.n_samples for r in self.results if r.status == "written")

    def __str__(self) -> str:
        lines = []
        for r in self.results:
            if r.status == "failed":
                lines.append(f"FAILED   {r.name}: {r.error}")
            else:
                lines.append(f"{r.status:8} {r.name}: {r.n_samples} samples" +
                             (f" in {r.seconds:.1f} s" if r.status == "written" else "") +
                             (f" ({r.note})" if r.note else ""))
        lines.append(f"{len(self.results)} seasons: {len(self.written)} written, {len(self.skipped)} skipped "
                     f"(already complete), {len(self.failed)} failed")
        return "\n".join(lines)


@dataclass
class Job:
    pair: Pair
    output_dir: Path
    target: str
    time_chunk: int | None
    point_chunk: int
    software: dict
    soil_albedo: float | str = DEFAULT_SOIL_ALBEDO  # a number, or a per-point variable's name
    light: LightSettings = S2M_LIGHT


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(shard: Path) -> None:
    """Remove temporary directories left by killed runs (ShardWriter names them <shard>.tmp-<pid>)."""
    for tmp in shard.parent.glob(f"{shard.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


_BAR_LINE: int | None = None  # terminal line of this process' progress bars: workers get 1, 2, ...


def _init_worker(counter, lock) -> None:
    global _BAR_LINE
    tqdm.set_lock(lock)
    with counter.get_lock():
        counter.value += 1
        _BAR_LINE = counter.value


def _bar(**kwargs) -> tqdm:
    # Logs (screen, SLURM) get a line every 30 s rather than a stream of carriage returns.
    return tqdm(position=_BAR_LINE, mininterval=1 if sys.stderr.isatty() else 30, **kwargs)


def source_record(job: Job) -> dict:
    """What a shard is made from, recorded in its info and compared before a complete shard is kept:
    the PRO and FORCING files (resolved path, size, modification time), the label source, the soil
    albedo option and the light settings. Own files preprocessed into the same folder, or the same
    files regenerated, differ."""
    files = {}
    for key, path in (("pro_file", job.pair.pro_file), ("forcing_file", job.pair.forcing_file)):
        stat = path.stat() if path.is_file() else None  # a missing file: Season says so
        files[key] = {"path": str(path.resolve()), "size": stat and stat.st_size, "mtime_ns": stat and stat.st_mtime_ns}
    return {**files, "target_source": TARGET_SOURCES[job.target], "soil_albedo": job.soil_albedo,
            "light_settings": job.light.describe()}


def _write_shard(job: Job, shard: Path) -> int:
    season = Season(job.pair, job.target == "crocus", job.time_chunk, job.point_chunk, soil_albedo=job.soil_albedo,
                    light=job.light)
    source = source_record(job)  # before reading: files changed meanwhile are not taken as these
    try:
        with _bar(total=2 * season.n_blocks(), desc=job.pair.name, unit="block", leave=False) as bar:
            n_samples = 0
            for positions, points in season.blocks():
                n_samples += int(season.select(positions, points)[0].sum())
                bar.update()
            info = {**season.info(), "target_source": TARGET_SOURCES[job.target],
                    "target": TARGET_DESCRIPTIONS[job.target], "source": source, "software": job.software,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            with ShardWriter(shard, n_samples, info) as writer:
                target_equal_1 = 0
                for positions, points in season.blocks():
                    samples = season.samples(positions, points)
                    if samples is not None:
                        samples = label(season, samples)
                        writer.write(samples)
                        target_equal_1 += int(np.sum(samples.albedo == 1))
                    bar.update()
                # In T17 runs ASN_VEG is 1 where TARTES did not run: a daylight sample at 1 is suspect.
                writer.info["samples_with_target_1"] = target_equal_1
    finally:
        season.close()
    return n_samples


def kept_shard(job: Job, shard: Path) -> tuple[dict | None, str]:
    """What `job` does with `shard`: (its info, "") where it is complete and made from the same files
    with the same settings, kept as it is; else (None, why a complete shard is made again, or "").
    InputError for a complete shard that the job must not replace: of an older format, or labelled
    by another source."""
    if not is_complete(shard):
        return None, ""
    info = json.loads((shard / INFO_FILE).read_text())
    if shard_format(shard) != SHARD_FORMAT:
        raise InputError(shard, None, f"already holds a shard of an older format ({shard_format(shard)}, not "
                                      f"{SHARD_FORMAT}): re-run preprocessing into a new directory, or remove it")
    recorded = info.get("target_source")
    if recorded != TARGET_SOURCES[job.target]:
        raise InputError(shard, None, f"already holds a shard labelled by {recorded}, not "
                                      f"{TARGET_SOURCES[job.target]}: remove it or choose another output")
    if info.get("source") == source_record(job):
        return info, ""
    # made from other files, or from an earlier version of these: made again
    made_from = info.get("source", {}).get("pro_file", {}).get("path")
    return None, ("replaced the shard of an earlier version of these files" if made_from ==
                  str(job.pair.pro_file.resolve()) else f"replaced a shard of {made_from or 'unrecorded files'}")


def _run(job: Job) -> PairResult:
    """Process one pair; any error becomes a failed result, so other pairs go on."""
    start = time.perf_counter()
    shard = job.output_dir / job.pair.region / job.pair.season
    try:
        info, note = kept_shard(job, shard)
        if info is not None:
            return PairResult(job.pair.name, "skipped", info["n_samples"])
        _remove_stale(shard)
        n_samples = _write_shard(job, shard)
        return PairResult(job.pair.name, "written", n_samples, seconds=time.perf_counter() - start, note=note)
    except Exception as e:
        message = str(e) if isinstance(e, InputError) else f"{job.pair.pro_file}: {type(e).__name__}: {e}"
        return PairResult(job.pair.name, "failed", error=message, seconds=time.perf_counter() - start)


def preprocess(input_dir: str | Path, output_dir: str | Path, target: str = "crocus", workers: int = 1, *,
               time_chunk: int | None = None, point_chunk: int = POINT_CHUNK,
               soil_albedo: float | str = DEFAULT_SOIL_ALBEDO, light: LightSettings = S2M_LIGHT) -> Summary:
    """Turn every PRO + FORCING pair under input_dir into a shard under output_dir.

    target: "crocus" (ASN_VEG) or "tartes" (the TARTES labeller). workers: pairs processed in
    parallel (spawned processes). time_chunk, point_chunk: block shape (crocus_files.block_shape),
    which sets memory and the order of the rows in a shard. soil_albedo: the albedo of the ground
    under the snow, a number for every point or the name of a per-point variable of the FORCING or
    PRO files (such as ALB_SOIL). light: the run's settings (utils.solar.LightSettings, S2M's by
    default). Returns the Summary of written, skipped and failed pairs.
    """
    if target not in TARGET_SOURCES:
        raise ValueError(f"target: {target!r}, expected one of {sorted(TARGET_SOURCES)}")
    pairs = find_pairs(input_dir)
    if not pairs:
        raise FileNotFoundError(f"{input_dir}: no <region>/PRO/PRO_<season>.nc file")
    software = provenance()
    jobs = [Job(pair, Path(output_dir), target, time_chunk, point_chunk, software, soil_albedo, light)
            for pair in pairs]
    # Folders this run creates, removed at the end if they stay empty (every pair of a region failed).
    created = [d for d in sorted({Path(output_dir) / pair.region for pair in pairs}) if not d.exists()]
    created += [Path(output_dir)] if not Path(output_dir).exists() else []
    summary = Summary()
    ctx = mp.get_context("spawn")
    if workers > 1:
        tqdm.set_lock(ctx.RLock())  # one lock for the bars of all processes
    with _bar(total=len(jobs), desc="seasons", unit="season") as bar, ExitStack() as stack:
        if workers <= 1:
            results = map(_run, jobs)
        else:
            pool = stack.enter_context(ctx.Pool(min(workers, len(jobs)), initializer=_init_worker,
                                                initargs=(ctx.Value("i", 0), tqdm.get_lock())))
            results = pool.imap_unordered(_run, jobs)
        for result in results:
            summary.results.append(result)
            bar.update()
    for folder in created:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    summary.results.sort(key=lambda r: r.name)
    return summary


# ---------------------------------------------------------------------------------------------
# One pair per task (preprocessing/launch.sh slurm --array): a pair list, a status file per pair

PAIR_LIST = ".pairs.txt"  # OUT/.pairs.txt: one <region>/<season> a line; array task i is line i + 1
STATUS_DIR = ".status"  # OUT/.status/<region>__<season>.json: what the last task of the pair did


def read_pair_list(path: str | Path) -> list[str]:
    """The pair names of a pair list, in task order; UsageError when it is not there or malformed."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--pair-list {path}: no such file (launch.sh slurm --array writes it at submission)")
    names = path.read_text().splitlines()
    bad = [i for i, name in enumerate(names) if len(name.split("/")) != 2 or not all(name.split("/"))]
    if bad:
        raise UsageError(f"--pair-list {path}: line {bad[0] + 1} is {names[bad[0]]!r}, not <region>/<season>")
    return names


def update_pair_list(input_dir: str | Path, path: str | Path, write: bool = True) -> list[str]:
    """The pair list of input_dir: the pairs already in the list at `path`, in their order (task i
    stays the same pair from one submission to the next), then the pairs it does not hold yet."""
    listed = read_pair_list(path) if Path(path).exists() else []
    found = [pair.name for pair in find_pairs(input_dir)]
    names = listed + sorted(set(found) - set(listed), key=found.index)
    gone = sorted(set(listed) - set(found))
    if gone:
        print(f"warning: {len(gone)} pair(s) of {path} no longer under {input_dir} (their tasks will fail): "
              f"{', '.join(gone[:5])}{' ...' if len(gone) > 5 else ''}", file=sys.stderr)
    if write and names != listed:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text(path, "".join(f"{name}\n" for name in names))
    return names


def array_spec(indices: list[int]) -> str:
    """SLURM's --array list of task indices: 0-3,7,9-10."""
    ranges = []
    for i in indices:
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def status_path(output_dir: str | Path, name: str) -> Path:
    return Path(output_dir) / STATUS_DIR / (name.replace("/", "__") + ".json")


def save_status(output_dir: str | Path, name: str, record: dict) -> None:
    path = status_path(output_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_json(record, path)


def read_status(output_dir: str | Path, name: str) -> dict | None:
    path = status_path(output_dir, name)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"pair": name, "status": "failed", "error": f"{path}: unreadable status file"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_task(input_dir: str | Path, output_dir: str | Path, names: list[str], task: int, target: str,
             time_chunk: int | None = None, point_chunk: int = POINT_CHUNK, *,
             soil_albedo: float | str = DEFAULT_SOIL_ALBEDO, light: LightSettings = S2M_LIGHT) -> PairResult:
    """Preprocess pair `task` of the pair list `names` (one array task) and record what happened in
    its status file (atomically): first "running" (a task killed by a time or memory limit leaves
    it so), then written, skipped or failed with the error, seconds and samples."""
    name = names[task]
    previous = read_status(output_dir, name)
    record = {"pair": name, "task": task, "target": target, "host": os.uname().nodename,
              "job": "_".join(os.environ[k] for k in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID") if k in os.environ),
              "log": os.environ.get("PREPROCESS_LOG", ""), "started": _now()}
    save_status(output_dir, name, {**record, "status": "running"})
    job = Job(pair_from_name(input_dir, name), Path(output_dir), target, time_chunk, point_chunk, provenance(),
              soil_albedo, light)
    result = _run(job)
    if result.status == "skipped" and previous and previous.get("status") == "written":
        save_status(output_dir, name, previous)  # keep the record of the task that wrote it
    else:
        save_status(output_dir, name, {**record, "status": result.status, "n_samples": result.n_samples,
                                       "seconds": round(result.seconds, 3), "error": result.error, "finished": _now()})
    return result


def _done(job: Job) -> bool:
    """Whether an array task of `job` would keep its shard as it is (kept_shard): a shard it would
    replace, or one it would fail on (the task records why), is still to do."""
    try:
        return kept_shard(job, job.output_dir / job.pair.name)[0] is not None
    except (InputError, OSError, ValueError):
        return False


def task_summary(output_dir: str | Path, names: list[str]) -> tuple[str, bool]:
    """(report, all done) of the pairs of a pair list from their status files: written, skipped
    (complete before the task ran, or made by another run), then what is left to do: unfinished
    (started, no result: running, or killed by a limit), missing (never ran, or its shard is gone)
    and failed, with their errors."""
    order = ("written", "skipped", "unfinished", "missing", "failed")
    lines = {status: [] for status in order}
    samples = seconds = 0
    for task, name in enumerate(names):
        record = read_status(output_dir, name)
        shard = Path(output_dir) / name
        complete = is_complete(shard)
        status = record["status"] if record else "missing"
        log = f" (log {record['log']})" if record and record.get("log") else ""
        job = f", job {record['job']}" if record and record.get("job") else ""
        if complete and (record is None or (status in ("running", "failed") and (shard / INFO_FILE).stat().st_mtime
                                            > status_path(output_dir, name).stat().st_mtime)):
            # made by a run of its own, or after the task recorded: done
            origin = "no task record" if record is None else f"made after the {status} record{job}"
            status = "skipped"
            text = f"{json.loads((shard / INFO_FILE).read_text()).get('n_samples', '?')} samples ({origin})"
        elif status in ("written", "skipped") and not complete:
            status, text = "missing", f"recorded {record['status']}{job} but the shard is not complete any more"
        elif status == "written":
            samples, seconds = samples + record["n_samples"], seconds + record["seconds"]
            text = f"{record['n_samples']} samples in {record['seconds']:.1f} s{job}"
        elif status == "skipped":
            text = f"{record['n_samples']} samples (complete before the task ran{job})"
        elif status == "running":
            status = "unfinished"
            text = (f"started {record['started']} on {record['host']}{job}, no result: still running, or killed "
                    f"(time or memory limit: see its log){log}")
        elif status == "failed":
            text = f"{record['error']}{log}"
        else:
            text = "never ran"
        lines[status].append(f"{status.upper() if status in order[2:] else status:10} task {task:>4} {name}: {text}")
    counts = ", ".join(f"{len(lines[s])} {s}" for s in order)
    total = (f"{len(names)} pairs: {counts}; {samples} samples written in {seconds / 3600:.2f} h of task time")
    return "\n".join([line for s in order for line in lines[s]] + [total]), not any(lines[s] for s in order[2:])


def add_block_arguments(parser: argparse.ArgumentParser) -> None:
    """--time-chunk and --point-chunk, the block read at once, for the commands that stream pairs."""
    parser.add_argument("--time-chunk", type=int, default=None,
                        help=f"times per block read (default: {BLOCK_SAMPLES} samples / points per block)")
    parser.add_argument("--point-chunk", type=int, default=POINT_CHUNK, help="points per block read, at most")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The soil albedo and the light settings of the Crocus run (S2M's by default), for the
    commands that read Crocus runs; `run_settings` turns them into arguments."""
    run = parser.add_argument_group("the Crocus run (defaults: the S2M reanalysis' settings)")
    run.add_argument("--soil_albedo", type=soil_albedo_argument, default=DEFAULT_SOIL_ALBEDO,
                     help="albedo of the ground under the snow, which Crocus takes from ISBA (not in PRO files): a "
                          f"number for every point (default {DEFAULT_SOIL_ALBEDO}), or the name of a per-point "
                          "variable of the FORCING or PRO file, such as ALB_SOIL")
    run.add_argument("--surface_step", type=float, default=S2M_LIGHT.surface_step,
                     help="seconds of a surface step, XTSTEP_SURF (default %(default)g): the PRO sample stamped H "
                          "is the state after the step [H - surface_step, H], whose light TARTES saw")
    run.add_argument("--lslope", choices=["T", "F"], default="T" if S2M_LIGHT.lslope else "F",
                     help="LSLOPE (default %(default)s): T, the diffuse flux of slopes times the sky-view factor "
                          "(1 + cos(slope)) / 2; F, taken as it is. Only LINTERP_SW=F runs (fluxes linear in time "
                          "between FORCING stamps) are reproduced")


def run_settings(args: argparse.Namespace) -> dict:
    """soil_albedo and light (utils.solar.LightSettings) from add_run_arguments' options; UsageError
    naming the option."""
    try:
        light = LightSettings(surface_step=args.surface_step, lslope=args.lslope == "T")
    except ValueError as e:
        raise UsageError(f"--surface_step {args.surface_step:g}: must be a positive number of seconds") from e
    return {"soil_albedo": args.soil_albedo, "light": light}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preprocessing.preprocess", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="directory of <region>/PRO and <region>/FORCING")
    parser.add_argument("--output", help="directory of the shards <region>/<season>")
    parser.add_argument("--target", choices=sorted(TARGET_SOURCES), default="crocus",
                        help="crocus: Crocus' ASN_VEG as Crocus wrote it (in runs where some point had no diffuse "
                             "light, it carries SURFEX's defect of step 0, the light of the whole array of points "
                             "split by that point's diffuse fraction; docs/labels.md); tartes: the TARTES labeller "
                             "(runs without TARTES). The absorbed profile and soil term are the labeller's in both")
    parser.add_argument("--workers", type=int, default=1, help="pairs processed in parallel")
    add_block_arguments(parser)
    add_run_arguments(parser)
    cluster = parser.add_argument_group("one pair per task (preprocessing/launch.sh slurm --array)")
    cluster.add_argument("--pair-list", help=f"the pair list (default: OUTPUT/{PAIR_LIST})")
    cluster.add_argument("--task", type=int, help="process pair TASK (from 0) of the pair list only, and record "
                                                  f"its result in OUTPUT/{STATUS_DIR}/")
    cluster.add_argument("--array-plan", action="store_true",
                         help="write the pair list (new pairs appended) and print: pairs, pairs to do, their tasks")
    cluster.add_argument("--dry-run", action="store_true", help="with --array-plan: write nothing")
    cluster.add_argument("--summary", metavar="OUTPUT", help="what the tasks of OUTPUT's pair list did; exit "
                                                             "status 1 if a pair is failed, unfinished or missing")
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except UsageError as e:
        # Usage errors: one line naming the option, exit status 2 (argparse's parser.error).
        parser.error(str(e))


def _main(args: argparse.Namespace) -> int:
    if args.summary is not None:
        given = [o for o in ("input", "output", "task") if getattr(args, o) is not None] + \
                [o for o in ("array_plan", "dry_run") if getattr(args, o)]
        if given:
            raise UsageError(f"--summary: takes no --{given[0].replace('_', '-')} (only --pair-list)")
        if not Path(args.summary).is_dir():
            raise UsageError(f"--summary {args.summary}: no such directory")
        names = read_pair_list(args.pair_list or Path(args.summary) / PAIR_LIST)
        report, done = task_summary(args.summary, names)
        print(report)
        return 0 if done else 1
    missing = [o for o in ("input", "output") if getattr(args, o) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join('--' + o for o in missing)}")
    for option, value in (("--workers", args.workers), ("--time-chunk", args.time_chunk),
                          ("--point-chunk", args.point_chunk)):
        if value is not None and value < 1:
            raise UsageError(f"{option}: must be >= 1, got {value}")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise UsageError(f"--output {args.output}: not a directory")
    if args.task is not None and args.array_plan:
        raise UsageError("--task and --array-plan: one or the other")
    if (args.task is not None or args.array_plan) and args.workers != 1:
        raise UsageError(f"--workers {args.workers}: a task processes one pair (give it threads with "
                         "launch.sh --cpus-per-task)")
    if args.pair_list is not None and args.task is None and not args.array_plan:
        raise UsageError("--pair-list: only with --task, --array-plan or --summary")
    if args.dry_run and not args.array_plan:
        raise UsageError("--dry-run: only with --array-plan")
    pair_list = Path(args.pair_list) if args.pair_list else Path(args.output) / PAIR_LIST
    if args.task is not None:
        if not Path(args.input).is_dir():
            raise UsageError(f"--input {args.input}: {'not a directory' if Path(args.input).exists() else 'no such directory'}")
        names = read_pair_list(pair_list)
        if not 0 <= args.task < len(names):
            raise UsageError(f"--task {args.task}: the pair list {pair_list} has {len(names)} pairs (tasks 0 to "
                             f"{len(names) - 1})")
        print(f"task {args.task}: {names[args.task]} of {pair_list}, on {os.uname().nodename}", flush=True)
        result = run_task(args.input, args.output, names, args.task, args.target,
                          time_chunk=args.time_chunk, point_chunk=args.point_chunk, **run_settings(args))
        print(str(Summary([result])).splitlines()[0])
        return 1 if result.status == "failed" else 0
    try:
        pairs = find_pairs(args.input)
    except FileNotFoundError as e:
        raise UsageError(f"--input {e}") from None
    if not pairs:
        raise UsageError(f"--input {args.input}: no <region>/PRO/PRO_<season>.nc file in it")
    if args.array_plan:
        names = update_pair_list(args.input, pair_list, write=not args.dry_run)
        settings = run_settings(args)
        jobs = [Job(pair_from_name(args.input, name), Path(args.output), args.target, args.time_chunk,
                    args.point_chunk, {}, **settings) for name in names]
        todo = [i for i, job in enumerate(jobs) if not _done(job)]
        print(len(names), len(todo), array_spec(todo))
        return 0
    summary = preprocess(args.input, args.output, args.target, args.workers,
                         time_chunk=args.time_chunk, point_chunk=args.point_chunk, **run_settings(args))
    print(summary)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
