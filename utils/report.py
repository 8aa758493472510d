"""The test report of a trained emulator: its errors against the labels, overall and by bins.

Errors are prediction - label. For the albedo: MAE, RMSE, bias and the 99th percentile of |error|.
For models that give the energy budget, also the error of the fraction of the incident shortwave
absorbed in the top layer, the profile error (sum over layers and soil of |absorbed error|), and
in W m-2 the errors of the energy absorbed in the top layer and in the whole pack.
"""
from __future__ import annotations

import numpy as np

# Bin edges of the quantities the errors are broken down by; the last bin is closed on the right.
BINS = {
    "cos_illum": ([-1.0, 0.0017, 0.2, 0.4, 0.6, 0.8, 1.0], "-"),
    "snow_depth": ([0.0, 0.05, 0.1, 0.3, 1.0, np.inf], "m"),
    "n_layers": ([1, 6, 16, 27, 50], "layers"),
    "surface_dust": ([0.0, 1e-7, 1e-6, 1e-5, 1e-4, np.inf], "kg kg-1"),
}


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


def test_report(prediction: dict, target: dict, columns: dict[str, np.ndarray]) -> dict:
    """Metrics overall and by bins of each of BINS; columns: those of BINS and `shortwave`."""
    errors = profile_errors(prediction, target, columns["shortwave"])
    report = {"overall": error_metrics(errors), "by": {}}
    for name, (edges, unit) in BINS.items():
        index = bin_index(columns[name], edges)
        rows = [{"low": low, "high": high, **error_metrics({k: e[index == i] for k, e in errors.items()})}
                for i, (low, high) in enumerate(zip(edges[:-1], edges[1:]))]
        report["by"][name] = {"unit": unit, "bins": rows}
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
        lines += ["", f"## by {name.replace('_', ' ')} ({group['unit']})", "", header, rule]
        for b in group["bins"]:
            lines.append(line(f"[{b['low']:g}, {b['high']:g})", b))
    return "\n".join(lines) + "\n"
