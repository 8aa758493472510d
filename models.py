"""Emulator architectures, their registry, and `Emulator`, the object users load.

Every model maps the raw physical inputs of utils/features.py, layers (B, 5, 50) and illumination
(B, 3), to the broadband albedo (B,), features and their normalisation included. `MODELS` maps a
name to (settings dataclass, nn.Module class); the settings are saved with every checkpoint, so a
model is rebuilt from its file alone.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from preprocessing.shards import LAYER_VARIABLES, N_LAYERS
from preprocessing.tartes_labels import DIFFUSE_WEIGHT_SUM, DIRECT_WEIGHT_SUM, validate_inputs
from utils.devices import resolve_device
from utils.features import (COS_SZA, DEPTH_CAP, DIFFUSE_COS_SZA, DIFFUSE_SW, DIRECT_SW, ILLUMINATION, Standardise,
                            TwoStreamOptics, direct_fraction, layer_mask, layer_tensor, log_layer_variables,
                            outside_domain, snow_depth)

FILE_FORMAT = "tartes-emulator/3"


@dataclass
class CNNSeedSettings:
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])  # kernel 3, padding 1, full length
    downsampling: int = 3  # convolutions of stride 2 at the last width: 50 -> 25 -> 13 -> 7
    hidden: list[int] = field(default_factory=lambda: [512, 512, 256, 128])
    dropout: float = 0.2


class CNNSeed(nn.Module):
    """The predecessor's 1D CNN (the baseline to beat): convolutions over the 50 layers, top first,
    flattened and joined with the 4 scalars, then a fully connected head and a sigmoid.

    Per layer, 6 channels: the mask, then log dz, log ssa, density, log soot, log dust z-scored
    over the present layers (0 where absent). The predecessor's 4 scalar slots hold the
    illumination as the label depends on it: direct fraction, cos_sza, the effective cosine
    f cos_sza + (1 - f) 0.6018 of the direct/diffuse mixture; and the snow depth capped at 1 m.
    """

    def __init__(self, settings: CNNSeedSettings):
        super().__init__()
        self.layer_norm = Standardise(len(LAYER_VARIABLES))
        self.scalar_norm = Standardise(4)
        convs, width, length = [], 1 + len(LAYER_VARIABLES), N_LAYERS
        for channels in settings.channels:
            convs += [nn.Conv1d(width, channels, kernel_size=3, padding=1), nn.ELU()]
            width = channels
        for _ in range(settings.downsampling):
            convs += [nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1), nn.ELU()]
            length = (length - 1) // 2 + 1
        self.convs = nn.Sequential(*convs, nn.Flatten())
        head, size = [], width * length + 4
        for hidden in settings.hidden:
            head += [nn.Linear(size, hidden), nn.ELU(), nn.Dropout(settings.dropout)]
            size = hidden
        self.head = nn.Sequential(*head, nn.Linear(size, 1))

    def forward(self, layers: torch.Tensor, illumination: torch.Tensor) -> torch.Tensor:
        mask = layer_mask(layers)
        profile = torch.cat([mask[:, None, :].to(layers.dtype),
                             self.layer_norm(log_layer_variables(layers, mask), mask)], dim=1)
        fraction = direct_fraction(illumination)
        cos_sza = illumination[:, 0]
        scalars = torch.stack([fraction, cos_sza, fraction * cos_sza + (1 - fraction) * DIFFUSE_COS_SZA,
                               torch.clamp(snow_depth(layers), max=DEPTH_CAP)], dim=1)
        x = torch.cat([self.convs(profile), self.scalar_norm(scalars)], dim=1)
        return torch.sigmoid(self.head(x)).squeeze(1)


@dataclass
class OpticalMLPSettings:
    # Wavelengths of the optical features, on the 20 nm band grid so the labeller's constants apply as they are.
    wavelengths_nm: list[float] = field(default_factory=lambda: [400.0, 560.0, 800.0, 1040.0, 1300.0])
    n_top: int = 16  # layers in the stack reflectance; light rarely reaches deeper
    n_described: int = 2  # top layers described one by one, where the direct beam is reflected
    hidden: list[int] = field(default_factory=lambda: [64, 64])


class OpticalMLP(nn.Module):
    """A small MLP on physics features (utils.features.TwoStreamOptics), all computed from the
    raw inputs inside the model.

    Features, at a few wavelengths: log(1 - R), R the two-stream diffuse reflectance of the top
    n_top layers over the rest of the pack or the soil; for each of the top n_described layers
    log(1 - r), r the albedo of a semi-infinite layer of its snow, and its opacity 1 - f2; then
    cos_sza and log snow depth; z-scored on the training data. The network predicts two broadband
    albedos, under direct light at cos_sza and under diffuse light, and combines them with the
    fluxes exactly as the label does (TARTES_LABELS.md): it never has to learn the direct fraction.
    """

    def __init__(self, settings: OpticalMLPSettings):
        super().__init__()
        if not 0 <= settings.n_described <= settings.n_top:
            raise ValueError(f"n_described must be in [0, n_top = {settings.n_top}], not {settings.n_described}")
        self.n_described = settings.n_described
        self.optics = TwoStreamOptics(settings.wavelengths_nm, settings.n_top)
        size = self.optics.n_wavelengths * (1 + 2 * settings.n_described) + 2
        self.norm = Standardise(size)
        mlp = []
        for hidden in settings.hidden:
            mlp += [nn.Linear(size, hidden), nn.SiLU()]
            size = hidden
        self.mlp = nn.Sequential(*mlp, nn.Linear(size, 2))
        self.register_buffer("weight_sums", torch.tensor([DIRECT_WEIGHT_SUM, DIFFUSE_WEIGHT_SUM], dtype=torch.float32))
        self.feature_macs = self.optics.operations

    def forward(self, layers: torch.Tensor, illumination: torch.Tensor) -> torch.Tensor:
        rho, f2 = self.optics.layer_optics(layers)
        stack_coalbedo = self.optics.stack_coalbedo(layers, rho, f2)
        top = slice(0, self.n_described)
        depth = torch.clamp(snow_depth(layers), min=1e-3)
        x = torch.cat([torch.log(torch.clamp(stack_coalbedo, min=1e-6)), torch.log(rho[:, top]).flatten(0, 1),
                       (1 - f2[:, top]).flatten(0, 1), illumination[:, COS_SZA, None].T, torch.log(depth)[None]]).T
        albedo_direct_diffuse = torch.sigmoid(self.mlp(self.norm(x)))
        weights = illumination[:, DIRECT_SW:DIFFUSE_SW + 1] * self.weight_sums
        return (weights * albedo_direct_diffuse).sum(dim=1) / weights.sum(dim=1)


MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "cnn_seed": (CNNSeedSettings, CNNSeed),
    "optical_mlp": (OpticalMLPSettings, OpticalMLP),
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
    model_settings = settings_class(**(settings or {}))
    return model_class(model_settings), model_settings


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def example_inputs(n: int = 1, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """n identical plausible profiles (20 layers of 5 cm) as model inputs: for counting and tracing."""
    layers = torch.zeros(n, len(LAYER_VARIABLES), N_LAYERS, device=device)
    layers[:, :, :20] = torch.tensor([0.05, 20.0, 300.0, 1e-8, 1e-6], device=device)[None, :, None]
    illumination = torch.tensor([[0.5, 300.0, 100.0]], device=device).repeat(n, 1)
    return layers, illumination


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one profile through the convolutions and linear layers, plus the
    model's own count of its feature computation (`feature_macs`, when it has one). Activations,
    biases and the sigmoid are left out."""
    macs = getattr(model, "feature_macs", 0)

    def count(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv1d):
            macs += output.numel() * module.in_channels // module.groups * module.kernel_size[0]
        else:
            macs += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*example_inputs(1, device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return macs


def save_atomic(obj, path: str | Path) -> None:
    """torch.save to a temporary name, then rename: the file is whole or absent."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Emulator:
    """A trained model with everything needed to use it: architecture name and settings, weights
    (normalisation included), the input domain of its training data, and the configuration of the
    run that made it."""

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
        save_atomic({
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
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != FILE_FORMAT:
            raise ValueError(f"{path}: not an emulator file of format {FILE_FORMAT}")
        model, settings = build_model(saved["model"], saved["settings"])
        model.load_state_dict(saved["state_dict"])
        model.to(resolve_device(device)).eval()
        return cls(saved["model"], asdict(settings), model, saved["domain"], saved["config"], saved["info"])

    def predict(self, dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw, device=None,
                batch_size: int = 4096) -> np.ndarray:
        """Broadband albedo (N,), float64, of profiles given like the labeller's: layer arrays
        (N, L <= 50) in m, m2 kg-1, kg m-3, kg kg-1, kg kg-1, top layer first, NaN for absent
        layers; cos_sza, direct_sw and diffuse_sw (W m-2) of shape (N,). Raises ValueError on
        invalid input; warns once when rows fall outside the input domain of the training data."""
        layers, scalars, _ = validate_inputs(dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw)
        layers = layer_tensor(*(layers[name] for name in LAYER_VARIABLES))
        illumination = np.stack([scalars[name] for name in ILLUMINATION], axis=1).astype(np.float32)
        outside, variables = outside_domain(self.domain, layers, layers[:, 0] > 0, illumination)
        if outside.any():
            warnings.warn(f"{outside.sum()} of {len(outside)} profiles lie outside the input domain of the "
                          f"emulator's training data ({', '.join(variables)}); their albedo is extrapolated",
                          stacklevel=2)
        device = self.device if device is None else resolve_device(device)
        self.model.to(device).eval()
        albedo = np.empty(len(illumination))
        with torch.no_grad():
            for start in range(0, len(albedo), batch_size):
                rows = slice(start, start + batch_size)
                albedo[rows] = self.model(torch.from_numpy(layers[rows]).to(device),
                                          torch.from_numpy(illumination[rows]).to(device)).cpu().numpy()
        return albedo
