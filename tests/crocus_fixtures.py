"""Tiny hand-made Crocus PRO + SAFRAN FORCING files for the preprocessing tests.

`make_pair` builds the two datasets in memory (so a test can break them on purpose),
`write_pair` lays them out as users do: <root>/<region>/PRO/PRO_<season>.nc and
<root>/<region>/FORCING/FORCING_<season>.nc, with SURFEX's fill values.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from utils.schema import N_LAYERS
from utils.solar import crocus_light, solar_angles

SEASON = "2011011006_2011011306"
PRO_FILL = 1e20
FORCING_FILL = -9999999.0


def make_pair(points: int = 3, hours: int = 72, seed: int = 0, patches: int = 1, layers: int = N_LAYERS,
              shuffle_dims: bool = False) -> tuple[xr.Dataset, xr.Dataset]:
    """A PRO and a FORCING dataset over a few winter days at Mont-Blanc-like points.

    The FORCING spans `hours` + 1 hourly stamps; the PRO starts one hour later and ends five
    hours earlier, so only their intersection may be used. Point 0 has snow from day 2 on,
    the last point never has snow, the others always do. A daylight step of point 1 has no
    radiation (not a sample) and radiation falls on it while the sun is below the horizon (a
    sample: Crocus caps the zenith angle and calls TARTES). Each point has its soil albedo ALB_SOIL
    (0.1, 0.2, ...) in both files. `layers` is the size of the layer dimension (Crocus'
    maximum number of layers), of which at most 6 are filled. With `shuffle_dims`, every variable is stored in
    a non-default dimension order; with `patches` > 1, patches after the first hold junk.
    """
    rng = np.random.default_rng(seed)
    forcing_times = pd.date_range("2011-01-10 06:00", periods=hours + 1, freq="h")
    pro_times = forcing_times[1:-5]
    lat = np.full(points, 45.9) + 0.01 * np.arange(points)
    lon = np.full(points, 6.8) + 0.02 * np.arange(points)
    zs = 1800.0 + 300.0 * np.arange(points)

    zenith, _ = solar_angles(forcing_times - pd.Timedelta(minutes=30), lat, lon)  # SAFRAN's hourly means
    mu = np.maximum(np.cos(zenith), 0.0)  # fluxes of flat ground
    cloud = rng.uniform(0.2, 1.0, mu.shape)
    direct_sw = np.where(mu > 0, 900.0 * mu * cloud, 0.0)
    diffuse_sw = np.where(mu > 0, 150.0 * np.sqrt(mu) * (1.2 - cloud), 0.0)
    noon = (forcing_times.hour == 11) | (forcing_times.hour == 12)
    direct_sw[noon, 1] = diffuse_sw[noon, 1] = 0.0  # the step ending at 12:00 has no radiation: not a sample
    dawn = np.flatnonzero((mu[:-1, 1] == 0) & (mu[1:, 1] > 0))
    diffuse_sw[dawn, 1] = 5.0  # radiation with the sun down: a sample at the stamp, the zenith angle capped
    soil_albedo = 0.1 * (1 + np.arange(points))

    forcing = xr.Dataset(
        {
            "DIR_SWdown": (("time", "Number_of_points"), direct_sw, {"units": "W/m2"}),
            "SCA_SWdown": (("time", "Number_of_points"), diffuse_sw, {"units": "W/m2"}),
            "Tair": (("time", "Number_of_points"), rng.uniform(260, 272, mu.shape), {"units": "K"}),
            "ZS": ("Number_of_points", zs, {"units": "m"}),
            "slope": ("Number_of_points", np.full(points, 20.0), {"units": "degrees"}),
            "aspect": ("Number_of_points", np.linspace(0, 270, points), {"units": "degrees"}),
            "massif_number": ("Number_of_points", np.full(points, 3.0)),
            "LAT": ("Number_of_points", lat, {"units": "degrees_north"}),
            "LON": ("Number_of_points", lon, {"units": "degrees_east"}),
            "ALB_SOIL": ("Number_of_points", soil_albedo),
        },
        coords={"time": forcing_times},
    )

    shape = (len(pro_times), layers, points)
    n_layers = rng.integers(1, 7, (len(pro_times), points))
    n_layers[pro_times < pro_times[0] + pd.Timedelta(hours=24), 0] = 0
    n_layers[:, -1] = 0
    present = np.arange(layers)[None, :, None] < n_layers[:, None, :]

    def layer(low, high, log=False):
        values = np.exp(rng.uniform(np.log(low), np.log(high), shape)) if log else rng.uniform(low, high, shape)
        return np.where(present, values, np.nan)

    dz, ssa, density = layer(0.02, 0.1), layer(5.0, 50.0), layer(100.0, 450.0)
    soot, dust = layer(1e-9, 1e-7, log=True), layer(1e-7, 1e-5, log=True)
    swe = np.nansum(dz * density, axis=1)
    depth = np.nansum(dz, axis=1)
    daylight = crocus_light(forcing_times, direct_sw, diffuse_sw, lat, lon, forcing.slope.values,
                            forcing.aspect.values).daylight[1:-5]
    albedo = np.where(daylight, rng.uniform(0.6, 0.95, daylight.shape), 1.0)  # Crocus: 1 where TARTES did not run
    albedo = np.where(swe > 0, albedo, np.nan)

    layer_dims = ("time", "snow_layer", "Number_of_points")
    flat_dims = ("time", "Number_of_points")
    pro = xr.Dataset(
        {
            "SNOWDZ": (layer_dims, dz, {"units": "m"}),
            "SNOWSSA": (layer_dims, ssa, {"units": "m2 kg-1"}),
            "RSN_VEG": (layer_dims, density, {"units": "kg m-3"}),
            "SNOWIMP1": (layer_dims, soot, {"units": "g g-1"}),
            "SNOWIMP2": (layer_dims, dust, {"units": "g g-1"}),
            "WSN_T_ISBA": (flat_dims, swe, {"units": "kg m-2"}),
            "DSN_T_ISBA": (flat_dims, depth, {"units": "m"}),
            "ASN_VEG": (flat_dims, albedo, {"units": "-"}),
            "ZS": ("Number_of_points", zs),
            "slope": ("Number_of_points", np.full(points, 20.0)),
            "aspect": ("Number_of_points", np.linspace(0, 270, points)),
            "massif_num": ("Number_of_points", np.full(points, 3.0)),
            "latitude": ("Number_of_points", lat),
            "longitude": ("Number_of_points", lon),
            "ALB_SOIL": ("Number_of_points", soil_albedo),
        },
        coords={"time": pro_times},
    )
    # Crocus writes every time-varying field per patch.
    for name in [n for n, v in pro.data_vars.items() if "time" in v.dims]:
        first = pro[name]
        junk = first * 0 + 7.0  # later patches: values that must never reach a shard
        pro[name] = xr.concat([first] + [junk] * (patches - 1), dim="Number_of_Patches")
    if shuffle_dims:
        for ds in (pro, forcing):
            for name, var in ds.data_vars.items():
                ds[name] = var.transpose(*reversed(var.dims))
    return pro, forcing


def write_pair(root: str | Path, region: str, pro: xr.Dataset, forcing: xr.Dataset,
               season: str = SEASON) -> tuple[Path, Path]:
    """Write the pair under root/region with SURFEX fill values; returns (pro_path, forcing_path)."""
    region_dir = Path(root) / region
    pro_path = region_dir / "PRO" / f"PRO_{season}.nc"
    forcing_path = region_dir / "FORCING" / f"FORCING_{season}.nc"
    for ds, path, fill in ((pro, pro_path, PRO_FILL), (forcing, forcing_path, FORCING_FILL)):
        path.parent.mkdir(parents=True, exist_ok=True)
        encoding = {name: {"_FillValue": fill} for name, v in ds.data_vars.items() if v.dtype.kind == "f"}
        encoding["time"] = {"units": "seconds since 2011-01-10 06:00:00", "dtype": "float64"}
        ds.to_netcdf(path, encoding=encoding, unlimited_dims=["time"])
    return pro_path, forcing_path
