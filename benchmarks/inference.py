"""Profiles per second, from raw physical arrays to what Crocus takes from TARTES, of the batched
labeller, the tartes package, the emulator (eager, TorchScript, ONNX Runtime) and the Fortran module
fortran/tartes_emulator.f90, on the same realistic 50-layer profiles.

    python benchmarks/inference.py [--model data/emulator.pt] [--profiles 4096] [--tartes-profiles 20]
                                   [--repeats 10] [--threads N] [--models cnn_seed ...]
                                   [--fortran-flags FLAGS (the Makefile's)] [--no-fortran]
                                   [--layers 5 10 20 30 40 50] [--by-layers-only]

Every path starts from the labeller's inputs (layer arrays (N, 50) with NaN where absent, and
cos_illum, direct_sw, diffuse_sw, soil_albedo and cos_zenith of each profile) and ends with the
energy budget (albedo, absorbed fraction per layer, soil) or, where said, the albedo alone. The reference of the ratios is the labeller's full
energy budget (preprocessing.tartes_labels.energy_budget, numba, parallel over the machine's
cores); its albedo alone (broadband_albedo) and the tartes package (reference_energy_budget, one
profile at a time) are timed too. Emulator paths: `Emulator.energy_budget` and `Emulator.predict`
(with their input checks; on the CPU, the model's physics by its compiled kernel,
utils/two_stream.py), the TorchScript and ONNX files of export.py fed by utils.domain.model_inputs
(what a caller of the exported files does), and the Fortran module
through fortran/emulator_driver.f90, compiled here with gfortran (--fortran-flags, and plain -O2
for comparison), on one thread, and with OpenMP on two. Batch sizes 1, 64 and 4096 (the Fortran
module is called on that many points at a time); the fastest of --repeats runs is kept. The
labeller and the tartes package are timed before and after the emulators, and the ratios use
their faster run: a slow moment of the machine never flatters the emulator.

The drop-in for Crocus (tartes_emulator_snowcro_tartes, issue 23) through fortran/snowcro_driver.f90,
compiled with --fortran-flags, on one thread: SNOWCRO_TARTES's arguments (utils/snowcro.py) of
--profiles realistic packs of 20 to 49 layers in 50 layer columns, soil albedo and cos_zenith
given, called on 32 to 64 points at a time as Crocus calls it (its checks, the spectral light of
the 186 bands and the gathering of the points included); its rate beside SURFEX's own TARTES
(SNOWCRO_TARTES compiled with the same flags, one point per call on real 20-49-layer packs, one
core: about 1,500-1,800 profiles/s, measured outside this repository, whose source is not part of
it; docs/benchmarks.md): bar >= 100x, goal 300x, against the upper figure.

Bars at batch 4096, against the labeller's full energy budget on the machine's cores (2 on the
project's machine): the exported model with the profile >= 20x (issue 12); the Fortran module on
one core >= 20x, aim 50x (issue 13); `Emulator.predict` >= 20x on realistic packs of 20-50 layers
(issue 22).

Per number of layers: the labeller's energy budget and `Emulator.predict` and
`Emulator.energy_budget` of the default emulator at batch 4096 on packs of --layers layers (50
layer columns, NaN below the pack, as in PRO files), and on packs of 20 to 49 layers mixed in one
batch: the labeller's cost grows with the layers present, and so must the emulator's.
--by-layers-only prints this table alone.

--model: an emulator file; by default data/emulator.pt, and when that is missing or not of the
current format, the default architecture of utils.config.Config untrained (normalised on the
profiles: the speed of a model does not depend on its weights), which the output says.

Each engine is timed in a fresh process of its own, alone on the machine, and its threads wait
spinning between operations (OMP_WAIT_POLICY=ACTIVE unless set otherwise), as ONNX Runtime's
pool does by default: the labeller (numba's OpenMP layer) and torch (OpenMP) then run as they do
best. In one process, spinning threads left by one engine would steal the cores of the next;
sleeping OpenMP threads (PASSIVE, what main.py uses when training shares the cores with data
loading) cost each parallel operation a wake-up: run with OMP_WAIT_POLICY=PASSIVE to measure that.
The torch paths keep freed memory for reuse (utils.memory.keep_freed_memory, as Emulator does on a
CPU, and as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ give any process): with glibc's defaults
every large tensor is fresh memory paid in page faults.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")  # see above; inherited by the timing processes

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from preprocessing.profile_sampler import realistic_profiles  # noqa: E402
from utils import snowcro  # noqa: E402
from utils.domain import model_inputs  # noqa: E402
from utils.schema import LAYER_VARIABLES, MODEL_SCALARS  # noqa: E402

BATCH_SIZES = (1, 64, 4096)
SINGLE_CALLS = 256  # profiles timed one call each at batch 1
BAR_LABELLER, BAR_FORTRAN, AIM_FORTRAN, BAR_TARTES = 20, 20, 50, 10_000
BAR_PREDICT = 20  # Emulator.predict on realistic packs of 20-50 layers (issue 22)
SURFEX_TARTES_RATE = (1_500, 1_800)  # profiles/s of SURFEX's SNOWCRO_TARTES, one core (measured elsewhere)
BAR_SNOWCRO, AIM_SNOWCRO = 100, 300  # the drop-in against SURFEX_TARTES_RATE's upper figure (issue 23)
SNOWCRO_BATCHES = "32,64,48,40,56"  # points per call of the drop-in, cycled
MIXED = "20-49 mixed"  # packs of 20 to 49 layers in one batch, as real packs come
DEFAULT_MODEL = "data/emulator.pt"
FORTRAN = ROOT / "fortran"
REFERENCE = "labeller energy_budget (numba)"


def rate(outputs_of, profiles: dict, batch: int, repeats: int) -> float:
    """Profiles per second of outputs_of(profiles of one batch), the fastest of `repeats` runs over
    min(N, SINGLE_CALLS * batch) profiles, after one untimed warm-up call."""
    n = min(len(profiles["cos_illum"]), SINGLE_CALLS * batch)
    batches = [{k: v[start:start + batch] for k, v in profiles.items()} for start in range(0, n, batch)]
    outputs_of(batches[0])
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for inputs in batches:
            outputs_of(inputs)
        best = min(best, time.perf_counter() - start)
    return n / best


def set_threads(threads: int) -> None:
    """Threads of torch and numba (0: their defaults)."""
    import numba
    import torch

    if threads:
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)


def time_labeller(n: int, tartes_profiles: int, repeats: int, threads: int) -> dict:
    """In a process of its own: the labeller's rates (energy budget, albedo alone), the tartes
    package's, their agreement."""
    import numba
    import torch

    from preprocessing.tartes_labels import broadband_albedo, energy_budget, reference_energy_budget

    set_threads(threads)
    profiles = realistic_profiles(n, n_layers=50, seed=0, soil_and_zenith=True)
    rates = {REFERENCE: [rate(lambda p: energy_budget(**p), profiles, b, repeats) for b in BATCH_SIZES],
             "labeller broadband_albedo (numba)": [rate(lambda p: broadband_albedo(**p), profiles, b, repeats)
                                                   for b in BATCH_SIZES]}
    setting = (f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()} "
               f"({numba.threading_layer()} layer); OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; "
               f"torch {torch.__version__}")
    few = {k: v[:tartes_profiles] for k, v in profiles.items()}
    start = time.perf_counter()
    exact = reference_energy_budget(**few)
    tartes_rate = tartes_profiles / (time.perf_counter() - start)
    labelled = energy_budget(**few)
    difference = max(float(np.abs(labelled.albedo - exact.albedo).max()),
                     float(np.abs(labelled.absorbed - exact.absorbed).max()),
                     float(np.abs(labelled.soil - exact.soil).max()))
    return {"setting": setting, "rates": rates, "tartes_rate": tartes_rate, "difference": difference}


def packs_by_layers(n: int, layer_counts: list[int]) -> dict:
    """{number of layers (or MIXED): realistic profiles of that many layers}, 50 layer columns with
    NaN below the pack; the MIXED packs have 20 to 49 layers each (seed 1)."""
    packs = {k: {name: np.pad(v, ((0, 0), (0, 50 - k)), constant_values=np.nan) if v.ndim == 2 else v
                 for name, v in realistic_profiles(n, n_layers=k, seed=0, soil_and_zenith=True).items()}
             for k in layer_counts}
    below = np.arange(50)[None, :] >= np.random.default_rng(1).integers(20, 50, n)[:, None]
    packs[MIXED] = {name: np.where(below, np.nan, v) if v.ndim == 2 else v
                    for name, v in realistic_profiles(n, n_layers=50, seed=0, soil_and_zenith=True).items()}
    return packs


def time_by_layers(model: str | None, n: int, layer_counts: list[int], repeats: int, threads: int) -> dict:
    """In a process of its own: {pack: [rates at batch 4096]} of the labeller's energy budget
    (model None), or of the emulator's predict and energy_budget."""
    set_threads(threads)
    warnings.filterwarnings("ignore", message=".*outside the input domain")
    packs = packs_by_layers(n, layer_counts)
    if model is None:
        from preprocessing.tartes_labels import energy_budget

        return {k: [rate(lambda p: energy_budget(**p), profiles, BATCH_SIZES[-1], repeats)]
                for k, profiles in packs.items()}
    emulator = load_emulator(model, {k: np.concatenate([p[k] for p in packs.values()]) for k in packs[MIXED]})
    paths = [emulator.predict] + ([emulator.energy_budget] if emulator.model.BUDGET else [])
    return {k: [rate(lambda p: path(**p, batch_size=BATCH_SIZES[-1]), profiles, BATCH_SIZES[-1], repeats)
                for path in paths] for k, profiles in packs.items()}


def print_by_layers(default: str, n: int, layer_counts: list[int], repeats: int, threads: int) -> None:
    """The table of rates and ratios per number of layers (module docstring), the labeller timed
    before and after the emulator and its faster run kept."""
    before = in_own_process(time_by_layers, None, n, layer_counts, repeats, threads)
    emulator = in_own_process(time_by_layers, default, n, layer_counts, repeats, threads)
    after = in_own_process(time_by_layers, None, n, layer_counts, repeats, threads)
    print(f"\nper number of layers, batch {BATCH_SIZES[-1]}, {n} realistic packs (50 layer columns, NaN below the "
          f"pack), profiles per second, best of {repeats}; ratios to the labeller's energy budget")
    names = ["Emulator.predict", "Emulator.energy_budget"][:len(next(iter(emulator.values())))]
    print(f"{'layers':>12} {'labeller':>10} " + " ".join(f"{name:>22} {'/labeller':>9}" for name in names))
    for k, rates in emulator.items():
        labeller = max(before[k][0], after[k][0])
        print(f"{k:>12} {labeller:>10,.0f} " + " ".join(f"{r:>22,.0f} {r / labeller:>8.2f}x" for r in rates))
    realistic = [k for k in emulator if k == MIXED or k >= 20]
    if realistic:
        worst = min(emulator[k][0] / max(before[k][0], after[k][0]) for k in realistic)
        print(f"Emulator.predict on packs of 20-50 layers ({', '.join(map(str, realistic))}): at worst "
              f"{worst:.2f}x the labeller, bar {BAR_PREDICT}x: {'met' if worst >= BAR_PREDICT else 'NOT met'}")


def probe(model: str) -> dict:
    """In a process of its own: whether the emulator file `model` loads, its architecture and
    whether it gives the energy budget."""
    from models import Emulator

    try:
        emulator = Emulator.load(model, device="cpu")
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as e:
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
    return {"model": emulator.model_name, "budget": bool(emulator.model.BUDGET)}


def load_emulator(model: str, profiles: dict):
    """The emulator file `model`, or for "untrained:<name>" the architecture with its initial
    weights, normalised on the profiles: the speed of a model does not depend on its weights."""
    import torch

    from features import fit_normalisation
    from models import Emulator, build_model
    from utils.domain import input_domain

    if not model.startswith("untrained:"):
        return Emulator.load(model, device="cpu")
    name = model.removeprefix("untrained:")
    torch.manual_seed(0)
    network, settings = build_model(name)
    layers, scalars = model_inputs(profiles)
    fit_normalisation(network, [(layers, scalars)])
    domain = input_domain([(layers, layers[:, 0] > 0, scalars)])
    return Emulator(name, vars(settings), network.eval(), domain, {}, {})


def as_outputs(out) -> list[np.ndarray]:
    return [np.asarray(o) for o in (out if isinstance(out, (tuple, list)) else (out,))]


def time_emulator(model: str, path: str, n: int, repeats: int, threads: int) -> dict:
    """In a process of its own: the rates of one way of running an emulator, its size, and its
    largest difference to the eager model (the exported files; Emulator.predict against the
    budget's albedo)."""
    import torch

    import export
    from models import count_macs, count_parameters
    from utils.domain import outside_domain
    from utils.memory import keep_freed_memory

    set_threads(threads)
    # as Emulator runs on a CPU: freed memory kept for reuse, no page faults (utils/memory.py); set
    # for TorchScript too, as a caller would (MALLOC_ variables); ONNX Runtime has its own arena
    keep_freed_memory()
    engine_threads = torch.get_num_threads()
    if path == "ONNX Runtime":
        # torch only exports here: OpenMP threads it started would spin beside ONNX Runtime's
        torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*outside the input domain")  # counted below instead
    profiles = realistic_profiles(n, n_layers=50, seed=0, soil_and_zenith=True)
    emulator = load_emulator(model, profiles)
    budget = bool(emulator.model.BUDGET)
    result = {"model": emulator.model_name, "parameters": count_parameters(emulator.model),
              "macs": count_macs(emulator.model), "budget": budget}
    layers, scalars = model_inputs(profiles)
    outside, variables = outside_domain(emulator.domain, layers, layers[:, 0] > 0, scalars)
    result["outside"] = f"{outside.sum()} of {len(outside)} profiles outside its training domain " \
                        f"({', '.join(variables)})" if outside.any() else ""
    if not path.startswith("eager"):
        # the exported files' reference: the model's torch form, as export.py checks them; and no
        # numba threads (Emulator's compiled physics) left spinning beside the engine timed
        with torch.no_grad():
            eager = [np.asarray(o, dtype=np.float64) for o in as_outputs(
                emulator.model(torch.from_numpy(layers), torch.from_numpy(scalars)))]
    elif budget:
        reference = emulator.energy_budget(**profiles)
        eager = [reference.albedo, np.nan_to_num(reference.absorbed), reference.soil]
    else:
        eager = [emulator.predict(**profiles)]
    with tempfile.TemporaryDirectory() as directory:
        try:
            if path == "eager energy_budget":
                def outputs_of(p):
                    out = emulator.energy_budget(**p, batch_size=4096)
                    return [out.albedo, out.absorbed, out.soil]  # NaN for absent layers
            elif path == "eager predict":
                def outputs_of(p):
                    return [emulator.predict(**p, batch_size=4096)]
            elif path == "TorchScript":
                scripted = torch.jit.load(str(export.export_torchscript(emulator, Path(directory) / "model.ts")))

                def outputs_of(p):
                    layers, scalars = model_inputs(p)
                    with torch.no_grad():
                        return as_outputs(scripted(torch.from_numpy(layers), torch.from_numpy(scalars)))
            else:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = engine_threads, 1
                session = onnxruntime.InferenceSession(
                    str(export.export_onnx(emulator, Path(directory) / "model.onnx")), options,
                    providers=["CPUExecutionProvider"])

                def outputs_of(p):
                    layers, scalars = model_inputs(p)
                    return session.run(None, {"layers": layers, "scalars": scalars})
        except Exception as e:  # reported, not hidden: an emulator that cannot be exported is a finding
            result["failure"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            return result
        result["rates"] = [rate(outputs_of, profiles, b, repeats) for b in BATCH_SIZES]
        outputs = outputs_of(profiles)
        result["difference"] = max(float(np.abs(np.nan_to_num(x) - y).max()) for x, y in zip(outputs, eager))
    return result


def prepare_fortran(model: str, n: int, directory: str) -> dict:
    """In a process of its own: the emulator's weights file and the profiles as the driver reads
    them, in directory, and the eager energy budget (budget.npz) to compare the module with."""
    import export

    warnings.filterwarnings("ignore", message=".*outside the input domain")
    profiles = realistic_profiles(n, n_layers=50, seed=0, soil_and_zenith=True)
    emulator = load_emulator(model, profiles)
    export.export_fortran_weights(emulator, Path(directory) / export.WEIGHTS_FILE,
                                  None if model.startswith("untrained:") else model)
    with open(Path(directory) / "profiles.bin", "wb") as f:
        np.array(profiles["dz"].shape, dtype="<i4").tofile(f)
        for name in LAYER_VARIABLES:
            np.nan_to_num(profiles[name].astype("<f8"), nan=0.0).ravel(order="F").tofile(f)
        for name in MODEL_SCALARS:  # the driver passes soil_albedo and cos_zenith as keywords
            profiles[name].astype("<f8").tofile(f)
    budget = emulator.energy_budget(**profiles)
    np.savez(Path(directory) / "budget.npz", albedo=budget.albedo, absorbed=np.nan_to_num(budget.absorbed),
             soil=budget.soil)
    # the drop-in's: SNOWCRO_TARTES's arguments of packs of 20 to 49 layers, soil albedo and cos_zenith given
    packs = packs_by_layers(n, [])[MIXED]
    snowcro.write_input(Path(directory) / "snowcro.bin", snowcro.snowcro_state(**packs))
    budget = emulator.energy_budget(**packs)
    np.savez(Path(directory) / "snowcro_budget.npz", albedo=budget.albedo)
    return {"model": emulator.model_name}


def build_driver(directory: Path, flags: list[str]) -> Path:
    """fortran/tartes_emulator.f90 and its drivers (emulator_driver, returned, and snowcro_driver)
    compiled with gfortran and flags, in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in ("tartes_emulator.f90", "emulator_driver.f90", "snowcro_driver.f90"):
        subprocess.run(["gfortran", *flags, "-c", str(FORTRAN / source)], cwd=directory, check=True,
                       capture_output=True)
    for program in ("emulator_driver", "snowcro_driver"):
        subprocess.run(["gfortran", *flags, "tartes_emulator.o", f"{program}.o", "-o", program], cwd=directory,
                       check=True)
    return directory / "emulator_driver"


def time_fortran(driver: Path, directory: Path, threads: int, repeats: int) -> dict:
    """The driver's best wall-clock time at each batch size on OMP_NUM_THREADS=threads, and its
    largest difference to the eager energy budget."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    rates, n = [], None
    for batch in BATCH_SIZES:
        out = subprocess.run([str(driver), str(directory / "emulator_weights.txt"), str(directory / "profiles.bin"),
                              str(directory / "out.bin"), "time", str(repeats), str(batch)], env=environment,
                             capture_output=True, text=True, check=True).stdout
        values = dict(line.split()[:2] for line in out.splitlines())
        n = int(values["points"])
        rates.append(n / float(values["budget_seconds"]))
    eager = np.load(directory / "budget.npz")
    values = np.fromfile(directory / "out.bin", dtype="<f8")
    n_layers = eager["absorbed"].shape[1]
    fortran = {"albedo": values[:n], "soil": values[n:2 * n], "absorbed": values[2 * n:].reshape((n, n_layers), order="F")}
    difference = max(float(np.abs(fortran[k] - eager[k]).max()) for k in ("albedo", "absorbed", "soil"))
    return {"rates": rates, "difference": difference}


def time_snowcro(driver: Path, directory: Path, repeats: int) -> dict:
    """The drop-in's profiles per second on one thread, SNOWCRO_BATCHES points per call (the best
    of `repeats` passes), and its largest albedo difference to the eager energy budget."""
    out = subprocess.run([str(driver.parent / "snowcro_driver"), str(directory / "snowcro.bin"),
                          str(directory / "snowcro_out.bin"), "C13", SNOWCRO_BATCHES,
                          f"load={directory / 'emulator_weights.txt'}", f"time={repeats}"],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, check=True).stdout
    values = dict(line.split()[:2] for line in out.splitlines())
    eager = np.load(directory / "snowcro_budget.npz")
    albedo = np.fromfile(directory / "snowcro_out.bin", dtype="<f8")[:len(eager["albedo"])]
    return {"rate": int(values["points"]) / float(values["snowcro_seconds"]),
            "difference": float(np.abs(albedo - eager["albedo"]).max())}


def in_own_process(function, *args):
    """function(*args) in a fresh process, so that no engine runs beside another's threads."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def choose_default(model: str | None) -> tuple[str, str]:
    """(what to time as the default emulator, a sentence saying what it is)."""
    from utils.config import Config

    untrained = f"untrained:{Config().model}"
    path = model or DEFAULT_MODEL
    probed = in_own_process(probe, path) if Path(path).is_file() else {"error": "no such file"}
    if "error" not in probed:
        return path, f"the default emulator is {path} ({probed['model']})"
    if model is not None:
        sys.exit(f"benchmarks/inference.py: --model {model}: {probed['error']}")
    return untrained, (f"{DEFAULT_MODEL}: {probed['error']}; the default emulator is Config's {Config().model}, "
                       "untrained (its speed does not depend on its weights)")


def makefile_flags() -> str:
    """The flags of fortran/Makefile's default build (-O3 -march=native, and 512-bit vectors where the
    compiler knows the option)."""
    done = subprocess.run(["make", "-s", "-C", str(FORTRAN), "flags"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "-O3 -march=native"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help=f"the default emulator (default {DEFAULT_MODEL}, when it loads)")
    parser.add_argument("--profiles", type=int, default=4096)
    parser.add_argument("--tartes-profiles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch, numba and onnxruntime threads (0: defaults)")
    parser.add_argument("--models", nargs="*", default=["cnn_seed"], help="architectures timed besides the default")
    parser.add_argument("--fortran-flags", default=None,
                        help="gfortran flags of the Fortran module (default: the Makefile's, `make -C fortran "
                             "flags`; plain -O2 is timed too)")
    parser.add_argument("--no-fortran", action="store_true", help="leave the Fortran module out")
    parser.add_argument("--layers", type=int, nargs="*", default=[5, 10, 20, 30, 40, 50],
                        help="numbers of layers of the per-layer table (1 to 50)")
    parser.add_argument("--by-layers-only", action="store_true", help="print the per-layer table alone")
    args = parser.parse_args()
    if not all(1 <= k <= 50 for k in args.layers):
        parser.error(f"--layers: numbers of layers from 1 to 50, not {args.layers}")

    default, origin = choose_default(args.model)
    if args.by_layers_only:
        print(f"{os.cpu_count()} CPU cores; {origin}")
        print_by_layers(default, args.profiles, args.layers, args.repeats, args.threads)
        return
    emulators = {"default": default}
    emulators |= {name: f"untrained:{name}" for name in args.models if f"untrained:{name}" != default}

    labeller = in_own_process(time_labeller, args.profiles, args.tartes_profiles, args.repeats, args.threads)
    print(f"{args.profiles} realistic 50-layer profiles (preprocessing.profile_sampler.realistic_profiles, seed 0); {os.cpu_count()} CPU "
          f"cores; each engine in a process of its own; {labeller['setting']}; onnxruntime as torch; {origin}")
    rates, notes, sizes, budgets, default_budget, drop_in = {}, [], {}, {}, False, None
    for key, model in emulators.items():
        probed = in_own_process(time_emulator, model, "eager predict", 8, 1, args.threads)
        default_budget = default_budget or (key == "default" and probed["budget"])
        paths = (["eager energy_budget"] if probed["budget"] else []) + ["eager predict", "TorchScript", "ONNX Runtime"]
        for path in paths:
            result = in_own_process(time_emulator, model, path, args.profiles, args.repeats, args.threads)
            name = f"{key} {result['model']}" if key == "default" else result["model"]
            sizes[name] = (result["parameters"], result["macs"])
            label = f"{name} {path}" + ("" if result["budget"] and path != "eager predict" else " (albedo)")
            budgets[label] = result["budget"] and path != "eager predict"
            if "failure" in result:
                notes.append(f"{label}: export failed, {result['failure']}")
                continue
            rates[label] = result["rates"]
            if path == "eager predict" and result["outside"]:
                notes.append(f"{name}: {result['outside']}")
            if path != "eager energy_budget":
                against = ("the eager energy budget" if path == "eager predict" else "the model's torch form") \
                    if result["budget"] else "Emulator.predict"
                notes.append(f"{label}: max |outputs - {against}| = {result['difference']:.1e} "
                             f"on the {args.profiles} profiles")

    fortran_flags = shlex.split(args.fortran_flags if args.fortran_flags is not None else makefile_flags())
    if args.no_fortran:
        notes.append("Fortran module: left out (--no-fortran)")
    elif shutil.which("gfortran") is None:
        notes.append("Fortran module: gfortran not found (apt-get update && apt-get install -y gfortran)")
    elif not default_budget:
        notes.append("Fortran module: the default emulator gives the albedo only; the module needs an energy-budget "
                     "model")
    else:
        with tempfile.TemporaryDirectory() as directory:
            directory = Path(directory)
            in_own_process(prepare_fortran, default, args.profiles, str(directory))
            builds = {"-O2": (["-O2"], 1), " ".join(fortran_flags): (fortran_flags, 1),
                      " ".join(fortran_flags + ["-fopenmp"]): (fortran_flags + ["-fopenmp"], min(2, os.cpu_count()))}
            for index, (label, (flags, threads)) in enumerate(builds.items()):
                driver = build_driver(directory / f"build{index}", flags)
                result = time_fortran(driver, directory, threads, args.repeats)
                name = f"Fortran module, gfortran {label}, {threads} thread{'s' if threads > 1 else ''}"
                rates[name] = result["rates"]
                budgets[name] = True
                notes.append(f"{name}: max |outputs - the eager energy budget| = {result['difference']:.1e}")
                if flags == fortran_flags:
                    drop_in = time_snowcro(driver, directory, args.repeats) | {"flags": label}
            notes.append(f"drop-in tartes_emulator_snowcro_tartes: max |PSNOWALB - the eager albedo| = "
                         f"{drop_in['difference']:.1e}")
            version = subprocess.run(["gfortran", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
            notes.append(f"Fortran module: {version}; driver fortran/emulator_driver.f90, the time of "
                         "tartes_emulator_budget on the points of each batch in turn")

    # Timed again at the end, and its best kept: ratios are never flattered by a slow moment of the labeller.
    again = in_own_process(time_labeller, args.profiles, args.tartes_profiles, args.repeats, args.threads)
    labeller_rates = {k: list(np.maximum(v, again["rates"][k])) for k, v in labeller["rates"].items()}
    rates = {**labeller_rates, **rates}
    reference = rates[REFERENCE][-1]
    tartes_rate = max(labeller["tartes_rate"], again["tartes_rate"])
    notes.insert(0, f"tartes package (reference_energy_budget): {args.tartes_profiles} profiles one by one, "
                    f"{tartes_rate:.1f} profiles/s; labeller - tartes: {labeller['difference']:.1e}; labeller and "
                    f"tartes timed before and after the emulators, the faster kept (energy budget at batch 4096: "
                    f"{labeller['rates'][REFERENCE][-1]:,.0f} and {again['rates'][REFERENCE][-1]:,.0f}/s)")
    print(f"\n{'model':24} {'parameters':>12} {'MACs/profile':>14}")
    for name, (parameters, macs) in sizes.items():
        print(f"{name:24} {parameters:>12,} {macs:>14,}")
    print(f"\nprofiles per second, raw physical arrays to the energy budget (or the albedo, where said), best of "
          f"{args.repeats}; ratios at batch 4096 to the labeller's energy budget and to the tartes package")
    width = max(len(name) for name in rates) + 1
    print(f"{'path':{width}} " + " ".join(f"{'batch ' + str(b):>12}" for b in BATCH_SIZES)
          + f" {'/labeller':>10} {'/tartes':>10}")
    print(f"{'tartes package (one profile at a time)':{width}} {tartes_rate:>12,.1f}")
    for name, values in rates.items():
        print(f"{name:{width}} " + " ".join(f"{v:>12,.0f}" for v in values) +
              f" {values[-1] / reference:>9.2f}x {values[-1] / tartes_rate:>9,.0f}x")
    print()
    for note in notes:
        print(note)

    print(f"\nbars at batch 4096, against the labeller's energy budget ({reference:,.0f} profiles/s): an exported "
          f"model with the profile >= {BAR_LABELLER}x; the Fortran module on one core >= {BAR_FORTRAN}x (aim "
          f"{AIM_FORTRAN}x); and >= {BAR_TARTES:,}x the tartes package")
    for name, values in rates.items():
        ratio, to_tartes = values[-1] / reference, values[-1] / tartes_rate
        if name.startswith("default") and ("TorchScript" in name or "ONNX" in name):
            met = budgets[name] and ratio >= BAR_LABELLER and to_tartes >= BAR_TARTES
            print(f"{name}: {ratio:.2f}x the labeller, {to_tartes:,.0f}x tartes: {'met' if met else 'NOT met'}")
        elif name.startswith("Fortran") and name.endswith("1 thread"):
            verdict = "met, aim met" if ratio >= AIM_FORTRAN else "met, aim not met" if ratio >= BAR_FORTRAN \
                else "NOT met"
            print(f"{name}: {ratio:.2f}x the labeller: {verdict}")
    if drop_in is not None:
        low, high = (drop_in["rate"] / r for r in SURFEX_TARTES_RATE)
        verdict = "NOT met" if high < BAR_SNOWCRO else "met, goal met" if high >= AIM_SNOWCRO else "met, goal not met"
        print(f"\ndrop-in for Crocus, tartes_emulator_snowcro_tartes, gfortran {drop_in['flags']}, 1 thread, "
              f"{SNOWCRO_BATCHES} points per call on {args.profiles} realistic packs of 20-49 layers: "
              f"{drop_in['rate']:,.0f} profiles/s, {high:.0f}x-{low:.0f}x SURFEX's own TARTES (SNOWCRO_TARTES, same "
              f"flags, one core, one point per call on real 20-49-layer packs: {SURFEX_TARTES_RATE[0]:,}-"
              f"{SURFEX_TARTES_RATE[1]:,} profiles/s, measured outside this repository); bar {BAR_SNOWCRO}x (goal "
              f"{AIM_SNOWCRO}x) of the upper figure: {verdict}")
    print_by_layers(default, args.profiles, args.layers, args.repeats, args.threads)


if __name__ == "__main__":
    main()
