"""preprocessing/launch.sh slurm --array: one PRO/FORCING pair per array task, a status file per
pair, a summary of what is done, failed or left, and resubmission of only what is left; with
DRY_RUN=1 and with a fake `sbatch` that runs the array's tasks one after the other."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from preprocessing import preprocess as pp
from preprocessing.shards import find_shards, open_shard
from tests.crocus_fixtures import SEASON, make_pair, write_pair

REPO = Path(__file__).resolve().parents[1]
LAUNCH = str(REPO / "preprocessing" / "launch.sh")

# A stand-in for SLURM's sbatch: records its arguments and the script, then runs each task of the
# script's #SBATCH --array (but those of FAKE_SBATCH_SKIP) in turn, with SLURM's variables set and
# its output in the #SBATCH --output file (%A: job, %a: task).
FAKE_SBATCH = """#!{python}
import json, os, re, subprocess, sys
from pathlib import Path
calls = Path(os.environ["FAKE_SBATCH_CALLS"])
lines = calls.read_text().splitlines() if calls.exists() else []
job = str(1000 + len(lines))
script = Path(sys.argv[-1]).read_text()
calls.write_text("".join(l + "\\n" for l in lines + [json.dumps({{"argv": sys.argv[1:], "script": script}})]))
spec = re.search(r"^#SBATCH --array=(\\S+)$", script, re.M).group(1).split("%")[0]
log = re.search(r"^#SBATCH --output=(.+)$", script, re.M).group(1)
tasks = [i for part in spec.split(",") for i in range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1)]
skip = {{int(i) for i in os.environ.get("FAKE_SBATCH_SKIP", "").split(",") if i}}
for task in tasks:
    if task not in skip:
        env = {{**os.environ, "SLURM_ARRAY_JOB_ID": job, "SLURM_ARRAY_TASK_ID": str(task), "SLURM_CPUS_PER_TASK": "1"}}
        with open(log.replace("%A", job).replace("%a", str(task)), "w") as out:
            subprocess.run(["bash", sys.argv[-1]], env=env, stdout=out, stderr=subprocess.STDOUT)
print("Submitted batch job " + job)
"""


@pytest.fixture
def cluster(tmp_path):
    """Three pairs (Alpes, Pyrenees without SNOWSSA, Vosges; tasks 0, 1, 2), a fake sbatch on PATH,
    and run(*args, **env) launching launch.sh slurm --array from tmp_path."""
    inputs = tmp_path / "in"
    pro, forcing = make_pair(points=2, hours=48)
    write_pair(inputs, "Alpes", pro, forcing)
    write_pair(inputs, "Pyrenees", pro.drop_vars("SNOWSSA"), forcing)
    write_pair(inputs, "Vosges", *make_pair(points=2, hours=48, seed=1))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(python=sys.executable))
    (bin_dir / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG_DIR": str(tmp_path / "logs"),
           "FAKE_SBATCH_CALLS": str(tmp_path / "calls.jsonl"), "PYTHON": sys.executable}

    def run(*args, **extra):
        return subprocess.run(["bash", LAUNCH, "slurm", "--array", "--input", "in", "--output", "out", *args],
                              cwd=tmp_path, capture_output=True, text=True, env={**env, **extra})

    def calls():
        return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]

    return tmp_path, run, calls


def summary(out, capsys) -> tuple[int, str]:
    """(exit status, output) of python -m preprocessing.preprocess --summary OUT (in process: faster)."""
    capsys.readouterr()
    status = pp.main(["--summary", str(out)])
    return status, capsys.readouterr().out


def test_dry_run_prints_the_array_job_and_writes_nothing(cluster):
    tmp_path, run, _ = cluster
    dry = run("--target", "tartes", "--max-parallel", "2", "--mem", "3G", "--cpus-per-task", "2",
              "--time", "2:00:00", DRY_RUN="1")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in ("#SBATCH --array=0-2%2", f"#SBATCH --output={tmp_path / 'logs'}/preprocess_%A_%a.log",
                 "#SBATCH --mem=3G", "#SBATCH --cpus-per-task=2", "#SBATCH --time=2:00:00"):
        assert line in lines, line
    task = [line for line in lines if line.startswith("cd ")]
    assert len(task) == 1 and task[0].startswith(f"cd {tmp_path} && PYTHONPATH={REPO}")
    assert task[0].endswith("-m preprocessing.preprocess --input in --output out --target tartes "
                            '--pair-list out/.pairs.txt --task "$SLURM_ARRAY_TASK_ID"')
    assert "export NUMBA_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}" in dry.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "calls.jsonl").exists()
    assert not (tmp_path / "logs").exists()  # LOG_DIR is made when a log or job script is written


def test_screen_that_cannot_start_leaves_no_log_directory(cluster):
    """launch.sh screen whose screen fails: exit 1, a line saying so, and no empty LOG_DIR."""
    tmp_path, _, _ = cluster
    (tmp_path / "bin" / "screen").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "screen").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "PYTHON": sys.executable}
    failed = subprocess.run(["bash", LAUNCH, "screen", "--input", "in", "--output", "out"], cwd=tmp_path,
                            capture_output=True, text=True, env=env)
    assert failed.returncode == 1 and "screen could not start the session" in failed.stderr, failed.stderr
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("args, message", [
    (["--workers", "2"], "--workers: one pair per array task"),
    (["--max-parallel", "0"], "--max-parallel: a positive integer, got '0'"),
    (["--mem", "lots"], "--mem: a size such as 4G"),
    (["--cpus-per-task"], "--cpus-per-task: expects a value"),
    (["--input", "nowhere"], "python -m preprocessing.preprocess: error: --input nowhere: no such directory"),
])
def test_usage_errors_in_one_line(cluster, args, message):
    tmp_path, run, _ = cluster
    bad = run(*args, DRY_RUN="1")
    assert bad.returncode == 2 and message in bad.stderr.strip().splitlines()[-1], bad.stderr
    assert "Traceback" not in bad.stderr and bad.stdout == ""
    assert not (tmp_path / "logs").exists()


def test_array_tasks_summary_and_resubmission(cluster, capsys):
    tmp_path, run, calls = cluster
    out = tmp_path / "out"
    first = run("--max-parallel", "4", FAKE_SBATCH_SKIP="2")  # task 2 (Vosges) never runs: as if cancelled
    assert first.returncode == 0, first.stderr
    assert "Submitted batch job 1000" in first.stdout
    assert (out / ".pairs.txt").read_text() == f"Alpes/{SEASON}\nPyrenees/{SEASON}\nVosges/{SEASON}\n"
    assert "#SBATCH --array=0-2%4" in calls()[0]["script"]
    assert find_shards(out) == [out / "Alpes" / SEASON]
    log = (tmp_path / "logs" / "preprocess_1000_1.log").read_text()
    assert f"task 1: Pyrenees/{SEASON}" in log and "SNOWSSA" in log
    assert not (tmp_path / "logs" / "preprocess_1000_2.log").exists()

    status, report = summary(out, capsys)
    assert status == 1
    lines = report.splitlines()
    assert re.match(rf"written +task +0 Alpes/{SEASON}: {len(open_shard(out / 'Alpes' / SEASON))} samples in "
                    r"[\d.]+ s, job 1000_0$", lines[0]), lines[0]
    assert re.match(rf"MISSING +task +2 Vosges/{SEASON}: never ran$", lines[1]), lines[1]
    assert re.match(rf"FAILED +task +1 Pyrenees/{SEASON}: .*PRO_{SEASON}.nc: SNOWSSA: missing variable .*"
                    rf"\(log {tmp_path / 'logs'}/preprocess_1000_1.log\)$", lines[2]), lines[2]
    assert lines[3].startswith("3 pairs: 1 written, 0 skipped, 0 unfinished, 1 missing, 1 failed")
    status = json.loads((out / ".status" / f"Pyrenees__{SEASON}.json").read_text())
    assert status["status"] == "failed" and "SNOWSSA" in status["error"] and status["task"] == 1

    # Fixed input, same command: only the pairs left are submitted, the written one is not redone.
    write_pair(tmp_path / "in", "Pyrenees", *make_pair(points=2, hours=48, seed=2))
    written = (out / "Alpes" / SEASON / "info.json").stat().st_mtime_ns
    again = run("--max-parallel", "4")
    assert again.returncode == 0, again.stderr
    assert "#SBATCH --array=1-2%4" in calls()[1]["script"]
    assert (out / "Alpes" / SEASON / "info.json").stat().st_mtime_ns == written
    assert find_shards(out) == [out / region / SEASON for region in ("Alpes", "Pyrenees", "Vosges")]
    status, report = summary(out, capsys)
    assert status == 0, report
    assert "job 1000_0" in report and "job 1001_1" in report and "job 1001_2" in report
    assert report.splitlines()[-1].startswith("3 pairs: 3 written, 0 skipped, 0 unfinished, 0 missing, 0 failed")

    # Nothing left: nothing submitted.
    done = run()
    assert done.returncode == 0 and "nothing to submit" in done.stdout and len(calls()) == 2


def test_task_records_and_summary_in_process(tmp_path, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    write_pair(inputs, "Alpes", *make_pair(points=2, hours=48))
    assert pp.main(["--input", str(inputs), "--output", str(out), "--array-plan"]) == 0
    assert capsys.readouterr().out == "1 1 0\n"
    # An existing shard (made by another run): done for the same settings, still to do for others
    # (a task would make it again); the task skips it and says so.
    pp.preprocess(inputs, out)
    plan = ["--input", str(inputs), "--output", str(out), "--array-plan"]
    assert pp.main(plan) == 0
    assert capsys.readouterr().out.split()[:2] == ["1", "0"]
    assert pp.main(plan + ["--soil_albedo", "0.3"]) == 0
    assert capsys.readouterr().out == "1 1 0\n"
    assert pp.main(["--input", str(inputs), "--output", str(out), "--task", "0"]) == 0
    assert f"skipped  Alpes/{SEASON}" in capsys.readouterr().out
    assert pp.main(["--summary", str(out)]) == 0
    assert "complete before the task ran" in capsys.readouterr().out
    # A task killed by a limit leaves its "running" record: unfinished, with its log.
    record = {"pair": f"Alpes/{SEASON}", "task": 0, "status": "running", "started": "2024-01-01T00:00:00+00:00",
              "host": "node7", "job": "5_0", "log": "logs/preprocess_5_0.log"}
    pp.save_status(out, f"Alpes/{SEASON}", record)
    (out / "Alpes" / SEASON / "info.json").unlink()
    assert pp.main(["--summary", str(out)]) == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"UNFINISHED task    0 Alpes/{SEASON}: started 2024-01-01T00:00:00+00:00 on node7, job 5_0")
    assert "(log logs/preprocess_5_0.log)" in line
    # A failure that a later run made up for: done.
    pp.save_status(out, f"Alpes/{SEASON}", {**record, "status": "failed", "error": "boom"})
    pp.preprocess(inputs, out)
    assert pp.main(["--summary", str(out)]) == 0
    assert "samples (made after the failed record, job 5_0)" in capsys.readouterr().out
    for argv, message in ((["--summary", str(out), "--task", "0"], "--summary: takes no --task"),
                          (["--input", str(inputs), "--output", str(out), "--task", "1"],
                           "--task 1: the pair list"),
                          (["--summary", str(tmp_path)], f"--pair-list {tmp_path / '.pairs.txt'}: no such file")):
        with pytest.raises(SystemExit) as exit_:
            pp.main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_array_spec():
    assert pp.array_spec([0, 1, 2, 3, 7, 9, 10]) == "0-3,7,9-10"
    assert pp.array_spec([4]) == "4"
