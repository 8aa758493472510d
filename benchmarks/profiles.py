"""Realistic 50-layer Crocus-like snow profiles for benchmarks.

Magnitudes of real Crocus 3.0 runs with TARTES (TARTES_LABELS.md): dz 0.053 +- 0.037 m,
SSA 14.7 +- 8.8 m2/kg, density 336 +- 123 kg/m3, heavy-tailed soot and dust, direct SW
188 +- 215 and diffuse SW 98 +- 60 W/m2, cos_sza 0.41 +- 0.25 (used here as the illumination cosine of flat ground). SSA falls and density rises
with depth, as snow ages downwards.
"""
import numpy as np


def realistic_profiles(n: int, n_layers: int = 50, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    depth_rank = np.linspace(0, 1, n_layers)[None, :]  # 0 at the surface, 1 at the bottom
    jitter = rng.normal(0, 0.25, (n, n_layers))
    surface_ssa = rng.lognormal(np.log(30), 0.5, (n, 1))
    ssa = np.clip(surface_ssa * np.exp(-1.6 * depth_rank + jitter), 2, 150)
    density = np.clip(rng.normal(150, 50, (n, 1)) + 300 * depth_rank + rng.normal(0, 40, (n, n_layers)), 50, 917)
    dz = np.clip(rng.lognormal(np.log(0.045), 0.6, (n, n_layers)), 0.002, 0.2)
    soot = rng.lognormal(np.log(2e-9), 1.5, (n, n_layers))
    dust = rng.lognormal(np.log(3e-7), 2.0, (n, n_layers)) * (rng.random((n, n_layers)) < 0.6)
    cos_illum = np.clip(rng.normal(0.41, 0.25, n), 0.02, 1.0)
    direct_sw = np.clip(rng.normal(188, 215, n), 0, None)
    diffuse_sw = np.clip(rng.normal(98, 60, n), 5, None)
    return dict(dz=dz, ssa=ssa, density=density, soot=soot, dust=dust, cos_illum=cos_illum,
                direct_sw=direct_sw, diffuse_sw=diffuse_sw)
