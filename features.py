"""Model inputs from raw physical tensors: the physics every architecture builds its features from.

Every model in models.py takes the physical inputs themselves (utils/schema.py), so that a saved
or exported model needs nothing else:

    layers        (B, 5, 50) float32  dz (m), ssa (m2 kg-1), density (kg m-3), soot and dust
                                      (kg kg-1), top layer first, 0 where there is no layer
    scalars       (B, 5) float32      MODEL_SCALARS: cos_illum (-), direct_sw and diffuse_sw
                                      (W m-2), soil_albedo (-), cos_zenith (-, NaN where not known)

A layer is present where dz > 0. Models first apply Crocus's light and layer rules
(`crocus_rules`), as the labels do; the soil albedo is the lower boundary of the two-stream
physics and a feature of the networks. Features and their normalisation live inside the models
(`Standardise` holds its statistics as buffers, saved with the weights), so the training data
path, `Emulator.predict` and the exported TorchScript and ONNX files compute them with the same
code; on a CPU, training and `Emulator` take the two-stream physics from its compiled form
(utils/two_stream.py), which gives the same numbers to float32 rounding.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.schema import (COS_ILLUM, COS_ZENITH, DENSITY, DIFFUSE_SW, DIRECT_SW, DUST, DZ, N_LAYERS, SOIL_ALBEDO, SOOT,
                          SSA)
from utils.tartes_constants import (BANDS, COS_ILLUM_MIN, DIFFUSE_COS, DUMONT_DIFFUSE, ICE_DENSITY, ICE_SOOT, ICE_SSA,
                                    SSA_ANOMALY, SSA_REPLACEMENT, TAU_TRUNCATION)

SOOT_FLOOR = 1e-10  # kg kg-1, below any visible effect on albedo: log(soot + floor) is finite at 0
DUST_FLOOR = 1e-8  # kg kg-1; dust absorbs about 50 times less than soot per unit mass
DEPTH_CAP = 1.0  # m: below 1 m of snow the soil no longer shows in the albedo
WEAK_ABSORPTION = 0.03  # phi c / 2 below which the clean co-albedo's series is exact to float32
OPACITY_SERIES = -0.05  # -2 ke tau* above which 1 - f2 is computed by its series (exact to float32 there)


def dumont_diffuse_fraction(cos_zenith: torch.Tensor) -> torch.Tensor:
    """utils.crocus_rules.dumont_diffuse_fraction in torch: min(exp(poly(c)), 1), as exp(min(poly(c), 0))."""
    c3, c2, c1, c0 = DUMONT_DIFFUSE
    return torch.exp((((c3 * cos_zenith + c2) * cos_zenith + c1) * cos_zenith + c0).clamp(max=0.0))


def crocus_rules(layers: torch.Tensor, scalars: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 0 and 1 of docs/labels.md on model inputs (new tensors; the layer variables along
    `dim`, 1 for (B, 5, 50), 0 for the (5, 50, B) of `variables_first`; scalars (B, 5) of
    MODEL_SCALARS): ice layers (density >= 850) get SSA 0.05, soot 100e-9 and no dust, an SSA above
    100 becomes 70; a sun behind the slope (cos_illum < 0.0017) makes all the light diffuse, the
    beam's cosine then that of diffuse light; where the forcing has no diffuse light (diffuse_sw ==
    0, the sun not behind the slope) and cos_zenith is finite, the shortwave is split by Dumont's
    diffuse fraction of cos_zenith. The labeller applies the same map (utils.crocus_rules): a model
    need not learn it. (The labeller gives the empty beam the cosine 0.0017: it carries no flux,
    so nothing differs.) soil_albedo and cos_zenith are passed on as they are."""
    dz, ssa, density, soot, dust = layers.unbind(dim)
    ice = (density >= ICE_DENSITY) & (dz > 0)
    ssa = torch.where(ice, ICE_SSA, torch.where(ssa > SSA_ANOMALY, SSA_REPLACEMENT, ssa))
    layers = torch.stack([dz, ssa, density, torch.where(ice, ICE_SOOT, soot), torch.where(ice, 0.0, dust)], dim=dim)
    cos_illum, direct, diffuse, cos_zenith = (scalars[:, k] for k in (COS_ILLUM, DIRECT_SW, DIFFUSE_SW, COS_ZENITH))
    shortwave = direct + diffuse
    behind = cos_illum < COS_ILLUM_MIN
    split = ~behind & (diffuse == 0) & torch.isfinite(cos_zenith)
    split_diffuse = dumont_diffuse_fraction(torch.where(split, cos_zenith, 1.0)) * shortwave
    scalars = torch.stack([
        torch.where(behind, DIFFUSE_COS, cos_illum),
        torch.where(behind, 0.0, torch.where(split, shortwave - split_diffuse, direct)),
        torch.where(behind, shortwave, torch.where(split, split_diffuse, diffuse)),
        scalars[:, SOIL_ALBEDO], cos_zenith], dim=1)
    return layers, scalars


def variables_first(layers: torch.Tensor) -> torch.Tensor:
    """(B, 5, 50) model layers as (5, 50, B), contiguous: the layout of the two-stream physics,
    where every operation runs over rows of the whole batch (a strided view would make each of
    them several times slower)."""
    # one (B, 250) -> (250, B) transposition: half the time of permute(1, 2, 0).contiguous()
    return layers.flatten(1).T.contiguous().view(layers.shape[1], layers.shape[2], -1)


def layer_mask(layers: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Layer present: (B, 50) bool, or (50, B) for `variables_first` layers (dim=0, as `crocus_rules`)."""
    return layers.select(dim, DZ) > 0


def direct_fraction(scalars: torch.Tensor) -> torch.Tensor:
    """DIR / (DIR + DIF) of model scalars: the label depends on the fluxes almost only through it."""
    return scalars[:, DIRECT_SW] / (scalars[:, DIRECT_SW] + scalars[:, DIFFUSE_SW])


def snow_depth(layers: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """(B,) m, the layers' variables along `dim` (as `crocus_rules`)."""
    return layers.select(dim, DZ).sum(dim=dim)


def log_layer_variables(layers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 5, 50): log dz, log ssa, density, log(soot + floor), log(dust + floor); 0 where absent.

    Logs where the physics is multiplicative: optical depth and scattering scale with dz and ssa,
    and impurities span orders of magnitude with many exact zeros.
    """
    present = mask[:, None, :]
    safe = torch.where(present, layers, torch.ones_like(layers))
    features = torch.stack([
        torch.log(safe[:, DZ]), torch.log(safe[:, SSA]), safe[:, DENSITY],
        torch.log(safe[:, SOOT] + SOOT_FLOOR), torch.log(safe[:, DUST] + DUST_FLOOR),
    ], dim=1)
    return features * present


class Standardise(nn.Module):
    """z-scores of features along dim 1, with means and deviations fitted on the training data.

    Inputs (B, C), or (B, C, L) with a (B, L) mask of the entries that count (absent layers are
    neither counted in the fit nor changed from 0). `fit_normalisation` streams the training data
    through the model once to set the statistics; they are buffers, saved with the weights.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.sums: list[np.ndarray] | None = None  # count, sum, sum of squares while fitting

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 2:
            if self.sums is not None:
                self._accumulate(x.detach().double())
            return (x - self.mean) / self.std
        if self.sums is not None:
            self._accumulate(x.detach().double().transpose(1, 2)[mask])
        return (x - self.mean[:, None]) / self.std[:, None] * mask[:, None, :]

    def _accumulate(self, rows: torch.Tensor) -> None:
        rows = rows.cpu().numpy()
        self.sums[0] += len(rows)
        self.sums[1] += rows.sum(axis=0)
        self.sums[2] += (rows ** 2).sum(axis=0)

    def start_fit(self) -> None:
        n = len(self.mean)
        self.sums = [np.zeros(1), np.zeros(n), np.zeros(n)]

    def end_fit(self) -> None:
        count, total, squares = self.sums
        self.sums = None
        if count[0] == 0:
            raise ValueError("cannot fit the normalisation: no training profile")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
        # A constant feature (say no dust anywhere) is centred, not scaled.
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype))


def fit_normalisation(model: nn.Module, batches) -> None:
    """Set the statistics of every `Standardise` in model from batches of (layers, scalars)."""
    standardisers = [m for m in model.modules() if isinstance(m, Standardise)]
    device = next(model.buffers()).device
    for standardiser in standardisers:
        standardiser.start_fit()
    try:
        with torch.no_grad():
            for layers, scalars in batches:
                model(torch.as_tensor(layers, device=device), torch.as_tensor(scalars, device=device))
    except BaseException:
        for standardiser in standardisers:
            standardiser.sums = None
        raise
    for standardiser in standardisers:
        standardiser.end_fit()


class TwoStreamOptics(nn.Module):
    """Two-stream optics of every snow layer at a few wavelengths, and the diffuse light they
    reflect and absorb: the physics the emulator's features are made of.

    Per layer and wavelength, from TARTES' delta-Eddington formulas (tartes.single_scattering_
    optical_parameters, as in preprocessing/tartes_labels.py): single-scattering co-albedo 1 - omega
    of the grains and their impurities, asymmetry g, then in the delta-scaled medium
        s = sqrt((gamma1 - gamma2) / (gamma1 + gamma2)),  r = (1 - s) / (1 + s),  ke = (gamma1 + gamma2) s,
    r the albedo of a semi-infinite layer of that snow, ke its diffuse extinction. These are
    features, not labels: tartes' clamp of gamma2 at 1e-4 (reached only for strongly absorbing
    snow, beyond these wavelengths) and its cap on layer optical depths are left out, and the
    formulas are arranged for few tensor operations, since on a CPU the features cost more than the
    network. Everything is carried in co-albedos (1 - omega ~ 1e-7 and 1 - r ~ 1e-2 in the
    visible): in float32, albedos this close to 1 lose the digits that matter.
    """

    # Tensor operations per layer and wavelength (multiplications, additions, divisions, exp,
    # tanh, sqrt and log one each), for the models' multiply-accumulate counts: `layer_optics`,
    # then `diffuse_coalbedo` and `diffuse_absorbed`.
    OPERATIONS = 30 + 30

    def __init__(self, wavelengths_nm: list[float], n_shallow: int = 0, shallow_layers: int = N_LAYERS,
                 truncation: bool = False):
        super().__init__()
        # SURFEX's truncation at these wavelengths: the layer where the cumulative ke tau* passes 30
        # (the second or deeper) and all below it absorb nothing, the kept layers lying on a white floor
        self.truncation = truncation
        if not 0 <= n_shallow <= len(wavelengths_nm):
            raise ValueError(f"n_shallow must be in [0, {len(wavelengths_nm)}] (the wavelengths), not {n_shallow}")
        if not 1 <= shallow_layers <= N_LAYERS:
            raise ValueError(f"shallow_layers must be in [1, {N_LAYERS}], not {shallow_layers}")
        wavelength = np.asarray(wavelengths_nm, dtype=np.float64) * 1e-9
        # the band constants at the requested wavelengths, interpolated in the 20 nm band table
        band = {k: np.interp(wavelength, BANDS["wavelength"], BANDS[k])
                for k in ("c_times_ssa", "ginf", "g00", "y", "W", "phi", "mae_soot", "mae_dust")}
        # Combined once here so that each is one multiplication per layer in forward: with
        # x = 1/ssa, c = c_times_ssa x, g = ginf - (ginf - g00) exp(-y c), and the co-albedo of
        # clean snow 0.5 (1 - W) (1 - exp(-phi c)) = (1 - W) q / (1 + q), q = tanh(phi c / 2)
        # (1 - exp(-phi c) itself loses its digits in float32 where phi c ~ 1e-7, in the visible).
        constants = {
            "minus_y_c": -band["y"] * band["c_times_ssa"],
            "half_phi_c": 0.5 * band["phi"] * band["c_times_ssa"], "ginf": band["ginf"],
            "g_span": band["ginf"] - band["g00"], "clean": 1 - band["W"],
            "soot": 2 * band["mae_soot"], "dust": 2 * band["mae_dust"],  # per unit mass over ssa
        }
        for name, values in constants.items():
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32)[:, None, None])  # (W, 1, 1)
        # wavelengths where ice hardly absorbs: phi c / 2 < 0.03 even in ice layers (SSA 0.05), from
        # the float32 constants as the Fortran module reads them
        self.weak = [h / ICE_SSA < WEAK_ABSORPTION for h in self.half_phi_c.flatten().tolist()]
        # (wavelengths, layers computed) of each group: all the layers, then the shallow wavelengths
        deep = len(wavelengths_nm) - n_shallow
        self.groups = [(slice(0, deep), N_LAYERS), (slice(deep, len(wavelengths_nm)), shallow_layers)]
        self.groups = [(w, n) for w, n in self.groups if w.stop > w.start]

    @property
    def n_wavelengths(self) -> int:
        return len(self.ginf)

    @property
    def operations(self) -> int:
        return sum((w.stop - w.start) * n for w, n in self.groups) * self.OPERATIONS

    def layer_optics(self, layers: torch.Tensor, wavelengths: slice = slice(None)
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """rho = 1 - r, the co-albedo of a semi-infinite layer, f2 = exp(-2 ke tau*), the
        two-way diffuse transmission, and -2 ke tau* itself, of every layer of `variables_first`
        layers (5, L, B) at the `wavelengths` (a slice of the optics' own): each (W, L, B), the
        batch last so that every operation runs over long contiguous rows. An absent layer has
        f2 = 1 (no optical depth) and the rho of clean snow of SSA 1.

        The (W, 50, B) tensors are updated in place: fresh memory costs page faults, which took
        half the time of these operations on a CPU."""
        dz, ssa = layers[DZ], layers[SSA]
        inverse_ssa = 1 / (ssa + (dz <= 0).to(layers.dtype))  # absent layers hold 0
        # two-way optical depth = -log f2 = 2 ke tau*, tau* = density ssa dz / 2 * scaling
        minus_optical_depth = -1.5 * layers[DENSITY] * ssa * dz
        w = wavelengths
        g = torch.mul(inverse_ssa, self.minus_y_c[w]).exp_().mul_(-self.g_span[w]).add_(self.ginf[w])
        h = torch.mul(inverse_ssa, self.half_phi_c[w])  # phi c / 2
        if all(self.weak[w]):  # (1 - exp(-2 h)) / 2 by its series, exact to float32 for h < 0.03: no tanh
            clean = ((h * (-1 / 3)).add_(2 / 3).mul_(h).sub_(1).mul_(h).add_(1)).mul_(h)
        else:
            q = h.tanh_()
            clean = q.div_(q + 1)
        # (no in-place addcmul_ with a buffer: the ONNX exporter warns of changed semantics, wrongly)
        coalbedo = torch.addcmul(layers[SOOT] * inverse_ssa * self.soot[w], layers[DUST] * inverse_ssa, self.dust[w])
        coalbedo.add_(clean.mul_(self.clean[w]))
        scaling = (coalbedo - 1).mul_(g * g).add_(1)  # 1 - g^2 omega: tau* / tau, (1 - omega*) / (1 - omega)
        coalbedo_star = coalbedo.div_(scaling)
        # gamma1 + gamma2 = 1.5 (1 - g* (1 - omega*)), gamma1 - gamma2 = 2 (1 - omega*), g* = g / (1 + g)
        half_sum = g.div_(g + 1).mul_(coalbedo_star - 1).add_(1)
        s = coalbedo_star.div_(half_sum).mul_(4 / 3).sqrt_()
        minus_two_way = half_sum.mul_(s).mul_(scaling).mul_(minus_optical_depth)
        rho = (2 * s).div_(s.add_(1))
        return rho, minus_two_way.exp(), minus_two_way

    @staticmethod
    def optical_depth(minus_two_way: torch.Tensor) -> torch.Tensor:
        """(W, L, B): 2 ke tau*, the two-way diffuse optical depth, from the surface to the bottom
        of each layer, from the layers' `layer_optics` -2 ke tau* (W, L, B)."""
        return torch.cumsum(minus_two_way, dim=1).neg_()

    def truncated(self, optical_depth: torch.Tensor) -> torch.Tensor | None:
        """(W, L, B) bool, with `truncation`, the layers SURFEX's truncation drops (docs/labels.md,
        step 2, point 3) from their `optical_depth` (W, L, B): from the second layer on, where the
        cumulative ke tau* from the top passes 30; None without truncation."""
        if not self.truncation:
            return None
        return torch.cat([torch.zeros_like(optical_depth[:, :1], dtype=torch.bool),
                          optical_depth[:, 1:] > 2 * TAU_TRUNCATION], dim=1)

    @staticmethod
    def opacity(minus_two_way: torch.Tensor) -> torch.Tensor:
        """1 - f2 = -expm1(x) of x = `layer_optics`' -2 ke tau* (<= 0), to float32 rounding: by its
        series where x > OPACITY_SERIES (1 - exp(x) there loses the digits of an optically thin
        layer, the kept top over SURFEX's white floor; ONNX has no expm1)."""
        x = minus_two_way
        series = -x * (((((x * (1 / 120) + 1 / 24) * x + 1 / 6) * x + 0.5) * x) + 1)
        return torch.where(x > OPACITY_SERIES, series, -torch.exp(x) + 1)

    def diffuse_coalbedo(self, rho: torch.Tensor, f2: torch.Tensor, below: torch.Tensor,
                         truncated: torch.Tensor | None = None, opacity: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """P (W, L + 1, B): under unit diffuse light at each wavelength, the co-albedo 1 - R of
        what lies under the top of each layer (P[:, 0]: the whole pack; P[:, L]: what lies below
        the L layers, `below` (W, B) or (B,), the soil's 1 - soil_albedo under the pack), from the
        `layer_optics` (W, L, B) of the layers; and the denominators D (W, L, B) of the sweep,
        which `transmission` needs.

        The labeller's upward sweep. Up from the soil (one albedo in every band), through a layer
        of semi-infinite albedo r and two-way transmission f2, the reflectance R below becomes
        R' = (f2 (R - r) + r (1 - r R)) / ((1 - r R) + f2 r (R - r)); in co-albedos P = 1 - R and
        rho = 1 - r, which keep their digits in float32,
            P' = (rho (r + f2) P + rho^2 (1 - f2)) / D,  D = r (1 - f2) P + rho (1 + f2 r),
        the identity for an absent layer (f2 = 1); `opacity`, 1 - f2 (default: computed from f2). Under
        `truncated` layers (W, L, B), P is 0 (SURFEX's
        white floor under the kept layers; they and the soil then absorb nothing). The layers are
        stacked at the end: the
        TorchScript-based ONNX exporter loses writes into slices of one tensor (`out=P[:, k]`),
        which gave co-albedos wrong by up to 0.8 in ONNX files.
        """
        n_layers = rho.shape[1]
        r = 1 - rho
        opacity = 1 - f2 if opacity is None else opacity
        # P' = (a P + b) / (c P + d)
        a = (r + f2).mul_(rho)
        b = (rho * rho).mul_(opacity)
        c = opacity.mul_(r)
        d = (f2 * r).add_(1).mul_(rho)
        below = below.expand_as(rho[:, 0])
        if truncated is not None:  # truncation is monotone: the deepest layer is dropped where any is
            below = torch.where(truncated[:, -1], 0.0, below)
        P, denominators = [below], []
        for k in range(n_layers - 1, -1, -1):
            denominators.append(torch.addcmul(d[:, k], c[:, k], below))
            below = torch.addcmul(b[:, k], a[:, k], below).div_(denominators[-1])
            if truncated is not None:
                below = torch.where(truncated[:, k], 0.0, below)
            P.append(below)
        return torch.stack(P[::-1], dim=1), torch.stack(denominators[::-1], dim=1)

    def group_budget(self, layers: torch.Tensor, soil_albedo: torch.Tensor, group: tuple[slice, int],
                     budget: bool = True) -> tuple[torch.Tensor, ...]:
        """The physics of unit diffuse light at the wavelengths of one of `groups`, on its top n
        layers of `variables_first` layers (5, 50, B) over the soil of albedo `soil_albedo` (B,):
        rho, f2 (Wg, n, B) (`layer_optics`), the `optical_depth` from the surface through each
        layer (Wg, n, B), P (Wg, n + 1, B) (`diffuse_coalbedo`) and, with
        budget, what each of the n layers absorbs and, last, what passes below them (Wg, n + 1, B)
        (`diffuse_absorbed`); without, what the top layer absorbs (Wg, B) (`top_absorbed`).

        Below n < 50 layers, where the pack goes on, lies semi-infinite snow of the last layer's
        kind: the near infrared is absorbed in the top centimetres, and so little of it passes
        the top 8 layers that what lies deeper does not change the mixture's best fit of the
        labels (benchmarks/mixture_limit.py). The soil lies under a pack that ends within the n
        layers, as under all 50: it enters every group exactly where it lies under the layers
        computed."""
        wavelengths, n = group
        rho, f2, minus_two_way = self.layer_optics(layers[:, :n], wavelengths)
        below = 1 - soil_albedo
        if n < layers.shape[1]:
            below = torch.where(layers[DZ, n] > 0, rho[:, -1], below)
        optical_depth = self.optical_depth(minus_two_way)
        P, denominators = self.diffuse_coalbedo(rho, f2, below, self.truncated(optical_depth),
                                                self.opacity(minus_two_way))
        if budget:
            return rho, f2, optical_depth, P, self.diffuse_absorbed(P, self.transmission(rho, f2, denominators))
        return rho, f2, optical_depth, P, self.top_absorbed(P, self.transmission(rho[:, :1], f2[:, :1],
                                                                                  denominators[:, :1]))

    @staticmethod
    def in_pack(absorbed: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """`group_budget`'s absorbed (..., n + 1, B) on the pack's 50 layers and the soil (...,
        51, B), `present` the layers' mask (50, B): what passes below n layers is taken by layer
        n + 1 where there is one (the top of the deeper snow), else by the soil."""
        n = absorbed.shape[-2] - 1
        if n == present.shape[0]:
            return absorbed
        below = absorbed[..., n:, :]
        deeper = below * present[n].to(below.dtype)
        gap = absorbed.new_zeros((*absorbed.shape[:-2], present.shape[0] - n - 1, absorbed.shape[-1]))
        return torch.cat([absorbed[..., :n, :], deeper, gap, below - deeper], dim=-2)

    def diffuse_budget(self, layers: torch.Tensor, soil_albedo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The co-albedo (W, B) of the pack under unit diffuse light at each wavelength, and what
        each layer and, last, the soil absorb of it (W, 51, B): `group_budget` of every group, on
        `variables_first` layers (5, 50, B) over soils of albedo `soil_albedo` (B,)."""
        budgets = [self.group_budget(layers, soil_albedo, group) for group in self.groups]
        return (torch.cat([P[:, 0] for *_, P, _ in budgets]),
                torch.cat([self.in_pack(absorbed, layer_mask(layers, dim=0)) for *_, absorbed in budgets]))

    @staticmethod
    def transmission(rho: torch.Tensor, f2: torch.Tensor, denominators: torch.Tensor) -> torch.Tensor:
        """The factor the downward diffuse flux is multiplied by through each layer (the layers of
        rho, f2 and the sweep's denominators D of `diffuse_coalbedo`), sqrt(f2) rho (1 + r) / D, as
        in the labeller's downward pass; exactly 1 for an absent layer (f2 = 1)."""
        return f2.sqrt().mul_(rho).mul_(2 - rho).div_(denominators)

    @staticmethod
    def diffuse_absorbed(P: torch.Tensor, transmission: torch.Tensor) -> torch.Tensor:
        """(W, L + 1, B): what each layer and, last, what lies below them (the soil) absorb of unit
        diffuse light (summing to the co-albedo P[:, 0], to rounding), from `diffuse_coalbedo`
        (W, L + 1, B) and the `transmission` (W, L, B) of the layers: the net flux at each
        interface, the diffuse flux there times P, falls down from the surface by what each layer
        absorbs, through the `transmission` of each layer (a running product, not torch.cumprod:
        ONNX has none)."""
        down = [transmission[:, 0]]
        for k in range(1, transmission.shape[1]):
            down.append(down[-1] * transmission[:, k])
        net = P[:, 1:] * torch.stack(down, dim=1)  # under each layer
        return torch.cat([P[:, :1] - net[:, :1], net[:, :-1] - net[:, 1:], net[:, -1:]], dim=1).clamp_(min=0)

    @staticmethod
    def top_absorbed(P: torch.Tensor, transmission: torch.Tensor) -> torch.Tensor:
        """(W, B): what the top layer absorbs of unit diffuse light, `diffuse_absorbed`[:, 0] alone
        (the `transmission` of the top layer is enough)."""
        return (P[:, 0] - transmission[:, 0] * P[:, 1]).clamp_(min=0)
