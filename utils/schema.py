"""The one definition of the data: every variable, its unit, and its column in the arrays that
preprocessing writes, the datasets serve and the models take.

    layers        (N, 5, 50) float32  LAYER_VARIABLES, top layer first, 0 where there is no layer
    mask          (N, 50) bool        layer present
    scalars       (N, 6) float32      SCALAR_VARIABLES; the first five are the models' scalars
    albedo        (N,) float32        broadband albedo (docs/labels.md)
    absorbed      (N, 50) float32     fraction of the incident shortwave absorbed in each layer, 0 where absent
    soil          (N,) float32        fraction of the incident shortwave absorbed by the soil

Models take `layers` and `scalars[:, :5]`, MODEL_SCALARS = (cos_illum, direct_sw, diffuse_sw,
soil_albedo, cos_zenith), the labeller's inputs besides the layers. cos_illum is the cosine of the
angle between the sun and the normal to the snow surface (Crocus PANGL_ILLUM); direct_sw and
diffuse_sw are the fluxes of Crocus' last surface step (utils.solar), ILLUMINATION with cos_illum;
soil_albedo is the albedo of the ground under the snow; cos_zenith, the horizontal cosine of
SURFEX's solar zenith angle, serves only Crocus' rule for forcing without diffuse light (NaN where
not known: no rule; docs/labels.md, step 0).
"""
from __future__ import annotations

N_LAYERS = 50  # Crocus keeps up to 50 snow layers
LAYER_VARIABLES = ("dz", "ssa", "density", "soot", "dust")
ILLUMINATION = ("cos_illum", "direct_sw", "diffuse_sw")
MODEL_SCALARS = (*ILLUMINATION, "soil_albedo", "cos_zenith")  # what models take besides the layers
SCALAR_VARIABLES = (*MODEL_SCALARS, "snow_depth")
TARGETS = ("albedo", "absorbed", "soil")

# Column indices, in layers[:, i] and scalars[:, i] (the models' and the shards' alike).
DZ, SSA, DENSITY, SOOT, DUST = range(len(LAYER_VARIABLES))
COS_ILLUM, DIRECT_SW, DIFFUSE_SW, SOIL_ALBEDO, COS_ZENITH, SNOW_DEPTH = range(len(SCALAR_VARIABLES))

UNITS = {
    "dz": "m",
    "ssa": "m2 kg-1",
    "density": "kg m-3",
    "soot": "kg kg-1",
    "dust": "kg kg-1",
    "cos_illum": "1",
    "direct_sw": "W m-2",
    "diffuse_sw": "W m-2",
    "soil_albedo": "1",
    "cos_zenith": "1",
    "snow_depth": "m",
    "albedo": "1",
    "absorbed": "1",
    "soil": "1",
}
LONG_NAMES = {
    "dz": "snow layer thickness",
    "ssa": "snow specific surface area",
    "density": "snow layer density",
    "soot": "black carbon mass ratio in snow",
    "dust": "mineral dust mass ratio in snow",
    "cos_illum": "cosine of the illumination angle (sun to the normal of the snow surface)",
    "direct_sw": "direct incident shortwave on the surface",
    "diffuse_sw": "diffuse incident shortwave on the surface",
    "soil_albedo": "albedo of the ground under the snow (Crocus passes ISBA's snow-free albedo; 0.2 where unknown)",
    "cos_zenith": "cosine of SURFEX's solar zenith angle at the start of Crocus' last surface step",
    "snow_depth": "snow depth",
    "albedo": "broadband snow albedo",
    "absorbed": "fraction of the incident shortwave absorbed in the snow layer",
    "soil": "fraction of the incident shortwave absorbed by the soil under the snow",
}
# Per-sample metadata of a shard (meta.parquet).
META_COLUMNS = ("region", "season", "time", "point", "massif", "ZS", "slope", "aspect")
