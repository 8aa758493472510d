"""The light of a Crocus step: what SURFEX-Crocus gives TARTES for the PRO sample stamped H.

Each forcing hour [H-1, H] runs as surface steps of XTSTEP_SURF (900 s in S2M runs); the PRO sample
stamped H is written after the last one, [H - 15 min, H], and its ASN_VEG is the albedo TARTES
computed in that step. `crocus_light` gives, per FORCING stamp and point, the light of that step
as the SURFEX offline driver and ISBA make it (docs/crocus_files.md, "The light of a Crocus step"):

- the fluxes, linear in time between the stamps H-1 and H at the start of the step
  (0.25 F(H-1) + 0.75 F(H) for hourly stamps), the diffuse one times the sky-view factor
  (1 + cos(slope)) / 2 on slopes (LSLOPE); the direct flux of S2M FORCING files is already on the slope;
- the sun of SURFEX's SUNPOS (`solar_angles`): the zenith angle at the start of the step, the
  azimuth at its end (the driver calls SUNPOS twice and the second call overwrites the azimuth);
  the zenith capped at pi/2 - 0.01 where the step's shortwave is positive, at least pi/2 where it is 0;
- the illumination cosine (ISBA's PANGL_ILLUM), between the sun and the normal to the slope;
- daylight, where Crocus calls TARTES: cos_zenith > 1e-8 and shortwave > 1e-8.

The rules that follow inside Crocus (the sun behind the slope, forcing without diffuse light:
step 0 of docs/labels.md) are not applied here: the labeller and the emulator apply them from
cos_zenith. snowtools' sun (whole days, a coarser declination and equation of time) is not the sun
Crocus used. numpy only, float64, (time, point) arrays.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from utils.tartes_constants import DAYLIGHT_MIN

ZENITH_MARGIN = 0.01  # rad: with shortwave, the driver keeps the zenith angle at most pi/2 - 0.01


@dataclass(frozen=True)
class LightSettings:
    """The SURFEX run settings that shape the light of a step; the defaults are those of the S2M
    namelists (snowtools'), which the reanalysis and its Crocus-TARTES runs use.

    surface_step: XTSTEP_SURF, seconds of a surface step; the PRO sample stamped H is the state after
        the step [H - surface_step, H], whose fluxes are taken at its start.
    linterp_sw: LINTERP_SW. False: the fluxes are linear in time between the FORCING stamps (the rule
        above). True, the driver's other interpolation of the shortwave, is not reproduced: refused.
    lslope: LSLOPE. True: the diffuse flux of a slope is multiplied by the sky-view factor
        (1 + cos(slope)) / 2; False: taken as it is.
    """

    surface_step: float = 900.0
    linterp_sw: bool = False
    lslope: bool = True

    def __post_init__(self):
        if not (np.isfinite(self.surface_step) and self.surface_step > 0):
            raise ValueError(f"surface_step: {self.surface_step} s, expected a positive number of seconds")
        if self.linterp_sw:
            raise ValueError("linterp_sw: LINTERP_SW=T is not reproduced; only runs with LINTERP_SW=F (the S2M "
                             "setting: fluxes linear in time between FORCING stamps) are supported")

    def describe(self) -> dict:
        """The settings as recorded in shard metadata, with the SURFEX namelist names they stand for."""
        return {**asdict(self), "namelist": {"XTSTEP_SURF": self.surface_step,
                                             "LINTERP_SW": "T" if self.linterp_sw else "F",
                                             "LSLOPE": "T" if self.lslope else "F"}}


S2M_LIGHT = LightSettings()


class CrocusLight(NamedTuple):
    """The light TARTES saw for the PRO sample of each stamp and point, float64 (time, point) arrays
    (daylight bool). NaN where no step of the run ended at the stamp (the first stamp given)."""

    cos_zenith: np.ndarray  # cosine of SURFEX's solar zenith angle at the step's start, capped
    cos_illum: np.ndarray  # cosine of the angle between the sun and the normal to the slope, in [-1, 1]
    direct_sw: np.ndarray  # W m-2, direct shortwave of the step, as in the FORCING (on the slope)
    diffuse_sw: np.ndarray  # W m-2, diffuse shortwave of the step, times the sky-view factor (lslope)
    daylight: np.ndarray  # where Crocus calls TARTES: cos_zenith > 1e-8 and shortwave > 1e-8


def _datetime64(times) -> np.ndarray:
    return pd.DatetimeIndex(np.atleast_1d(times)).values.astype("datetime64[ns]")


def solar_angles(times, lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """(zenith, azimuth) in radians, float64 (time, point): SURFEX's SUNPOS at UTC `times`
    (anything pandas reads) and points of latitude and longitude `lat`, `lon` (degrees).

    The zenith angle is in [0, pi] (above pi/2 the sun is below the horizon); the azimuth is
    clockwise from North in (-pi, pi], pi where the sun is at the zenith or the nadir.
    """
    t = _datetime64(times)
    day = t.astype("datetime64[D]")
    year = t.astype("datetime64[Y]")
    seconds = ((t - day) / np.timedelta64(1, "s"))[:, None]
    years = year.astype(np.int64) + 1970
    days_in_year = np.where((years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0)), 366.0, 365.0)[:, None]
    d = ((day - year) / np.timedelta64(1, "D"))[:, None] + seconds / 86400  # days since 1 January 00 UTC
    g = 2 * np.pi * d / days_in_year
    declination = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
                   + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    equation_of_time = (7.67825 * np.sin(np.deg2rad(1.00554 * d - 6.28306))
                        + 10.09176 * np.sin(np.deg2rad(1.93946 * d + 23.35089))) / 60  # hours
    lat, lon = (np.atleast_1d(np.asarray(a, dtype=np.float64))[None, :] for a in (lat, lon))
    true_solar_time = seconds / 3600 - equation_of_time + lon / 15
    hour_angle = np.deg2rad(15 * (true_solar_time - 12))
    phi = np.deg2rad(lat)
    cos_zenith = np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.cos(hour_angle)
    zenith = np.arccos(np.clip(cos_zenith, -1.0, 1.0))
    azimuth = np.arctan2(-np.cos(declination) * np.sin(hour_angle),
                         np.cos(phi) * np.sin(declination) - np.sin(phi) * np.cos(declination) * np.cos(hour_angle))
    return zenith, np.where(np.sin(zenith) == 0, np.pi, azimuth)


def illumination_cosine(zenith, azimuth, slope, aspect) -> np.ndarray:
    """ISBA's cosine of the illumination angle (PANGL_ILLUM), between the sun and the normal to the
    slope: cos Z cos(slope) + sin Z sin(slope) cos(A - aspect), clipped to [-1, 1]. zenith Z and
    azimuth A in radians (as solar_angles gives them), slope and aspect in degrees (as the files
    hold them; aspect clockwise from North, any value on flat ground); numpy broadcasting."""
    slope, aspect = np.deg2rad(slope), np.deg2rad(aspect)
    return np.clip(np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(azimuth - aspect),
                   -1.0, 1.0)


def crocus_light(times, direct_sw, diffuse_sw, lat, lon, slope, aspect, *,
                 settings: LightSettings = S2M_LIGHT) -> CrocusLight:
    """The light of the last surface step before each stamp (see the module's docstring).

    times: (T,) consecutive FORCING stamps, UTC (anything pandas reads), increasing;
    direct_sw, diffuse_sw: (T, P) the FORCING's DIR_SWdown and SCA_SWdown at those stamps (W m-2);
    lat, lon, slope (degrees) and aspect (degrees clockwise from North; any value, e.g. -1, on flat
    ground): (P,). Row t is the light of the step ending at times[t], interpolated from rows t-1 and t:
    the first row has no stamp before it and is NaN, not daylight (the PRO sample at a run's first
    instant is its initial state, made by no step). To cover stamp t, give rows t-1 and t at least.
    """
    t = _datetime64(times)
    direct_sw, diffuse_sw = (np.asarray(a, dtype=np.float64) for a in (direct_sw, diffuse_sw))
    if direct_sw.ndim != 2 or direct_sw.shape != diffuse_sw.shape or direct_sw.shape[0] != len(t):
        raise ValueError(f"direct_sw {direct_sw.shape}, diffuse_sw {diffuse_sw.shape}: expected (time, point) "
                         f"arrays of {len(t)} times")
    steps = np.diff(t) / np.timedelta64(1, "s")
    if np.any(steps < settings.surface_step):
        i = int(np.argmax(steps < settings.surface_step)) + 1
        raise ValueError(f"times: {steps[i - 1]:g} s between {t[i - 1]} and {t[i]}, shorter than the surface step "
                         f"({settings.surface_step:g} s) or not increasing")
    slope, aspect = (np.broadcast_to(np.asarray(a, dtype=np.float64), direct_sw.shape[1:]) for a in (slope, aspect))
    # Fluxes at the start of the step, linear between the stamps before and after it.
    previous = (settings.surface_step / steps)[:, None]
    direct = np.full(direct_sw.shape, np.nan)
    diffuse = np.full(diffuse_sw.shape, np.nan)
    direct[1:] = previous * direct_sw[:-1] + (1 - previous) * direct_sw[1:]
    diffuse[1:] = previous * diffuse_sw[:-1] + (1 - previous) * diffuse_sw[1:]
    if settings.lslope:
        diffuse = diffuse * (1 + np.cos(np.deg2rad(slope))) / 2
    shortwave = direct + diffuse

    zenith, _ = solar_angles(t - np.timedelta64(int(round(settings.surface_step * 1e9)), "ns"), lat, lon)
    _, azimuth = solar_angles(t, lat, lon)
    zenith = np.where(shortwave > 0, np.minimum(zenith, np.pi / 2 - ZENITH_MARGIN), np.maximum(zenith, np.pi / 2))
    cos_zenith = np.cos(zenith)
    cos_illum = illumination_cosine(zenith, azimuth, slope, aspect)
    cos_zenith[:1], cos_illum[:1] = np.nan, np.nan  # no step ended at the first stamp
    daylight = (cos_zenith > DAYLIGHT_MIN) & (shortwave > DAYLIGHT_MIN)
    return CrocusLight(cos_zenith, cos_illum, direct, diffuse, daylight)
