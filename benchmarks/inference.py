"""Profiles per second of the emulator (eager, TorchScript, ONNX Runtime), of the batched labeller and
of the tartes package, on the same realistic 50-layer profiles, from raw physical arrays to albedo.

    python benchmarks/inference.py [--model data/emulator.pt] [--profiles 4096] [--tartes-profiles 20]
                                   [--repeats 5] [--threads N] [--models cnn_seed ...]

Every path starts from the labeller's inputs (layer arrays (N, 50) with NaN where absent, and
cos_sza, direct_sw, diffuse_sw) and ends with the albedo, so the emulator's times include building
its input tensors and its features. Eager is `Emulator.predict` (with its input checks); TorchScript
and ONNX Runtime are the files of export.py, fed by `utils.features.layer_tensor`, what a caller of
the exported files does. Batch sizes 1, 64 and 4096; the fastest of --repeats runs is kept.

Bar (issue 7), at batch 4096 on the project's 2-core machine: the default emulator is >= 20x faster
than the batched labeller and >= 10,000x faster than the tartes package.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # busy-waiting OpenMP threads slow torch on shared cores

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import export  # noqa: E402
from benchmarks.profiles import realistic_profiles  # noqa: E402
from models import Emulator, build_model, count_macs, count_parameters  # noqa: E402
from preprocessing.shards import LAYER_VARIABLES  # noqa: E402
from preprocessing.tartes_labels import broadband_albedo, reference_broadband_albedo  # noqa: E402
from utils.config import Config  # noqa: E402
from utils.features import ILLUMINATION, fit_normalisation, input_domain, layer_tensor, outside_domain  # noqa: E402

BATCH_SIZES = (1, 64, 4096)
SINGLE_CALLS = 256  # profiles timed one call each at batch 1
BAR_LABELLER, BAR_TARTES = 20, 10_000


def model_inputs(profiles: dict) -> tuple[np.ndarray, np.ndarray]:
    """Raw physical arrays as the exported models take them: layers (N, 5, 50), illumination (N, 3)."""
    layers = layer_tensor(*(profiles[name] for name in LAYER_VARIABLES))
    return layers, np.stack([profiles[name] for name in ILLUMINATION], axis=1).astype(np.float32)


def untrained(name: str, settings: dict, profiles: dict) -> Emulator:
    """An emulator of the architecture with its initial weights, normalised on the profiles: the
    speed of a model does not depend on its weights."""
    torch.manual_seed(0)
    model, model_settings = build_model(name, settings)
    layers, illumination = model_inputs(profiles)
    fit_normalisation(model, [(layers, illumination)])
    domain = input_domain([(layers, layers[:, 0] > 0, illumination)])
    return Emulator(name, vars(model_settings), model.eval(), domain, {}, {})


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


def emulator_paths(emulator: Emulator, directory: Path, threads: int):
    """{path name: albedo_of(profiles)} for eager, TorchScript and ONNX Runtime, and export failures."""
    paths, failures = {"eager": lambda p: emulator.predict(**p, batch_size=4096)}, {}
    try:
        scripted = torch.jit.load(str(export.export_torchscript(emulator, directory / "model.ts")))

        def torchscript(p):
            layers, illumination = model_inputs(p)
            with torch.no_grad():
                return scripted(torch.from_numpy(layers), torch.from_numpy(illumination)).numpy()

        paths["TorchScript"] = torchscript
    except Exception as e:  # reported, not hidden: an emulator that cannot be exported is a finding
        failures["TorchScript"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    try:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(export.export_onnx(emulator, directory / "model.onnx")), options,
                                               providers=["CPUExecutionProvider"])

        def onnx_runtime(p):
            layers, illumination = model_inputs(p)
            return session.run(None, {"layers": layers, "illumination": illumination})[0]

        paths["ONNX Runtime"] = onnx_runtime
    except Exception as e:
        failures["ONNX Runtime"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    return paths, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="data/emulator.pt", help="the default emulator, when the file exists")
    parser.add_argument("--profiles", type=int, default=4096)
    parser.add_argument("--tartes-profiles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch, numba and onnxruntime threads (0: defaults)")
    parser.add_argument("--models", nargs="*", default=["cnn_seed"], help="architectures timed besides the default")
    args = parser.parse_args()
    # Counted once below rather than warned at every call.
    warnings.filterwarnings("ignore", message=".*outside the input domain")
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    profiles = realistic_profiles(args.profiles, n_layers=50, seed=0)
    model_file = Path(args.model)
    if model_file.is_file():
        default = Emulator.load(model_file, device="cpu")
        emulators = {f"default {default.model_name}": default}
        origin = f"the default emulator is {model_file}"
    else:
        config = Config()
        emulators = {f"default {config.model}": untrained(config.model, config.model_settings, profiles)}
        origin = f"no {model_file}: the default emulator is Config's {config.model}, untrained"
    for name in args.models:
        if not (name == Config().model and not Config().model_settings and not model_file.is_file()):
            emulators[name] = untrained(name, {}, profiles)  # the same model as the default otherwise

    print(f"{args.profiles} realistic 50-layer profiles (benchmarks/profiles.py, seed 0); {os.cpu_count()} CPU "
          f"cores; threads: torch {threads}, numba {numba.get_num_threads()}, onnxruntime {threads}; "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; torch {torch.__version__}; {origin}")
    print(f"\n{'model':24} {'parameters':>12} {'MACs/profile':>14}")
    for name, emulator in emulators.items():
        print(f"{name:24} {count_parameters(emulator.model):>12,} {count_macs(emulator.model):>14,}")

    rates, notes = {}, []
    broadband_albedo(**{k: v[:2] for k, v in profiles.items()})  # compile outside the timing
    rates["labeller (numba)"] = [rate(lambda p: broadband_albedo(**p), profiles, b, args.repeats) for b in BATCH_SIZES]
    few = {k: v[:args.tartes_profiles] for k, v in profiles.items()}
    start = time.perf_counter()
    exact = reference_broadband_albedo(**few)
    tartes_rate = args.tartes_profiles / (time.perf_counter() - start)
    notes.append(f"tartes package: {args.tartes_profiles} profiles one by one, {tartes_rate:.1f} profiles/s; "
                 f"labeller - tartes: {np.abs(broadband_albedo(**few) - exact).max():.1e}")

    with tempfile.TemporaryDirectory() as directory:
        for name, emulator in emulators.items():
            paths, failures = emulator_paths(emulator, Path(directory), threads)
            layers, illumination = model_inputs(profiles)
            outside, variables = outside_domain(emulator.domain, layers, layers[:, 0] > 0, illumination)
            if outside.any():
                notes.append(f"{name}: {outside.sum()} of {len(outside)} profiles outside its training domain "
                             f"({', '.join(variables)})")
            eager = paths["eager"](profiles)
            for path, albedo_of in paths.items():
                rates[f"{name} {path}"] = [rate(albedo_of, profiles, b, args.repeats) for b in BATCH_SIZES]
                if path != "eager":
                    notes.append(f"{name} {path}: max |exported - eager| = "
                                 f"{np.abs(albedo_of(profiles) - eager).max():.1e} on the {args.profiles} profiles")
            notes += [f"{name} {path}: export failed, {error}" for path, error in failures.items()]

    print(f"\nprofiles per second, raw physical arrays to albedo (best of {args.repeats}); "
          f"ratios at batch 4096 to the labeller and to the tartes package")
    print(f"{'path':40} " + " ".join(f"{'batch ' + str(b):>12}" for b in BATCH_SIZES) + f" {'/labeller':>10} {'/tartes':>10}")
    print(f"{'tartes package (one profile at a time)':40} {tartes_rate:>12,.1f}")
    labeller = rates["labeller (numba)"][-1]
    for name, values in rates.items():
        print(f"{name:40} " + " ".join(f"{v:>12,.0f}" for v in values) +
              f" {values[-1] / labeller:>9.2f}x {values[-1] / tartes_rate:>9,.0f}x")
    print()
    for note in notes:
        print(note)

    print(f"\nbar at batch 4096: >= {BAR_LABELLER}x the labeller and >= {BAR_TARTES:,}x the tartes package")
    for name, values in rates.items():
        if name.startswith("default"):
            to_labeller, to_tartes = values[-1] / labeller, values[-1] / tartes_rate
            met = to_labeller >= BAR_LABELLER and to_tartes >= BAR_TARTES
            print(f"{name}: {to_labeller:.2f}x the labeller, {to_tartes:,.0f}x tartes: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
