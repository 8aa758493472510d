"""The command line the plot scripts share: --run, --out, --split, --device, and the options that
select samples of the evaluation set (plot.evaluation.select)."""
from __future__ import annotations

import argparse
from pathlib import Path

from plot.evaluation import resolve
from plot.style import RUN_GRAPHS
from utils.devices import device_argument

RUN_HELP = ("run directory of main.py, or a directory with a shipped emulator.pt (default: the run of the shipped "
            "model data/emulator.pt, else data/)")


class _Parser(argparse.ArgumentParser):
    """Arguments whose default --out is the run's own folder, runs/graphs/<run>/<kind>/ (figures of
    different runs never overwrite each other): known once --run is."""

    def __init__(self, kind: str, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if parsed.out is None:
            try:
                parsed.out = run_graphs(parsed.run) / self.kind
            except (FileNotFoundError, ValueError) as e:
                self.error(f"--run {e}")
        return parsed


def run_graphs(run) -> Path:
    """runs/graphs/<run's folder>/: where the command lines write the figures of `run` (a Run, a path,
    or None for the default run) by default."""
    return RUN_GRAPHS / resolve(run).folder


def parser(description: str, kind: str, split: bool = True) -> argparse.ArgumentParser:
    """--run, --out (default runs/graphs/<run>/<kind>/, not the committed graphs/), and unless `split`
    is False --split and --device."""
    p = _Parser(kind, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help=RUN_HELP)
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default runs/graphs/<run>/{kind}/, a folder per run; graphs/{kind}/ holds "
                        "the committed figures)")
    if split:
        p.add_argument("--split", default="test", help="the run's split to evaluate on: train, validation, test "
                                                      "or another split of its splits.json (default test)")
        p.add_argument("--device", type=device_argument, default="auto",
                       help="cpu, cuda, cuda:N or auto, for the emulator's predictions")
    return p


def add_selection(p: argparse.ArgumentParser) -> None:
    """Options selecting samples of the evaluation set (plot.evaluation.select)."""
    g = p.add_argument_group("selection of samples (all optional)")
    g.add_argument("--region", nargs="+", help="regions, e.g. Alpes")
    g.add_argument("--point", type=int, nargs="+", help="point numbers in the Crocus files")
    g.add_argument("--massif", type=int, nargs="+", help="massif numbers")
    g.add_argument("--altitude", type=float, nargs=2, metavar=("LOW", "HIGH"), help="ZS range, m (inclusive)")
    g.add_argument("--slope", type=float, nargs="+", help="slopes, degrees")
    g.add_argument("--aspect", type=float, nargs="+", help="aspects, degrees (-1: flat)")
    g.add_argument("--season", nargs="+", help="seasons, e.g. 2013080106_2014080106")
    g.add_argument("--start", help="first date or time, UTC (inclusive), e.g. 2014-01-01")
    g.add_argument("--end", help="last date or time, UTC (exclusive)")
    g.add_argument("--hours", type=int, nargs="+", help="UTC hours of the time stamps (ending the hour)")


def add_sample(p: argparse.ArgumentParser, time_help: str) -> None:
    """--point, --region and --time: one sample, or one snowpack, of the evaluation set."""
    p.add_argument("--point", type=int, help="point number in the Crocus files")
    p.add_argument("--region", help="region of the point (when the split has several)")
    p.add_argument("--time", help=time_help)


SELECTION = ("region", "point", "massif", "altitude", "slope", "aspect", "season", "start", "end", "hours")


def selection(args: argparse.Namespace) -> dict:
    """The selection options given, as keyword arguments of plot.evaluation.select."""
    return {name: getattr(args, name) for name in SELECTION if getattr(args, name, None) is not None}


def selected_samples_main(description: str, kind: str, plot, argv=None):
    """The command line of a script whose figure takes the shared options and a sample selection:
    parse them and call plot(run, out, split, device, **selection)."""
    p = parser(description, kind)
    add_selection(p)
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.split, args.device, **selection(args))
