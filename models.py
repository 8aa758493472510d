"""Emulator architectures, their registry, and `Emulator`, the object users load.

Every model maps the raw physical inputs of features.py, layers (B, 5, 50) and scalars (B, 5)
(utils.schema.MODEL_SCALARS), to what Crocus takes from TARTES, Crocus's rules, features and their
normalisation included: the broadband albedo (B,) and, for the models that give the whole energy
budget (`BUDGET = True`), the fractions of the incident shortwave absorbed in each layer (B, 50)
and by the soil (B,).
`MODELS` maps a name to (settings dataclass, nn.Module class); the settings are saved with every
checkpoint, so a model is rebuilt from its file alone.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from features import (DEPTH_CAP, OPACITY_SERIES, WEAK_ABSORPTION, Standardise, TwoStreamOptics, crocus_rules,
                      direct_fraction, layer_mask, log_layer_variables, snow_depth, variables_first)
from utils.devices import resolve_device
from utils.domain import model_inputs, outside_domain, scalar_tensor
from utils.files import save_torch
from utils.memory import keep_freed_memory
from utils.crocus_rules import cleanup_bound, cleanup_rows, dark_rows
from utils.profiles import SCALAR_FIELDS, EnergyBudget, validate_inputs, validate_scalars
from utils.schema import COS_ILLUM, LAYER_VARIABLES, MODEL_SCALARS, N_LAYERS, SOIL_ALBEDO
from utils.tartes_constants import DIFFUSE_COS
from utils.tartes_constants import SOIL_ALBEDO as DEFAULT_SOIL_ALBEDO

# 4: illumination cosine, Crocus's rules, the energy budget; 5: shallow near infrared; 6: labels v3, the
# scalars (cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith), the soil albedo per profile; 7: SURFEX's
# truncation in the physics (the `truncation` setting), trained without SURFEX's clean-up regime; 8: the
# optical depths of the top layers as features (`n_depths`)
FILE_FORMAT = "tartes-emulator/8"
DOMAIN_WARNING = ".*outside the input domain.*"  # the message of Emulator's warning, for callers that count the rows
# Floors of optical_budget's log features (the Fortran module reads them from its weights file).
COALBEDO_FLOOR = 1e-6
DEPTH_FLOOR = 1e-3  # m
OPTICAL_DEPTH_FLOOR = 1e-6  # 2 ke tau*: of a few micrometres of ice in the visible


@dataclass
class CNNSeedSettings:
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])  # kernel 3, padding 1, full length
    downsampling: int = 3  # convolutions of stride 2 at the last width: 50 -> 25 -> 13 -> 7
    hidden: list[int] = field(default_factory=lambda: [512, 512, 256, 128])
    dropout: float = 0.2


class CNNSeed(nn.Module):
    """The predecessor's 1D CNN (the baseline to beat): convolutions over the 50 layers, top first,
    flattened and joined with the 5 scalar features, then a fully connected head and a sigmoid.

    Per layer, 6 channels: the mask, then log dz, log ssa, density, log soot, log dust z-scored
    over the present layers (0 where absent), after Crocus's rules. The predecessor's 4 scalar
    slots hold the illumination as the label depends on it: direct fraction, cos_illum, the
    effective cosine f cos_illum + (1 - f) 0.6018 of the direct/diffuse mixture; and the snow
    depth capped at 1 m; a fifth holds the soil albedo. It gives the albedo only.
    """

    BUDGET = False
    N_SCALARS = 5  # scalar features

    def __init__(self, settings: CNNSeedSettings):
        super().__init__()
        self.layer_norm = Standardise(len(LAYER_VARIABLES))
        self.scalar_norm = Standardise(self.N_SCALARS)
        convs, width, length = [], 1 + len(LAYER_VARIABLES), N_LAYERS
        for channels in settings.channels:
            convs += [nn.Conv1d(width, channels, kernel_size=3, padding=1), nn.ELU()]
            width = channels
        for _ in range(settings.downsampling):
            convs += [nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1), nn.ELU()]
            length = (length - 1) // 2 + 1
        self.convs = nn.Sequential(*convs, nn.Flatten())
        head, size = [], width * length + self.N_SCALARS
        for hidden in settings.hidden:
            head += [nn.Linear(size, hidden), nn.ELU(), nn.Dropout(settings.dropout)]
            size = hidden
        self.head = nn.Sequential(*head, nn.Linear(size, 1))

    def forward(self, layers: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        layers, scalars = crocus_rules(layers, scalars)
        mask = layer_mask(layers)
        profile = torch.cat([mask[:, None, :].to(layers.dtype),
                             self.layer_norm(log_layer_variables(layers, mask), mask)], dim=1)
        fraction = direct_fraction(scalars)
        cos_illum = scalars[:, COS_ILLUM]
        features = torch.stack([fraction, cos_illum, fraction * cos_illum + (1 - fraction) * DIFFUSE_COS,
                                torch.clamp(snow_depth(layers), max=DEPTH_CAP), scalars[:, SOIL_ALBEDO]], dim=1)
        x = torch.cat([self.convs(profile), self.scalar_norm(features)], dim=1)
        return torch.sigmoid(self.head(x)).squeeze(1)


@dataclass
class OpticalBudgetSettings:
    # Wavelengths of the two-stream features, on the 20 nm band grid so the labeller's constants apply as they are.
    # Validation albedo MAE (six seasons, 450 epochs): 400, 700, 1040, 1300 nm 0.00038; with 550 nm,
    # where dust's absorption falls steeply, 0.00029; with 860 nm too (the 700-1000 nm band carries a
    # quarter of the direct light, and SURFEX's truncation switches band by band there) 0.00024; with
    # 1600 nm too (ice and coarse grains absorb beyond 1400 nm) 0.00021, the default
    wavelengths_nm: list[float] = field(default_factory=lambda: [400.0, 550.0, 700.0, 860.0, 1040.0, 1300.0,
                                                                 1600.0])
    # top layers described one by one, where the direct beam is reflected (3: 0.00023, with 860 nm)
    n_described: int = 2
    # top layers whose optical depth from the surface (2 ke tau*, each wavelength) is a feature: SURFEX drops a
    # layer where it passes 60, band by band, so that under a thin top (ice above all) the albedo jumps from
    # one band to the next; from the depths at the features' wavelengths the network sees between which
    n_depths: int = 3
    n_surface: int = 4  # top layers with a mixture component of their own (light absorbed at once); won over 2
    # the last n_shallow wavelengths (near infrared, absorbed in the top centimetres) computed on the top
    # shallow_layers layers only, over semi-infinite snow: 3 x 50 + 4 x 16 layer-wavelengths instead of 350
    n_shallow: int = 4
    shallow_layers: int = 16
    hidden: list[int] = field(default_factory=lambda: [128, 128])  # won on validation over 64-64 and 96-96
    # SURFEX's truncation of deep layers in the physics, at the features' wavelengths (features.TwoStreamOptics)
    truncation: bool = True


class OpticalBudget(nn.Module):
    """An MLP on two-stream physics (features.TwoStreamOptics), all computed from the raw inputs
    inside the model, that gives the whole energy budget and conserves energy by construction.

    Physics, at a few wavelengths, for unit diffuse light on the whole pack over the soil (of the
    profile's soil albedo): its co-albedo, and the distribution of the light it absorbs over the
    layers and the soil. Features, in order: per wavelength log co-albedo, then per
    wavelength the share absorbed by the top layer; for each wavelength and each of the top
    n_described layers log(1 - r), r the albedo of a semi-infinite layer of its snow, then in the
    same order its opacity 1 - f2; for each wavelength and each of the top n_depths layers the log
    of the optical depth 2 ke tau* from the surface to its bottom (where SURFEX's truncation cuts);
    then cos_illum, log snow depth and the soil albedo; z-scored on the training data.

    The network predicts, under direct light at cos_illum and under diffuse light, a broadband
    albedo a (sigmoid) and the weights (softmax) of a mixture of distributions: those of the
    wavelengths, and n_surface all in one top layer (the near infrared, absorbed in the first
    millimetres). Each illumination's 1 - a is spread by its mixture, and both are combined with the
    direct fraction as the labels are (docs/labels.md). So albedo + absorbed + soil = 1, every
    fraction >= 0 and absent layers absorb nothing, whatever the weights.
    """

    BUDGET = True

    def __init__(self, settings: OpticalBudgetSettings):
        super().__init__()
        if not 0 <= settings.n_surface <= N_LAYERS:
            raise ValueError(f"n_surface must be in [0, {N_LAYERS}], not {settings.n_surface}")
        self.optics = TwoStreamOptics(settings.wavelengths_nm, settings.n_shallow, settings.shallow_layers,
                                      settings.truncation)
        for name in ("n_described", "n_depths"):
            value = getattr(settings, name)
            if not 0 <= value <= N_LAYERS:
                raise ValueError(f"{name} must be in [0, {N_LAYERS}], not {value}")
            if settings.n_shallow and value > settings.shallow_layers:
                raise ValueError(f"{name} ({value}) must not exceed shallow_layers ({settings.shallow_layers}): "
                                 "the features describe layers every wavelength reaches")
        self.n_described, self.n_depths = settings.n_described, settings.n_depths
        n_wavelengths = self.optics.n_wavelengths
        size = n_wavelengths * (2 + 2 * settings.n_described + settings.n_depths) + 3
        self.norm = Standardise(size)
        mlp = []
        for hidden in settings.hidden:
            mlp += [nn.Linear(size, hidden), nn.SiLU()]
            size = hidden
        self.n_components = n_wavelengths + settings.n_surface
        self.mlp = nn.Sequential(*mlp, nn.Linear(size, 2 * (1 + self.n_components)))
        self.n_wavelengths, self.n_surface = n_wavelengths, settings.n_surface
        self.feature_macs = self.optics.operations + 2 * n_wavelengths * (N_LAYERS + 1)  # and the mixture

    def physics(self, layers: torch.Tensor, scalars: torch.Tensor, budget: bool) -> dict:
        """Crocus's rules and the two-stream physics of model inputs, what the network is given:
        per wavelength the pack's co-albedo "coalbedo" (W, B) and what its top layer absorbs "top"
        (W, B), rho and f2 of the top n_described layers (W, n_described, B), the optical depth
        2 ke tau* from the surface through each of the top n_depths layers "optical_depth"
        (W, n_depths, B), and with budget "absorbed", per group of TwoStreamOptics.groups what each
        of its n layers and what lies below them absorb (Wg, n + 1, B); after the rules, "present"
        (50, B), the snow "depth", "cos_illum", the direct "fraction" and the "soil_albedo" (B,).
        `compiled_physics` gives the same on a CPU."""
        layers, scalars = crocus_rules(variables_first(layers), scalars, dim=0)
        soil_albedo = scalars[:, SOIL_ALBEDO]
        groups = [self.optics.group_budget(layers, soil_albedo, group, budget) for group in self.optics.groups]
        rho, f2, optical_depth, P, absorbed = zip(*groups)
        described = slice(0, self.n_described)
        return {"coalbedo": torch.cat([p[:, 0] for p in P]),
                "top": torch.cat([a[:, 0] for a in absorbed] if budget else absorbed),
                "rho_described": torch.cat([r[:, described] for r in rho]),
                "f2_described": torch.cat([f[:, described] for f in f2]),
                "optical_depth": torch.cat([d[:, :self.n_depths] for d in optical_depth]),
                "absorbed": list(absorbed) if budget else None,
                "present": layer_mask(layers, dim=0), "depth": snow_depth(layers, dim=0),
                "cos_illum": scalars[:, COS_ILLUM], "fraction": direct_fraction(scalars), "soil_albedo": soil_albedo}

    def compiled_physics(self, layers: np.ndarray, scalars: np.ndarray, budget: bool) -> dict:
        """`physics` of float32 arrays (N, 5, 50) and (N, 5) by utils.two_stream's compiled kernel,
        on the CPU: one pass over each profile's present layers instead of some 600 tensor
        operations."""
        from utils import two_stream  # numba, loaded only where used

        constants = np.stack([getattr(self.optics, name).flatten().numpy() for name in two_stream.CONSTANTS])
        out = {name: torch.from_numpy(a) for name, a in two_stream.physics(
            layers, scalars, constants, self.optics.groups, self.optics.weak, WEAK_ABSORPTION, OPACITY_SERIES,
            self.n_described, self.n_depths, budget, threads=torch.get_num_threads(),
            truncation=self.optics.truncation).items()}
        groups = [out["absorbed"][wavelengths, :n + 1] for wavelengths, n in self.optics.groups] if budget else None
        return {**out, "absorbed": groups}

    def _network(self, physics: dict, albedo_only: bool = False) -> torch.Tensor:
        """The MLP's output on the features of `physics`: the components of the direct then of the
        diffuse mixture (2 (1 + components), B); with albedo_only, the two albedo logits alone
        (2, B), the only outputs the last layer then computes."""
        x = torch.cat([torch.log(torch.clamp(physics["coalbedo"], min=COALBEDO_FLOOR)), physics["top"],
                       torch.log(physics["rho_described"]).flatten(0, 1),
                       (1 - physics["f2_described"]).flatten(0, 1),
                       torch.log(torch.clamp(physics["optical_depth"], min=OPTICAL_DEPTH_FLOOR)).flatten(0, 1),
                       physics["cos_illum"][None], torch.log(torch.clamp(physics["depth"], min=DEPTH_FLOOR))[None],
                       physics["soil_albedo"][None]]).T
        x = self.norm(x)
        *hidden, last = self.mlp
        # without autograd, SiLU overwrites its input: no new array per layer
        inplace = not torch.is_grad_enabled()
        for layer in hidden:
            x = nn.functional.silu(x, inplace=inplace) if isinstance(layer, nn.SiLU) else layer(x)
        weight, bias = last.weight, last.bias
        if albedo_only:  # a tenth of the network's cost
            albedos = [0, 1 + self.n_components]
            weight, bias = weight[albedos], bias[albedos]
        # (outputs, B), so that the mixtures' few components then run over the batch, contiguous; as
        # weight x^T, a quarter of the time of (x weight^T)^T for the two albedos at batch 4096
        return torch.addmm(bias[:, None], weight, x.T)

    def albedo_of(self, physics: dict) -> torch.Tensor:
        """The albedo of `physics` (without its absorbed profile)."""
        direct, diffuse = self._network(physics, albedo_only=True)
        fraction = physics["fraction"]
        return fraction * torch.sigmoid(direct) + (1 - fraction) * torch.sigmoid(diffuse)

    def budget_of(self, physics: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The energy budget (albedo (B,), absorbed (B, 50), soil (B,)) of `physics` (with budget)."""
        # (direct | diffuse, albedo logit | weights, B)
        out = self._network(physics).view(2, 1 + self.n_components, -1)
        albedos = torch.sigmoid(out[:, 0])  # (2, B)
        # the surface components of absent layers carry nothing: masked before the softmax, so that
        # each mixture's weights sum to 1 even where the logits saturate it
        present = physics["present"]  # (50, B)
        logits = torch.cat([out[:, 1:1 + self.n_wavelengths],
                            out[:, 1 + self.n_wavelengths:].masked_fill(~present[:self.n_surface], float("-inf"))],
                           dim=1)
        weights = torch.softmax(logits, dim=1)  # (2, components, B)
        fraction = physics["fraction"]
        albedo = fraction * albedos[0] + (1 - fraction) * albedos[1]
        # energy each component spreads: (1 - albedo) of each illumination, by its mixture weight
        spread = torch.addcmul(((1 - fraction) * (1 - albedos[1])) * weights[1], fraction * (1 - albedos[0]),
                               weights[0])  # (components, B)
        # each wavelength's distribution, normalised, times what its component spreads: (51, B)
        absorbed, first = None, 0
        for shares in physics["absorbed"]:
            scale = spread[first:first + len(shares)] / shares.sum(dim=1)
            group = shares[0] * scale[0]
            for w in range(1, len(shares)):  # not einsum: it would run as B tiny matrix products
                group = torch.addcmul(group, shares[w], scale[w])
            group = self.optics.in_pack(group, present)
            absorbed = group if absorbed is None else absorbed + group
            first += len(shares)
        absorbed = torch.cat([absorbed[:self.n_surface] + spread[self.n_wavelengths:], absorbed[self.n_surface:]])
        absorbed = absorbed * torch.cat([present, torch.ones_like(present[:1])])  # nothing where absent
        return albedo, absorbed[:N_LAYERS].T, absorbed[N_LAYERS]

    def albedo(self, layers: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        """The albedo of `forward` alone, without the absorbed profile (no downward sweep)."""
        return self.albedo_of(self.physics(layers, scalars, budget=False))

    def forward(self, layers: torch.Tensor, scalars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.budget_of(self.physics(layers, scalars, budget=True))


MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "cnn_seed": (CNNSeedSettings, CNNSeed),
    "optical_budget": (OpticalBudgetSettings, OpticalBudget),
}


def build_model(name: str, settings: dict | None = None) -> tuple[nn.Module, object]:
    """The model `name` with its settings dataclass, defaults overridden by `settings`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    settings_class, model_class = MODELS[name]
    known = {f.name for f in fields(settings_class)}
    unknown = set(settings or {}) - known
    if unknown:
        raise ValueError(f"model {name!r}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
    # a switch is true or false: JSON's 1 or "yes" would pass for one silently
    for f in fields(settings_class):
        if f.type in (bool, "bool") and f.name in (settings or {}) and not isinstance(settings[f.name], bool):
            raise ValueError(f"model {name!r}: setting {f.name} must be true or false, not {settings[f.name]!r}")
    model_settings = settings_class(**(settings or {}))
    return model_class(model_settings), model_settings


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def example_inputs(n: int = 1, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """n identical plausible profiles (20 layers of 5 cm) as model inputs: for counting and tracing."""
    layers = torch.zeros(n, len(LAYER_VARIABLES), N_LAYERS, device=device)
    layers[:, :, :20] = torch.tensor([0.05, 20.0, 300.0, 1e-8, 1e-6], device=device)[None, :, None]
    scalars = torch.tensor([[0.5, 300.0, 100.0, DEFAULT_SOIL_ALBEDO, 0.5]], device=device).repeat(n, 1)
    return layers, scalars


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one profile through the convolutions and matrix products (half of
    what torch's FlopCounterMode counts of them), plus the model's own count of its feature
    computation (`feature_macs`, when it has one). Activations, biases and the sigmoid are left out."""
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*example_inputs(1, device))
    finally:
        model.train(was_training)
    return getattr(model, "feature_macs", 0) + counter.get_total_flops() // 2


class Emulator:
    """A trained model with everything needed to use it: architecture name and settings, weights
    (normalisation included), the input domain of its training data, and the configuration of the
    run that made it. Run on a CPU, its first call makes the process keep freed memory for reuse
    (utils.memory.keep_freed_memory): large tensors then cost no page faults; and a model with a
    compiled form of its physics (`compiled_physics`) takes it there, on torch's number of threads."""

    def __init__(self, model_name: str, settings: dict, model: nn.Module, domain: dict[str, list[float]],
                 config: dict, info: dict | None = None):
        self.model_name = model_name
        self.settings = settings
        self.model = model
        self.domain = domain
        self.config = config
        self.info = info or {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def save(self, path: str | Path) -> None:
        state = {name: tensor.detach().cpu() for name, tensor in self.model.state_dict().items()}
        save_torch({
            "format": FILE_FORMAT,
            "model": self.model_name,
            "settings": self.settings,
            "state_dict": state,
            "domain": self.domain,
            "config": self.config,
            "info": self.info,
        }, path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = "cpu") -> "Emulator":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no emulator file")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # any other kind of file: torch.load's errors vary with its content
            raise ValueError(f"{path}: not an emulator file ({type(e).__name__} from torch.load)") from None
        found = saved.get("format") if isinstance(saved, dict) else None
        if isinstance(found, str) and found.startswith("tartes-emulator/") and found != FILE_FORMAT:
            raise ValueError(f"{path}: not an emulator file of format {FILE_FORMAT} but of {found}, made by an older "
                             "version whose models take other inputs: retrain it (python main.py)")
        if found != FILE_FORMAT:
            raise ValueError(f"{path}: not an emulator file of format {FILE_FORMAT}")
        model, settings = build_model(saved["model"], saved["settings"])
        model.load_state_dict(saved["state_dict"])
        model.to(resolve_device(device)).eval()
        return cls(saved["model"], asdict(settings), model, saved["domain"], saved["config"], saved["info"])

    def _compiled(self, device: torch.device) -> bool:
        """Whether the model runs on `device` by its compiled physics (on a CPU, numba: utils.two_stream);
        the inputs are then checked by a compiled pass too (utils.compiled_layers)."""
        return device.type == "cpu" and hasattr(self.model, "compiled_physics")

    def _inputs(self, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith,
                compiled: bool = False) -> "_Batch":
        """Validated labeller-style inputs (validate_inputs, dark rows allowed) as model tensors,
        with what `_run` and its callers need (_Batch). A string or another value that is not a
        number raises ValueError naming its field; a single profile (layer arrays (L,), scalars
        numbers) is taken as a batch of one; an empty batch gives empty outputs. With compiled,
        the layers are checked and made model layers in one compiled pass (utils.compiled_layers),
        which leaves any fault it finds to validate_inputs: the same batch and errors, sooner."""
        values = {}
        for name, value in zip((*LAYER_VARIABLES, *SCALAR_FIELDS, "soil_albedo", "cos_zenith"),
                               (dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo,
                                np.nan if cos_zenith is None else cos_zenith)):
            try:
                values[name] = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as e:  # numpy's "could not convert string to float: 'x'"
                raise ValueError(f"{name}: expected numbers, got {type(value).__name__} ({e})") from None
        single = values["dz"].ndim == 1
        if single:
            values = {name: a[None] if name in LAYER_VARIABLES else np.atleast_1d(a) for name, a in values.items()}
        if values["dz"].ndim == 2 and len(values["dz"]) == 0:
            for name, a in values.items():
                if a.ndim and len(a) != 0:  # soil_albedo and cos_zenith may be numbers
                    raise ValueError(f"{name}: {len(a)} rows, but dz has none")
            width = values["dz"].shape[1]
            layers = np.zeros((0, len(LAYER_VARIABLES), N_LAYERS), dtype=np.float32)
            return _Batch(layers, np.zeros((0, len(MODEL_SCALARS)), dtype=np.float32), np.zeros(0, int),
                          np.zeros(0, bool), width, {}, single, {}, None)
        soil_albedo, cos_zenith = values.pop("soil_albedo"), values.pop("cos_zenith")
        checked, snow_depth = None, None
        if compiled:
            from utils import compiled_layers  # numba, loaded only where used

            checked = compiled_layers.checked_layers(*(values[name] for name in LAYER_VARIABLES), snow_free=True,
                                                     threads=torch.get_num_threads())
        if checked is None:
            layers, scalars, n_layers, ranges = validate_inputs(*values.values(), snow_free=True,
                                                                soil_albedo=soil_albedo, cos_zenith=cos_zenith,
                                                                allow_dark=True)
            model_layers, model_scalars = model_inputs(layers | scalars)
        else:
            model_layers, n_layers, ranges, snow_depth = checked
            layers = {name: values[name] for name in LAYER_VARIABLES}
            scalars = validate_scalars(*(values[name] for name in SCALAR_FIELDS), n_layers, soil_albedo=soil_albedo,
                                       cos_zenith=cos_zenith, allow_dark=True)
            model_scalars = scalar_tensor(scalars, len(model_layers))
        width = layers["dz"].shape[1]
        dark = dark_rows(scalars["direct_sw"], scalars["diffuse_sw"], scalars["cos_zenith"])
        return _Batch(model_layers, model_scalars, n_layers, dark, width, ranges, single, layers | scalars, snow_depth)

    def outside_domain(self, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *,
                       soil_albedo=DEFAULT_SOIL_ALBEDO, cos_zenith=None) -> np.ndarray:
        """(N,) bool: the profiles with an input outside the ranges of the emulator's training data
        (`domain`), where its outputs are extrapolated (snow-free and dark rows, whose outputs are
        set, and those of SURFEX's clean-up regime, which the labeller computes, are not). Inputs
        as `predict`."""
        batch = self._inputs(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith)
        lit = batch.lit & ~self.cleanup_rows(batch, compiled=False)
        outside = np.zeros(len(batch.layers), dtype=bool)
        if lit.any():
            outside[lit] = outside_domain(self.domain, batch.layers[lit], batch.layers[lit, 0] > 0,
                                          batch.scalars[lit], batch.ranges)[0]
        return outside[0] if batch.single else outside

    @staticmethod
    def cleanup_rows(batch: "_Batch", compiled: bool) -> np.ndarray:
        """(N,) bool: the lit rows with snow of SURFEX's clean-up regime (utils.crocus_rules.cleanup_rows):
        labels that depend on the fluxes by steps (docs/labels.md, step 2, point 4), which models
        are not trained on. The bound that clears most rows is one compiled pass on a CPU."""
        rows = batch.lit.copy()
        if not rows.any():
            return rows
        if compiled:
            from utils import two_stream  # numba, loaded only where used

            rows &= two_stream.cleanup_candidates(batch.layers, *cleanup_bound())
        candidates = np.flatnonzero(rows)
        if len(candidates):
            rows[candidates] = cleanup_rows(*(batch.profiles[name][candidates] for name in ("ssa", "density", "soot",
                                                                                           "dust")))
        return rows

    @staticmethod
    def _label(batch: "_Batch", rows: np.ndarray, results: list[np.ndarray]) -> None:
        """The labeller's outputs (preprocessing.tartes_labels: what SURFEX computes) into results at rows."""
        from preprocessing.tartes_labels import energy_budget  # numba, loaded only where used

        labels = energy_budget(**{name: batch.profiles[name][rows] for name in (*LAYER_VARIABLES, *SCALAR_FIELDS,
                                                                                 "soil_albedo", "cos_zenith")})
        results[0][rows] = labels.albedo
        if len(results) > 1:
            results[1][np.ix_(rows, np.arange(labels.absorbed.shape[1]))] = np.nan_to_num(labels.absorbed)
            results[2][rows] = labels.soil

    def _run(self, batch: "_Batch", device, batch_size: int, budget: bool) -> list[np.ndarray]:
        """The outputs, float64, of the model over batches of the lit rows with snow; the dark rows
        with snow get albedo 1, nothing absorbed and soil 0, snow-free rows NaN (docs/labels.md,
        "Night and no light"); the rows of SURFEX's clean-up regime (`cleanup_rows`) the labeller's.
        With budget, (albedo, absorbed (N, 50), soil); without, the albedo alone (a budget model's
        cheaper `albedo` path)."""
        n, lit = len(batch.layers), batch.lit
        results = [np.full(n, np.nan)] + ([np.full((n, N_LAYERS), np.nan), np.full(n, np.nan)] if budget else [])
        dark = batch.snow & batch.dark
        for result, value in zip(results, (1.0, 0.0, 0.0)):
            result[dark] = value
        device = self.device if device is None else resolve_device(device)
        # on a CPU, the physics by its compiled kernel, the network by torch
        compiled = self._compiled(device)
        exact = self.cleanup_rows(batch, compiled)
        if exact.any():
            self._label(batch, exact, results)
        lit = lit & ~exact
        if not lit.any():
            return results
        # by their number of layers: the compiled physics computes each block of profiles down to its deepest layer
        order = np.flatnonzero(lit)
        order = order[np.argsort(batch.n_layers[order], kind="stable")]
        if len(order) == n and (order[1:] > order[:-1]).all():  # every row, in order (packs of one depth): no copy
            order = slice(None)
        layers, scalars = batch.layers[order], batch.scalars[order]
        outside, variables = outside_domain(self.domain, layers, layers[:, 0] > 0, scalars, batch.ranges,
                                            None if batch.snow_depth is None else batch.snow_depth[order])
        if outside.any():
            warnings.warn(f"{outside.sum()} of {len(outside)} profiles lie outside the input domain of the "
                          f"emulator's training data ({', '.join(variables)}): their outputs are extrapolated "
                          "(Emulator.outside_domain gives the rows)", stacklevel=3)
        if device.type == "cpu":
            keep_freed_memory()  # large tensors without page faults (utils/memory.py)
        if self.device != device:  # moving is a pass over every module and tensor, even to where they are
            self.model.to(device)
        self.model.eval()
        network = self.model if budget or not self.model.BUDGET else self.model.albedo
        outputs = []
        with torch.no_grad():
            for start in range(0, len(layers), batch_size):
                rows = slice(start, start + batch_size)
                if compiled:
                    physics = self.model.compiled_physics(layers[rows], scalars[rows], budget)
                    out = self.model.budget_of(physics) if budget else self.model.albedo_of(physics)
                else:
                    out = network(torch.from_numpy(layers[rows]).to(device),
                                  torch.from_numpy(scalars[rows]).to(device))
                outputs.append([o.double().cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))])
        for result, parts in zip(results, zip(*outputs)):
            result[order] = np.concatenate(parts)
        return results

    def predict(self, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *,
                soil_albedo=DEFAULT_SOIL_ALBEDO, cos_zenith=None, device=None, batch_size: int = 4096) -> np.ndarray:
        """Broadband albedo (N,), float64, of profiles given like the labeller's (docs/labels.md):
        layer arrays (N, L <= 50) in m, m2 kg-1, kg m-3, kg kg-1, kg kg-1, top layer first, NaN for
        absent layers; cos_illum (-, the cosine of the angle between the sun and the normal to the
        snow surface), direct_sw and diffuse_sw (W m-2) of shape (N,); soil_albedo (-, the ground
        under the snow, default 0.2) and cos_zenith (-, the cosine of the solar zenith angle on the
        horizontal; None or NaN: not known) each a number or an (N,) array. Crocus's light rules
        apply as in the labels: where cos_zenith is given and the forcing has no diffuse light
        (diffuse_sw == 0), the shortwave is split by Dumont's diffuse fraction. A single profile
        may be given as layer arrays (L,) and numbers: its albedo is then a number (a 0-d
        float64); an empty batch gives an empty array.

        Night and no light (docs/labels.md): a dark row (direct_sw + diffuse_sw <= 1e-8, or
        cos_zenith given and <= 1e-8) with snow has albedo 1, as Crocus sets it where it does not
        call TARTES; a snow-free row (every layer NaN) gives NaN. Raises ValueError on invalid
        input (the labeller's checks, naming the field, row and layer; a value that is not a
        number names its field); warns when rows fall outside the input domain of the training
        data (`outside_domain` gives them)."""
        device = self.device if device is None else resolve_device(device)
        batch = self._inputs(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith,
                             self._compiled(device))
        albedo = self._run(batch, device, batch_size, budget=False)[0]
        return albedo[0] if batch.single else albedo

    def energy_budget(self, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *,
                      soil_albedo=DEFAULT_SOIL_ALBEDO, cos_zenith=None, device=None,
                      batch_size: int = 4096) -> EnergyBudget:
        """What Crocus takes from TARTES, as the labeller's `energy_budget` gives it: albedo (N,),
        absorbed (N, L) fractions of the incident shortwave in each layer (NaN for absent layers)
        and soil (N,), float64, with albedo + absorbed + soil = 1 to float32 rounding. A dark row
        with snow: albedo 1, absorbed 0 in its layers (NaN below), soil 0; a snow-free row: NaN.
        A single profile (layer arrays (L,)) gives a number, (L,) and a number. Inputs and errors
        as `predict`; only models that give the energy budget (`model.BUDGET`) can."""
        if not self.model.BUDGET:
            raise ValueError(f"model {self.model_name!r} gives the albedo only: use predict, or an energy-budget "
                             "model (optical_budget)")
        device = self.device if device is None else resolve_device(device)
        batch = self._inputs(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith,
                             self._compiled(device))
        albedo, absorbed, soil = self._run(batch, device, batch_size, budget=True)
        absorbed[batch.layers[:, 0] <= 0] = np.nan  # absent layers (the model gives them 0)
        absorbed = absorbed[:, :batch.width]
        return EnergyBudget(albedo[0], absorbed[0], soil[0]) if batch.single else EnergyBudget(albedo, absorbed, soil)


@dataclass
class _Batch:
    """Profiles as Emulator._inputs checks them: model layers (N, 5, 50) and scalars (N, 5)
    float32, the number of layers of each and the dark rows (N,), the layer width of the input
    arrays, the range of each layer variable (the domain check's first step), whether one
    profile was given as 1-D arrays, the checked inputs as the labeller takes them (float64,
    by argument name), and the snow depth (N,) where the compiled pass gave it (else None)."""

    layers: np.ndarray
    scalars: np.ndarray
    n_layers: np.ndarray
    dark: np.ndarray
    width: int
    ranges: dict
    single: bool
    profiles: dict
    snow_depth: np.ndarray | None

    @property
    def snow(self) -> np.ndarray:
        return self.n_layers > 0

    @property
    def lit(self) -> np.ndarray:
        """The rows the model runs on: snow and light."""
        return self.snow & ~self.dark
