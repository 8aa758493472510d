"""Model inputs from physical profiles: the one place where features are defined.

Both the training data path (dataset.py, rows of the shards) and `Emulator.predict` (arrays in
physical units) go through `profile_features`, so the two cannot diverge.

Per layer (6 channels, absent layers 0):
    mask, log(dz), log(ssa), density, log(soot + SOOT_FLOOR), log(dust + DUST_FLOOR)
  z-scored with statistics of the present layers of the training seasons. Logs where the physics is
  multiplicative: optical depth and scattering scale with dz and ssa, and impurities span many
  orders of magnitude with many exact zeros (the floors sit below any visible effect on albedo).
Per profile (4 scalars, the predecessor's four slots):
    direct fraction, cos_sza, effective cos_sza, snow depth capped at 1 m
  The label depends on the fluxes only through the direct fraction DIR / (DIR + DIF), and Crocus
  treats diffuse light as a direct beam at cos = 0.6018: the effective cos_sza,
  f cos_sza + (1 - f) 0.6018, is the illumination mixture the pack sees. Snow depth is the sum of
  the layer thicknesses; below 1 m of snow the soil no longer shows in the albedo.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from preprocessing.shards import N_LAYERS

SOOT_FLOOR = 1e-10  # kg kg-1
DUST_FLOOR = 1e-8  # kg kg-1; dust absorbs some 50 to 100 times less than soot per unit mass
DIFFUSE_COS_SZA = 0.6018  # Crocus' diffuse light: a direct beam at 53 degrees
DEPTH_CAP = 1.0  # m
PROFILE_CHANNELS = ("mask", "log_dz", "log_ssa", "density", "log_soot", "log_dust")
SCALAR_FEATURES = ("direct_fraction", "cos_sza", "effective_cos_sza", "snow_depth_capped")


def raw_features(layers: np.ndarray, mask: np.ndarray, direct_sw, diffuse_sw, cos_sza) -> tuple[np.ndarray, np.ndarray]:
    """Un-normalised features, float64: profile (N, 5, 50) transformed layer variables (0 where
    absent) and scalars (N, 4).

    layers: (N, 5, 50) dz, ssa, density, soot, dust in physical units, any value where absent;
    mask: (N, 50) bool, layer present.
    """
    layers = np.asarray(layers, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    # Absent layers get a harmless stand-in of 1 so the logs stay finite; they are zeroed below.
    safe = np.where(mask[:, None, :], layers, 1.0)
    dz, ssa, density, soot, dust = (safe[:, i] for i in range(5))
    profile = np.stack([np.log(dz), np.log(ssa), density, np.log(soot + SOOT_FLOOR), np.log(dust + DUST_FLOOR)], axis=1)
    profile *= mask[:, None, :]

    direct_sw = np.asarray(direct_sw, dtype=np.float64)
    diffuse_sw = np.asarray(diffuse_sw, dtype=np.float64)
    cos_sza = np.asarray(cos_sza, dtype=np.float64)
    direct_fraction = direct_sw / (direct_sw + diffuse_sw)
    effective_cos_sza = direct_fraction * cos_sza + (1.0 - direct_fraction) * DIFFUSE_COS_SZA
    depth = np.minimum(np.where(mask, layers[:, 0], 0.0).sum(axis=1), DEPTH_CAP)
    scalars = np.stack([direct_fraction, cos_sza, effective_cos_sza, depth], axis=1)
    return profile, scalars


@dataclass
class Normalisation:
    """Means and standard deviations of the features on the training seasons."""

    profile_mean: list[float]  # 5 layer features (the mask channel is left as 0/1)
    profile_std: list[float]
    scalar_mean: list[float]
    scalar_std: list[float]
    # [min, max] of each physical input over the training seasons: where the emulator has seen data.
    domain: dict[str, list[float]]

    def inputs(self, layers: np.ndarray, mask: np.ndarray, direct_sw, diffuse_sw, cos_sza) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs, float32, of physical rows (arguments as in `raw_features`): profile
        (N, 6, 50) with the mask first, scalars (N, 4)."""
        profile, scalars = raw_features(layers, mask, direct_sw, diffuse_sw, cos_sza)
        mean = np.asarray(self.profile_mean)[None, :, None]
        std = np.asarray(self.profile_std)[None, :, None]
        normalised = (profile - mean) / std * mask[:, None, :]
        out = np.concatenate([mask[:, None, :].astype(np.float64), normalised], axis=1)
        scalars = (scalars - np.asarray(self.scalar_mean)) / np.asarray(self.scalar_std)
        return out.astype(np.float32), scalars.astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Normalisation":
        return cls(**values)


DOMAIN_VARIABLES = ("dz", "ssa", "density", "soot", "dust", "direct_sw", "diffuse_sw", "cos_sza", "snow_depth")


class NormalisationFit:
    """Streaming sums for `Normalisation`: feed physical rows chunk by chunk, then `result()`."""

    def __init__(self):
        self.layer_sum = np.zeros(5)
        self.layer_sq = np.zeros(5)
        self.n_layers = 0
        self.scalar_sum = np.zeros(len(SCALAR_FEATURES))
        self.scalar_sq = np.zeros(len(SCALAR_FEATURES))
        self.n_profiles = 0
        self.domain = {name: [np.inf, -np.inf] for name in DOMAIN_VARIABLES}

    def add(self, layers: np.ndarray, mask: np.ndarray, direct_sw, diffuse_sw, cos_sza) -> None:
        """layers (n, 5, 50), mask (n, 50), scalars (n,) in physical units, as in `raw_features`."""
        profile, scalars = raw_features(layers, mask, direct_sw, diffuse_sw, cos_sza)
        present = profile.transpose(0, 2, 1)[mask]  # (n_present_layers, 5)
        self.layer_sum += present.sum(axis=0)
        self.layer_sq += (present**2).sum(axis=0)
        self.n_layers += len(present)
        self.scalar_sum += scalars.sum(axis=0)
        self.scalar_sq += (scalars**2).sum(axis=0)
        self.n_profiles += len(scalars)
        physical = np.asarray(layers).transpose(0, 2, 1)[mask]
        depth = np.where(mask, layers[:, 0], 0.0).sum(axis=1)
        columns = [*physical.T, direct_sw, diffuse_sw, cos_sza, depth]
        for name, values in zip(DOMAIN_VARIABLES, columns):
            low, high = self.domain[name]
            self.domain[name] = [min(low, float(np.min(values))), max(high, float(np.max(values)))]

    def result(self) -> Normalisation:
        if self.n_profiles == 0 or self.n_layers == 0:
            raise ValueError("cannot fit the normalisation: no training profile")

        def moments(total, squares, n):
            mean = total / n
            std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
            # A constant feature (say no dust anywhere) is centred, not scaled.
            return mean.tolist(), np.where(std > 1e-6, std, 1.0).tolist()

        profile_mean, profile_std = moments(self.layer_sum, self.layer_sq, self.n_layers)
        scalar_mean, scalar_std = moments(self.scalar_sum, self.scalar_sq, self.n_profiles)
        return Normalisation(profile_mean, profile_std, scalar_mean, scalar_std, self.domain)


def pad_layers(dz, ssa, density, soot, dust) -> tuple[np.ndarray, np.ndarray]:
    """Layer arrays (N, L <= 50), NaN where absent, into the shard layout: layers (N, 5, 50) with
    absent layers 0, and mask (N, 50)."""
    stacked = np.stack([np.asarray(a, dtype=np.float64) for a in (dz, ssa, density, soot, dust)], axis=1)
    n, _, n_layers = stacked.shape
    mask = np.zeros((n, N_LAYERS), dtype=bool)
    mask[:, :n_layers] = ~np.isnan(stacked[:, 0])
    layers = np.zeros((n, 5, N_LAYERS))
    layers[:, :, :n_layers] = np.where(mask[:, None, :n_layers], stacked, 0.0)
    return layers, mask
