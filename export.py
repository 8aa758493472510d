"""Export an emulator for use outside Python: TorchScript (C++, Fortran through FTorch), ONNX, and
for energy-budget models the plain-text weights of the Fortran module fortran/tartes_emulator.f90.

    python export.py --model data/emulator.pt --out DIR [--formats torchscript onnx fortran]

writes DIR/<model stem>.ts (TorchScript), DIR/<model stem>.onnx, DIR/<model stem>.json (this
contract, the input domain of the training data, provenance) and, for a model that gives the
energy budget, DIR/emulator_weights.txt (format `tartes-emulator-weights 5`, read by
tartes_emulator_load). The TorchScript and ONNX files take the raw physical inputs, features,
Crocus's light and layer rules and normalisation included, any batch size B:

    layers        float32 (B, 5, 50)  dz (m), ssa (m2 kg-1), density (kg m-3), soot and dust (kg kg-1),
                                      top layer first, 0 where there is no layer (present where dz > 0)
    scalars       float32 (B, 5)      utils.schema.MODEL_SCALARS: cos_illum (1, the cosine of the angle
                                      between the sun and the normal to the snow surface), direct_sw and
                                      diffuse_sw (W m-2), soil_albedo (1, the ground under the snow;
                                      0.2 is the labeller's default), cos_zenith (1, the cosine of the
                                      solar zenith angle on the horizontal; NaN: not known, no rule)
    -> albedo     float32 (B,)        broadband albedo
       absorbed   float32 (B, 50)     fraction of the incident shortwave absorbed in each layer, 0 where absent
       soil       float32 (B,)        fraction absorbed by the soil; albedo + absorbed + soil = 1

(albedo-only models, cnn_seed, return the albedo alone). Each file is checked against the eager
model (within 1e-5 on fixed varied profiles, dark and snow-free ones included) before it is
written: the warnings of torch's tracer about what such a check verifies are silenced. Outputs
carry no gradient (`albedo.numpy()` works). They are saved for the CPU: load them onto a GPU with
torch.jit.load(path, map_location="cuda"), or FTorch's torch_model_load(model, path, torch_kCUDA).

What the files do with unusual or invalid input (CONTRACT, also in the JSON description):
  - they apply Crocus's rules as the labels do: cos_illum < 0.0017 (the sun behind the slope, 0 and
    negative values included) means all the light is diffuse; otherwise, where diffuse_sw == 0 and
    cos_zenith is not NaN, the shortwave is split by Dumont's diffuse fraction of cos_zenith;
    density >= 850 is ice; SSA > 100 is 70;
  - absent layers are dz = 0, and must hold 0 in the other four variables too, as
    utils.domain.layer_tensor makes them (nonzero values there change the features of packs
    thinner than the model's described layers);
  - NaN is not padding: a NaN anywhere in a profile, in its absent layers too, or in its first four
    scalars makes all three outputs of that profile NaN (the other profiles of the batch are
    unaffected); NaN in cos_zenith means "not known" (no rule needs it);
  - night and no light (docs/labels.md): a dark profile (direct_sw + diffuse_sw <= 1e-8, or
    cos_zenith <= 1e-8) with snow gives albedo 1, absorbed 0 and soil 0, as Crocus sets them where
    it does not call TARTES; a profile without snow (no layer with dz > 0) gives NaN in every output;
  - SURFEX's clean-up regime (utils.crocus_rules.cleanup_rows: very dusty layers, whose labels
    depend on the flux magnitudes): the files give their network's outputs, where Emulator gives
    the labeller's; the Fortran module flags these points outside its domain;
  - no range is checked: negative values, density > 917 kg m-3, zero SSA in a present layer,
    cos_illum > 1 or soil_albedo outside [0, 1] give meaningless numbers, not errors.
    Emulator.predict and energy_budget raise ValueError on them, and the Fortran module stops or
    returns a status;
  - float32 only: the TorchScript file raises an error that says so for float64 (or any other
    dtype), and for wrong shapes (torch.jit.Error in Python, c10::Error in C++ and FTorch); ONNX
    Runtime refuses other dtypes itself (INVALID_ARGUMENT).
    Fortran-ordered (column-major) arrays are fine.
"""
from __future__ import annotations

import argparse
import copy
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

import utils
from features import OPACITY_SERIES
from models import COALBEDO_FLOOR, DEPTH_FLOOR, OPTICAL_DEPTH_FLOOR, Emulator, OpticalBudget, example_inputs
from utils.crocus_rules import CLEANUP_BANDS
from utils.domain import DOMAIN_VARIABLES
from utils.files import save_json, written
from utils.provenance import git_commit, sha256
from utils.schema import COS_ZENITH, DIFFUSE_SW, DIRECT_SW, DZ, LAYER_VARIABLES, MODEL_SCALARS, N_LAYERS, UNITS
from utils.tartes_constants import (BANDS, COS_ILLUM_MIN, DAYLIGHT_MIN, DIFFUSE_COS, DUMONT_DIFFUSE, ICE_DENSITY,
                                    ICE_DENSITY_MAX, ICE_SOOT, ICE_SSA, SSA_ANOMALY, SSA_REPLACEMENT, TAU_TRUNCATION)
from utils.tartes_constants import SOIL_ALBEDO as DEFAULT_SOIL_ALBEDO

INPUT_NAMES = ("layers", "scalars")
BUDGET_OUTPUTS = ("albedo", "absorbed", "soil")
ALBEDO_OUTPUTS = ("albedo",)
ONNX_OPSET = 17

WEIGHTS_FILE = "emulator_weights.txt"
WEIGHTS_FORMAT = "tartes-emulator-weights"
# 3: the soil albedo per point and cos_zenith (Dumont's split, the dark rule); 4: the per-band constants of
# SURFEX's clean-up regime (utils.crocus_rules.CLEANUP_BANDS), whose points the Fortran module flags as outside,
# and the setting `truncation` (SURFEX's truncation of deep layers in the physics) with its threshold; 5: the
# setting `n_depths` (the optical depths of the top layers as features) and the floor of their log
WEIGHTS_VERSION = 5

CONTRACT = {
    "crocus_rules": "applied inside, as the labels: cos_illum < 0.0017 (sun behind the slope, 0 and negative "
                    "included) means all light diffuse; otherwise, where diffuse_sw == 0 and cos_zenith is not "
                    "NaN, diffuse_sw becomes f SW and direct_sw SW - f SW, f Dumont's diffuse fraction "
                    "min(exp(((c3 c + c2) c + c1) c + c0), 1) of c = cos_zenith (c3..c0 = -1.54991930344, "
                    "3.73535795329, -3.52421131883, 0.0299111951172); density >= 850 kg m-3 is ice (SSA 0.05, "
                    "soot 1e-7, no dust); SSA > 100 is replaced by 70",
    "soil_albedo": "the albedo of the ground under the snow, per profile, in [0, 1] (0.2: the labeller's default): "
                   "the lower boundary of the model's physics and one of its features",
    "cos_zenith": "the cosine of the solar zenith angle on the horizontal; NaN means not known: no rule needs it "
                  "(a zero diffuse_sw is then taken as it is), and it is never a reason for NaN outputs",
    "absent_layers": "dz = 0 and 0 in the other four variables (a layer is present where dz > 0); absent layers "
                     "absorb 0",
    "nan": "not accepted as padding: a NaN anywhere in a profile's layers, absent layers included, or in one of "
           "its first four scalars makes all outputs of that profile NaN (NaN in cos_zenith means not known); "
           "other profiles of the batch are unaffected. Pass 0 for absent layers",
    "night": "a dark profile (direct_sw + diffuse_sw <= 1e-8, or cos_zenith <= 1e-8) with snow gives albedo 1, "
             "absorbed 0 and soil 0, as Crocus sets them where it does not call TARTES; a profile without snow (no "
             "layer with dz > 0) gives NaN in every output",
    "cleanup_regime": "profiles in SURFEX's clean-up regime (a layer whose single-scattering albedo is <= 0 in a "
                      "band up to 1300 nm, utils.crocus_rules.cleanup_rows), whose labels depend on the flux "
                      "magnitudes, get the network's outputs (Emulator.energy_budget gives the labeller's)",
    "validation": "none: negative values, density > 917 kg m-3, zero SSA in a present layer, cos_illum > 1 or "
                  "soil_albedo outside [0, 1] give meaningless numbers, not errors (Emulator.predict and "
                  "energy_budget raise ValueError; the Fortran module stops or returns a status)",
    "dtype": "float32 only: the TorchScript file raises an error saying so for other dtypes and for wrong shapes "
             "(torch.jit.Error in Python, c10::Error in C++ and FTorch); ONNX Runtime refuses other dtypes "
             "(INVALID_ARGUMENT). Fortran-ordered arrays are accepted",
    "energy": "albedo + sum(absorbed) + soil = 1 to float32 rounding, every fraction >= 0",
}


def output_names(emulator: Emulator) -> tuple[str, ...]:
    return BUDGET_OUTPUTS if emulator.model.BUDGET else ALBEDO_OUTPUTS


class _Contract(nn.Module):
    """What the exported files compute: the model behind the contract of docs/labels.md, "Night and
    no light". A dark profile (direct_sw + diffuse_sw <= DAYLIGHT_MIN, or cos_zenith <=
    DAYLIGHT_MIN; NaN, not known, is not dark) with snow gets albedo 1, absorbed 0 and soil 0; a
    profile without snow, or with a NaN in its layers or in a scalar other than cos_zenith, NaN in
    every output. Elementwise selections only, which a trace records for any batch."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, layers: torch.Tensor, scalars: torch.Tensor):
        out = self.model(layers, scalars)
        outputs = out if isinstance(out, tuple) else (out,)
        dark = ((scalars[:, DIRECT_SW] + scalars[:, DIFFUSE_SW] <= DAYLIGHT_MIN)
                | (scalars[:, COS_ZENITH] <= DAYLIGHT_MIN))
        undefined = (~(layers[:, DZ] > 0).any(dim=1) | torch.isnan(layers).flatten(1).any(dim=1)
                     | torch.isnan(scalars[:, :COS_ZENITH]).any(dim=1))  # cos_zenith, the last column, may be NaN
        fixed = []
        for output, value in zip(outputs, (1.0, 0.0, 0.0)):  # albedo, absorbed, soil of a dark profile
            rows = (lambda mask: mask) if output.dim() == 1 else (lambda mask: mask[:, None])
            fixed.append(torch.where(rows(undefined), float("nan"), torch.where(rows(dark), value, output)))
        return tuple(fixed) if isinstance(out, tuple) else fixed[0]


def _cpu_copy(emulator: Emulator) -> torch.nn.Module:
    """The model as the files export it (`_Contract`), on the CPU, without gradients: its outputs
    then need no torch.no_grad() to become arrays."""
    model = copy.deepcopy(emulator.model).to("cpu").eval().requires_grad_(False)
    return _Contract(model).eval()


def check_inputs(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """n varied profiles, fixed: what every export is checked on before it is written. 1 to 50
    layers, ice, soil albedos 0.05 to 0.5, the sun behind the slope, all-direct and all-diffuse
    light; cos_zenith not known (NaN) in a third of them; forcing without diffuse light split by
    Dumont's rule (cos_zenith given) and taken as it is (NaN); dark profiles by their shortwave and
    by cos_zenith <= 1e-8 (0 and negative); one without snow."""
    generator = torch.Generator().manual_seed(0)

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(*shape, generator=generator)

    layers = torch.stack([uniform(0.005, 0.1, n, N_LAYERS), torch.exp(uniform(1.0, 5.0, n, N_LAYERS)),
                          uniform(50.0, 917.0, n, N_LAYERS), 10 ** uniform(-10.0, -6.0, n, N_LAYERS),
                          10 ** uniform(-8.0, -3.0, n, N_LAYERS)], dim=1)
    n_layers = torch.linspace(1, N_LAYERS, n).round()
    layers = layers * (torch.arange(N_LAYERS)[None, :] < n_layers[:, None])[:, None, :]
    direct = uniform(0.0, 800.0, n)
    direct[:2] = 0.0
    cos_zenith = uniform(0.02, 1.0, n)
    cos_zenith[torch.arange(n) % 3 == 0] = float("nan")
    scalars = torch.stack([uniform(-0.2, 1.0, n), direct, uniform(0.0, 300.0, n) + (direct == 0),
                           uniform(0.05, 0.5, n), cos_zenith], dim=1)
    scalars[2, 1:3] = 0.0  # dark by its shortwave
    layers[3] = 0.0  # no snow
    scalars[4:8, 0] = uniform(0.1, 1.0, 4)  # without diffuse light: split by cos_zenith (4, 5, 7) or as it is (6)
    scalars[4:8, 2] = 0.0
    scalars[8, 4], scalars[9, 4] = 0.0, -0.3  # dark by cos_zenith
    scalars[10, 4] = 1e-9
    return layers.float(), scalars.float()


def _check_export(name: str, emulator: Emulator, outputs_of) -> None:
    """Raises RuntimeError when the exported file's outputs (outputs_of(layers, scalars), numpy
    arrays) differ from the eager model's by more than 1e-5 on `check_inputs`."""
    layers, scalars = check_inputs()
    with torch.no_grad():
        eager = _cpu_copy(emulator)(layers, scalars)
    eager = eager if isinstance(eager, tuple) else (eager,)
    exported = outputs_of(layers.numpy(), scalars.numpy())

    def difference_of(x, y) -> float:  # NaN where the eager model has NaN (a profile without snow), only there
        x, y = np.asarray(x), y.numpy()
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            return np.inf
        return float(np.max(np.abs(np.where(np.isnan(y), 0.0, x - y)), initial=0.0))

    difference = max(difference_of(x, y) for x, y in zip(exported, eager))
    if not difference <= 1e-5:
        differs = ("gives NaN where the eager model does not, or the reverse" if difference == np.inf else
                   f"differs from the eager model by {difference:.2g} (more than 1e-5)")
        raise RuntimeError(f"the {name} export {differs}: not written")


CHECKED = ("each file is checked against the eager model on fixed varied profiles before it is written "
           "(torch's tracer warnings silenced: the check covers them)")


@contextmanager
def _quiet_deprecations():
    """torch 2.13 deprecates TorchScript, which FTorch needs, and the TorchScript-based ONNX exporter,
    whose torch.export-based successor needs onnxscript, takes some 10 s and differs from the eager
    model by up to 7e-7 (this one: 6e-8): both are chosen knowingly. The tracer warns that Python
    values (len() of a tensor, a tensor as a bool: the model's shapes and settings) are recorded as
    constants: the trace holds for any batch, which _check_export verifies on every file."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.(jit|onnx)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript-based ONNX")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*TorchScript")
        yield


class _CheckedInputs(nn.Module):
    """What the TorchScript file runs: the traced model behind checks of the inputs' dtypes and
    shapes (scripted: a trace records no checks), so that a float64 array handed over by FTorch,
    or a (B, 50, 5) one, is refused with a message instead of an obscure error or a wrong answer."""

    def __init__(self, traced: torch.jit.ScriptModule):
        super().__init__()
        self.model = traced

    def forward(self, layers: torch.Tensor, scalars: torch.Tensor):
        if layers.dtype != torch.float32 or scalars.dtype != torch.float32:
            raise RuntimeError("tartes-emulator: layers and scalars must be float32 tensors "
                               "(convert double precision arrays to single precision first)")
        if layers.dim() != 3 or layers.size(1) != 5 or layers.size(2) != 50:
            raise RuntimeError("tartes-emulator: layers must have shape (batch, 5, 50): dz, ssa, density, soot, "
                               "dust over 50 layers, top layer first")
        if scalars.dim() != 2 or scalars.size(1) != 5 or scalars.size(0) != layers.size(0):
            raise RuntimeError("tartes-emulator: scalars must have shape (batch, 5): cos_illum, direct_sw, "
                               "diffuse_sw, soil_albedo, cos_zenith (NaN: not known), with the batch size of layers")
        return self.model(layers, scalars)


def export_torchscript(emulator: Emulator, path: str | Path) -> Path:
    """The model traced to TorchScript, behind scripted input checks (models are traced, not
    scripted: their normalisation layers carry Python-side fitting code; no control flow depends
    on the data, so the trace holds for any batch size, which check_inputs verifies), checked
    against the eager model before it is written."""
    with torch.no_grad(), _quiet_deprecations(), written(Path(path)) as tmp:
        traced = torch.jit.trace(_cpu_copy(emulator), example_inputs(2),
                                 check_inputs=[example_inputs(1), example_inputs(5)])
        torch.jit.save(torch.jit.script(_CheckedInputs(traced)), tmp)
        scripted = torch.jit.load(str(tmp))

        def outputs_of(layers, scalars):
            out = scripted(torch.from_numpy(layers), torch.from_numpy(scalars))
            return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]

        _check_export("TorchScript", emulator, outputs_of)
    return Path(path)


def export_onnx(emulator: Emulator, path: str | Path) -> Path:
    """The model as ONNX (opset ONNX_OPSET) with a free batch dimension; needs the `onnx` package.
    Outputs named as `output_names`: albedo, absorbed, soil for an energy-budget model. Checked
    against the eager model with ONNX Runtime before it is written (when it is installed)."""
    outputs = list(output_names(emulator))
    with written(Path(path)) as tmp, _quiet_deprecations():
        torch.onnx.export(_cpu_copy(emulator), example_inputs(2), tmp, input_names=list(INPUT_NAMES),
                          output_names=outputs, opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={name: {0: "batch"} for name in (*INPUT_NAMES, *outputs)})
        try:
            import onnxruntime
        except ImportError:  # checked where ONNX Runtime is installed (requirements.txt has it)
            onnxruntime = None
        if onnxruntime is not None:
            session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            _check_export("ONNX", emulator, lambda layers, scalars: session.run(
                None, {"layers": layers, "scalars": scalars}))
    return Path(path)


def _number(value) -> str:
    """The shortest decimal that reads back as the same double: a float32 value (as a double)
    is written exactly, and so is a float64 one."""
    return repr(float(value))


def _numbers(values) -> str:
    return " ".join(_number(v) for v in np.asarray(values, dtype=np.float64).ravel())


def fortran_weights_lines(emulator: Emulator, model_file: str | Path | None = None) -> list[str]:
    """The lines of emulator_weights.txt (see export_fortran_weights)."""
    model = emulator.model
    if not getattr(model, "BUDGET", False):
        raise ValueError(f"model {emulator.model_name!r} gives the albedo only: the Fortran module "
                         "(fortran/tartes_emulator.f90) needs an energy-budget model (optical_budget)")
    if not isinstance(model, OpticalBudget):
        raise ValueError(f"model {emulator.model_name!r}: the Fortran module implements optical_budget only")
    modules = list(model.mlp)
    linears = modules[0::2]
    if not (all(isinstance(m, nn.Linear) for m in linears) and all(isinstance(m, nn.SiLU) for m in modules[1::2])
            and len(modules) % 2 == 1):
        raise ValueError(f"model {emulator.model_name!r}: the Fortran module expects Linear layers with SiLU "
                         f"between them, not {[type(m).__name__ for m in modules]}")
    optics, norm = model.optics, model.norm
    n_wavelengths = optics.n_wavelengths
    settings = emulator.settings
    hidden = [m.out_features for m in linears[:-1]]
    digest = sha256(model_file) if model_file is not None else "unknown"

    def vector(name, values):
        values = np.asarray(values, dtype=np.float64).ravel()
        return [f"{name} {len(values)}"] + ([_numbers(values)] if len(values) else [])

    def integers(name, values):
        return [f"{name} {len(values)}"] + ([" ".join(str(int(v)) for v in values)] if len(values) else [])

    lines = [
        f"{WEIGHTS_FORMAT} {WEIGHTS_VERSION}",
        "# TARTES-Emulator: an energy-budget emulator of TARTES as SURFEX-Crocus runs it, for",
        "# fortran/tartes_emulator.f90 (tartes_emulator_load). Written by export.py.",
        f"# model file: {Path(model_file).resolve() if model_file is not None else 'not given'}",
        f"# software: tartes_emulator {utils.__version__}, torch {torch.__version__}, git commit {git_commit()}",
        "# Lines: 'key value', or 'key n' and a line of n numbers, or 'weight i n_out n_in' and n_out",
        "# rows, then 'bias i n_out' and a row. Numbers read back exactly as doubles.",
        f"architecture {emulator.model_name}",
        "activation silu",
        f"model_sha256 {digest}",
        f"n_layers {N_LAYERS}",
        f"n_wavelengths {n_wavelengths}",
        f"n_described {model.n_described}",
        "# top layers whose optical depth 2 ke tau* from the surface through them is a feature, at each wavelength",
        f"n_depths {model.n_depths}",
        f"n_surface {model.n_surface}",
        f"n_shallow {emulator.settings.get('n_shallow', 0)}",
        f"shallow_layers {emulator.settings.get('shallow_layers', N_LAYERS)}",
        "# SURFEX's truncation at the features' wavelengths (features.TwoStreamOptics.truncated; 1: on, 0: off):",
        "# from the second layer on, a layer where the cumulative ke tau* from the top passes tau_truncation is",
        "# dropped with all below it, the kept layers lying on a white floor",
        f"truncation {int(bool(optics.truncation))}",
        f"tau_truncation {_number(TAU_TRUNCATION)}",
        "# 1 - f2 of a layer by its series where its -2 ke tau* exceeds this (features.TwoStreamOptics.opacity)",
        f"opacity_series {_number(OPACITY_SERIES)}",
        f"n_hidden {len(hidden)}",
        *integers("hidden", hidden),
        "# the constants of features.TwoStreamOptics (its float32 buffers), per wavelength",
        *vector("wavelengths_nm", settings.get("wavelengths_nm", [])),
    ]
    if len(settings.get("wavelengths_nm", [])) != n_wavelengths:
        raise ValueError("settings' wavelengths_nm do not match the model's optics")
    for name in ("minus_y_c", "half_phi_c", "ginf", "g_span", "clean", "soot", "dust"):
        lines += vector(name, getattr(optics, name).detach().cpu().double().numpy())
    lines += [
        "# Crocus's rules (features.crocus_rules, utils.crocus_rules.dark_rows), the default soil albedo, the floors",
        f"ice_density {_number(ICE_DENSITY)}",
        f"ice_ssa {_number(ICE_SSA)}",
        f"ice_soot {_number(ICE_SOOT)}",
        f"ssa_anomaly {_number(SSA_ANOMALY)}",
        f"ssa_replacement {_number(SSA_REPLACEMENT)}",
        f"cos_illum_min {_number(COS_ILLUM_MIN)}",
        f"ice_density_max {_number(ICE_DENSITY_MAX)}",
        *vector("dumont_diffuse", DUMONT_DIFFUSE),  # c3, c2, c1, c0 of exp(((c3 c + c2) c + c1) c + c0)
        f"default_soil_albedo {_number(DEFAULT_SOIL_ALBEDO)}",
        f"diffuse_cos {_number(DIFFUSE_COS)}",
        f"depth_floor {_number(DEPTH_FLOOR)}",
        f"coalbedo_floor {_number(COALBEDO_FLOOR)}",
        f"optical_depth_floor {_number(OPTICAL_DEPTH_FLOOR)}",
        "# Crocus's spectral repartition of direct and diffuse shortwave over TARTES's bands (the drop-in's PSPEC_DIR, PSPEC_DIF)",
        *vector("band_ratio_direct", BANDS["ratio_direct"]),
        *vector("band_ratio_diffuse", BANDS["ratio_diffuse"]),
        "# SURFEX's clean-up regime (utils.crocus_rules.cleanup_rows), per band up to 1300 nm: a layer's co-albedo",
        "# half_coalbedo (1 - exp(-ice_exponent / ssa)) + 2 / ssa (mae_soot soot + mae_dust dust) >= 1 in some band",
        *(line for name in ("half_coalbedo", "ice_exponent", "mae_soot", "mae_dust")
          for line in vector(f"cleanup_{name}", CLEANUP_BANDS[name])),
        "# the features' normalisation (Standardise): z = (x - mean) / std; the features, in order (W wavelengths):",
        "# log co-albedo (W), the top layer's share (W), log(1 - r) (W x n_described) and 1 - f2 (W x n_described),",
        "# log optical depth (W x n_depths), wavelength-major, then cos_illum, log snow depth, soil albedo",
        f"n_features {len(norm.mean)}",
        *vector("feature_mean", norm.mean.detach().cpu().double().numpy()),
        *vector("feature_std", norm.std.detach().cpu().double().numpy()),
        "# the input domain of the training data: low, high (tartes_emulator_outside_domain)",
    ]
    for name in DOMAIN_VARIABLES:
        low, high = emulator.domain[name]
        lines.append(f"domain {name} {_number(low)} {_number(high)}")
    lines += ["# the network: torch.nn.Linear weights (n_out, n_in) row by row, then biases",
              f"n_linear {len(linears)}"]
    for i, linear in enumerate(linears, start=1):
        weight = linear.weight.detach().cpu().double().numpy()
        lines.append(f"weight {i} {weight.shape[0]} {weight.shape[1]}")
        lines += [_numbers(row) for row in weight]
        bias = linear.bias.detach().cpu().double().numpy()
        lines += [f"bias {i} {len(bias)}", _numbers(bias)]
    lines.append("end")
    return lines


def export_fortran_weights(emulator: Emulator, path: str | Path, model_file: str | Path | None = None) -> Path:
    """The plain-text weights file that fortran/tartes_emulator.f90 reads (tartes_emulator_load):
    format version, architecture, settings (the layers the features describe, n_described and
    n_depths; SURFEX's truncation of deep layers, `truncation`, on or off, with its threshold
    tau_truncation), the constants of the features (the buffers of TwoStreamOptics, Crocus's layer
    and light rules with Dumont's diffuse fraction and the daylight threshold, the default soil
    albedo, the cosine of diffuse light, the floors of the log features), Crocus's band weights, the
    per-band constants of SURFEX's clean-up regime, the normalisation, the input domain, provenance
    (sha256 of model_file), then each Linear layer's weights and biases with their shapes. Raises
    ValueError for a model that gives the albedo only."""
    lines = fortran_weights_lines(emulator, model_file)
    with written(Path(path)) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def describe(emulator: Emulator, model_file: Path) -> dict:
    """What a user of the exported files needs to know, and where they come from."""
    outputs = {"albedo": {"shape": ["batch"], "dtype": "float32", "units": UNITS["albedo"],
                          "meaning": "broadband albedo"}}
    if emulator.model.BUDGET:
        outputs |= {
            "absorbed": {"shape": ["batch", N_LAYERS], "dtype": "float32", "units": UNITS["absorbed"],
                         "meaning": "fraction of the incident shortwave absorbed in each layer, top first, 0 where "
                                    "absent"},
            "soil": {"shape": ["batch"], "dtype": "float32", "units": UNITS["soil"],
                     "meaning": "fraction of the incident shortwave absorbed by the soil"},
        }
    return {
        "inputs": {
            "layers": {"shape": ["batch", len(LAYER_VARIABLES), N_LAYERS], "dtype": "float32",
                       "channels": {name: UNITS[name] for name in LAYER_VARIABLES},
                       "layout": "top layer first; 0 in every channel where there is no layer (a layer is present "
                                 "where dz > 0)"},
            "scalars": {"shape": ["batch", len(MODEL_SCALARS)], "dtype": "float32",
                        "columns": {name: UNITS[name] for name in MODEL_SCALARS},
                        "meaning": {"cos_illum": "cosine of the angle between the sun and the normal to the snow "
                                                 "surface (Crocus PANGL_ILLUM)",
                                    "direct_sw": "direct shortwave on the surface",
                                    "diffuse_sw": "diffuse shortwave on the surface",
                                    "soil_albedo": "albedo of the ground under the snow, in [0, 1] (0.2 where not "
                                                   "known: the labeller's default)",
                                    "cos_zenith": "cosine of the solar zenith angle on the horizontal; NaN: not "
                                                  "known (Dumont's split and the dark rule <= 1e-8 then do not "
                                                  "apply)"}},
        },
        "outputs": outputs,
        "contract": CONTRACT,
        "input_domain": emulator.domain,
        "model": emulator.model_name,
        "settings": emulator.settings,
        "emulator_file": str(model_file.resolve()),
        "emulator_sha256": sha256(model_file),
        "software": {"tartes_emulator": utils.__version__, "torch": torch.__version__},
    }


EXPORTERS = {"torchscript": ".ts", "onnx": ".onnx", "fortran": WEIGHTS_FILE}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="emulator file (data/emulator.pt, or a run's best.pt)")
    parser.add_argument("--out", required=True, help="directory to write the exported files into")
    parser.add_argument("--formats", nargs="+", choices=sorted(EXPORTERS), default=None,
                        help="default: all (fortran only for an energy-budget model)")
    args = parser.parse_args(argv)
    model_file, out = Path(args.model), Path(args.out)
    try:
        emulator = Emulator.load(model_file, device="cpu")
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    formats = args.formats or list(EXPORTERS)
    if "fortran" in formats and not emulator.model.BUDGET:
        if args.formats:
            parser.error(f"--formats fortran: model {emulator.model_name!r} gives the albedo only; the Fortran module "
                         "needs an energy-budget model (optical_budget)")
        formats = [f for f in formats if f != "fortran"]
        print(f"no {WEIGHTS_FILE}: model {emulator.model_name!r} gives the albedo only (the Fortran module needs an "
              "energy-budget model)")
    out.mkdir(parents=True, exist_ok=True)
    if {"torchscript", "onnx"} & set(formats):
        print(f"TorchScript and ONNX: {CHECKED}")
    for name in formats:
        if name == "torchscript":
            path = export_torchscript(emulator, out / f"{model_file.stem}.ts")
        elif name == "onnx":
            path = export_onnx(emulator, out / f"{model_file.stem}.onnx")
        else:
            path = export_fortran_weights(emulator, out / WEIGHTS_FILE, model_file)
        print(f"wrote {path}")
    description = out / f"{model_file.stem}.json"
    save_json(describe(emulator, model_file), description)
    print(f"wrote {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
