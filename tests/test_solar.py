"""utils.solar: SURFEX's sun against SURFEX's own SUNPOS, and the light of a Crocus step (fluxes,
sky-view factor, zenith cap, daylight, illumination angle) on small hand-made cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils.solar import S2M_LIGHT, LightSettings, crocus_light, solar_angles

# SUNPOS of SURFEX, compiled from its source: every 15 min of 10 dates (2012-02-29 among them) at 4 points.
SUNPOS_CASES = Path(__file__).parent / "data" / "surfex_sunpos_cases.csv"
QUARTER = pd.Timedelta(minutes=15)


def sunpos_cases() -> pd.DataFrame:
    cases = pd.read_csv(SUNPOS_CASES)
    cases["time"] = (pd.to_datetime(cases[["year", "month", "day"]]) + pd.to_timedelta(cases.seconds_utc, unit="s"))
    return cases


def sun_per_case(cases: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """solar_angles at each case's own time and point."""
    zenith, azimuth = np.empty(len(cases)), np.empty(len(cases))
    for (lat, lon), group in cases.groupby(["lat", "lon"]):
        z, a = solar_angles(group.time.to_numpy(), [lat], [lon])
        zenith[group.index], azimuth[group.index] = z[:, 0], a[:, 0]
    return zenith, azimuth


def test_the_sun_is_surfex_sunpos():
    cases = sunpos_cases()
    zenith, azimuth = sun_per_case(cases)
    np.testing.assert_allclose(zenith, cases.zenith_rad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(azimuth, cases.azimuth_rad, rtol=0, atol=1e-12)
    # Sunrise and sunset are among the cases: the zenith angle crosses pi/2 in most (point, date)
    # series (not in the polar night and midnight sun at 68 N), on the same side as SURFEX's everywhere.
    up = cases.zenith_rad.to_numpy() < np.pi / 2
    np.testing.assert_array_equal(zenith < np.pi / 2, up)
    crossings = pd.Series(up).groupby([cases.lat, cases.time.dt.date]).agg(lambda u: int(np.sum(np.diff(u) != 0)))
    assert (crossings >= 2).sum() >= 36 and len(crossings) == 40


def test_a_year_of_365_days_would_be_seen():
    """The comparison is sharp enough to tell the leap-year rule: the same instant of the day of
    year 60 in 2011 (365 days) and 2012 (366 days) gives declinations 1e-4 rad apart."""
    z2011, _ = solar_angles(["2011-03-01 12:00"], [0.0], [0.0])
    z2012, _ = solar_angles(["2012-02-29 12:00"], [0.0], [0.0])  # day 60 of a leap year
    assert 5e-5 < abs(z2011[0, 0] - z2012[0, 0]) < 1e-3


def sun_vector(zenith, azimuth):
    """(east, north, up) unit vector towards the sun (azimuth clockwise from North)."""
    return np.stack([np.sin(zenith) * np.sin(azimuth), np.sin(zenith) * np.cos(azimuth), np.cos(zenith)], axis=-1)


def slope_normal(slope, aspect):
    """(east, north, up) unit normal of a slope facing `aspect` (degrees clockwise from North)."""
    beta, a = np.deg2rad(slope), np.deg2rad(aspect)
    return np.stack([np.sin(beta) * np.sin(a), np.sin(beta) * np.cos(a), np.cos(beta)], axis=-1)


# Flat, 40-degree south, 30-degree east and 40-degree north slopes near Mont-Blanc.
LAT = np.array([45.9, 45.9, 45.9, 45.9])
LON = np.array([6.9, 6.9, 6.9, 6.9])
SLOPE = np.array([0.0, 40.0, 30.0, 40.0])
ASPECT = np.array([-1.0, 180.0, 90.0, 0.0])


def test_fluxes_of_the_last_step_and_the_sky_view_factor():
    times = pd.date_range("2011-02-14 09:00", periods=4, freq="h")
    direct = np.array([[100.0] * 4, [200.0] * 4, [0.0] * 4, [40.0] * 4])
    diffuse = np.array([[20.0] * 4, [60.0] * 4, [80.0] * 4, [0.0] * 4])
    light = crocus_light(times, direct, diffuse, LAT, LON, SLOPE, ASPECT)
    # The first stamp has no stamp before it: no step of this series ended there.
    for values in light[:4]:
        assert np.isnan(values[0]).all()
    assert not light.daylight[0].any()
    # 0.25 F(H-1) + 0.75 F(H), the diffuse flux times (1 + cos(slope)) / 2.
    sky_view = (1 + np.cos(np.deg2rad(SLOPE))) / 2
    np.testing.assert_allclose(light.direct_sw[1:, 0], [175.0, 50.0, 30.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(light.diffuse_sw[1:], np.array([50.0, 75.0, 20.0])[:, None] * sky_view,
                               rtol=0, atol=1e-12)
    assert sky_view[0] == 1 and light.diffuse_sw[1, 1] < 50.0 * 0.9  # flat ground keeps its diffuse flux
    np.testing.assert_array_equal(light.direct_sw[1:, 1:], light.direct_sw[1:, :1].repeat(3, axis=1))
    # Without LSLOPE the diffuse flux is taken as it is.
    plain = crocus_light(times, direct, diffuse, LAT, LON, SLOPE, ASPECT, settings=LightSettings(lslope=False))
    np.testing.assert_allclose(plain.diffuse_sw[1:], np.array([50.0, 75.0, 20.0])[:, None].repeat(4, axis=1),
                               rtol=0, atol=1e-12)
    # Another surface step: half-hour steps take the fluxes (and the zenith) half-way.
    half = crocus_light(times, direct, diffuse, LAT, LON, SLOPE, ASPECT, settings=LightSettings(surface_step=1800))
    np.testing.assert_allclose(half.direct_sw[1:, 0], [150.0, 100.0, 20.0], rtol=0, atol=1e-12)
    zenith, _ = solar_angles(times[1:] - pd.Timedelta(minutes=30), LAT, LON)
    np.testing.assert_allclose(half.cos_zenith[1:], np.cos(zenith), rtol=0, atol=1e-15)


def test_the_sun_of_the_step_and_the_illumination_angle():
    times = pd.date_range("2011-02-14 06:00", "2011-02-15 06:00", freq="h")  # a whole day, hourly
    lit = np.full((len(times), 4), 100.0)
    light = crocus_light(times, lit, lit, LAT, LON, SLOPE, ASPECT)
    zenith_start, _ = solar_angles(times - QUARTER, LAT, LON)
    zenith_end, azimuth_end = solar_angles(times, LAT, LON)
    _, azimuth_start = solar_angles(times - QUARTER, LAT, LON)
    # With shortwave all day, the zenith angle at the start of the step, capped at pi/2 - 0.01.
    expected = np.cos(np.minimum(zenith_start, np.pi / 2 - 0.01))
    np.testing.assert_allclose(light.cos_zenith[1:], expected[1:], rtol=0, atol=1e-15)
    night = zenith_start[1:] > np.pi / 2 - 0.01
    assert night.sum() > 20 and np.all(light.cos_zenith[1:][night] == np.cos(np.pi / 2 - 0.01))
    assert light.daylight[1:].all()  # Crocus calls TARTES whenever the step has shortwave
    # The illumination cosine: the angle between the sun (that zenith, the azimuth at the stamp)
    # and the normal to the slope, with vectors.
    capped = np.arccos(expected)
    dot = np.einsum("tpk,pk->tp", sun_vector(capped, azimuth_end), slope_normal(SLOPE, np.maximum(ASPECT, 0)))
    np.testing.assert_allclose(light.cos_illum[1:], np.clip(dot, -1, 1)[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(light.cos_illum[1:, 0], light.cos_zenith[1:, 0], rtol=0, atol=1e-15)  # flat
    # The azimuth at the stamp, not at the start of the step: 15 minutes move it by several degrees by day.
    day = ~night.any(axis=1)
    moved = np.einsum("tpk,pk->tp", sun_vector(capped, azimuth_start), slope_normal(SLOPE, np.maximum(ASPECT, 0)))
    assert np.abs(moved - dot)[1:][day][:, 2].max() > 0.02
    # A 40-degree south slope at noon in February sees the sun about twice as high; a north one, from behind.
    noon = times.get_loc(pd.Timestamp("2011-02-14 12:00"))
    assert light.cos_illum[noon, 1] > 1.8 * light.cos_zenith[noon, 1] > 0.8
    assert light.cos_illum[noon, 3] < 0 < light.cos_zenith[noon, 3]


def test_daylight_and_the_zenith_cap():
    times = pd.to_datetime(["2011-01-15 03:00", "2011-01-15 04:00", "2011-01-15 11:00", "2011-01-15 12:00"])
    lat, lon, flat = [45.9], [6.9], [0.0]
    # At 04:00 the sun is down: with radiation anyway (a forcing can have some), the zenith is capped
    # and TARTES runs; at noon without any radiation, the sun is put down and TARTES does not run.
    direct = np.array([[0.0], [8.0], [0.0], [0.0]])
    diffuse = np.array([[0.0], [4.0], [0.0], [0.0]])
    light = crocus_light(times, direct, diffuse, lat, lon, flat, [-1.0])
    assert light.direct_sw[1, 0] == 6.0 and light.cos_zenith[1, 0] == np.cos(np.pi / 2 - 0.01)
    assert light.daylight[1, 0] and not light.daylight[3, 0]
    assert 0 <= light.cos_zenith[3, 0] <= 1e-8 and light.direct_sw[3, 0] == light.diffuse_sw[3, 0] == 0
    # Shortwave of 1e-9 W m-2 in the step: below Crocus' threshold, though the zenith is capped.
    tiny = crocus_light(times, direct * 0, np.array([[0.0], [0.0], [0.0], [1.2e-9]]), lat, lon, flat, [-1.0])
    assert tiny.diffuse_sw[3, 0] == pytest.approx(0.9e-9) and not tiny.daylight[3, 0]
    sunny = crocus_light(times, direct * 0, np.array([[0.0], [0.0], [0.0], [1.0]]), lat, lon, flat, [-1.0])
    assert sunny.daylight[3, 0] and sunny.cos_zenith[3, 0] > 0.3 and not sunny.daylight[1, 0]


def test_blocks_of_stamps_give_the_same_light():
    times = pd.date_range("2011-12-31 20:00", periods=12, freq="h")  # across a year's end
    rng = np.random.default_rng(0)
    direct, diffuse = rng.uniform(0, 300, (12, 4)), rng.uniform(0, 100, (12, 4))
    whole = crocus_light(times, direct, diffuse, LAT, LON, SLOPE, ASPECT)
    for start in range(1, 11, 3):  # each block with the stamp before it
        rows = slice(start - 1, start + 3)
        part = crocus_light(times[rows], direct[rows], diffuse[rows], LAT, LON, SLOPE, ASPECT)
        for name, values in part._asdict().items():
            np.testing.assert_array_equal(values[1:], getattr(whole, name)[start:start + 3], err_msg=name)


def test_bad_settings_and_times_are_refused():
    with pytest.raises(ValueError, match="LINTERP_SW=T is not reproduced"):
        LightSettings(linterp_sw=True)
    with pytest.raises(ValueError, match="surface_step"):
        LightSettings(surface_step=0)
    times = pd.to_datetime(["2011-01-15 11:00", "2011-01-15 11:10"])
    with pytest.raises(ValueError, match="shorter than the surface step"):
        crocus_light(times, np.ones((2, 1)), np.ones((2, 1)), [45.0], [6.0], [0.0], [-1.0])
    with pytest.raises(ValueError, match="expected \\(time, point\\)"):
        crocus_light(times, np.ones((3, 1)), np.ones((3, 1)), [45.0], [6.0], [0.0], [-1.0])
    assert S2M_LIGHT.describe()["namelist"] == {"XTSTEP_SURF": 900.0, "LINTERP_SW": "F", "LSLOPE": "T"}
