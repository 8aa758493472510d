"""A small multi-layer snowpack model, hour by hour, for the synthetic Crocus-like data.

It keeps what TARTES sees (layer thickness, SSA, density, soot, dust) plausible, not a full Crocus.
Layers are stored top first, at most 50; all points of a season advance together: a Python loop over
the hours calls, each hour, the radiation for all the points with snow in daylight (a callable: TARTES,
Gardner-Sharp, or an emulator of TARTES), between compiled (numba) steps over points and layers. Each
hour, in order (the radiation after the snowfall, as Crocus calls TARTES after adding a step's snow):

1. Snowfall. Fresh snow density from Crocus' law in air temperature and wind (Vionnet et al. 2012,
   GMD 5, 773, eq. 2): rho = 109 + 6 (Ta - 273.15) + 26 sqrt(U), at least 50 kg m-3. Fresh SSA from
   the SSA-density relation of Domine et al. (2007, JGR 112, F02031): SSA = -30.82 ln(rho / 1000) - 20.6
   m2 kg-1, i.e. about 70 m2 kg-1 for cold calm snow, 40 for warm or windy snow. A snowfall opens a
   new layer; the following hours of the same episode (top layer younger than 12 h) fill it up to
   12 kg m-2, after which the next layer opens.
2. Rain and impurity deposition (wet + dry, g m-2 s-1) go to the surface layer; on bare ground they are lost.
3. Heat. A surface energy balance (absorbed shortwave, longwave with emissivity 0.99, bulk sensible and
   latent fluxes with a Louis-type stability factor, Richardson number capped at 0.2 as in Crocus),
   linearised in the surface temperature, closes an implicit conduction column (Yen 1981
   conductivity k = 2.22 (rho / 1000)^1.885) above a 0.3 m soil slab that exchanges with a 1 degC
   deep ground. The shortwave is taken as Crocus takes it from TARTES (docs/crocus_coupling.md):
   the radiation (`Snowpack.run`; by default TARTES, preprocessing.tartes_labels.energy_budget, at
   Crocus's light of the hour, over the point's soil albedo) gives the energy absorbed in each
   layer, the top layer's entering the surface energy balance and the others' the heat equation,
   and the energy reaching the ground, added to the heat flux into the soil slab. The option
   radiation="gardner" keeps the broadband albedo of Gardner and Sharp (2010, JGR 115, F01009)
   instead, from the surface SSA and a soot-equivalent impurity load (dust counts 1/250 of soot,
   their mass absorption ratio near 550 nm), relaxed to the soil albedo for thin snow, with all the
   absorbed energy at the surface. Energy above 0 degC melts
   ice; meltwater, rain and the excess over a holding capacity of 5 % of the pore volume percolate
   down and refreeze in cold layers (Vionnet et al. 2012) as far as their cold content allows and
   their pores can take it: a layer whose pores fill up is ice (917 kg m-3) and lets water through;
   water leaving the bottom runs off.
   Sublimation and deposition change the surface layer mass.
4. Compaction under the weight of the layers above, Crocus' viscosity (Vionnet et al. 2012, eq. 8):
   eta = f1 eta0 (rho / 250) exp(0.1 (273.15 - T) + 0.023 rho), eta0 = 7.62237e6 N s m-2,
   f1 = 1 / (1 + 60 theta_liquid); it stops at the density of ice (liquid water included).
5. SSA. Dry snow follows Taillandier et al. (2007, JGR 112, F03003): SSA(t) = B - A ln(t + dt) in
   cm2 g-1 with their isothermal coefficients, or their temperature-gradient ones above 15 K m-1,
   functions of the layer temperature and of its fresh SSA; applied hour by hour through the
   equivalent age. Wet snow coarsens as Brun (1989, Ann. Glaciol. 13, 22): the grain volume grows by
   1.28e-8 + 4.22e-10 theta^3 mm3 s-1 (theta: liquid water, % of mass), with SSA = 3 / (rho_ice r).
   SSA stays above 2 m2 kg-1.
6. Impurities. Kept as masses per layer: melt and sublimation concentrate them in what is left (the
   surface layer of melting snow gets the most loaded); percolating water carries 20 % (soot) and
   2 % (dust) of their concentration (scavenging ratios of Flanner et al. 2007, JGR 112, D11202).
7. Layers. Layers lighter than 0.05 kg m-2 join their neighbour; a pack lighter than 0.005 kg m-2
   vanishes. When a layer opens, the two neighbours with the smallest (dz_1 + dz_2)(1 + d) / (1 + z /
   0.3 m) merge (d: their difference in SSA, density and impurities; z: their depth; mass-weighted
   means, as Crocus) if together they are thinner than 0.02 m + 0.06 z, or if 50 layers are there:
   like Crocus' grid, thin near the surface and coarser at depth.

Output variables carry SURFEX-Crocus PRO names and units (per layer, top first: SNOWDZ m, SNOWSSA
m2 kg-1, RSN_VEG kg m-3 including liquid water, SNOWIMP1/2 g g-1 of total mass, SNOWTEMP K, SNOWLIQ
kg m-3; per point WSN_T_ISBA kg m-2 = sum(SNOWDZ * RSN_VEG), DSN_T_ISBA m), NaN for absent layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from preprocessing.tartes_labels import energy_budget
from utils.profiles import EnergyBudget
from utils.solar import CrocusLight
from utils.tartes_constants import SOIL_ALBEDO

N_LAYERS = 50
DT = 3600.0  # s, the SAFRAN time step

# Physical constants (SI).
T_FUS = 273.15
RHO_ICE = 917.0
RHO_WATER = 1000.0
LATENT_FUSION = 3.337e5
LATENT_SUBLIMATION = 2.838e6
LATENT_VAPORISATION = 2.501e6
C_ICE = 2106.0
C_WATER = 4218.0
STEFAN_BOLTZMANN = 5.670374e-8
GRAVITY = 9.81
KARMAN = 0.4
CP_AIR = 1004.7
R_DRY = 287.05

# Surface and soil.
EMISSIVITY_SNOW = 0.99
EMISSIVITY_SOIL = 0.95
THIN_SNOW_DEPTH = 0.02  # m, e-folding depth over which the soil shows through the Gardner-Sharp albedo
Z_REF = 2.0  # m, height of the SAFRAN air temperature / wind
Z0 = 1e-3  # m, roughness length of snow and of the short alpine vegetation
RI_MAX = 0.2
SOIL_THICKNESS = 0.3  # m
SOIL_HEAT_CAPACITY = 2.0e6 * SOIL_THICKNESS  # J m-2 K-1
SOIL_CONDUCTIVITY = 1.0  # W m-1 K-1
DEEP_CONDUCTANCE = 1.0  # W m-2 K-1, between the soil slab and the deep ground
DEEP_TEMPERATURE = T_FUS + 1.0
SOIL_EVAPORATION_FACTOR = 0.3  # fraction of potential evaporation from the (moist) bare soil

# Snowfall and layering.
EPISODE_HOURS = 12.0  # a top layer younger than this still belongs to the current snowfall
LAYER_MASS_NEW_MAX = 12.0  # kg m-2 of fresh snow per layer
LAYER_MASS_MIN = 0.05  # kg m-2: lighter layers join their neighbour
PACK_MASS_MIN = 0.005  # kg m-2: a lighter pack vanishes
MERGE_DEPTH_SCALE = 0.3  # m: deeper neighbours merge more readily, keeping the surface finely layered
# Thickness aimed at depth z below the surface: pairs thinner than it merge when a layer opens.
DZ_AIM_SURFACE = 0.02  # m
DZ_AIM_GRADIENT = 0.06  # m per m of depth
SSA_MIN = 2.0  # m2 kg-1
SSA_FRESH_RANGE = (20.0, 80.0)

# Water and impurities.
HOLDING_CAPACITY = 0.05  # fraction of the pore volume
SCAVENGING_SOOT = 0.2
SCAVENGING_DUST = 0.02
DUST_SOOT_EQUIVALENT = 1.0 / 250.0

# Compaction (Vionnet et al. 2012).
ETA0 = 7.62237e6
A_ETA = 0.1
B_ETA = 0.023
C_ETA = 250.0

# Metamorphism.
GRADIENT_TG = 15.0  # K m-1: above it the temperature-gradient law of Taillandier et al. (2007)

# State variables per layer, the second axis of Snowpack.layers.
DZ, ICE, LIQ, SSA, SSA0, TEMP, SOOT, DUST, AGE = range(9)
N_STATE = 9
# Forcing fields per hour and point, the last axis of the forcing array given to Snowpack.run.
# The shortwave is not among them: it comes with the light of each hour (Snowpack.run).
FORCING_FIELDS = ("Tair", "Qair", "PSurf", "Wind", "LWdown", "Snowf", "Rainf", "soot_deposition", "dust_deposition")
F_TAIR, F_QAIR, F_PSURF, F_WIND, F_LW, F_SNOW, F_RAIN, F_SOOT, F_DUST = range(len(FORCING_FIELDS))
LAYER_OUTPUTS = ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2", "SNOWTEMP", "SNOWLIQ")
POINT_OUTPUTS = ("WSN_T_ISBA", "DSN_T_ISBA")


@numba.njit(cache=True)
def fresh_snow_density(t_air, wind):
    return max(50.0, 109.0 + 6.0 * (t_air - T_FUS) + 26.0 * np.sqrt(max(wind, 0.0)))


@numba.njit(cache=True)
def fresh_snow_ssa(density):
    ssa = -30.82 * np.log(density / 1000.0) - 20.6
    return min(max(ssa, SSA_FRESH_RANGE[0]), SSA_FRESH_RANGE[1])


@numba.njit(cache=True)
def saturation_humidity(t, p, over_ice):
    """Saturation specific humidity (kg/kg) and its derivative in t (Magnus / Buck formulas)."""
    if over_ice:
        a, b = 22.452, 0.61
    else:
        a, b = 17.502, 32.19
    e = 611.2 * np.exp(a * (t - T_FUS) / (t - b))
    de = e * a * (T_FUS - b) / (t - b) ** 2
    q = 0.622 * e / (p - 0.378 * e)
    dq = 0.622 * p * de / (p - 0.378 * e) ** 2
    return q, dq


@numba.njit(cache=True)
def conductivity(density):
    return 2.22362 * (density / 1000.0) ** 1.885


@numba.njit(cache=True)
def mass(s, i):
    return s[ICE, i] + s[LIQ, i]


@numba.njit(cache=True)
def heat_capacity(s, i):
    return C_ICE * s[ICE, i] + C_WATER * s[LIQ, i]


@numba.njit(cache=True)
def ice_thickness(m):
    """The thickness of m kg m-2 at the density of ice, the thinnest a layer of mass m can be; rounded
    up where needed so that the density computed back, m / dz, does not come out above RHO_ICE."""
    dz = m / RHO_ICE
    while m / dz > RHO_ICE:
        dz = np.nextafter(dz, np.inf)
    return dz


@numba.njit(cache=True)
def merge_into(s, keep, gone):
    """Layer `gone` joins layer `keep` (mass-weighted properties, summed masses)."""
    m_keep, m_gone = s[ICE, keep], s[ICE, gone]
    total = m_keep + m_gone
    if total > 0:
        for v in (SSA, SSA0, AGE):
            s[v, keep] = (m_keep * s[v, keep] + m_gone * s[v, gone]) / total
    c_keep, c_gone = heat_capacity(s, keep), heat_capacity(s, gone)
    if c_keep + c_gone > 0:
        s[TEMP, keep] = (c_keep * s[TEMP, keep] + c_gone * s[TEMP, gone]) / (c_keep + c_gone)
    for v in (DZ, ICE, LIQ, SOOT, DUST):
        s[v, keep] += s[v, gone]
    s[DZ, keep] = max(s[DZ, keep], ice_thickness(mass(s, keep)))  # two ice layers: the sums' rounding


@numba.njit(cache=True)
def remove_layer(s, n, i):
    """Drop layer i of n, shifting the ones below up; returns the new count."""
    for j in range(i, n - 1):
        s[:, j] = s[:, j + 1]
    s[:, n - 1] = 0.0
    return n - 1


@numba.njit(cache=True)
def soot_equivalent(s, i):
    m = max(mass(s, i), 1e-12)
    return (s[SOOT, i] + DUST_SOOT_EQUIVALENT * s[DUST, i]) / (1000.0 * m)


@numba.njit(cache=True)
def merge_most_similar(s, n, force):
    """Merge the pair of neighbours with the smallest (dz_1 + dz_2)(1 + d) / (1 + z / 0.3 m), if
    forced or if the pair is thinner than the thickness aimed at its depth z; returns the count."""
    best, best_cost, best_depth, depth = 0, np.inf, 0.0, 0.0
    for i in range(n - 1):
        j = i + 1
        depth += s[DZ, i]
        rho_i = mass(s, i) / s[DZ, i]
        rho_j = mass(s, j) / s[DZ, j]
        difference = (abs(np.log(s[SSA, i] / s[SSA, j])) + abs(rho_i - rho_j) / 100.0
                      + 0.5 * abs(np.log((soot_equivalent(s, i) + 1e-9) / (soot_equivalent(s, j) + 1e-9))))
        cost = (s[DZ, i] + s[DZ, j]) * (1.0 + difference) / (1.0 + depth / MERGE_DEPTH_SCALE)
        if cost < best_cost:
            best, best_cost, best_depth = i, cost, depth
    thin = s[DZ, best] + s[DZ, best + 1] < DZ_AIM_SURFACE + DZ_AIM_GRADIENT * best_depth
    if n < 2 or not (force or thin):
        return n
    merge_into(s, best, best + 1)
    return remove_layer(s, n, best + 1)


@numba.njit(cache=True)
def add_snowfall(s, n, snow_mass, t_air, wind):
    density = fresh_snow_density(t_air, wind)
    ssa = fresh_snow_ssa(density)
    temp = min(t_air, T_FUS)
    same_episode = n > 0 and s[AGE, 0] < EPISODE_HOURS and s[ICE, 0] + snow_mass <= LAYER_MASS_NEW_MAX
    if n > 0 and (same_episode or snow_mass < LAYER_MASS_MIN):
        c_old, c_new = heat_capacity(s, 0), C_ICE * snow_mass
        s[TEMP, 0] = (c_old * s[TEMP, 0] + c_new * temp) / (c_old + c_new)
        m_old = s[ICE, 0]
        s[SSA, 0] = (m_old * s[SSA, 0] + snow_mass * ssa) / (m_old + snow_mass)
        s[SSA0, 0] = (m_old * s[SSA0, 0] + snow_mass * ssa) / (m_old + snow_mass)
        s[AGE, 0] = m_old * s[AGE, 0] / (m_old + snow_mass)
        s[ICE, 0] += snow_mass
        s[DZ, 0] += snow_mass / density
        return n
    n = merge_most_similar(s, n, n == N_LAYERS)
    for j in range(n, 0, -1):
        s[:, j] = s[:, j - 1]
    s[:, 0] = 0.0
    s[DZ, 0] = snow_mass / density
    s[ICE, 0] = snow_mass
    s[SSA, 0] = ssa
    s[SSA0, 0] = ssa
    s[TEMP, 0] = temp
    return n + 1


@numba.njit(cache=True)
def solve_tridiagonal(a, b, c, d, m):
    """Thomas algorithm on the first m rows (a: sub-, b: main, c: super-diagonal); d becomes x."""
    for i in range(1, m):
        w = a[i] / b[i - 1]
        b[i] -= w * c[i - 1]
        d[i] -= w * d[i - 1]
    d[m - 1] /= b[m - 1]
    for i in range(m - 2, -1, -1):
        d[i] = (d[i] - c[i] * d[i + 1]) / b[i]


@numba.njit(cache=True)
def surface_fluxes(t_surf, f, shortwave, emissivity, evaporation_factor, over_ice):
    """Net surface flux (W m-2, positive into the surface) with `shortwave` (W m-2) absorbed there,
    its derivative in t_surf, and the latent flux with its derivative."""
    t_air, q_air, p_surf, wind = f[F_TAIR], f[F_QAIR], f[F_PSURF], max(f[F_WIND], 0.5)
    rho_air = p_surf / (R_DRY * t_air)
    richardson = min(GRAVITY * Z_REF * (t_air - t_surf) / (t_air * wind * wind), RI_MAX)
    stability = 1.0 / (1.0 + 10.0 * richardson) if richardson > 0 else 1.0
    exchange = rho_air * (KARMAN / np.log(Z_REF / Z0)) ** 2 * wind * stability  # kg m-2 s-1
    q_sat, dq_sat = saturation_humidity(t_surf, p_surf, over_ice)
    latent = LATENT_SUBLIMATION if over_ice else LATENT_VAPORISATION
    flux_latent = evaporation_factor * exchange * latent * (q_air - q_sat)
    d_latent = -evaporation_factor * exchange * latent * dq_sat
    flux = (shortwave + emissivity * (f[F_LW] - STEFAN_BOLTZMANN * t_surf ** 4)
            + CP_AIR * exchange * (t_air - t_surf) + flux_latent)
    d_flux = -4.0 * emissivity * STEFAN_BOLTZMANN * t_surf ** 3 - CP_AIR * exchange + d_latent
    return flux, d_flux, flux_latent, d_latent


@numba.njit(cache=True)
def heat_step(s, n, t_soil, f, shortwave_layers, shortwave_ground, work):
    """Implicit conduction through the snow layers and the soil slab, closed by the surface energy
    balance; returns (new soil temperature, surface latent flux W m-2, shortwave taken W m-2).

    The shortwave comes as Crocus takes it from TARTES: shortwave_layers[i] (W m-2) is absorbed in
    snow layer i, the top layer's in the surface energy balance (PRADSINK(1)) and the others' as
    sources in the heat equation (PRADSINK(i) - PRADSINK(i-1)); shortwave_ground (W m-2) goes into
    the soil slab, added to the heat flux into the ground under snow (PRADXS), in the surface
    balance of bare ground. The shortwave taken is the sum of what entered the equations.
    When the surface would pass 0 degC, it is held at 0 degC and the surplus of the energy balance
    is left in its temperature above 0 degC, for `melt` to turn into meltwater.
    """
    a, b, c, d = work[0], work[1], work[2], work[3]
    taken = shortwave_ground
    if n > 0:
        t_surf = s[TEMP, 0]
        taken += shortwave_layers[0]
        flux, d_flux, latent, d_latent = surface_fluxes(t_surf, f, shortwave_layers[0], EMISSIVITY_SNOW, 1.0, True)
    else:
        t_surf = t_soil
        flux, d_flux, latent, d_latent = surface_fluxes(t_surf, f, shortwave_ground, EMISSIVITY_SOIL,
                                                        SOIL_EVAPORATION_FACTOR, t_soil < T_FUS)
    # Rows 0..n-1: snow layers, row n: soil slab; work[4:] keeps the system for a second solve.
    for i in range(n + 1):
        a[i] = 0.0
        c[i] = 0.0
        if i < n:
            capacity = max(heat_capacity(s, i), 1.0)
            b[i] = capacity / DT
            d[i] = capacity / DT * s[TEMP, i]
            if i > 0:
                d[i] += shortwave_layers[i]
                taken += shortwave_layers[i]
        else:
            b[i] = SOIL_HEAT_CAPACITY / DT + DEEP_CONDUCTANCE
            d[i] = SOIL_HEAT_CAPACITY / DT * t_soil + DEEP_CONDUCTANCE * DEEP_TEMPERATURE
            if n > 0:
                d[i] += shortwave_ground
    for i in range(n):
        half_i = s[DZ, i] / (2.0 * conductivity(mass(s, i) / s[DZ, i]))
        if i + 1 < n:
            half_j = s[DZ, i + 1] / (2.0 * conductivity(mass(s, i + 1) / s[DZ, i + 1]))
        else:
            half_j = SOIL_THICKNESS / (2.0 * SOIL_CONDUCTIVITY)
        conductance = 1.0 / (half_i + half_j)
        b[i] += conductance
        b[i + 1] += conductance
        c[i] = -conductance
        a[i + 1] = -conductance
    work[4:8, :n + 1] = work[0:4, :n + 1]
    b[0] -= d_flux
    d[0] += flux - d_flux * t_surf
    solve_tridiagonal(a, b, c, d, n + 1)
    if n > 0 and d[0] > T_FUS:
        # Again with the surface at 0 degC: its energy surplus over the hour melts snow.
        work[0:4, :n + 1] = work[4:8, :n + 1]
        conductance = -c[0]
        d[1] += conductance * T_FUS
        a[1] = 0.0
        solve_tridiagonal(a[1:], b[1:], c[1:], d[1:], n)
        surplus = DT * (flux + d_flux * (T_FUS - t_surf) + conductance * (d[1] - T_FUS))
        surplus -= heat_capacity(s, 0) * (T_FUS - s[TEMP, 0])
        d[0] = T_FUS + surplus / max(heat_capacity(s, 0), 1.0)
        latent += d_latent * (T_FUS - t_surf)
    else:
        latent += d_latent * (d[0] - t_surf)
    for i in range(n):
        s[TEMP, i] = d[i]
    return d[n], latent, taken


@numba.njit(cache=True)
def melt(s, n):
    """Energy above 0 degC melts ice; what a layer cannot use warms the one below. Returns the
    energy left for the soil (J m-2)."""
    carry = 0.0
    for i in range(n):
        capacity = heat_capacity(s, i)
        energy = capacity * (s[TEMP, i] - T_FUS) + carry
        carry = 0.0
        if energy <= 0:
            s[TEMP, i] = T_FUS + energy / max(capacity, 1e-9)
            continue
        melted = min(energy / LATENT_FUSION, s[ICE, i])
        if s[ICE, i] > 0:
            s[DZ, i] *= 1.0 - melted / s[ICE, i]
        s[ICE, i] -= melted
        s[LIQ, i] += melted
        s[TEMP, i] = T_FUS
        carry = energy - melted * LATENT_FUSION
    return carry


@numba.njit(cache=True)
def percolate(s, n):
    """Water above the holding capacity flows down, refreezing in cold layers and carrying some
    impurities; returns the runoff (kg m-2)."""
    water, soot, dust = 0.0, 0.0, 0.0
    for i in range(n):
        s[LIQ, i] += water
        s[SOOT, i] += soot
        s[DUST, i] += dust
        if s[TEMP, i] < T_FUS and s[LIQ, i] > 0:
            cold_content = heat_capacity(s, i) * (T_FUS - s[TEMP, i])  # J m-2
            # Refrozen water fills the pores, no more (the layer does not swell): a layer of ice keeps
            # the cold it has left and lets the water through.
            pores = max(RHO_ICE * s[DZ, i] - s[ICE, i], 0.0)  # kg m-2 of ice they can take
            frozen = min(s[LIQ, i], cold_content / LATENT_FUSION, pores)
            s[LIQ, i] -= frozen
            s[ICE, i] += frozen
            s[TEMP, i] = T_FUS - (cold_content - frozen * LATENT_FUSION) / heat_capacity(s, i)
        porosity = max(1.0 - s[ICE, i] / (s[DZ, i] * RHO_ICE), 0.0)
        capacity = HOLDING_CAPACITY * porosity * s[DZ, i] * RHO_WATER
        m = mass(s, i)
        water = max(s[LIQ, i] - capacity, 0.0)
        s[LIQ, i] -= water
        # Ice and held water weigh at most RHO_ICE per m; this only absorbs rounding (pores filled up).
        s[DZ, i] = max(s[DZ, i], ice_thickness(mass(s, i)))
        soot = min(s[SOOT, i], SCAVENGING_SOOT * s[SOOT, i] / m * water) if m > 0 else 0.0
        dust = min(s[DUST, i], SCAVENGING_DUST * s[DUST, i] / m * water) if m > 0 else 0.0
        s[SOOT, i] -= soot
        s[DUST, i] -= dust
    return water


@numba.njit(cache=True)
def compact(s, n):
    overburden = 0.0
    for i in range(n):
        m = mass(s, i)
        stress = GRAVITY * (overburden + 0.5 * m)
        overburden += m
        density = m / s[DZ, i]
        theta = s[LIQ, i] / (s[DZ, i] * RHO_WATER)
        viscosity = (ETA0 / (1.0 + 60.0 * theta) * density / C_ETA
                     * np.exp(A_ETA * (T_FUS - s[TEMP, i]) + B_ETA * density))
        # No denser than ice, liquid water included (RSN_VEG): the pores cannot close on the water they hold.
        s[DZ, i] = max(s[DZ, i] / (1.0 + DT * stress / viscosity), ice_thickness(m))


@numba.njit(cache=True)
def taillandier_ssa(ssa, ssa0, t_celsius, gradient, hours):
    """Dry-snow SSA after `hours` at constant conditions (Taillandier et al. 2007, cm2 g-1 inside)."""
    s, s0 = 10.0 * ssa, 10.0 * ssa0
    if gradient > GRADIENT_TG:
        a = 0.0961 * s0 - 3.44 * (t_celsius + 1.90)
        b = 0.659 * s0 - 27.2 * (t_celsius - 2.03)
    else:
        a = 0.0760 * s0 - 1.76 * (t_celsius - 2.96)
        b = 0.629 * s0 - 15.0 * (t_celsius - 11.2)
    a = max(a, 1.0)
    equivalent_age = (b - s) / a  # log of (t + dt) at the present SSA
    if equivalent_age > 30.0:  # centuries old: no change within the hour
        return ssa
    return (b - a * np.log(np.exp(equivalent_age) + hours)) / 10.0


@numba.njit(cache=True)
def brun_wet_ssa(ssa, liquid_percent, seconds):
    radius = 3.0 / (RHO_ICE * ssa) * 1000.0  # mm
    volume = 4.0 / 3.0 * np.pi * radius ** 3 + seconds * (1.28e-8 + 4.22e-10 * liquid_percent ** 3)
    radius = (3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0)
    return 3.0 / (RHO_ICE * radius / 1000.0)


@numba.njit(cache=True)
def metamorphism(s, n, t_soil):
    for i in range(n):
        m = mass(s, i)
        if s[LIQ, i] > 1e-6 * m:
            ssa = brun_wet_ssa(s[SSA, i], 100.0 * s[LIQ, i] / m, DT)
        else:
            # Gradient across the layer from its neighbours' centres (soil below the bottom one).
            t_above = s[TEMP, i - 1] if i > 0 else s[TEMP, i]
            z_above = 0.5 * (s[DZ, i - 1] + s[DZ, i]) if i > 0 else 0.0
            t_below = s[TEMP, i + 1] if i + 1 < n else t_soil
            z_below = 0.5 * (s[DZ, i + 1] + s[DZ, i]) if i + 1 < n else 0.5 * (s[DZ, i] + SOIL_THICKNESS)
            gradient = abs(t_below - t_above) / (z_above + z_below)
            ssa = taillandier_ssa(s[SSA, i], s[SSA0, i], s[TEMP, i] - T_FUS, gradient, DT / 3600.0)
        s[SSA, i] = max(ssa, SSA_MIN)


@numba.njit(cache=True)
def tidy(s, n):
    """Merge too light layers into a neighbour (below if any); an almost empty pack vanishes."""
    i = 0
    while i < n:
        if n > 1 and s[ICE, i] < LAYER_MASS_MIN:
            merge_into(s, i + 1 if i + 1 < n else i - 1, i)
            n = remove_layer(s, n, i)
            continue
        i += 1
    if n == 1 and s[ICE, 0] < PACK_MASS_MIN:
        n = remove_layer(s, n, 0)
    return n


@numba.njit(cache=True)
def snowfall(layers, n_layers, forcing):
    """The hour's snowfall on every point (forcing: (points, FORCING_FIELDS)): what the radiation
    sees is the pack with it, as Crocus adds a step's snowfall before it calls TARTES."""
    for p in range(len(n_layers)):
        snow = forcing[p, F_SNOW] * DT
        if snow > 0:
            n_layers[p] = add_snowfall(layers[p], n_layers[p], snow, forcing[p, F_TAIR], forcing[p, F_WIND])


@numba.njit(cache=True)
def step_point(s, n, t_soil, f, shortwave_layers, shortwave_ground, work):
    """The rest of the hour of one point, after its snowfall, given the shortwave absorbed in its
    layers and in the ground (W m-2, see heat_step); returns (layer count, soil temperature,
    shortwave taken W m-2)."""
    if n > 0:
        s[LIQ, 0] += f[F_RAIN] * DT
        s[SOOT, 0] += f[F_SOOT] * DT
        s[DUST, 0] += f[F_DUST] * DT
    t_soil, latent, taken = heat_step(s, n, t_soil, f, shortwave_layers, shortwave_ground, work)
    if n > 0:
        t_soil += melt(s, n) / SOIL_HEAT_CAPACITY
        # Sublimation (latent < 0) or deposition at the surface, impurities staying.
        if s[ICE, 0] > 0:
            change = max(latent * DT / LATENT_SUBLIMATION, -s[ICE, 0])
            s[DZ, 0] *= 1.0 + change / s[ICE, 0]
            s[ICE, 0] += change
        n = tidy(s, n)  # layers melted or sublimated away hand over their water and impurities
    if n > 0:
        percolate(s, n)
        compact(s, n)
        metamorphism(s, n, t_soil)
        for i in range(n):
            s[AGE, i] += DT / 3600.0
        n = tidy(s, n)
    return n, t_soil, taken


@numba.njit(cache=True)
def advance(layers, n_layers, soil_temp, forcing, shortwave_layers, shortwave_ground, taken):
    """The rest of the hour of every point after `snowfall`: shortwave_layers (points, 50) and
    shortwave_ground (points,) in W m-2 (see heat_step); taken (points,) receives the shortwave
    that entered the heat equations."""
    work = np.empty((8, N_LAYERS + 1))
    for p in range(len(n_layers)):
        n_layers[p], soil_temp[p], taken[p] = step_point(layers[p], n_layers[p], soil_temp[p], forcing[p],
                                                         shortwave_layers[p], shortwave_ground[p], work)


@numba.njit(cache=True)
def write_profiles(layers, n_layers, out_layers, out_points):
    """The PRO variables of the state: out_layers (LAYER_OUTPUTS, 50, points), NaN below the pack,
    and out_points (POINT_OUTPUTS, points)."""
    for p in range(len(n_layers)):
        s, n = layers[p], n_layers[p]
        swe, depth = 0.0, 0.0
        for i in range(N_LAYERS):
            if i < n:
                m = mass(s, i)
                out_layers[0, i, p] = s[DZ, i]
                out_layers[1, i, p] = s[SSA, i]
                out_layers[2, i, p] = m / s[DZ, i]
                out_layers[3, i, p] = s[SOOT, i] / (1000.0 * m)
                out_layers[4, i, p] = s[DUST, i] / (1000.0 * m)
                out_layers[5, i, p] = s[TEMP, i]
                out_layers[6, i, p] = s[LIQ, i] / s[DZ, i]
                swe += m
                depth += s[DZ, i]
            else:
                for v in range(out_layers.shape[0]):
                    out_layers[v, i, p] = np.nan
        out_points[0, p] = swe
        out_points[1, p] = depth


# --- The radiation: what the layers and the ground absorb of the hour's shortwave -------------------
#
# A radiation is a callable radiation(layers, light) -> EnergyBudget (utils.profiles), called each
# hour for the points with snow in Crocus's daylight: layers holds the profiles as TARTES takes them
# (RADIATION_LAYERS, (rows, 50) arrays, top first, NaN below the pack), light the (rows,) arrays
# cos_illum, direct_sw, diffuse_sw, cos_zenith and soil_albedo (the light of utils.solar.crocus_light,
# before Crocus's step 0 rules, which the radiation applies). It returns fractions of the incident
# shortwave: albedo (rows,), absorbed (rows, 50), soil (rows,), summing to 1 per row.
RADIATION_LAYERS = ("dz", "ssa", "density", "soot", "dust")  # LAYER_OUTPUTS[:5], PRO units


def tartes_radiation(layers: dict, light: dict) -> EnergyBudget:
    """TARTES as Crocus calls it (preprocessing.tartes_labels.energy_budget)."""
    return energy_budget(**layers, **light)


def gardner_radiation(layers: dict, light: dict) -> EnergyBudget:
    """The Gardner and Sharp (2010) broadband albedo (their diffuse form) of the top layer's SSA and
    soot-equivalent load (ppmw, dust counting DUST_SOOT_EQUIVALENT of soot), relaxed to the soil
    albedo over THIN_SNOW_DEPTH; all the absorbed energy in the top layer, none in the ground."""
    s = 10.0 * layers["ssa"][:, 0]  # cm2 g-1
    pure = 1.48 - s ** -0.07
    load = 1e6 * (layers["soot"][:, 0] + DUST_SOOT_EQUIVALENT * layers["dust"][:, 0])  # g g-1 -> ppmw
    with np.errstate(divide="ignore"):  # 0 ** -0.25 in the branch not taken
        darkening = np.where(load > 0, np.maximum(0.04 - pure, -load ** 0.55 / (
            0.16 + 0.6 * np.sqrt(s) + 1.8 * load ** 0.6 * s ** -0.25)), 0.0)
    soil = np.broadcast_to(light["soil_albedo"], s.shape)
    depth = np.nansum(layers["dz"], axis=1)
    albedo = soil + (pure + darkening - soil) * (1.0 - np.exp(-depth / THIN_SNOW_DEPTH))
    absorbed = np.where(np.isnan(layers["dz"]), np.nan, 0.0)
    absorbed[:, 0] = 1.0 - albedo
    return EnergyBudget(albedo, absorbed, np.zeros(len(albedo)))


RADIATIONS = {"tartes": tartes_radiation, "gardner": gardner_radiation}
# What run() reports of each hour's shortwave (W m-2, (hours, points)): incident, reflected, and
# taken by the heat equations in the snow and in the ground.
RADIATION_OUTPUTS = ("SW_IN", "SW_REFLECTED", "SW_SNOW", "SW_GROUND")


@dataclass
class Snowpack:
    """The state of the snowpacks of a set of points; starts snow-free."""

    layers: np.ndarray  # (points, N_STATE, 50)
    n_layers: np.ndarray  # (points,)
    soil_temp: np.ndarray  # (points,) K
    soil_albedo: np.ndarray  # (points,) albedo of the ground, under the snow and bare

    @classmethod
    def bare(cls, soil_temp: np.ndarray, soil_albedo: float | np.ndarray = SOIL_ALBEDO) -> "Snowpack":
        soil_temp = np.asarray(soil_temp, dtype=np.float64).copy()
        n = len(soil_temp)
        soil_albedo = np.array(np.broadcast_to(np.asarray(soil_albedo, dtype=np.float64), (n,)))
        return cls(np.zeros((n, N_STATE, N_LAYERS)), np.zeros(n, dtype=np.int64), soil_temp, soil_albedo)

    def run(self, forcing: np.ndarray, light: CrocusLight,
            radiation: str | Callable[[dict, dict], EnergyBudget] = "tartes") -> dict[str, np.ndarray]:
        """Advance by forcing.shape[0] hours.

        forcing: (hours, points, FORCING_FIELDS) in SAFRAN units (deposition in g m-2 s-1).
        light: the light of each hour, (hours, points) arrays cos_zenith, cos_illum, direct_sw,
            diffuse_sw, daylight: utils.solar.crocus_light of the hour's end stamp, the light TARTES
            saw for the PRO sample of that stamp (NaN, not daylight, where undefined).
        radiation: "tartes", "gardner" (RADIATIONS) or a callable of the same kind (see above).

        Each hour: the snowfall; then the radiation of the pack with it, at that light, for the
        points with snow in daylight (elsewhere with snow the albedo is 1, as in Crocus; bare ground
        absorbs 1 - soil_albedo); then the rest of the hour with the absorbed shortwave. The hour's
        incident shortwave is the light's direct_sw + diffuse_sw, the flux of the hour's last
        15-min step, for the whole hour: the fractions and the flux TARTES had together. Over the
        hours the interpolation weights add up to the forcing's own total; within the day the energy
        comes about 22 min earlier than in Crocus's four steps, whose fluxes, taken at the start of
        each step, lag the forcing.

        Returns the PRO variables of each hour, after its step: LAYER_OUTPUTS as (hours, 50, points)
        and POINT_OUTPUTS as (hours, points); and the hour's RADIATION_OUTPUTS (hours, points),
        with SW_IN = SW_REFLECTED + SW_SNOW + SW_GROUND: nothing created or lost; and TS_ISBA
        (hours, points), the surface temperature (K): the top layer's, the soil slab's without snow.
        """
        radiation = RADIATIONS[radiation] if isinstance(radiation, str) else radiation
        forcing = np.ascontiguousarray(forcing, dtype=np.float64)
        n_hours, n_points, n_fields = forcing.shape
        if n_points != len(self.n_layers) or n_fields != len(FORCING_FIELDS):
            raise ValueError(f"forcing: expected shape (hours, {len(self.n_layers)}, {len(FORCING_FIELDS)}), "
                             f"got {forcing.shape}")
        for name in ("cos_zenith", "cos_illum", "direct_sw", "diffuse_sw", "daylight"):
            if np.shape(getattr(light, name)) != (n_hours, n_points):
                raise ValueError(f"light.{name}: expected shape {(n_hours, n_points)}, "
                                 f"got {np.shape(getattr(light, name))}")
        incident = np.nan_to_num(light.direct_sw + light.diffuse_sw)  # NaN: no light defined
        out_layers = np.empty((n_hours, len(LAYER_OUTPUTS), N_LAYERS, n_points))
        out_points = np.empty((n_hours, len(POINT_OUTPUTS), n_points))
        out_radiation = np.zeros((len(RADIATION_OUTPUTS), n_hours, n_points))
        out_surface = np.empty((n_hours, n_points))
        pack_layers, pack_points = np.empty((len(LAYER_OUTPUTS), N_LAYERS, n_points)), np.empty((2, n_points))
        shortwave_layers, shortwave_ground = np.zeros((n_points, N_LAYERS)), np.zeros(n_points)
        taken = np.zeros(n_points)
        for h in range(n_hours):
            snowfall(self.layers, self.n_layers, forcing[h])
            shortwave = incident[h]
            albedo = np.where(self.n_layers > 0, 1.0, self.soil_albedo)
            shortwave_layers[:] = 0.0
            shortwave_ground[:] = np.where(self.n_layers > 0, 0.0, (1.0 - self.soil_albedo) * shortwave)
            lit = np.flatnonzero(light.daylight[h] & (self.n_layers > 0))
            if len(lit):
                write_profiles(self.layers, self.n_layers, pack_layers, pack_points)
                budget = radiation({name: pack_layers[k].T[lit] for k, name in enumerate(RADIATION_LAYERS)},
                                   {"cos_illum": light.cos_illum[h, lit], "direct_sw": light.direct_sw[h, lit],
                                    "diffuse_sw": light.diffuse_sw[h, lit], "cos_zenith": light.cos_zenith[h, lit],
                                    "soil_albedo": self.soil_albedo[lit]})
                albedo[lit] = budget.albedo
                shortwave_layers[lit, :budget.absorbed.shape[1]] = (np.nan_to_num(budget.absorbed)
                                                                    * shortwave[lit, None])
                shortwave_ground[lit] = budget.soil * shortwave[lit]
            advance(self.layers, self.n_layers, self.soil_temp, forcing[h], shortwave_layers, shortwave_ground, taken)
            write_profiles(self.layers, self.n_layers, out_layers[h], out_points[h])
            out_radiation[0, h] = shortwave
            out_radiation[1, h] = albedo * shortwave
            out_radiation[2, h] = taken - shortwave_ground  # taken: the ground's share and the layers'
            out_radiation[3, h] = shortwave_ground
            out_surface[h] = np.where(self.n_layers > 0, self.layers[:, TEMP, 0], self.soil_temp)
        outputs = {name: out_layers[:, k] for k, name in enumerate(LAYER_OUTPUTS)}
        outputs.update({name: out_points[:, k] for k, name in enumerate(POINT_OUTPUTS)})
        outputs.update(zip(RADIATION_OUTPUTS, out_radiation))
        outputs["TS_ISBA"] = out_surface
        return outputs
