"""Model inputs from raw physical tensors: the pieces every architecture builds its features from.

Every model in models.py takes the physical inputs themselves, so that a saved or exported model
needs nothing else:

    layers        (B, 5, 50) float32  dz (m), ssa (m2 kg-1), density (kg m-3), soot and dust
                                      (kg kg-1), top layer first, 0 where there is no layer
    illumination  (B, 3) float32      cos_sza (-), direct_sw and diffuse_sw (W m-2)

A layer is present where dz > 0. Features and their normalisation live inside the models
(`Standardise` holds its statistics as buffers, saved with the weights), so the training data path,
`Emulator.predict` and the exported TorchScript and ONNX files compute them with the same code.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from preprocessing.shards import LAYER_VARIABLES, N_LAYERS
from preprocessing.tartes_labels import BANDS, SOIL_ALBEDO, TAU_LAYER_MAX

ILLUMINATION = ("cos_sza", "direct_sw", "diffuse_sw")
DZ, SSA, DENSITY, SOOT, DUST = range(len(LAYER_VARIABLES))
COS_SZA, DIRECT_SW, DIFFUSE_SW = range(len(ILLUMINATION))
SOOT_FLOOR = 1e-10  # kg kg-1, below any visible effect on albedo: log(soot + floor) is finite at 0
DUST_FLOOR = 1e-8  # kg kg-1; dust absorbs about 50 times less than soot per unit mass
DIFFUSE_COS_SZA = 0.6018  # Crocus treats diffuse light as a direct beam at 53 degrees
DEPTH_CAP = 1.0  # m: below 1 m of snow the soil no longer shows in the albedo


def expm1(x: torch.Tensor) -> torch.Tensor:
    """exp(x) - 1, accurate near 0, from operations ONNX has (it has no Expm1): 2 t / (1 - t) with
    t = tanh(x / 2); relative error about 2e-7 in float32."""
    t = torch.tanh(0.5 * x)
    return 2 * t / (1 - t)


def layer_mask(layers: torch.Tensor) -> torch.Tensor:
    """(B, 50) bool: layer present."""
    return layers[:, DZ] > 0


def direct_fraction(illumination: torch.Tensor) -> torch.Tensor:
    """DIR / (DIR + DIF): the label depends on the fluxes only through it."""
    return illumination[:, DIRECT_SW] / (illumination[:, DIRECT_SW] + illumination[:, DIFFUSE_SW])


def snow_depth(layers: torch.Tensor) -> torch.Tensor:
    return layers[:, DZ].sum(dim=1)


def log_layer_variables(layers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 5, 50): log dz, log ssa, density, log(soot + floor), log(dust + floor); 0 where absent.

    Logs where the physics is multiplicative: optical depth and scattering scale with dz and ssa,
    and impurities span orders of magnitude with many exact zeros.
    """
    present = mask[:, None, :]
    safe = torch.where(present, layers, torch.ones_like(layers))
    features = torch.stack([
        torch.log(safe[:, DZ]), torch.log(safe[:, SSA]), safe[:, DENSITY],
        torch.log(safe[:, SOOT] + SOOT_FLOOR), torch.log(safe[:, DUST] + DUST_FLOOR),
    ], dim=1)
    return features * present


class Standardise(nn.Module):
    """z-scores of features along dim 1, with means and deviations fitted on the training data.

    Inputs (B, C), or (B, C, L) with a (B, L) mask of the entries that count (absent layers are
    neither counted in the fit nor changed from 0). `fit_normalisation` streams the training data
    through the model once to set the statistics; they are buffers, saved with the weights.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.sums: list[np.ndarray] | None = None  # count, sum, sum of squares while fitting

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 2:
            if self.sums is not None:
                self._accumulate(x.detach().double())
            return (x - self.mean) / self.std
        if self.sums is not None:
            self._accumulate(x.detach().double().transpose(1, 2)[mask])
        return (x - self.mean[:, None]) / self.std[:, None] * mask[:, None, :]

    def _accumulate(self, rows: torch.Tensor) -> None:
        rows = rows.cpu().numpy()
        self.sums[0] += len(rows)
        self.sums[1] += rows.sum(axis=0)
        self.sums[2] += (rows ** 2).sum(axis=0)

    def start_fit(self) -> None:
        n = len(self.mean)
        self.sums = [np.zeros(1), np.zeros(n), np.zeros(n)]

    def end_fit(self) -> None:
        count, total, squares = self.sums
        self.sums = None
        if count[0] == 0:
            raise ValueError("cannot fit the normalisation: no training profile")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
        # A constant feature (say no dust anywhere) is centred, not scaled.
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype))


def fit_normalisation(model: nn.Module, batches) -> None:
    """Set the statistics of every `Standardise` in model from batches of (layers, illumination)."""
    standardisers = [m for m in model.modules() if isinstance(m, Standardise)]
    device = next(model.buffers()).device
    for standardiser in standardisers:
        standardiser.start_fit()
    try:
        with torch.no_grad():
            for layers, illumination in batches:
                model(torch.as_tensor(layers, device=device), torch.as_tensor(illumination, device=device))
    except BaseException:
        for standardiser in standardisers:
            standardiser.sums = None
        raise
    for standardiser in standardisers:
        standardiser.end_fit()


def layer_tensor(dz, ssa, density, soot, dust) -> np.ndarray:
    """Labeller-style layer arrays (N, L <= 50), NaN where absent, as model layers (N, 5, 50) float32."""
    stacked = np.stack([np.asarray(a, dtype=np.float64) for a in (dz, ssa, density, soot, dust)], axis=1)
    n, _, n_layers = stacked.shape
    layers = np.zeros((n, len(LAYER_VARIABLES), N_LAYERS), dtype=np.float32)
    layers[:, :, :n_layers] = np.nan_to_num(stacked, nan=0.0)
    return layers


# The input domain of a model: [min, max] of each physical input over its training data.
DOMAIN_VARIABLES = (*LAYER_VARIABLES, "snow_depth", "cos_sza", "direct_fraction")


def profile_columns(layers: np.ndarray, mask: np.ndarray, illumination: np.ndarray) -> dict[str, np.ndarray]:
    """The per-profile variables of DOMAIN_VARIABLES in a batch: snow depth, cos_sza, direct fraction."""
    cos_sza, direct_sw, diffuse_sw = illumination.T
    return {"snow_depth": np.where(mask, layers[:, DZ], 0.0).sum(axis=1), "cos_sza": cos_sza,
            "direct_fraction": direct_sw / (direct_sw + diffuse_sw)}


def domain_columns(layers: np.ndarray, mask: np.ndarray, illumination: np.ndarray) -> dict[str, np.ndarray]:
    """Per variable of DOMAIN_VARIABLES, its values in a batch (present layers only for layers)."""
    present = layers.transpose(0, 2, 1)[mask]
    return {**{name: present[:, i] for i, name in enumerate(LAYER_VARIABLES)},
            **profile_columns(layers, mask, illumination)}


def input_domain(batches) -> dict[str, list[float]]:
    """[min, max] of each DOMAIN_VARIABLES over batches of (layers, mask, illumination) arrays."""
    domain = {name: [np.inf, -np.inf] for name in DOMAIN_VARIABLES}
    for layers, mask, illumination in batches:
        for name, values in domain_columns(layers, mask, illumination).items():
            if len(values):
                domain[name] = [min(domain[name][0], float(values.min())), max(domain[name][1], float(values.max()))]
    return domain


def outside_domain(domain: dict[str, list[float]], layers: np.ndarray, mask: np.ndarray,
                   illumination: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N,) bool: rows with any input outside `domain`, and the variables concerned."""
    # Fast path, one pass over the layers: the batch's own range inside the domain settles it.
    present = mask[:, None, :]
    layer_low = np.where(present, layers, np.inf).min(axis=(0, 2), initial=np.inf)
    layer_high = np.where(present, layers, -np.inf).max(axis=(0, 2), initial=-np.inf)
    scalars = profile_columns(layers, mask, illumination)
    inside = all(domain[name][0] <= low and high <= domain[name][1]
                 for name, low, high in zip(LAYER_VARIABLES, layer_low, layer_high))
    inside = inside and all(domain[name][0] <= values.min(initial=np.inf) and values.max(initial=-np.inf) <= domain[name][1]
                            for name, values in scalars.items())
    if inside:
        return np.zeros(len(layers), dtype=bool), []
    outside = np.zeros(len(layers), dtype=bool)
    variables = []
    for name, values in domain_columns(layers, mask, illumination).items():
        low, high = domain[name]
        bad = (values < low) | (values > high)
        if name in LAYER_VARIABLES:  # per present layer: back to rows
            bad_layers = np.zeros(mask.shape, dtype=bool)
            bad_layers[mask] = bad
            bad = bad_layers.any(axis=1)
        if bad.any():
            variables.append(name)
            outside |= bad
    return outside, variables


class LayerOptics(nn.Module):
    """Per-layer optics of the top `n_top` layers at a few wavelengths, with the labeller's formulas.

    For each layer and wavelength, from TARTES (tartes.single_scattering_optical_parameters and
    the delta-Eddington functions, as in preprocessing/tartes_labels.py):
      - log(1 - r): r, the albedo of a semi-infinite layer of that snow (grain size and impurities);
      - the diffuse transmission exp(-tau_above) of everything above the layer (how much light
        reaches it), tau = ke * delta-Eddington optical depth;
      - the layer's opacity 1 - exp(-tau_layer).
    Below the last layer lies the soil: absent layers have r = 0.2 and opacity 1. Computed in
    co-albedos: 1 - omega is ~1e-7 in the visible, lost in float32 otherwise.
    Output (B, n_top * len(wavelengths) * 3).
    """

    N_FEATURES = 3
    # Multiply-like operations per layer and wavelength (divisions, exp, log and sqrt counted as
    # one each): for the models' multiply-accumulate counts.
    OPERATIONS = 45

    def __init__(self, wavelengths_nm: list[float], n_top: int):
        super().__init__()
        self.n_top = n_top
        self.soil_albedo = SOIL_ALBEDO
        self.tau_layer_max = TAU_LAYER_MAX
        wavelength = np.asarray(wavelengths_nm, dtype=np.float64) * 1e-9
        # the band constants at the requested wavelengths, interpolated in the 20 nm band table
        keys = ("c_times_ssa", "ginf", "g00", "y", "W", "phi", "mae_soot", "mae_dust")
        table = np.stack([np.interp(wavelength, BANDS["wavelength"], BANDS[k]) for k in keys])
        self.register_buffer("bands", torch.tensor(table, dtype=torch.float32))

    @property
    def n_outputs(self) -> int:
        return self.n_top * self.bands.shape[1] * self.N_FEATURES

    @property
    def operations(self) -> int:
        return self.n_top * self.bands.shape[1] * self.OPERATIONS

    def layer_optics(self, layers: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
        """Delta-Eddington optics of the top n layers, each (B, n, W): present (bool), r (albedo of
        a semi-infinite layer), ke and tau* (optical depth, capped as tartes caps it)."""
        top = layers[:, :, :n, None]  # (B, 5, n, 1): broadcast over wavelengths
        present = top[:, DZ] > 0
        dz, density, soot, dust = top[:, DZ], top[:, DENSITY], top[:, SOOT], top[:, DUST]
        ssa = torch.where(present, top[:, SSA], torch.ones_like(top[:, SSA]))
        c_times_ssa, ginf, g00, y, W, phi, mae_soot, mae_dust = self.bands.unbind(0)
        c = c_times_ssa / ssa
        g = ginf - (ginf - g00) * torch.exp(-y * c)
        coalbedo = -0.5 * (1 - W) * expm1(-c * phi) + 2 / ssa * (mae_soot * soot + mae_dust * dust)
        g2 = g * g
        coalbedo_star = coalbedo / (1 - g2 + g2 * coalbedo)
        g_star = g / (1 + g)
        gamma1 = 0.25 * (3 - 3 * g_star + coalbedo_star * (4 + 3 * g_star))
        gamma2_free = -0.25 * (1 - (1 - coalbedo_star) * (4 - 3 * g_star))
        gamma2 = torch.clamp(gamma2_free, min=1e-4)
        # gamma1 - gamma2 is 2 (1 - omega*) unless gamma2 is clamped
        difference = torch.where(gamma2_free < 1e-4, gamma1 - gamma2, 2 * coalbedo_star)
        ke = torch.sqrt(difference * (gamma1 + gamma2))
        r = gamma2 / (gamma1 + ke)
        tau_star = density * ssa / 2 * dz * (1 - g2 + g2 * coalbedo)
        tau_star = torch.minimum(tau_star, self.tau_layer_max / ke) * present
        return present, r, ke, tau_star

    def features(self, present: torch.Tensor, r: torch.Tensor, ke: torch.Tensor, tau_star: torch.Tensor) -> torch.Tensor:
        """The features of the layers whose `layer_optics` are given: (B, n * W * 3)."""
        tau = ke * tau_star
        log_coalbedo = torch.log(torch.where(present, 1 - r, torch.full_like(r, 1 - self.soil_albedo)))
        reach = torch.exp(-(torch.cumsum(tau, dim=1) - tau))
        opacity = torch.where(present, -expm1(-tau), torch.ones_like(tau))
        return torch.stack([log_coalbedo, reach, opacity], dim=-1).flatten(1)

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        return self.features(*self.layer_optics(layers, self.n_top))


class StackReflectance(nn.Module):
    """Diffuse reflectance R of the stack of the top `n_top` layers over what lies below, at a few
    wavelengths: (B, W).

    The homogeneous part of the labeller's bottom-up two-stream sweep (preprocessing/tartes_labels.py):
    through a layer of semi-infinite albedo r and diffuse transmission f = exp(-ke tau*),
        a = (R - r) / (1/r - R),   R' = (r + f^2 a / r) / (1 + f^2 a).
    Below a pack deeper than n_top layers continues as a semi-infinite medium of its layer
    n_top + 1; a shallower pack lies on the soil (albedo 0.2). It carries the layering, the
    impurities and the soil into one number per wavelength, for a few operations per layer; the
    network adds the dependence on the sun, cheaper to learn than to compute. Used as
    `sweep(*layer_optics(layers))`, so that a model can share the optics with other features.
    """

    # Multiply-like operations per layer and wavelength: the optics, then the sweep.
    OPERATIONS = LayerOptics.OPERATIONS + 12

    def __init__(self, wavelengths_nm: list[float], n_top: int):
        super().__init__()
        self.optics = LayerOptics(wavelengths_nm, n_top + 1)
        self.n_top = n_top

    @property
    def n_outputs(self) -> int:
        return self.optics.bands.shape[1]

    @property
    def operations(self) -> int:
        return (self.n_top + 1) * self.optics.bands.shape[1] * self.OPERATIONS

    def layer_optics(self, layers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`LayerOptics.layer_optics` of the top n_top + 1 layers (one absent layer padded below, so
        that layer n_top + 1 exists even when n_top covers every layer)."""
        return self.optics.layer_optics(nn.functional.pad(layers[:, :, :self.n_top + 1], (0, 1)), self.n_top + 1)

    def sweep(self, present: torch.Tensor, r: torch.Tensor, ke: torch.Tensor, tau_star: torch.Tensor) -> torch.Tensor:
        """R (B, W) from the optics of the top n_top + 1 layers."""
        R = torch.where(present[:, self.n_top], r[:, self.n_top], torch.full_like(r[:, self.n_top], SOIL_ALBEDO))
        transmission = torch.exp(-2 * ke * tau_star)  # f^2
        for k in range(self.n_top - 1, -1, -1):
            rk = r[:, k]
            ffa = transmission[:, k] * (R - rk) / (1 / rk - R)
            # absent layers (below the pack) leave the bottom as it is
            R = torch.where(present[:, k], (rk + ffa / rk) / (1 + ffa), R)
        return R
