"""Profiles per second of the emulator (eager, TorchScript, ONNX Runtime), of the batched labeller and
of the tartes package, on the same realistic 50-layer profiles, from raw physical arrays to albedo.

    python benchmarks/inference.py [--model data/emulator.pt] [--profiles 4096] [--tartes-profiles 20]
                                   [--repeats 10] [--threads N] [--models cnn_seed ...]

Every path starts from the labeller's inputs (layer arrays (N, 50) with NaN where absent, and
cos_sza, direct_sw, diffuse_sw) and ends with the albedo, so the emulator's times include building
its input tensors and its features. Eager is `Emulator.predict` (with its input checks); TorchScript
and ONNX Runtime are the files of export.py, fed by `utils.features.layer_tensor`, what a caller of
the exported files does. Batch sizes 1, 64 and 4096; the fastest of --repeats runs is kept. The
labeller and the tartes package are timed before and after the emulators, and the ratios use
their faster run: a slow moment of the machine never flatters the emulator.

Bar (issue 7), at batch 4096 on the project's 2-core machine: the default emulator is >= 20x faster
than the batched labeller and >= 10,000x faster than the tartes package.

Each engine is timed in a fresh process of its own, alone on the machine, and its threads wait
spinning between operations (OMP_WAIT_POLICY=ACTIVE unless set otherwise), as ONNX Runtime's
pool does by default: the labeller (numba's OpenMP layer) and torch (OpenMP) then run as they do
best. In one process, spinning threads left by one engine would steal the cores of the next;
sleeping OpenMP threads (PASSIVE, what main.py uses when training shares the cores with data
loading) cost each parallel operation a wake-up: run with OMP_WAIT_POLICY=PASSIVE to measure that.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")  # see above; inherited by the timing processes

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.profiles import realistic_profiles  # noqa: E402
from preprocessing.shards import LAYER_VARIABLES  # noqa: E402
from utils.features import ILLUMINATION, layer_tensor  # noqa: E402

BATCH_SIZES = (1, 64, 4096)
SINGLE_CALLS = 256  # profiles timed one call each at batch 1
BAR_LABELLER, BAR_TARTES = 20, 10_000
EMULATOR_PATHS = ("eager", "TorchScript", "ONNX Runtime")


def model_inputs(profiles: dict) -> tuple[np.ndarray, np.ndarray]:
    """Raw physical arrays as the exported models take them: layers (N, 5, 50), illumination (N, 3)."""
    layers = layer_tensor(*(profiles[name] for name in LAYER_VARIABLES))
    return layers, np.stack([profiles[name] for name in ILLUMINATION], axis=1).astype(np.float32)


def rate(albedo_of, profiles: dict, batch: int, repeats: int) -> float:
    """Profiles per second of albedo_of(profiles of one batch), the fastest of `repeats` runs over
    min(N, SINGLE_CALLS * batch) profiles, after one untimed warm-up call."""
    n = min(len(profiles["cos_sza"]), SINGLE_CALLS * batch)
    batches = [{k: v[start:start + batch] for k, v in profiles.items()} for start in range(0, n, batch)]
    albedo_of(batches[0])
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for inputs in batches:
            albedo_of(inputs)
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
    """In a process of its own: the labeller's rates, the tartes package's, their agreement."""
    import numba
    import torch

    from preprocessing.tartes_labels import broadband_albedo, reference_broadband_albedo

    set_threads(threads)
    profiles = realistic_profiles(n, n_layers=50, seed=0)
    rates = [rate(lambda p: broadband_albedo(**p), profiles, b, repeats) for b in BATCH_SIZES]
    setting = (f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()} "
               f"({numba.threading_layer()} layer); OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; "
               f"torch {torch.__version__}")
    few = {k: v[:tartes_profiles] for k, v in profiles.items()}
    start = time.perf_counter()
    exact = reference_broadband_albedo(**few)
    tartes_rate = tartes_profiles / (time.perf_counter() - start)
    return {"setting": setting, "rates": rates, "tartes_rate": tartes_rate,
            "difference": float(np.abs(broadband_albedo(**few) - exact).max())}


def load_emulator(model: str, profiles: dict):
    """The emulator file `model`, or for "untrained:<name>" the architecture with its initial
    weights, normalised on the profiles: the speed of a model does not depend on its weights."""
    import torch

    from models import Emulator, build_model
    from utils.features import fit_normalisation, input_domain

    if not model.startswith("untrained:"):
        return Emulator.load(model, device="cpu")
    name = model.removeprefix("untrained:")
    torch.manual_seed(0)
    network, settings = build_model(name)
    layers, illumination = model_inputs(profiles)
    fit_normalisation(network, [(layers, illumination)])
    domain = input_domain([(layers, layers[:, 0] > 0, illumination)])
    return Emulator(name, vars(settings), network.eval(), domain, {}, {})


def time_emulator(model: str, path: str, n: int, repeats: int, threads: int) -> dict:
    """In a process of its own: the rates of one way of running an emulator, its size, and for
    the exported files their largest difference to the eager model."""
    import torch

    import export
    from models import count_macs, count_parameters
    from utils.features import outside_domain

    set_threads(threads)
    engine_threads = torch.get_num_threads()
    if path == "ONNX Runtime":
        # torch only exports here: OpenMP threads it started would spin beside ONNX Runtime's
        torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*outside the input domain")  # counted below instead
    profiles = realistic_profiles(n, n_layers=50, seed=0)
    emulator = load_emulator(model, profiles)
    result = {"model": emulator.model_name, "parameters": count_parameters(emulator.model),
              "macs": count_macs(emulator.model)}
    layers, illumination = model_inputs(profiles)
    outside, variables = outside_domain(emulator.domain, layers, layers[:, 0] > 0, illumination)
    result["outside"] = f"{outside.sum()} of {len(outside)} profiles outside its training domain " \
                        f"({', '.join(variables)})" if outside.any() else ""
    eager = emulator.predict(**profiles)
    with tempfile.TemporaryDirectory() as directory:
        try:
            if path == "eager":
                def albedo_of(p):
                    return emulator.predict(**p, batch_size=4096)
            elif path == "TorchScript":
                scripted = torch.jit.load(str(export.export_torchscript(emulator, Path(directory) / "model.ts")))

                def albedo_of(p):
                    layers, illumination = model_inputs(p)
                    with torch.no_grad():
                        return scripted(torch.from_numpy(layers), torch.from_numpy(illumination)).numpy()
            else:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = engine_threads, 1
                session = onnxruntime.InferenceSession(
                    str(export.export_onnx(emulator, Path(directory) / "model.onnx")), options,
                    providers=["CPUExecutionProvider"])

                def albedo_of(p):
                    layers, illumination = model_inputs(p)
                    return session.run(None, {"layers": layers, "illumination": illumination})[0]
        except Exception as e:  # reported, not hidden: an emulator that cannot be exported is a finding
            result["failure"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            return result
        result["rates"] = [rate(albedo_of, profiles, b, repeats) for b in BATCH_SIZES]
        result["difference"] = float(np.abs(albedo_of(profiles) - eager).max())
    return result


def in_own_process(function, *args):
    """function(*args) in a fresh process, so that no engine runs beside another's threads."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="data/emulator.pt", help="the default emulator, when the file exists")
    parser.add_argument("--profiles", type=int, default=4096)
    parser.add_argument("--tartes-profiles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch, numba and onnxruntime threads (0: defaults)")
    parser.add_argument("--models", nargs="*", default=["cnn_seed"], help="architectures timed besides the default")
    args = parser.parse_args()

    from utils.config import Config

    if Path(args.model).is_file():
        emulators = {"default": args.model}
        origin = f"the default emulator is {args.model}"
    else:
        emulators = {"default": f"untrained:{Config().model}"}
        origin = f"no {args.model}: the default emulator is Config's {Config().model}, untrained"
    emulators |= {name: f"untrained:{name}" for name in args.models if f"untrained:{name}" != emulators["default"]}

    labeller = in_own_process(time_labeller, args.profiles, args.tartes_profiles, args.repeats, args.threads)
    print(f"{args.profiles} realistic 50-layer profiles (benchmarks/profiles.py, seed 0); {os.cpu_count()} CPU "
          f"cores; each engine in a process of its own; {labeller['setting']}; onnxruntime as torch; {origin}")
    rates, notes, sizes = {}, [], {}
    for key, model in emulators.items():
        for path in EMULATOR_PATHS:
            result = in_own_process(time_emulator, model, path, args.profiles, args.repeats, args.threads)
            name = f"{key} {result['model']}" if key == "default" else result["model"]
            sizes[name] = (result["parameters"], result["macs"])
            if "failure" in result:
                notes.append(f"{name} {path}: export failed, {result['failure']}")
                continue
            rates[f"{name} {path}"] = result["rates"]
            if path == "eager" and result["outside"]:
                notes.append(f"{name}: {result['outside']}")
            if path != "eager":
                notes.append(f"{name} {path}: max |exported - eager| = {result['difference']:.1e} "
                             f"on the {args.profiles} profiles")

    # Timed again at the end, and its best kept: ratios are never flattered by a slow moment of the labeller.
    again = in_own_process(time_labeller, args.profiles, args.tartes_profiles, args.repeats, args.threads)
    rates = {"labeller (numba)": list(np.maximum(labeller["rates"], again["rates"])), **rates}
    tartes_rate = max(labeller["tartes_rate"], again["tartes_rate"])
    notes.insert(0, f"tartes package: {args.tartes_profiles} profiles one by one, {tartes_rate:.1f} profiles/s; "
                f"labeller - tartes: {labeller['difference']:.1e}; labeller and tartes timed before and after the "
                f"emulators, the faster kept (batch 4096: {labeller['rates'][-1]:,.0f} and {again['rates'][-1]:,.0f}/s)")
    print(f"\n{'model':24} {'parameters':>12} {'MACs/profile':>14}")
    for name, (parameters, macs) in sizes.items():
        print(f"{name:24} {parameters:>12,} {macs:>14,}")
    print(f"\nprofiles per second, raw physical arrays to albedo (best of {args.repeats}); "
          f"ratios at batch 4096 to the labeller and to the tartes package")
    print(f"{'path':40} " + " ".join(f"{'batch ' + str(b):>12}" for b in BATCH_SIZES) + f" {'/labeller':>10} {'/tartes':>10}")
    print(f"{'tartes package (one profile at a time)':40} {tartes_rate:>12,.1f}")
    for name, values in rates.items():
        print(f"{name:40} " + " ".join(f"{v:>12,.0f}" for v in values) +
              f" {values[-1] / rates['labeller (numba)'][-1]:>9.2f}x {values[-1] / tartes_rate:>9,.0f}x")
    print()
    for note in notes:
        print(note)

    print(f"\nbar at batch 4096: >= {BAR_LABELLER}x the labeller and >= {BAR_TARTES:,}x the tartes package")
    for name, values in rates.items():
        if name.startswith("default"):
            to_labeller, to_tartes = values[-1] / rates["labeller (numba)"][-1], values[-1] / tartes_rate
            met = to_labeller >= BAR_LABELLER and to_tartes >= BAR_TARTES
            print(f"{name}: {to_labeller:.2f}x the labeller, {to_tartes:,.0f}x tartes: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
