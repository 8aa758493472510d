"""The test report of a trained emulator."""
from __future__ import annotations

import numpy as np

# Bin edges of the quantities the error is broken down by; the last bin is closed on the right.
BINS = {
    "cos_sza": ([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "-"),
    "snow_depth": ([0.0, 0.05, 0.1, 0.3, 1.0, np.inf], "m"),
    "surface_dust": ([0.0, 1e-7, 1e-6, 1e-5, 1e-4, np.inf], "kg kg-1"),
}


def error_metrics(prediction: np.ndarray, target: np.ndarray) -> dict:
    """MAE, RMSE, bias (prediction - target) and the 99th percentile of |error|, albedo units."""
    error = np.asarray(prediction, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    if len(error) == 0:
        return {"n": 0, "mae": None, "rmse": None, "bias": None, "p99_abs_error": None}
    return {"n": int(len(error)), "mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())),
            "bias": float(error.mean()), "p99_abs_error": float(np.percentile(np.abs(error), 99))}


def test_report(prediction: np.ndarray, target: np.ndarray, columns: dict[str, np.ndarray]) -> dict:
    """Metrics overall and by bins of each of `columns` (cos_sza, snow_depth, surface_dust)."""
    report = {"overall": error_metrics(prediction, target), "by": {}}
    for name, (edges, unit) in BINS.items():
        values = columns[name]
        rows = []
        for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
            last = i == len(edges) - 2
            inside = (values >= low) & ((values <= high) if last else (values < high))
            rows.append({"low": low, "high": high, **error_metrics(prediction[inside], target[inside])})
        report["by"][name] = {"unit": unit, "bins": rows}
    return report


def report_markdown(report: dict, title: str, details: dict, data: str = "the test seasons") -> str:
    """`test_report`'s figures as markdown tables, after a list of `details` about the run."""
    def fmt(value, spec=".4f"):
        return "-" if value is None else format(value, spec)

    def line(label, m):
        return (f"| {label} | {m['n']} | {fmt(m['mae'])} | {fmt(m['rmse'])} | {fmt(m['bias'], '+.4f')} | "
                f"{fmt(m['p99_abs_error'])} |")

    header = "| | samples | MAE | RMSE | bias | p99 abs. error |\n|---|---:|---:|---:|---:|---:|"
    def detail(value):
        if isinstance(value, dict):
            return "; ".join(f"{k}: {detail(v)}" for k, v in value.items())
        if isinstance(value, list):
            return ", ".join(map(str, value))
        if isinstance(value, float):
            return f"{value:.4f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = [f"# {title}", "", *(f"- {key.replace('_', ' ')}: {detail(value)}" for key, value in details.items()), "",
             f"Albedo error (prediction - label) on {data}.", "", header, line("all", report["overall"])]
    for name, group in report["by"].items():
        lines += ["", f"## by {name.replace('_', ' ')} ({group['unit']})", "", header]
        for b in group["bins"]:
            lines.append(line(f"[{b['low']:g}, {b['high']:g})", b))
    return "\n".join(lines) + "\n"
