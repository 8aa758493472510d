"""The test report of a trained emulator: its errors against the labels, overall and by bins.

Errors are prediction - label. For the albedo: MAE, RMSE, bias and the 99th percentile of |error|.
For models that give the energy budget, also the error of the fraction of the incident shortwave
absorbed in the top layer, the profile error (sum over layers and soil of |absorbed error|), and
in W m-2 the errors of the energy absorbed in the top layer and in the whole pack.

The errors are broken down by bins of quantities (BINS) and by categories (CATEGORIES): the light
rule of Crocus that each row falls under (`light_rule`), the kind of impurities of its pack
(`impurity_kind`) and whether SURFEX's per-band truncation changes its albedo (`truncation_regime`),
the one definition of each for the test report, the figures and the yardstick benchmark
(benchmarks/yardstick.py).
"""
from __future__ import annotations

import numpy as np

from utils.tartes_constants import COS_ILLUM_MIN

# Bin edges of the quantities the errors are broken down by; the last bin is closed on the right.
BINS = {
    "cos_illum": ([-1.0, 0.0017, 0.2, 0.4, 0.6, 0.8, 1.0], "-"),
    "snow_depth": ([0.0, 0.05, 0.1, 0.3, 1.0, np.inf], "m"),
    "n_layers": ([1, 6, 16, 27, 50], "layers"),
    "surface_dust": ([0.0, 1e-7, 1e-6, 1e-5, 1e-4, np.inf], "kg kg-1"),
    "soil_albedo": ([0.0, 0.15, 0.25, 0.35, 1.0], "-"),
}
# Categories the errors are broken down by: each row's code is the index of its name.
CATEGORIES = {
    "light_rule": ("normal", "sun behind the slope", "no diffuse light (Dumont's split)"),
    "impurity_kind": ("clean", "typical", "surface dust event", "buried dust layer", "very dark surface"),
    "truncation": ("albedo unchanged by SURFEX's truncation", "albedo changed by SURFEX's truncation"),
}
# Mass ratios (kg kg-1) that sort packs by impurities (`impurity_kind`). They reproduce the yardstick's
# impurity_kind tags (docs/labels.md) on every row whose pack shows its kind (a buried layer needs
# two layers or more), and the wide-domain sampler's surface events and dark surfaces.
CLEAN_SOOT, CLEAN_DUST = 5e-9, 1e-7  # below both in every layer: clean
DUST_EVENT = 5e-5  # a dust event: 50 ppm or more in a layer
DARK_DUST = 3e-3  # a very dark surface: this much or more in the top layer (where SURFEX's energy clean-up acts)

# Albedo change beyond which a row is in SURFEX's truncation regime (`truncation_regime`).
TRUNCATION_EFFECT = 1e-4


def light_rule(cos_illum, diffuse_sw, cos_zenith) -> np.ndarray:
    """(N,) the code of CATEGORIES["light_rule"]: which of Crocus's light rules (docs/labels.md,
    step 0) each row falls under: 1 the sun behind the slope (cos_illum < 0.0017; it rules over the
    other), 2 forcing without diffuse light, split by Dumont's formula (diffuse_sw == 0 where
    cos_zenith is known), 0 neither."""
    cos_illum, diffuse_sw, cos_zenith = (np.asarray(a, dtype=np.float64) for a in (cos_illum, diffuse_sw, cos_zenith))
    return np.select([cos_illum < COS_ILLUM_MIN, (diffuse_sw == 0) & np.isfinite(cos_zenith)], [1, 2], 0)


def impurity_kind(soot, dust) -> np.ndarray:
    """(N,) the code of CATEGORIES["impurity_kind"] of each pack, from its layers ((N, L) mass
    ratios, kg kg-1, top layer first; NaN or 0 where there is no layer): a very dark surface (the
    top layer's dust >= DARK_DUST), a surface dust event (the top layer's >= DUST_EVENT), a buried
    dust layer (a layer below the top one >= DUST_EVENT), clean (every layer below CLEAN_SOOT and
    CLEAN_DUST) or else typical."""
    soot, dust = (np.nan_to_num(np.asarray(a, dtype=np.float64)) for a in (soot, dust))
    clean = (soot.max(axis=1, initial=0.0) < CLEAN_SOOT) & (dust.max(axis=1, initial=0.0) < CLEAN_DUST)
    return np.select([dust[:, 0] >= DARK_DUST, dust[:, 0] >= DUST_EVENT, (dust[:, 1:] >= DUST_EVENT).any(axis=1),
                      clean], [4, 2, 3, 0], 1)


def truncation_regime(albedo, albedo_untruncated) -> np.ndarray:
    """(N,) the code of CATEGORIES["truncation"]: 1 where SURFEX's per-band truncation (docs/labels.md,
    step 2: in each band, the layers below an optical depth of 30 replaced by a white floor) changes
    the labeller's albedo by more than TRUNCATION_EFFECT, from the labeller's albedo with and
    without it (preprocessing.tartes_labels.energy_budget, truncation=False); 0 elsewhere. There
    the albedo jumps from band to band with the layer SURFEX drops, which a few wavelengths of
    physics follow least well."""
    difference = np.asarray(albedo, dtype=np.float64) - np.asarray(albedo_untruncated, dtype=np.float64)
    return (np.abs(difference) > TRUNCATION_EFFECT).astype(np.int64)


def bin_index(values: np.ndarray, edges) -> np.ndarray:
    """The bin of each value in [edges[i], edges[i+1]) (the last bin closed), -1 outside: the one
    binning of the project's reports and figures."""
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right") - 1
    index[values == edges[-1]] = len(edges) - 2
    index[(index < 0) | (index > len(edges) - 2) | np.isnan(values)] = -1
    return index


def _summary(error: np.ndarray) -> dict:
    if len(error) == 0:
        return {"mae": None, "rmse": None, "bias": None, "p99_abs_error": None}
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "bias": float(error.mean()), "p99_abs_error": float(np.percentile(np.abs(error), 99))}


def error_metrics(errors: dict[str, np.ndarray]) -> dict:
    """Summaries of the per-profile errors of `profile_errors`."""
    n = len(errors["albedo"])
    out = {"n": int(n)}
    for name, error in errors.items():
        if name == "profile":  # a sum of absolute values: its mean and tail
            out[name] = {"mean": float(error.mean()) if n else None,
                         "p99": float(np.percentile(error, 99)) if n else None}
        else:
            out[name] = _summary(error)
    return out


def profile_errors(prediction: dict, target: dict, shortwave: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per profile: albedo error; with the energy budget, the top layer's absorbed fraction error,
    the profile error and, given the incident shortwave (W m-2), the top-layer and whole-pack
    absorbed energy errors (W m-2)."""
    out = {"albedo": prediction["albedo"] - target["albedo"]}
    if "absorbed" in prediction:
        absorbed_error = prediction["absorbed"] - target["absorbed"]
        out["top_layer"] = absorbed_error[:, 0]
        out["profile"] = np.abs(absorbed_error).sum(axis=1) + np.abs(prediction["soil"] - target["soil"])
        if shortwave is not None:
            out["top_layer_w_m2"] = absorbed_error[:, 0] * shortwave
            out["pack_w_m2"] = absorbed_error.sum(axis=1) * shortwave
    return out


def _groups(errors: dict[str, np.ndarray], index: np.ndarray, n: int) -> list[dict]:
    """error_metrics of the rows of each group 0..n-1 of index (-1: in none)."""
    return [error_metrics({k: e[index == i] for k, e in errors.items()}) for i in range(n)]


def test_report(prediction: dict, target: dict, columns: dict[str, np.ndarray]) -> dict:
    """Metrics overall, by bins of each of BINS and by each of CATEGORIES; columns: per row, those
    of BINS, the codes of CATEGORIES and `shortwave`."""
    errors = profile_errors(prediction, target, columns["shortwave"])
    report = {"overall": error_metrics(errors), "by": {}}
    for name, (edges, unit) in BINS.items():
        groups = _groups(errors, bin_index(columns[name], edges), len(edges) - 1)
        report["by"][name] = {"unit": unit, "bins": [{"low": low, "high": high, **metrics} for low, high, metrics
                                                     in zip(edges[:-1], edges[1:], groups)]}
    for name, labels in CATEGORIES.items():
        groups = _groups(errors, np.asarray(columns[name]), len(labels))
        report["by"][name] = {"unit": None, "bins": [{"label": label, **metrics}
                                                     for label, metrics in zip(labels, groups)]}
    return report


def _fmt(value, spec=".5f"):
    return "-" if value is None else format(value, spec)


def _detail(value):
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_detail(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.5g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def report_markdown(report: dict, title: str, details: dict, data: str = "the test seasons") -> str:
    """`test_report`'s figures as markdown tables, after a list of `details` about the run."""
    budget = "profile" in report["overall"]
    header = "| | samples | albedo MAE | RMSE | bias | p99 abs. error |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if budget:
        header += " top layer MAE | profile error | top layer MAE (W m-2) | pack MAE (W m-2) | pack bias (W m-2) |"
        rule += "---:|---:|---:|---:|---:|"

    def line(label, m):
        a = m["albedo"]
        text = (f"| {label} | {m['n']} | {_fmt(a['mae'])} | {_fmt(a['rmse'])} | {_fmt(a['bias'], '+.5f')} | "
                f"{_fmt(a['p99_abs_error'])} |")
        if budget:
            text += (f" {_fmt(m['top_layer']['mae'])} | {_fmt(m['profile']['mean'])} | "
                     f"{_fmt(m['top_layer_w_m2']['mae'], '.2f')} | {_fmt(m['pack_w_m2']['mae'], '.2f')} | "
                     f"{_fmt(m['pack_w_m2']['bias'], '+.2f')} |")
        return text

    lines = [f"# {title}", "", *(f"- {key.replace('_', ' ')}: {_detail(value)}" for key, value in details.items()), "",
             f"Errors (prediction - label) on {data}" + (": albedo; absorbed fraction of the incident shortwave in "
             "the top layer; profile error, the sum over layers and soil of |absorbed error|; absorbed energy in "
             "W m-2." if budget else ": albedo."), "", header, rule, line("all", report["overall"])]
    for name, group in report["by"].items():
        unit = f" ({group['unit']})" if group["unit"] else ""
        lines += ["", f"## by {name.replace('_', ' ')}{unit}", "", header, rule]
        for b in group["bins"]:
            lines.append(line(b["label"] if "label" in b else f"[{b['low']:g}, {b['high']:g})", b))
    return "\n".join(lines) + "\n"
