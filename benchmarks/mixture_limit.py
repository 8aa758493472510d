"""How well the mixture of optical_budget can follow the absorbed profile at best: for each test
sample, the non-negative combination of the mixture's distributions that fits the label's
absorbed fractions (layers and soil) in least squares, and its profile error (sum over the layers
and the soil of |error|), beside the model's own.

    python benchmarks/mixture_limit.py [--model data/emulator.pt] [--samples 20000] [--wavelengths 8]

The bases tried: the model's own (its wavelengths' diffuse distributions, the near infrared on
its top layers only, and its surface components), the same with 2 and 4 surface components, and
the diffuse distributions on all the layers of
--wavelengths wavelengths from 400 to 1500 nm with 4 surface components. When the best
combination of a basis leaves a profile error near the model's, the basis, not the network, is
the limit. Needs the data of the run (python main.py --data_only).
"""
import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dataset import ShardDataset  # noqa: E402
from features import TwoStreamOptics, crocus_rules, direct_fraction, variables_first  # noqa: E402
from main import splits_of  # noqa: E402
from models import Emulator  # noqa: E402
from utils.config import Config, config_from_dict  # noqa: E402
from utils.schema import DZ, N_LAYERS, SOIL_ALBEDO  # noqa: E402


def diffuse_distributions(optics: TwoStreamOptics, layers: torch.Tensor, scalars: torch.Tensor) -> np.ndarray:
    """(N, 51, W): where unit diffuse light is absorbed at each wavelength of optics, layers then soil."""
    with torch.no_grad():
        _, absorbed = optics.diffuse_budget(crocus_rules(variables_first(layers), scalars, dim=0)[0],
                                            scalars[:, SOIL_ALBEDO])
    return (absorbed / absorbed.sum(dim=1, keepdim=True)).permute(2, 1, 0).double().numpy()


def surface(n: int, n_surface: int) -> np.ndarray:
    """(N, 51, n_surface): all in layer 1, ..., all in layer n_surface."""
    return np.broadcast_to(np.eye(N_LAYERS + 1)[None, :, :n_surface], (n, N_LAYERS + 1, n_surface))


def best_fit_error(basis: np.ndarray, target: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(N,) profile error of each sample's best non-negative combination (least squares) of basis."""
    basis = basis * present[:, :, None]
    return np.array([np.abs(basis[i] @ nnls(basis[i], target[i])[0] - target[i]).sum() for i in range(len(target))])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="data/emulator.pt")
    parser.add_argument("--samples", type=int, default=20_000, help="test samples drawn (seed 0)")
    parser.add_argument("--wavelengths", type=int, default=8, help="wavelengths of the richest basis")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*outside the input domain")

    try:
        emulator = Emulator.load(args.model)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"benchmarks/mixture_limit.py: --model: {e}")
    model = emulator.model
    if not model.BUDGET:
        sys.exit(f"benchmarks/mixture_limit.py: {args.model}: {emulator.model_name} gives no absorbed profile")
    try:
        test = ShardDataset(splits_of(config_from_dict(emulator.config) if emulator.config else Config())["test"])
    except FileNotFoundError as e:
        sys.exit(f"benchmarks/mixture_limit.py: {e}: build the data first with `python main.py --data_only`")
    rows = np.sort(np.random.default_rng(0).choice(len(test), min(args.samples, len(test)), replace=False))
    batch = test[rows]
    layers, scalars = batch["layers"], batch["scalars"]
    with torch.no_grad():
        albedo, absorbed, soil = model(layers, scalars)
    target = np.concatenate([batch["absorbed"].double().numpy(), batch["soil"].double().numpy()[:, None]], axis=1)
    predicted = np.concatenate([absorbed.double().numpy(), soil.double().numpy()[:, None]], axis=1)
    present = np.concatenate([layers[:, DZ].numpy() > 0, np.ones((len(rows), 1), dtype=bool)], axis=1)
    direct = direct_fraction(crocus_rules(layers, scalars)[1]).numpy()  # of the light after Crocus's rules
    n = len(rows)

    own = diffuse_distributions(model.optics, layers, scalars)
    richer = diffuse_distributions(TwoStreamOptics(list(np.linspace(400.0, 1500.0, args.wavelengths).round(-1))),
                                   layers, scalars)
    errors = {"the model": np.abs(predicted - target).sum(axis=1)}
    for n_surface in sorted({model.n_surface, 2, 4}):
        errors[f"best fit, {own.shape[2]} wavelengths + {n_surface} surface"] = best_fit_error(
            np.concatenate([own, surface(n, n_surface)], axis=2), target, present)
    errors[f"best fit, {args.wavelengths} wavelengths + 4 surface"] = best_fit_error(
        np.concatenate([richer, surface(n, 4)], axis=2), target, present)

    mostly_diffuse = direct < 0.2
    print(f"{args.model} ({emulator.model_name}): profile error on {n} test samples (seed 0)")
    print(f"{'':42s} {'mean':>8s} {'median':>8s} {'p90':>8s} {'direct < 0.2':>13s}")
    for name, error in errors.items():
        print(f"{name:42s} {error.mean():8.5f} {np.median(error):8.5f} {np.percentile(error, 90):8.5f} "
              f"{error[mostly_diffuse].mean():13.5f}")


if __name__ == "__main__":
    main()
