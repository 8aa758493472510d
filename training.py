"""The training loop: AdamW, a learning-rate schedule, early stopping on the validation seasons,
gradient clipping, an atomic checkpoint every epoch, and exact resumption.

A run directory holds:
    config.json        the configuration
    domain.json        the input domain of the training data
    last.pt            everything needed to continue: model, optimiser, scheduler, RNG states, epoch
    best.pt            the selected model (config.select: the last epoch's or the best validation loss's)
                       as an `Emulator` file
    metrics.csv        per epoch: train and validation loss and albedo MAE, the validation errors
                       of the top layer's absorbed fraction and of the absorbed profile, learning rate, time

The loss is that of the albedo (config.loss) plus, for models that give the energy budget,
config.profile_weight times the mean over profiles of the summed squared errors of the absorbed
fractions (every layer and the soil).
Only rank 0 writes; under torchrun every rank trains on its share of each epoch (DDP).
"""
from __future__ import annotations

import csv
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from dataset import ShardDataset, evaluation_loader, training_loader
from models import Emulator, count_macs, count_parameters
from utils.config import Config
from utils.devices import Distributed
from utils.files import save_torch, written
from utils.provenance import provenance
from utils.report import profile_errors
from utils.run_files import CHECKPOINT, METRICS, SELECTED

METRIC_COLUMNS = ("epoch", "train_loss", "train_mae", "val_loss", "val_mae", "val_top_mae", "val_profile_error",
                  "lr", "epoch_seconds")
TARGETS = ("albedo", "absorbed", "soil")


def make_optimiser(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(optimiser: torch.optim.Optimizer, config: Config, steps_per_epoch: int):
    """Stepped every batch, over `config.epochs` epochs."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=total)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total)
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.ConstantLR(optimiser, factor=1.0, total_iters=0)
    raise ValueError(f"schedule {config.schedule!r}: expected onecycle, cosine or constant")


def rng_state() -> dict:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    random.setstate(state["python"])


def uses_compiled_physics(model: torch.nn.Module, dist: Distributed) -> bool:
    """Whether the training steps take the model's compiled physics (OpticalBudget.compiled_physics):
    on a CPU, in a single process, for a model that has one. The physics has no weights: computed
    apart, it leaves only the network to autograd (on one thread at batch 512, a step of the
    default model took 2.9 ms, and the compiled physics 0.3 ms, instead of 7.9 ms). Under DDP every
    step goes through the wrapped model's forward; on GPUs the torch form runs where the network does."""
    return not dist.enabled and dist.device.type == "cpu" and hasattr(model, "compiled_physics")


def predict_batch(model: torch.nn.Module, batch: dict, device: torch.device, compiled: bool = False
                  ) -> dict[str, torch.Tensor]:
    """The model's outputs on a batch, by name: albedo, and absorbed and soil for budget models;
    with `compiled` (`uses_compiled_physics`), from the model's compiled physics."""
    if compiled:
        out = model.budget_of(model.compiled_physics(batch["layers"].numpy(), batch["scalars"].numpy(), budget=True))
    else:
        out = model(batch["layers"].to(device, non_blocking=True), batch["scalars"].to(device, non_blocking=True))
    return dict(zip(TARGETS, out if isinstance(out, tuple) else (out,)))


def loss_of(prediction: dict, batch: dict, config: Config, reduction: str = "mean") -> torch.Tensor:
    """The training objective (module docstring) of a batch."""
    device = prediction["albedo"].device
    # config.loss names a loss of torch.nn.functional (utils.config.CHOICES: mse, l1)
    loss = getattr(F, f"{config.loss}_loss")(prediction["albedo"], batch["albedo"].to(device), reduction=reduction)
    if "absorbed" in prediction and config.profile_weight > 0:
        squared = ((prediction["absorbed"] - batch["absorbed"].to(device)) ** 2).sum(dim=1) \
            + (prediction["soil"] - batch["soil"].to(device)) ** 2
        loss = loss + config.profile_weight * (squared.mean() if reduction == "mean" else squared.sum())
    return loss


def evaluate(model: torch.nn.Module, loader, device: torch.device, compiled: bool = False) -> tuple[dict, dict]:
    """Predictions and targets (float64 arrays, by name) of every batch of `loader`, in order."""
    model.eval()
    predictions, targets = [], []
    with torch.no_grad():
        for batch in loader:
            predictions.append({k: v.double().cpu() for k, v in predict_batch(model, batch, device, compiled).items()})
            targets.append({k: batch[k].double() for k in predictions[-1]})
    return ({k: torch.cat([p[k] for p in predictions]).numpy() for k in predictions[0]},
            {k: torch.cat([t[k] for t in targets]).numpy() for k in targets[0]})


def write_metrics(history: list[dict], path: Path) -> None:
    with written(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(history)


def open_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard is not installed: skipping TensorBoard logging (pip install tensorboard)")
        return None
    return SummaryWriter(run_dir / "tensorboard")


@dataclass
class Run:
    """What the epoch loop works on: the model, its DDP wrapper, data, optimiser and schedule, and
    the provenance saved with every selected model."""

    config: Config
    model: torch.nn.Module
    network: torch.nn.Module
    settings: object
    domain: dict
    loader: DataLoader
    sampler: object
    val_loader: DataLoader
    optimiser: torch.optim.Optimizer
    scheduler: object
    dist: Distributed
    run_dir: Path
    info: dict
    compiled: bool  # the steps take the model's compiled physics (uses_compiled_physics)


def train_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training data; returns the epoch's training loss and albedo MAE."""
    config, device = run.config, run.dist.device
    run.sampler.set_epoch(epoch)
    run.network.train()
    sums = np.zeros(3)  # loss * n, |albedo error|, n
    for step, batch in enumerate(tqdm(run.loader, desc=f"epoch {epoch}/{config.epochs}", leave=False,
                                      disable=not run.dist.is_main, unit="batch")):
        prediction = predict_batch(run.network, batch, device, run.compiled)
        loss = loss_of(prediction, batch, config)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at epoch {epoch}, batch {step}: training "
                f"aborted; lower the learning rate (lr={config.lr}) or check the data in {config.shard_dir}")
        run.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
        run.optimiser.step()
        run.scheduler.step()
        n = len(batch["albedo"])
        with torch.no_grad():
            sums += [loss.item() * n, (prediction["albedo"].cpu() - batch["albedo"]).abs().sum().item(), n]
    loss_sum, abs_sum, n = run.dist.all_reduce_sum(sums.tolist())
    return {"train_loss": loss_sum / n, "train_mae": abs_sum / n}


def validate(run: Run) -> dict:
    """Loss, albedo MAE, top-layer MAE and mean profile error on this process's validation rows,
    reduced over the processes (NaN errors for albedo-only models)."""
    prediction, target = evaluate(run.model, run.val_loader, run.dist.device, run.compiled)
    as_tensors = {k: torch.from_numpy(v) for k, v in target.items()}
    loss = loss_of({k: torch.from_numpy(v) for k, v in prediction.items()}, as_tensors, run.config, "sum").item()
    error = profile_errors(prediction, target)
    sums = [loss, np.abs(error["albedo"]).sum(), len(error["albedo"])]
    sums += [np.abs(error["top_layer"]).sum(), error["profile"].sum()] if "profile" in error else [np.nan, np.nan]
    loss, albedo, n, top, profile = run.dist.all_reduce_sum(sums)
    return {"val_loss": loss / n, "val_mae": albedo / n, "val_top_mae": top / n, "val_profile_error": profile / n}


def save_progress(run: Run, progress: dict, row: dict, improved: bool, writer) -> None:
    """The selected model when it improved, the checkpoint, the metrics (rank 0 writes)."""
    rng = run.dist.all_gather(rng_state())
    if not run.dist.is_main:
        return
    if improved:
        Emulator(run.config.model, asdict(run.settings), run.model, run.domain, asdict(run.config),
                 {**run.info, "epoch": row["epoch"], "val_loss": row["val_loss"], "val_mae": row["val_mae"],
                  "val_top_mae": row["val_top_mae"], "val_profile_error": row["val_profile_error"]}
                 ).save(run.run_dir / SELECTED)
    save_torch({"config": asdict(run.config), "model": run.config.model, "settings": asdict(run.settings),
                "model_state": run.model.state_dict(), "optimiser": run.optimiser.state_dict(),
                "scheduler": run.scheduler.state_dict(), "rng": rng, "domain": run.domain,
                "progress": progress}, run.run_dir / CHECKPOINT)
    write_metrics(progress["history"], run.run_dir / METRICS)
    if writer is not None:
        for key in METRIC_COLUMNS[1:]:
            writer.add_scalar(key, row[key], row["epoch"])
        writer.flush()
    print(f"epoch {row['epoch']:3d}/{run.config.epochs}  train loss {row['train_loss']:.3e} MAE {row['train_mae']:.5f}"
          f"  val loss {row['val_loss']:.3e} MAE {row['val_mae']:.5f} top {row['val_top_mae']:.5f} "
          f"profile {row['val_profile_error']:.5f}  lr {row['lr']:.2e}  {row['epoch_seconds']:.0f} s"
          + ("  *" if improved else ""), flush=True)


def setup(config: Config, model: torch.nn.Module, settings, domain: dict, train_set: ShardDataset,
          val_set: ShardDataset, run_dir: Path, dist: Distributed) -> Run:
    device = dist.device
    model.to(device)
    network = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if dist.enabled else model
    pin = device.type == "cuda"
    loader, sampler = training_loader(train_set, config.batch_size, config.seed, dist.rank, dist.world_size,
                                      config.num_workers, pin)
    val_loader = evaluation_loader(val_set, 4 * config.batch_size, dist.rank, dist.world_size, config.num_workers, pin)
    optimiser = make_optimiser(model, config)
    scheduler = make_scheduler(optimiser, config, len(loader))
    info = {"model": config.model, "parameters": count_parameters(model), "macs_per_profile": count_macs(model),
            "provenance": provenance()}
    return Run(config, model, network, settings, domain, loader, sampler, val_loader, optimiser, scheduler, dist,
               run_dir, info, uses_compiled_physics(model, dist))


def train(config: Config, model: torch.nn.Module, settings, domain: dict, train_set: ShardDataset,
          val_set: ShardDataset, run_dir: Path, dist: Distributed, deadline: float,
          checkpoint: dict | None = None) -> dict:
    """Train until `config.epochs`, early stopping, or `deadline` (time.time() seconds) would fall
    within the next epoch; continue from `checkpoint` (a loaded last.pt) when given. At least one
    epoch runs. Returns a summary: epochs done, best epoch and validation loss, why it stopped."""
    run = setup(config, model, settings, domain, train_set, val_set, run_dir, dist)
    progress = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "history": []}
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model_state"])
        run.optimiser.load_state_dict(checkpoint["optimiser"])
        run.scheduler.load_state_dict(checkpoint["scheduler"])
        progress = checkpoint["progress"]
        set_rng_state(checkpoint["rng"][dist.rank])  # last, once nothing above draws random numbers
        if dist.is_main:
            print(f"resuming {run_dir} after epoch {progress['epoch']}")
    writer = open_tensorboard(run_dir) if config.tensorboard and dist.is_main else None
    session_start, epoch_seconds, stopped = time.time(), 0.0, "epochs"
    while progress["epoch"] < config.epochs:
        if progress["bad_epochs"] >= config.patience:
            stopped = "early stopping"
            break
        if dist.broadcast_flag(epoch_seconds > 0 and time.time() + epoch_seconds > deadline):
            stopped = "time budget"
            break
        epoch, epoch_start = progress["epoch"] + 1, time.time()
        lr = run.optimiser.param_groups[0]["lr"]
        row = {"epoch": epoch, **train_epoch(run, epoch), **validate(run), "lr": lr}
        row["epoch_seconds"] = epoch_seconds = time.time() - epoch_start
        improved = config.select == "last" or row["val_loss"] < progress["best_val_loss"]
        progress["history"].append(row)
        progress["epoch"] = epoch
        if improved:
            progress.update(best_val_loss=row["val_loss"], best_epoch=epoch, bad_epochs=0)
        else:
            progress["bad_epochs"] += 1
        save_progress(run, progress, row, improved, writer)
    if writer is not None:
        writer.close()
    if dist.is_main:
        print(f"training stopped ({stopped}) after epoch {progress['epoch']}; selected epoch "
              f"{progress['best_epoch']} (validation loss {progress['best_val_loss']:.3e})")
    return {"epochs": progress["epoch"], "best_epoch": progress["best_epoch"],
            "best_val_loss": progress["best_val_loss"], "stopped": stopped,
            "session_seconds": time.time() - session_start, "history": progress["history"], **run.info}


def load_checkpoint(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (the run stopped before its first epoch ended)")
    return torch.load(path, map_location="cpu", weights_only=True)

