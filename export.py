"""Export an emulator for use outside Python: TorchScript (C++, Fortran through FTorch) and ONNX.

    python export.py --model data/emulator.pt --out DIR [--formats torchscript onnx]

writes DIR/<model stem>.ts (TorchScript), DIR/<model stem>.onnx and DIR/<model stem>.json (inputs,
units, the input domain of the training data, provenance). Both files take the raw physical inputs,
features and normalisation included, any batch size B:

    layers        float32 (B, 5, 50)  dz (m), ssa (m2 kg-1), density (kg m-3), soot and dust (kg kg-1),
                                      top layer first, 0 where there is no layer (present where dz > 0)
    illumination  float32 (B, 3)      cos_sza (-), direct_sw and diffuse_sw (W m-2)
    -> albedo     float32 (B,)

and are saved for the CPU: load them onto a GPU with torch.jit.load(path, map_location="cuda"), or
FTorch's torch_model_load(model, path, torch_kCUDA).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

import utils
from models import Emulator, example_inputs
from preprocessing.shards import LAYER_VARIABLES, N_LAYERS, UNITS
from utils.features import ILLUMINATION
from utils.provenance import sha256

INPUT_NAMES = ("layers", "illumination")
OUTPUT_NAME = "albedo"
ONNX_OPSET = 17


def _cpu_copy(emulator: Emulator) -> torch.nn.Module:
    return copy.deepcopy(emulator.model).to("cpu").eval()


@contextmanager
def _quiet_deprecations():
    """torch 2.13 deprecates TorchScript, which FTorch needs, and the TorchScript-based ONNX exporter,
    whose torch.export-based successor needs onnxscript, takes some 10 s and differs from the eager
    model by up to 7e-7 (this one: 6e-8): both are chosen knowingly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.(jit|onnx)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript-based ONNX")
        yield


@contextmanager
def _written(path: Path):
    """A temporary name to write to, renamed to path when the block succeeds, removed otherwise."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_torchscript(emulator: Emulator, path: str | Path) -> Path:
    """The model traced to TorchScript (models are traced, not scripted: their normalisation layers
    carry Python-side fitting code; no control flow depends on the data, so the trace holds for any
    batch size, which check_inputs verifies)."""
    with torch.no_grad(), _quiet_deprecations(), _written(Path(path)) as tmp:
        traced = torch.jit.trace(_cpu_copy(emulator), example_inputs(2),
                                 check_inputs=[example_inputs(1), example_inputs(5)])
        torch.jit.save(traced, tmp)
    return Path(path)


def export_onnx(emulator: Emulator, path: str | Path) -> Path:
    """The model as ONNX (opset ONNX_OPSET) with a free batch dimension; needs the `onnx` package."""
    with _written(Path(path)) as tmp, _quiet_deprecations():
        torch.onnx.export(_cpu_copy(emulator), example_inputs(2), tmp, input_names=list(INPUT_NAMES),
                          output_names=[OUTPUT_NAME], opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={name: {0: "batch"} for name in (*INPUT_NAMES, OUTPUT_NAME)})
    return Path(path)


def describe(emulator: Emulator, model_file: Path) -> dict:
    """What a user of the exported files needs to know, and where they come from."""
    return {
        "inputs": {
            "layers": {"shape": ["batch", len(LAYER_VARIABLES), N_LAYERS], "dtype": "float32",
                       "channels": {name: UNITS[name] for name in LAYER_VARIABLES},
                       "layout": "top layer first; 0 where there is no layer (a layer is present where dz > 0)"},
            "illumination": {"shape": ["batch", len(ILLUMINATION)], "dtype": "float32",
                             "columns": {name: UNITS[name] for name in ILLUMINATION}},
        },
        "output": {OUTPUT_NAME: {"shape": ["batch"], "dtype": "float32", "units": UNITS["albedo"]}},
        "input_domain": emulator.domain,
        "model": emulator.model_name,
        "settings": emulator.settings,
        "emulator_file": str(model_file.resolve()),
        "emulator_sha256": sha256(model_file),
        "software": {"tartes_emulator": utils.__version__, "torch": torch.__version__},
    }


EXPORTERS = {"torchscript": (".ts", export_torchscript), "onnx": (".onnx", export_onnx)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="emulator file (data/emulator.pt, or a run's best.pt)")
    parser.add_argument("--out", required=True, help="directory to write the exported files into")
    parser.add_argument("--formats", nargs="+", choices=sorted(EXPORTERS), default=list(EXPORTERS))
    args = parser.parse_args(argv)
    model_file, out = Path(args.model), Path(args.out)
    emulator = Emulator.load(model_file, device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    for name in args.formats:
        suffix, export = EXPORTERS[name]
        print(f"wrote {export(emulator, out / (model_file.stem + suffix))}")
    description = out / f"{model_file.stem}.json"
    with _written(description) as tmp:
        tmp.write_text(json.dumps(describe(emulator, model_file), indent=1))
    print(f"wrote {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
