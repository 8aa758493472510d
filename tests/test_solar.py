"""utils.solar: the sun as Crocus sees it, against an independent solar position and known physics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from snowtools.utils.sun import sun

from utils.solar import radiation_times, sun_geometry

# Flat, 40-degree south slope, 30-degree east slope, 40-degree north slope (Mont-Blanc area).
LAT = np.array([45.0, 45.0, 44.4, 45.0])
LON = np.array([6.5, 6.5, 6.7, 6.5])
SLOPE = np.array([0.0, 40.0, 30.0, 40.0])
ASPECT = np.array([-1.0, 180.0, 90.0, 0.0])
# SAFRAN stamps (UTC): winter noon, summer morning.
TIMES = pd.DatetimeIndex(["2010-12-21 12:00", "2011-01-15 12:00", "2011-06-21 07:00", "2011-07-10 09:00"])


def spencer_astronomy(middle):
    """sin(declination) and the equation of time (minutes) of the true sun: Spencer (1971), as NOAA."""
    g = 2 * np.pi / 365 * (middle.day_of_year.to_numpy() - 1 + (middle.hour.to_numpy() - 12) / 24)
    declination = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
                   + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g)
                    - 0.040849 * np.sin(2 * g))
    return np.sin(declination), eot


def crocus_astronomy(middle):
    """The same in the engineering approximations of Crocus' meteo.f90, which snowtools keeps: off
    the true sun by up to 0.02 in sin(declination) and 6 minutes in the equation of time."""
    j = middle.day_of_year.to_numpy().astype(np.float64)
    eot = 9.9 * np.sin(2 * (j - 101.4) / 365 * 2 * np.pi) - 7.7 * np.sin((j - 2.027) / 365 * 2 * np.pi)
    return 0.4 * np.sin(np.deg2rad(0.986 * j - 80)), eot


def independent_sun(times, lat, lon, slope, aspect, astronomy=spencer_astronomy):
    """cos(SZA) and the illumination cosine (time, point) at the middle of the hour ending at each
    stamp, as the dot products of the unit vector towards the sun with the vertical and with the
    normal to the slope, in (east, north, up) coordinates."""
    middle = pd.DatetimeIndex(times) - pd.Timedelta(minutes=30)
    sin_declination, eot = (a[:, None] for a in astronomy(middle))
    cos_declination = np.sqrt(1 - sin_declination ** 2)
    minutes = (middle.hour.to_numpy() * 60 + middle.minute.to_numpy())[:, None]
    hour_angle = np.deg2rad((minutes + eot + 4 * lon) / 4 - 180)
    phi = np.deg2rad(lat)
    east = -cos_declination * np.sin(hour_angle)
    north = np.cos(phi) * sin_declination - np.sin(phi) * cos_declination * np.cos(hour_angle)
    up = np.sin(phi) * sin_declination + np.cos(phi) * cos_declination * np.cos(hour_angle)
    beta, a = np.deg2rad(slope), np.deg2rad(np.where(aspect == -1, 0.0, aspect))
    illum = east * np.sin(beta) * np.sin(a) + north * np.sin(beta) * np.cos(a) + up * np.cos(beta)
    return up, illum


def test_against_an_independent_solar_position():
    cos_sza, cos_illum = sun_geometry(TIMES, LAT, LON, SLOPE, ASPECT)
    assert cos_sza.shape == cos_illum.shape == (4, 4) and cos_sza.dtype == cos_illum.dtype == np.float64
    # The geometry (hour angle, azimuth, aspect convention, projection, time of the sun) exactly:
    # the sun taken at the stamp instead of half an hour before would be 0.04 off on the mornings.
    expected_sza, expected_illum = independent_sun(TIMES, LAT, LON, SLOPE, ASPECT, crocus_astronomy)
    np.testing.assert_allclose(cos_sza, expected_sza, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cos_illum, expected_illum, rtol=0, atol=1e-6)
    late_sza, _ = independent_sun(TIMES + pd.Timedelta(minutes=30), LAT, LON, SLOPE, ASPECT, crocus_astronomy)
    assert (np.abs(cos_sza - late_sza)[2:] > 0.04).all()
    # The true sun: within a few 1e-3 at winter noon where a few minutes do not matter (not on the
    # east slope), within 0.03 elsewhere (the equation of time is 6 minutes off in June and December).
    true_sza, true_illum = independent_sun(TIMES, LAT, LON, SLOPE, ASPECT)
    assert (true_sza > 0.3).all()  # all in daylight
    tolerance = np.where((np.arange(4)[:, None] < 2) & (ASPECT != 90), 4e-3, 0.03)
    assert (np.abs(cos_sza - true_sza) < tolerance).all()
    assert (np.abs(cos_illum - true_illum) < tolerance).all()


def test_flat_ground_and_the_horizontal_cosine_of_snowtools():
    times = pd.date_range("2010-12-20 00:00", "2011-06-22 00:00", freq="7h")  # all hours of the day
    lat, lon = np.array([44.4, 45.3, 46.0]), np.array([6.7, 6.4, 7.0])
    flat = np.zeros(3)
    cos_sza, cos_illum = sun_geometry(times, lat, lon, flat, -np.ones(3))
    up = cos_sza > 0
    assert 0.3 < up.mean() < 0.7 and (cos_sza[~up] == 0).all() and (cos_sza <= 1).all()
    np.testing.assert_allclose(cos_illum[up], cos_sza[up], rtol=0, atol=1e-12)
    # The same as snowtools' coszenith at the same times, wherever that one has the sun up (it puts the
    # sun down below cos 1e-3, slope_aspect_correction below 1e-4).
    horizontal = sun().coszenith(radiation_times(times), lat, lon, flat, flat)
    np.testing.assert_allclose(cos_sza[horizontal > 0], horizontal[horizontal > 0], rtol=0, atol=1e-12)
    assert (cos_sza[horizontal == 0] < 1e-3).all()
    # Aspect does not matter on flat ground; slope and aspect do not change cos_sza.
    np.testing.assert_array_equal(sun_geometry(times, lat, lon, flat, [90.0, 180.0, 270.0])[1][up], cos_illum[up])
    np.testing.assert_array_equal(sun_geometry(times, lat, lon, [40.0, 20.0, 10.0], [0.0, 90.0, 180.0])[0], cos_sza)


def test_slopes_facing_the_winter_sun_are_lit_more_steeply():
    times = pd.date_range("2010-12-01 12:00", "2011-01-31 12:00", freq="D")  # local noon, lon 6.5 E
    cos_sza, cos_illum = sun_geometry(times, np.full(3, 45.0), np.full(3, 6.5), [0.0, 40.0, 40.0],
                                      [-1.0, 180.0, 0.0])
    assert (cos_sza > 0.3).all()
    assert (cos_illum[:, 1] > 2 * cos_sza[:, 1]).all() and (cos_illum[:, 1] > 0.85).all()  # south
    assert (cos_illum[:, 2] < cos_sza[:, 2]).all() and (cos_illum[:, 2] < 0).all()  # north: behind the slope
    # An east slope is lit in the morning more than a west one, less in the afternoon.
    times = pd.DatetimeIndex(["2011-03-01 09:00", "2011-03-01 16:00"])
    _, cos_illum = sun_geometry(times, [45.0, 45.0], [6.5, 6.5], [30.0, 30.0], [90.0, 270.0])
    assert cos_illum[0, 0] > cos_illum[0, 1] and cos_illum[1, 0] < cos_illum[1, 1]


@pytest.mark.parametrize("block", [1, 5])
def test_any_block_of_times_gives_the_same_values(block):
    times = pd.date_range("2011-02-10 05:00", periods=23, freq="h")
    whole = sun_geometry(times, LAT, LON, SLOPE, ASPECT)
    parts = [sun_geometry(times[i:i + block], LAT, LON, SLOPE, ASPECT) for i in range(0, len(times), block)]
    for k in range(2):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])
    # Anything pandas reads: one datetime64, one string.
    single = sun_geometry(np.datetime64("2011-02-10 12:00"), LAT, LON, SLOPE, ASPECT)
    np.testing.assert_array_equal(single[1], sun_geometry("2011-02-10 12:00", LAT, LON, SLOPE, ASPECT)[1])
    np.testing.assert_array_equal(single[1][0], whole[1][7])
