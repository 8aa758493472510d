"""Solar geometry, as Crocus sees it: the horizontal cosine of the solar zenith angle and the
illumination cosine on the slope, from snowtools' `sun().slope_aspect_correction` (the routine
S2M projects the direct flux with), at the middle of the hour ending at each SAFRAN time stamp."""
from __future__ import annotations

import numpy as np
import pandas as pd
from snowtools.utils.sun import sun

# SAFRAN gives the radiation of hour H-1..H stamped at H: the sun is taken at the middle of that hour.
RADIATION_TIME_OFFSET = pd.Timedelta(minutes=30)


def radiation_times(times) -> np.ndarray:
    """Python datetimes at the middle of the hour ending at each stamp, for snowtools' routines
    with convert_time=False (they would otherwise take the step from the first two times)."""
    return (pd.DatetimeIndex(np.atleast_1d(times)) - RADIATION_TIME_OFFSET).to_pydatetime()


def sun_geometry(times, lat, lon, slope, aspect) -> tuple[np.ndarray, np.ndarray]:
    """(cos_sza, cos_illum), each float64 (time, point).

    times: datetimes in UTC (anything pandas reads) at which SAFRAN stamps hourly radiation;
    lat, lon, slope (degrees) and aspect (degrees from North, -1 on flat ground), one per point.
    cos_sza is the horizontal cosine, 0 where snowtools puts the sun down; cos_illum, the cosine of
    the angle between the sun and the normal to the slope, is not clipped (negative: the sun is
    behind the slope) and means something only where cos_sza > 0. On flat ground they are equal.
    """
    stamps = radiation_times(times)
    lat, lon, slope, aspect = (np.array(a, dtype=np.float64) for a in  # snowtools fills point by point
                               np.broadcast_arrays(*(np.atleast_1d(a) for a in (lat, lon, slope, aspect))))
    aspect[aspect == -1] = 0.0
    dummy = np.zeros((len(stamps), len(lat)))
    with np.errstate(divide="ignore", invalid="ignore"):  # the azimuth's x / y when y = 0 (discarded branch)
        _, _, gamma, azimuth = sun().slope_aspect_correction(dummy, dummy, stamps, lat, lon, aspect, slope,
                                                             convert_time=False, return_angles=True)
    gamma, azimuth = np.ma.getdata(gamma).astype(np.float64), np.ma.getdata(azimuth).astype(np.float64)
    slope, aspect = np.deg2rad(slope), np.deg2rad(aspect)
    cos_sza = np.sin(gamma)
    cos_illum = np.cos(gamma) * np.sin(slope) * np.cos(azimuth - aspect) + cos_sza * np.cos(slope)
    return cos_sza, cos_illum
