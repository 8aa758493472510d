"""Synthetic Crocus seasons driven by the real SAFRAN year that ships with snowtools: the default data.

    python -m preprocessing.synthetic --out DIR [--region Alpes] [--seasons 4] [--points 12] [--seed 0]
                                      [--start-day D --days N] [--soil_albedo A] [--radiation tartes]
                                      [--describe]

writes, per season, DIR/<region>/FORCING/FORCING_<begin>_<end>.nc and DIR/<region>/PRO/PRO_<begin>_<end>.nc
in the layout, names, dimensions, units and fill values of the S2M files (docs/crocus_files.md), as a
Crocus run with TARTES makes them.

Forcing. The real file (snowtools/DATA/FORCING_test_base.nc: Mont-Blanc, 2400 and 2700 m, flat,
2010-08-01 06 UTC to 2011-08-01 06 UTC, hourly) is carried to virtual points:
- points: distinct (massif, altitude, slope, aspect) of the region's massifs (snowtools' METADATA.xml,
  which gives each massif's centre, used as LAT/LON), altitudes 900-3600 m every 300 m within the
  massif's range, slopes 0/20/40 degrees, 8 aspects; chosen in a seeded order that cycles through
  the altitudes. Air temperature follows the hourly lapse rate between the two real points
  (12-hour running mean, within -10..+5 K/km) from 2400 m; precipitation the real vertical gradient
  (x1.05 per 300 m) times a massif factor; phase: snow below 0.5 degC, rain above 1.5 degC (the
  real file switches at about 1 degC); humidity keeps the real relative humidity, longwave the
  real effective emissivity, pressure the hypsometric law; wind is scaled by a point exposure
  factor. Direct shortwave is projected on the slope and capped by the clear-sky direct beam with
  snowtools' `sun.slope_aspect_correction`, the excess going to diffuse, with snowtools' sun at the
  middle of the hour ending at each stamp: the S2M FORCING files were made so (their direct flux is
  on the slope already), even though it is not the sun Crocus itself uses (see the light below).
- soil: each point has its own albedo of the ground under the snow, ALB_SOIL (ISBA's snow-free
  albedo, which Crocus hands TARTES), uniform in 0.1-0.35 drawn per point, or one value
  (--soil_albedo); written in both files, used by the snowpack's radiation and by ASN_VEG.
- global shortwave only: every sixth point (at most two per region) has a forcing without diffuse
  light (SCA_SWdown = 0, all the shortwave in DIR_SWdown), so that the data carry Crocus's rule for
  such forcing (a diffuse fraction of the zenith angle, docs/labels.md step 0).
- seasons: season k is the real year relabelled k years later (Feb 29 repeats Feb 28), with its
  own temperature shift (uniform +-1.5 K plus a smooth anomaly of 1.2 K std., periods 5-60 days),
  precipitation factor (uniform 0.75-1.35) and 1-4 dust events (Nov-Jun, 12-48 h, wet and dry).
- impurities (IMPWET1/2, IMPDRY1/2, g m-2 s-1): black carbon and dust at background concentrations
  in precipitation and background dry fluxes, times a point factor, plus the dust events.

The light. For each stamp H, the light TARTES sees in Crocus for the PRO sample of H:
utils.solar.crocus_light with S2M's settings (the fluxes of the hour's last 15-min step, the
sky-view factor on the diffuse flux of slopes, SURFEX's sun; docs/crocus_files.md, "The light of a
Crocus step"), and its daylight.

Snowpack: preprocessing/snowpack.py, hour by hour, all points together (physics and sources there),
its shortwave taken from TARTES as Crocus takes it (absorbed per layer and by the ground; the hour's
light and the pack after the hour's snowfall), or from the Gardner-Sharp albedo (--radiation gardner,
for comparison).

ASN_VEG: the TARTES albedo of preprocessing.tartes_labels.broadband_albedo (docs/labels.md), computed
from the profiles exactly as written (layer values are rounded to float32 precision, stored as float64
like SURFEX files), at the light of the stamp over the point's ALB_SOIL, with Crocus's step 0 rules
(from cos_zenith: the sun behind the slope, forcing without diffuse light), wherever WSN_T_ISBA > 0
and Crocus's daylight; 1 at the other times with snow (as Crocus T17 runs in the dark); fill (NaN)
without snow. So `--target tartes` preprocessing of the files at Crocus's light with
`--soil_albedo ALB_SOIL` gives back ASN_VEG.

The files' global attributes record these settings in words and the configuration (with a version
of the generator) as JSON. Everything is deterministic for a seed: numpy Generators are seeded from
(seed, purpose, season or point). Files are written in time chunks (bounded memory whatever the
number of points) under a temporary name, then renamed; a season whose two files exist with the same
configuration is kept, so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import snowtools
import xarray as xr
from snowtools.utils.infomassifs import infomassifs
from snowtools.utils.sun import sun
from tqdm import tqdm

from preprocessing import snowpack
from preprocessing.tartes_labels import broadband_albedo
from utils.files import written
from utils.solar import S2M_LIGHT, CrocusLight, crocus_light

REAL_FORCING = Path(snowtools.__file__).resolve().parent / "DATA" / "FORCING_test_base.nc"
REFERENCE_POINT = 0  # the 2400 m point of the real file carries everything but the lapse rate
REGIONS = {"Alpes": "alp27_allslopes", "Pyrenees": "pyr24_allslopes", "Corse": "cor2_allslopes",
           "Massif_central": "mac11_allslopes", "Jura": "jur4_allslopes", "Vosges": "vog3_allslopes"}
ALTITUDES = np.arange(900, 3601, 300)
SLOPE_ASPECTS = [(0, -1)] + [(slope, aspect) for slope in (20, 40) for aspect in range(0, 360, 45)]
SOIL_ALBEDO_RANGE = (0.1, 0.35)  # uniform, per point: ISBA's snow-free albedo of alpine ground
# Points 6, 12 (one-based) of a region have a forcing of global shortwave only (SCA_SWdown = 0).
GLOBAL_ONLY_EVERY = 6
GLOBAL_ONLY_MAX = 2
# What the files are made with; bumped when a change of the generator changes them (_is_done).
GENERATOR_VERSION = 4
# snowtools' sun, which projects the direct flux on slopes, is taken at the middle of the hour ending at a stamp.
PROJECTION_TIME_OFFSET = pd.Timedelta(minutes=30)

# Forcing transformations.
LAPSE_RANGE = (-10e-3, 5e-3)  # K m-1
LAPSE_SMOOTHING_HOURS = 12
SNOW_PHASE = (0.5, 1.5)  # degC: all snow below, all rain above
WIND_EXPOSURE_SIGMA = 0.25  # lognormal point factor
MASSIF_PRECIPITATION_SIGMA = 0.15
MASSIF_TEMPERATURE_SIGMA = 0.5  # K
SEASON_TEMPERATURE_SHIFT = 1.5  # K, uniform +-
SEASON_ANOMALY_STD = 1.2  # K
SEASON_ANOMALY_PERIODS = (5.0, 60.0)  # days
SEASON_PRECIPITATION_RANGE = (0.75, 1.35)  # uniform factor

# Impurities: concentration in precipitation (g kg-1) and dry flux (g m-2 s-1).
SOOT_WET = 1.5e-5
SOOT_DRY = 1.5e-10
DUST_WET = 1.0e-3
DUST_DRY = 2.0e-9
DEPOSITION_POINT_SIGMA = 0.3
DUST_EVENTS = (1, 4)
DUST_EVENT_HOURS = (12, 48)
DUST_EVENT_DRY = (0.7, 1.0)  # g m-2 over the event: lognormal median and sigma
DUST_EVENT_WET = (0.2, 1.0)  # g kg-1 in precipitation: lognormal median and sigma
DUST_EVENT_WINDOW = ("11-01", "06-15")  # month-day, within the season

# Files.
FORCING_FILL = -9999999.0
PRO_FILL = 1e20  # SURFEX's XUNDEF
CHUNK_SAMPLES = 16384  # hours x points evolved, labelled and written at a time
COMPRESSION = dict(zlib=True, complevel=1, shuffle=True)
# Seed purposes.
SEED_POINTS, SEED_MASSIF, SEED_POINT, SEED_SEASON = range(4)

SOIL_ALBEDO_ATTRS = {"long_name": "albedo of the ground under the snow (ISBA snow-free albedo)", "units": "1"}
FORCING_EXTRA_ATTRS = {
    "massif_number": {"long_name": "massif number", "units": ""},
    "ALB_SOIL": SOIL_ALBEDO_ATTRS,
    "IMPWET1": {"long_name": "Wet deposition of black carbon", "units": "g/m2/s"},
    "IMPWET2": {"long_name": "Wet deposition of mineral dust", "units": "g/m2/s"},
    "IMPDRY1": {"long_name": "Dry deposition of black carbon", "units": "g/m2/s"},
    "IMPDRY2": {"long_name": "Dry deposition of mineral dust", "units": "g/m2/s"},
}
PRO_LAYER_ATTRS = {
    "SNOWDZ": {"long_name": "Snow layer thickness", "units": "m"},
    "SNOWSSA": {"long_name": "Snow layer specific surface area", "units": "m2/kg"},
    "RSN_VEG": {"long_name": "Snow layer density", "units": "kg/m3"},
    "SNOWIMP1": {"long_name": "Snow layer black carbon mass ratio", "units": "g/g"},
    "SNOWIMP2": {"long_name": "Snow layer mineral dust mass ratio", "units": "g/g"},
    "SNOWTEMP": {"long_name": "Snow layer temperature", "units": "K"},
    "SNOWLIQ": {"long_name": "Snow layer liquid water content", "units": "kg/m3"},
}
PRO_POINT_ATTRS = {
    "WSN_T_ISBA": {"long_name": "Total snow water equivalent", "units": "kg/m2"},
    "DSN_T_ISBA": {"long_name": "Total snow depth", "units": "m"},
    "ASN_VEG": {"long_name": "Snow albedo", "units": "-"},
}
PRO_METADATA = {  # PRO name: (FORCING name, attributes)
    "ZS": ("ZS", {"long_name": "altitude", "units": "m"}),
    "aspect": ("aspect", {"long_name": "slope aspect", "units": "degrees from north"}),
    "slope": ("slope", {"long_name": "slope angle", "units": "degrees from horizontal"}),
    "massif_num": ("massif_number", {"long_name": "massif number", "units": ""}),
    "latitude": ("LAT", {"long_name": "latitude", "units": "degrees_north"}),
    "longitude": ("LON", {"long_name": "longitude", "units": "degrees_east"}),
    "ALB_SOIL": ("ALB_SOIL", SOIL_ALBEDO_ATTRS),
}
# Real Crocus 3.0 + TARTES figures, per layer (docs/labels.md): mean, std.
REAL_CROCUS = {
    "dz (m)": (0.053, 0.037), "ssa (m2/kg)": (14.7, 8.8), "density (kg/m3)": (336.0, 123.0),
    "soot (g/g)": (3.7e-8, 1.25e-6), "dust (g/g)": (4.3e-6, 3.1e-4), "direct_sw (W/m2)": (188.0, 215.0),
    "diffuse_sw (W/m2)": (98.0, 60.0), "cos_zenith (-)": (0.41, 0.25), "albedo (-)": (0.79, 0.11),
}


@dataclass
class SyntheticConfig:
    region: str = "Alpes"
    seasons: int = 4
    points: int = 12
    seed: int = 0
    start_day: int = 0  # first day of each season written (0: Aug 1, 06 UTC)
    days: int | None = None  # days written per season; None: the whole year (short windows start snow-free)
    soil_albedo: float | None = None  # the ground's albedo at every point; None: drawn per point
    radiation: str = "tartes"  # the snowpack's radiation (snowpack.RADIATIONS)

    def __post_init__(self):
        if self.soil_albedo is not None and not 0 <= self.soil_albedo <= 1:
            raise ValueError(f"soil_albedo: {self.soil_albedo} is outside [0, 1]")
        if self.radiation not in snowpack.RADIATIONS:
            raise ValueError(f"radiation: {self.radiation!r} is not one of {sorted(snowpack.RADIATIONS)}")

    def stamp(self) -> str:
        """What a season's files depend on (not the number of seasons), kept in their attributes."""
        return json.dumps({"version": GENERATOR_VERSION, **{k: v for k, v in asdict(self).items() if k != "seasons"},
                           "light": S2M_LIGHT.describe()})


@dataclass
class RealYear:
    """The real forcing file, as arrays (time, 2 points), plus what is derived from it once."""

    start: pd.Timestamp
    fields: dict[str, np.ndarray]
    attrs: dict[str, dict]
    zs: float
    reference_heights: dict[str, float]  # ZREF, UREF (m)
    lapse_rate: np.ndarray  # (time,) K m-1
    precipitation_gradient: float  # m-1, log of the precipitation ratio per metre

    @classmethod
    def load(cls, path: Path = REAL_FORCING) -> "RealYear":
        with xr.open_dataset(path) as ds:
            fields = {name: ds[name].values.astype(np.float64) for name in ds.data_vars
                      if ds[name].dims == ("time", "Number_of_points")}
            attrs = {name: {k: v for k, v in ds[name].attrs.items()} for name in ds.variables}
            start = pd.Timestamp(ds.time.values[0])
            zs = ds.ZS.values.astype(np.float64)
            heights = {name: float(ds[name].values[REFERENCE_POINT]) for name in ("ZREF", "UREF")}
            if not np.all(np.diff(ds.time.values) == np.timedelta64(1, "h")):
                raise ValueError(f"{path}: time: not hourly")
        rise = zs[1] - zs[0]
        lapse = (fields["Tair"][:, 1] - fields["Tair"][:, 0]) / rise
        lapse = pd.Series(lapse).rolling(LAPSE_SMOOTHING_HOURS, center=True, min_periods=1).mean().to_numpy()
        precipitation = fields["Snowf"] + fields["Rainf"]
        gradient = np.log(precipitation[:, 1].sum() / precipitation[:, 0].sum()) / rise
        return cls(start, fields, attrs, float(zs[REFERENCE_POINT]), heights, np.clip(lapse, *LAPSE_RANGE),
                   float(gradient))


def virtual_points(region: str, n_points: int, seed: int, soil_albedo: float | None = None) -> pd.DataFrame:
    """n distinct points (massif, altitude, slope, aspect) of the region, cycling through altitudes,
    with their soil albedo ALB_SOIL (`soil_albedo`, or drawn per point) and whether their forcing
    has global shortwave only (every GLOBAL_ONLY_EVERY-th point, GLOBAL_ONLY_MAX at most). The first
    k points do not depend on n."""
    if region not in REGIONS:
        raise ValueError(f"region: {region!r} is not one of {sorted(REGIONS)}")
    info = infomassifs()
    massifs = info.getListMassif_of_region(REGIONS[region])
    altitude_range = {m: info.getAltMinMax(m) for m in massifs}
    by_altitude = {}
    for zs in ALTITUDES:
        combos = [(m, slope, aspect) for m in massifs if altitude_range[m][0] <= zs <= altitude_range[m][1]
                  for slope, aspect in SLOPE_ASPECTS]
        if combos:
            by_altitude[int(zs)] = combos
    rng = np.random.default_rng([seed, SEED_POINTS])
    levels = list(by_altitude)
    rng.shuffle(levels)
    for combos in by_altitude.values():
        rng.shuffle(combos)
    chosen, depth = [], 0
    while len(chosen) < n_points and any(depth < len(c) for c in by_altitude.values()):
        chosen += [(zs, *by_altitude[zs][depth]) for zs in levels if depth < len(by_altitude[zs])]
        depth += 1
    if len(chosen) < n_points:
        raise ValueError(f"points: {n_points} asked, region {region} has only {len(chosen)} distinct points")
    points = pd.DataFrame(chosen[:n_points], columns=["ZS", "massif_number", "slope", "aspect"])
    points["LAT"] = [float(info.latCenter[m]) for m in points.massif_number]
    points["LON"] = [float(info.lonCenter[m]) for m in points.massif_number]
    massif_rngs = {m: np.random.default_rng([seed, SEED_MASSIF, m]) for m in massifs}
    massif_factors = {m: (r.lognormal(0.0, MASSIF_PRECIPITATION_SIGMA), r.normal(0.0, MASSIF_TEMPERATURE_SIGMA))
                      for m, r in massif_rngs.items()}
    points["precipitation_factor"] = [massif_factors[m][0] for m in points.massif_number]
    points["temperature_offset"] = [massif_factors[m][1] for m in points.massif_number]
    point_rngs = [np.random.default_rng([seed, SEED_POINT, i]) for i in range(n_points)]
    points["wind_factor"] = [r.lognormal(0.0, WIND_EXPOSURE_SIGMA) for r in point_rngs]
    points["deposition_factor"] = [r.lognormal(0.0, DEPOSITION_POINT_SIGMA) for r in point_rngs]
    drawn = [r.uniform(*SOIL_ALBEDO_RANGE) for r in point_rngs]
    points["ALB_SOIL"] = drawn if soil_albedo is None else float(soil_albedo)
    rank = np.arange(1, n_points + 1)
    points["global_only"] = (rank % GLOBAL_ONLY_EVERY == 0) & (rank <= GLOBAL_ONLY_EVERY * GLOBAL_ONLY_MAX)
    return points.astype({"ZS": np.float64, "slope": np.float64, "aspect": np.float64, "massif_number": np.int64})


@dataclass
class SeasonPlan:
    """The plan of season k: its hourly times, the real hour behind each, and its perturbations (per time)."""

    index: int
    times: pd.DatetimeIndex
    source: np.ndarray  # index into the real year
    temperature_offset: np.ndarray  # K
    precipitation_factor: float
    dust_dry: np.ndarray  # g m-2 s-1 of the dust events
    dust_wet: np.ndarray  # g kg-1 of precipitation during the dust events


def plan_season(real: RealYear, k: int, seed: int, start_day: int = 0, days: int | None = None) -> SeasonPlan:
    rng = np.random.default_rng([seed, SEED_SEASON, k])
    offset = pd.DateOffset(years=k)
    times = pd.date_range(real.start + offset, real.start + pd.DateOffset(years=k + 1), freq="h")
    source = ((times - offset) - real.start) // pd.Timedelta(hours=1)
    hours_since = np.arange(len(times)) / 24.0
    periods = rng.uniform(*SEASON_ANOMALY_PERIODS, size=6)
    phases = rng.uniform(0, 2 * np.pi, size=6)
    anomaly = np.sin(2 * np.pi * hours_since[:, None] / periods + phases).sum(axis=1) * SEASON_ANOMALY_STD / np.sqrt(3)
    temperature = rng.uniform(-SEASON_TEMPERATURE_SHIFT, SEASON_TEMPERATURE_SHIFT) + anomaly
    precipitation_factor = rng.uniform(*SEASON_PRECIPITATION_RANGE)
    dust_dry, dust_wet = np.zeros(len(times)), np.zeros(len(times))
    first = times.get_indexer([pd.Timestamp(f"{times[0].year}-{DUST_EVENT_WINDOW[0]} 06:00")])[0]
    last = times.get_indexer([pd.Timestamp(f"{times[0].year + 1}-{DUST_EVENT_WINDOW[1]} 06:00")])[0]
    for _ in range(rng.integers(DUST_EVENTS[0], DUST_EVENTS[1] + 1)):
        begin = rng.integers(first, last)
        hours = rng.integers(DUST_EVENT_HOURS[0], DUST_EVENT_HOURS[1] + 1)
        dust_dry[begin:begin + hours] += rng.lognormal(np.log(DUST_EVENT_DRY[0]), DUST_EVENT_DRY[1]) / (3600.0 * hours)
        dust_wet[begin:begin + hours] += rng.lognormal(np.log(DUST_EVENT_WET[0]), DUST_EVENT_WET[1])
    window = slice(start_day * 24, None if days is None else start_day * 24 + days * 24 + 1)
    if len(times[window]) < 2:
        raise ValueError(f"start_day={start_day}, days={days}: fewer than 2 hours left in season {k}")
    return SeasonPlan(k, times[window], np.asarray(source[window]), temperature[window], precipitation_factor,
                  dust_dry[window], dust_wet[window])


def saturation_humidity_water(t, p):
    e = 611.2 * np.exp(17.502 * (t - snowpack.T_FUS) / (t - 32.19))
    return 0.622 * e / (p - 0.378 * e)


def season_forcing(real: RealYear, points: pd.DataFrame, season: SeasonPlan, rows: slice) -> dict[str, np.ndarray]:
    """The FORCING variables (time, point) of the season's hours `rows` at the virtual points."""
    src = season.source[rows]
    ref = {name: a[src, REFERENCE_POINT][:, None] for name, a in real.fields.items()}
    rise = points.ZS.to_numpy()[None, :] - real.zs
    t_air = (ref["Tair"] + real.lapse_rate[src][:, None] * rise + points.temperature_offset.to_numpy()[None, :]
             + season.temperature_offset[rows][:, None])
    precipitation = ((ref["Snowf"] + ref["Rainf"]) * np.exp(real.precipitation_gradient * rise)
                     * points.precipitation_factor.to_numpy()[None, :] * season.precipitation_factor)
    snow_fraction = np.clip((SNOW_PHASE[1] - (t_air - snowpack.T_FUS)) / (SNOW_PHASE[1] - SNOW_PHASE[0]), 0.0, 1.0)
    p_surf = ref["PSurf"] * np.exp(-snowpack.GRAVITY * rise / (snowpack.R_DRY * 0.5 * (t_air + ref["Tair"])))
    humidity = np.minimum(ref["Qair"] / saturation_humidity_water(ref["Tair"], ref["PSurf"]), 1.0)
    times = season.times[rows]
    shape = (len(times), len(points))
    # snowtools' projection, as the S2M FORCING files were made (not the sun of Crocus's light)
    direct, diffuse = sun().slope_aspect_correction(
        np.broadcast_to(ref["DIR_SWdown"], shape).copy(), np.broadcast_to(ref["SCA_SWdown"], shape).copy(),
        (times - PROJECTION_TIME_OFFSET).to_pydatetime(), points.LAT.to_numpy(), points.LON.to_numpy(),
        points.aspect.to_numpy(), points.slope.to_numpy(), convert_time=False)
    direct, diffuse = np.asarray(direct, dtype=np.float64), np.asarray(diffuse, dtype=np.float64)
    global_only = points.global_only.to_numpy()
    direct[:, global_only] += diffuse[:, global_only]  # a forcing without diffuse light: Crocus splits it
    diffuse[:, global_only] = 0.0
    snowfall = precipitation * snow_fraction
    rainfall = precipitation - snowfall
    deposition = points.deposition_factor.to_numpy()[None, :]
    dust_wet = DUST_WET + season.dust_wet[rows][:, None]
    forcing = {
        "Tair": t_air,
        "Qair": humidity * saturation_humidity_water(t_air, p_surf),
        "PSurf": p_surf,
        "Wind": ref["Wind"] * points.wind_factor.to_numpy()[None, :],
        "Wind_DIR": ref["Wind_DIR"],
        "DIR_SWdown": direct,
        "SCA_SWdown": diffuse,
        "LWdown": ref["LWdown"] * (t_air / ref["Tair"]) ** 4,
        "Snowf": snowfall,
        "Rainf": rainfall,
        "CO2air": ref["CO2air"],
        "IMPWET1": SOOT_WET * precipitation * deposition,
        "IMPWET2": dust_wet * precipitation * deposition,
        "IMPDRY1": np.full(shape, SOOT_DRY) * deposition,
        "IMPDRY2": (DUST_DRY + season.dust_dry[rows][:, None]) * deposition,
    }
    return {name: np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.float64) for name, a in forcing.items()}


def snowpack_forcing(forcing: dict[str, np.ndarray]) -> np.ndarray:
    """(time, point, snowpack.FORCING_FIELDS) from the FORCING variables."""
    fields = dict(forcing, soot_deposition=forcing["IMPWET1"] + forcing["IMPDRY1"],
                  dust_deposition=forcing["IMPWET2"] + forcing["IMPDRY2"])
    return np.stack([fields[name] for name in snowpack.FORCING_FIELDS], axis=-1)


def label_albedo(pro: dict[str, np.ndarray], light: CrocusLight, soil_albedo: np.ndarray) -> np.ndarray:
    """ASN_VEG (time, point): the TARTES albedo of the profiles at Crocus's light (with its step 0
    rules, from cos_zenith) over the points' soil albedo, where snow and Crocus's daylight; 1 where
    snow but dark (Crocus T17); NaN without snow."""
    swe = pro["WSN_T_ISBA"]
    lit = (swe > 0) & light.daylight
    albedo = np.where(swe > 0, 1.0, np.nan)
    hours, points = np.nonzero(lit)
    if len(hours):
        layers = [pro[name][hours, :, points] for name in ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2")]
        albedo[lit] = broadband_albedo(*layers, light.cos_illum[lit], light.direct_sw[lit], light.diffuse_sw[lit],
                                       soil_albedo=soil_albedo[points], cos_zenith=light.cos_zenith[lit])
    return albedo


def season_name(season: SeasonPlan) -> str:
    return f"{season.times[0]:%Y%m%d%H}_{season.times[-1]:%Y%m%d%H}"


def _time_attrs(season: SeasonPlan) -> tuple[dict, np.ndarray]:
    start = season.times[0]
    values = ((season.times - start) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    return {"long_name": "time", "units": f"seconds since {start:%Y-%m-%d %H:%M:%S}", "calendar": "standard"}, values


def _variable(ds, name, dims, attrs, fill, chunk_hours):
    chunks = [chunk_hours if d == "time" else len(ds.dimensions[d]) for d in dims] if dims else None
    var = ds.createVariable(name, np.float64, dims, fill_value=fill, chunksizes=chunks,
                            **(COMPRESSION if dims else {}))
    if dims:  # times are appended in order: a cache of two chunks per variable is enough
        var.set_var_chunk_cache(size=2 * 8 * int(np.prod(chunks)), nelems=3, preemption=1.0)
    var.setncatts({k: v for k, v in attrs.items() if k != "_FillValue"})
    return var


def _settings(points: pd.DataFrame, config: SyntheticConfig) -> dict[str, str]:
    """The global attributes of both files: the configuration (what _is_done compares) and, in words,
    the settings that shape the radiation and the labels."""
    soil = (f"ALB_SOIL drawn per point, uniform in {list(SOIL_ALBEDO_RANGE)}" if config.soil_albedo is None
            else f"ALB_SOIL {config.soil_albedo:g} at every point")
    return {"synthetic_config": config.stamp(),
            "soil_albedo": soil,
            "global_shortwave_only_points": json.dumps(np.flatnonzero(points.global_only.to_numpy()).tolist()),
            "light": json.dumps(S2M_LIGHT.describe()),
            "snowpack_radiation": config.radiation,
            "asn_veg": "preprocessing.tartes_labels.broadband_albedo of the profiles as written, at Crocus's light "
                       "(utils.solar.crocus_light with the settings of `light`) over ALB_SOIL, where snow and "
                       "daylight; 1 where snow but dark",
            "direct_sw_projection": "DIR_SWdown on slopes projected with snowtools' sun at the middle of the hour "
                                    "(as S2M files)"}


def _open_forcing(path, real: RealYear, points: pd.DataFrame, season: SeasonPlan, config: SyntheticConfig, chunk_hours):
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    ds.setncatts({"SIMULATIONTYPE": "SCM", "title": f"Synthetic SAFRAN forcing, season {season.index}",
                  "source": f"preprocessing.synthetic from {REAL_FORCING.name} (snowtools {version('snowtools')})",
                  **_settings(points, config)})
    ds.createDimension("time", None)
    ds.createDimension("Number_of_points", len(points))
    time_attrs, _ = _time_attrs(season)
    _variable(ds, "time", ("time",), time_attrs, FORCING_FILL, chunk_hours)
    for name in list(real.fields) + [name for name in FORCING_EXTRA_ATTRS if name.startswith("IMP")]:
        _variable(ds, name, ("time", "Number_of_points"), real.attrs.get(name, FORCING_EXTRA_ATTRS.get(name)),
                  FORCING_FILL, chunk_hours)
    for name in ("ZS", "aspect", "slope", "LAT", "LON", "massif_number", "ALB_SOIL"):
        var = _variable(ds, name, ("Number_of_points",), real.attrs.get(name, FORCING_EXTRA_ATTRS.get(name)),
                        FORCING_FILL, chunk_hours)
        var[:] = points[name].to_numpy(dtype=np.float64)
    for name, height in real.reference_heights.items():
        _variable(ds, name, ("Number_of_points",), real.attrs[name], FORCING_FILL, chunk_hours)[:] = height
    _variable(ds, "FRC_TIME_STP", (), real.attrs["FRC_TIME_STP"], FORCING_FILL, chunk_hours).assignValue(snowpack.DT)
    return ds


def _open_pro(path, points: pd.DataFrame, season: SeasonPlan, config: SyntheticConfig, chunk_hours):
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    ds.setncatts({"title": f"Synthetic Crocus PRO, season {season.index}",
                  "source": "preprocessing.synthetic: snowpack of preprocessing/snowpack.py, "
                            "ASN_VEG from preprocessing.tartes_labels",
                  **_settings(points, config)})
    ds.createDimension("time", None)
    ds.createDimension("snow_layer", snowpack.N_LAYERS)
    ds.createDimension("Number_of_Patches", 1)
    ds.createDimension("Number_of_points", len(points))
    time_attrs, _ = _time_attrs(season)
    _variable(ds, "time", ("time",), time_attrs, PRO_FILL, chunk_hours)
    for name, attrs in PRO_LAYER_ATTRS.items():
        _variable(ds, name, ("time", "snow_layer", "Number_of_Patches", "Number_of_points"), attrs, PRO_FILL,
                  chunk_hours)
    for name, attrs in PRO_POINT_ATTRS.items():
        _variable(ds, name, ("time", "Number_of_Patches", "Number_of_points"), attrs, PRO_FILL, chunk_hours)
    for name, (forcing_name, attrs) in PRO_METADATA.items():
        _variable(ds, name, ("Number_of_points",), attrs, PRO_FILL, chunk_hours)[:] = \
            points[forcing_name].to_numpy(dtype=np.float64)
    return ds


def _filled(a: np.ndarray, fill: float) -> np.ndarray:
    return np.where(np.isnan(a), fill, a)


def season_paths(out_dir: Path, region: str, season: SeasonPlan) -> tuple[Path, Path]:
    name = season_name(season)
    return (out_dir / region / "FORCING" / f"FORCING_{name}.nc", out_dir / region / "PRO" / f"PRO_{name}.nc")


def _is_done(paths: tuple[Path, Path], config: SyntheticConfig) -> bool:
    expected = config.stamp()
    for path in paths:
        if not path.is_file():
            return False
        with netCDF4.Dataset(path) as ds:
            if getattr(ds, "synthetic_config", None) != expected:
                return False
    return True


def chunk_light(times: pd.DatetimeIndex, begin: int, end: int, forcing: dict[str, np.ndarray],
                previous: dict[str, np.ndarray] | None, points: pd.DataFrame) -> CrocusLight:
    """Crocus's light of the stamps begin..end-1 of a season, from the chunk's forcing and the last
    forcing row before it (None for the first chunk: the season's first stamp has no light)."""
    fluxes = [forcing[name] if previous is None else np.concatenate([previous[name], forcing[name]])
              for name in ("DIR_SWdown", "SCA_SWdown")]
    light = crocus_light(times[begin if previous is None else begin - 1:end], *fluxes,
                         *(points[name].to_numpy() for name in ("LAT", "LON", "slope", "aspect")))
    return light if previous is None else CrocusLight(*(a[1:] for a in light))


def initial_soil_temperature(real: RealYear, points: pd.DataFrame, season: SeasonPlan) -> np.ndarray:
    """(points,) K: a season starts on bare ground at its first day's mean air temperature, at least 0 degC."""
    first_day = season_forcing(real, points, season, slice(0, min(24, len(season.times))))["Tair"]
    return np.maximum(first_day.mean(axis=0), snowpack.T_FUS)


def write_season(out_dir: Path, real: RealYear, points: pd.DataFrame, season: SeasonPlan,
                 config: SyntheticConfig) -> tuple[Path, Path]:
    """Evolve, label and write one season, chunk by chunk; returns (forcing_path, pro_path)."""
    forcing_path, pro_path = season_paths(out_dir, config.region, season)
    if _is_done((forcing_path, pro_path), config):
        return forcing_path, pro_path
    for path in (forcing_path, pro_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    n_hours, n_points = len(season.times), len(points)
    chunk_hours = max(2, CHUNK_SAMPLES // n_points)
    starts = list(range(0, n_hours, chunk_hours))
    bounds = list(zip(starts, starts[1:] + [n_hours]))
    _, time_values = _time_attrs(season)
    pack = snowpack.Snowpack.bare(initial_soil_temperature(real, points, season), points.ALB_SOIL.to_numpy())
    previous = None  # the last stamp of the previous chunk: the light of a stamp interpolates from the one before
    # the FORCING is renamed last: a season counts as written when both files exist (_is_done)
    with written(forcing_path) as tmp_forcing, written(pro_path) as tmp_pro:
        with _open_forcing(tmp_forcing, real, points, season, config, min(chunk_hours, 24 * 7)) as f_ds, \
                _open_pro(tmp_pro, points, season, config, min(chunk_hours, 24 * 7)) as p_ds:
            for begin, end in tqdm(bounds, desc=f"season {season.index} ({n_points} points)", unit="chunk",
                                   disable=len(bounds) < 3):
                rows = slice(begin, end)
                forcing = season_forcing(real, points, season, rows)
                f_ds["time"][begin:end] = time_values[rows]
                for name, values in forcing.items():
                    f_ds[name][begin:end, :] = values
                light = chunk_light(season.times, begin, end, forcing, previous, points)
                previous = {name: forcing[name][-1:] for name in ("DIR_SWdown", "SCA_SWdown")}
                pro = pack.run(snowpack_forcing(forcing), light, config.radiation)
                for name in snowpack.LAYER_OUTPUTS:  # what the file keeps, and what is labelled
                    pro[name] = pro[name].astype(np.float32).astype(np.float64)
                pro["ASN_VEG"] = label_albedo(pro, light, points.ALB_SOIL.to_numpy())
                p_ds["time"][begin:end] = time_values[rows]
                for name in snowpack.LAYER_OUTPUTS:
                    p_ds[name][begin:end, :, 0, :] = _filled(pro[name], PRO_FILL)
                for name in PRO_POINT_ATTRS:
                    p_ds[name][begin:end, 0, :] = _filled(pro[name], PRO_FILL)
    return forcing_path, pro_path


def generate(out_dir, region: str = "Alpes", seasons: int = 4, points: int = 12, seed: int = 0,
             describe: bool = False, start_day: int = 0, days: int | None = None, soil_albedo: float | None = None,
             radiation: str = "tartes") -> list[tuple[Path, Path]]:
    """Write `seasons` FORCING/PRO pairs of `points` virtual points under out_dir/region.

    start_day and days cut every season to a window (days from Aug 1 06 UTC; the snowpack starts
    bare at the window's start): short seasons for tests. soil_albedo: the ground's albedo at every
    point (None: drawn per point); radiation: the snowpack's (snowpack.RADIATIONS). Returns
    [(forcing_path, pro_path)] per season; with describe=True, also prints describe_pairs() of them.
    """
    config = SyntheticConfig(region, seasons, points, seed, start_day, days, soil_albedo, radiation)
    out_dir = Path(out_dir)
    real = RealYear.load()
    table = virtual_points(region, points, seed, soil_albedo)
    pairs = [write_season(out_dir, real, table, plan_season(real, k, seed, start_day, days), config)
             for k in range(seasons)]
    if describe:
        print(describe_pairs(pairs))
    return pairs


@dataclass
class _Moments:
    """Running count, mean and spread of a variable, and a log-spaced histogram for quantiles."""

    edges: np.ndarray
    n: int = 0
    total: float = 0.0
    squares: float = 0.0
    counts: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        self.n += x.size
        self.total += float(x.sum())
        self.squares += float((x * x).sum())
        counts, _ = np.histogram(np.clip(x, self.edges[0], self.edges[-1]), self.edges)
        self.counts = counts if self.counts is None else self.counts + counts

    def mean_std(self) -> tuple[float, float]:
        mean = self.total / max(self.n, 1)
        return mean, float(np.sqrt(max(self.squares / max(self.n, 1) - mean * mean, 0.0)))

    def quantile(self, q: float) -> float:
        i = np.searchsorted(np.cumsum(self.counts), q * self.n)
        return float(0.5 * (self.edges[i] + self.edges[i + 1]))


def describe_pairs(pairs: list[tuple[Path, Path]]) -> str:
    """Statistics of the labelled samples of the files (per layer for the layer variables), beside
    the real Crocus figures of docs/labels.md."""
    log_edges = lambda lo, hi: np.geomspace(lo, hi, 400)
    stats = {
        "dz (m)": _Moments(log_edges(1e-5, 10)), "ssa (m2/kg)": _Moments(log_edges(0.1, 200)),
        "density (kg/m3)": _Moments(np.linspace(0, 1000, 401)), "soot (g/g)": _Moments(log_edges(1e-12, 1)),
        "dust (g/g)": _Moments(log_edges(1e-12, 1)), "direct_sw (W/m2)": _Moments(np.linspace(0, 1500, 301)),
        "diffuse_sw (W/m2)": _Moments(np.linspace(0, 1000, 201)), "cos_zenith (-)": _Moments(np.linspace(0, 1, 201)),
        "cos_illum (-)": _Moments(np.linspace(-1, 1, 401)), "albedo (-)": _Moments(np.linspace(0, 1, 401)),
    }
    extra = {"layers per profile": _Moments(np.arange(0, 52) + 0.5), "snow depth (m)": _Moments(log_edges(1e-5, 20)),
             "surface-layer dust (g/g)": _Moments(log_edges(1e-12, 1))}
    thin = 0
    for forcing_path, pro_path in pairs:
        with xr.open_dataset(forcing_path) as forcing, xr.open_dataset(pro_path) as pro:
            geometry = forcing[["LAT", "LON", "slope", "aspect"]].to_dataframe()
            n_points = forcing.sizes["Number_of_points"]
            step = max(2, CHUNK_SAMPLES // n_points)
            times = pd.DatetimeIndex(forcing.time.values)
            previous = None
            for begin in range(0, pro.sizes["time"], step):
                rows = slice(begin, begin + step)
                p = pro.isel(time=rows, Number_of_Patches=0)
                f = {name: forcing[name].values[rows] for name in ("DIR_SWdown", "SCA_SWdown")}
                light = chunk_light(times, begin, begin + len(f["DIR_SWdown"]), f, previous, geometry)
                previous = {name: a[-1:] for name, a in f.items()}
                swe = p.WSN_T_ISBA.values
                lit = (swe > 0) & light.daylight
                hours, points = np.nonzero(lit)
                layers = {name: p[name].transpose("time", "snow_layer", "Number_of_points").values[hours, :, points]
                          for name in ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2")}
                present = ~np.isnan(layers["SNOWDZ"])
                for key, name in zip(list(stats)[:5], layers):
                    stats[key].add(layers[name][present])
                stats["direct_sw (W/m2)"].add(light.direct_sw[lit])
                stats["diffuse_sw (W/m2)"].add(light.diffuse_sw[lit])
                stats["cos_zenith (-)"].add(light.cos_zenith[lit])
                stats["cos_illum (-)"].add(light.cos_illum[lit])
                stats["albedo (-)"].add(p.ASN_VEG.values[lit])
                extra["layers per profile"].add(present.sum(axis=1).astype(np.float64))
                depth = p.DSN_T_ISBA.values[lit]
                extra["snow depth (m)"].add(depth)
                thin += int((depth < 0.2).sum())
                extra["surface-layer dust (g/g)"].add(layers["SNOWIMP2"][:, 0])
    n_samples = extra["layers per profile"].n
    lines = [f"{n_samples} labelled samples (snow, daylight) in {len(pairs)} season(s)",
             f"{'':22s} {'real Crocus mean +- std':>26s}   {'synthetic mean +- std':>24s}   {'median [5%, 95%]':>30s}"]
    fmt = lambda x: f"{x:.3g}"
    for key, moments in list(stats.items()) + list(extra.items()):
        mean, std = moments.mean_std()
        real = f"{fmt(REAL_CROCUS[key][0])} +- {fmt(REAL_CROCUS[key][1])}" if key in REAL_CROCUS else "-"
        quantiles = f"{fmt(moments.quantile(0.5))} [{fmt(moments.quantile(0.05))}, {fmt(moments.quantile(0.95))}]"
        lines.append(f"{key:22s} {real:>26s}   {fmt(mean) + ' +- ' + fmt(std):>24s}   {quantiles:>30s}")
    lines.append(f"thin packs (< 0.2 m): {100.0 * thin / max(n_samples, 1):.1f} % of samples")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="root directory of the <region>/FORCING, PRO files")
    parser.add_argument("--region", default="Alpes", choices=sorted(REGIONS))
    parser.add_argument("--seasons", type=int, default=4)
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-day", type=int, default=0, help="first day of each season written (0: Aug 1)")
    parser.add_argument("--days", type=int, default=None, help="days per season (default: the whole year)")
    parser.add_argument("--soil_albedo", type=float, default=None,
                        help="albedo of the ground under the snow at every point (default: drawn per point, "
                             f"uniform in {SOIL_ALBEDO_RANGE[0]}-{SOIL_ALBEDO_RANGE[1]})")
    parser.add_argument("--radiation", default="tartes", choices=sorted(snowpack.RADIATIONS),
                        help="the snowpack's shortwave: TARTES as in Crocus, or the Gardner-Sharp albedo (comparison)")
    parser.add_argument("--describe", action="store_true",
                        help="print the statistics of the generated samples beside the real Crocus figures")
    args = parser.parse_args(argv)
    pairs = generate(args.out, args.region, args.seasons, args.points, args.seed, args.describe, args.start_day,
                     args.days, args.soil_albedo, args.radiation)
    for forcing_path, pro_path in pairs:
        print(forcing_path, pro_path)


if __name__ == "__main__":
    main()
