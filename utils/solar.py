"""Solar geometry, as Crocus sees it."""
from __future__ import annotations

import numpy as np
import pandas as pd
from snowtools.utils.sun import sun

# SAFRAN gives the radiation of hour H-1..H stamped at H: the sun is taken at the middle of that hour.
RADIATION_TIME_OFFSET = pd.Timedelta(minutes=30)


def cos_sza(times, lat, lon) -> np.ndarray:
    """Horizontal cosine of the solar zenith angle, (time, point), 0 when the sun is down.

    times: datetimes in UTC (anything pandas reads) at which SAFRAN stamps hourly radiation;
    lat, lon: degrees, one per point. Computed by `snowtools.utils.sun` (Crocus' formula) at
    the middle of the hour that ends at each time.
    """
    stamps = pd.DatetimeIndex(np.atleast_1d(times)) - RADIATION_TIME_OFFSET
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    flat = np.zeros_like(lat)
    return np.asarray(sun().coszenith(stamps.to_pydatetime(), lat, lon, flat, flat), dtype=np.float64)
