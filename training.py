"""The training loop: AdamW, a learning-rate schedule, early stopping on the validation seasons,
gradient clipping, an atomic checkpoint every epoch, and exact resumption.

A run directory holds:
    config.json        the configuration
    domain.json        the input domain of the training data
    last.pt            everything needed to continue: model, optimiser, scheduler, RNG states, epoch
    best.pt            the selected model (best validation MAE) as an `Emulator` file
    metrics.csv        per epoch: train and validation loss and MAE, learning rate, time
Only rank 0 writes; under torchrun every rank trains on its share of each epoch (DDP).
"""
from __future__ import annotations

import csv
import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from dataset import ShardDataset, evaluation_loader, training_loader
from models import Emulator, count_macs, count_parameters, save_atomic
from utils.config import Config
from utils.devices import Distributed

CHECKPOINT = "last.pt"
SELECTED = "best.pt"
METRICS = "metrics.csv"
METRIC_COLUMNS = ("epoch", "train_loss", "train_mae", "val_loss", "val_mae", "lr", "epoch_seconds")
LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


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


def evaluate(model: torch.nn.Module, loader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets (float64) of every batch of `loader`, in order."""
    model.eval()
    predictions, targets = [], []
    with torch.no_grad():
        for batch in loader:
            predictions.append(model(batch["layers"].to(device), batch["illumination"].to(device)).double().cpu())
            targets.append(batch["target"].double())
    return torch.cat(predictions).numpy(), torch.cat(targets).numpy()


def write_metrics(history: list[dict], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)


def open_tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard is not installed: skipping TensorBoard logging (pip install tensorboard)")
        return None
    return SummaryWriter(run_dir / "tensorboard")


def train(config: Config, model_name: str, model: torch.nn.Module, settings, domain: dict,
          train_set: ShardDataset, val_set: ShardDataset, run_dir: Path, dist: Distributed,
          deadline: float, checkpoint: dict | None = None) -> dict:
    """Train until `config.epochs`, early stopping, or `deadline` (time.time() seconds) would fall
    within the next epoch; continue from `checkpoint` (a loaded last.pt) when given. At least one
    epoch runs. Returns a summary: epochs done, best epoch and MAE, why it stopped."""
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
    loss_function = LOSSES[config.loss]
    progress = {"epoch": 0, "best_val_mae": math.inf, "best_epoch": 0, "bad_epochs": 0, "history": []}
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model_state"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        progress = checkpoint["progress"]
        # Last, once nothing above draws random numbers any more.
        set_rng_state(checkpoint["rng"][dist.rank])
        if dist.is_main:
            print(f"resuming {run_dir} after epoch {progress['epoch']}")
    writer = open_tensorboard(run_dir) if config.tensorboard and dist.is_main else None
    info = {"model": model_name, "parameters": count_parameters(model), "macs_per_profile": count_macs(model)}
    session_start, epoch_seconds, stopped = time.time(), 0.0, "epochs"

    while progress["epoch"] < config.epochs:
        if progress["bad_epochs"] >= config.patience:
            stopped = "early stopping"
            break
        if dist.broadcast_flag(epoch_seconds > 0 and time.time() + epoch_seconds > deadline):
            stopped = "time budget"
            break
        epoch = progress["epoch"] + 1
        epoch_start = time.time()
        sampler.set_epoch(epoch)
        network.train()
        sums = np.zeros(3)  # loss * n, |error|, n
        lr = optimiser.param_groups[0]["lr"]
        for step, batch in enumerate(tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", leave=False,
                                          disable=not dist.is_main, unit="batch")):
            target = batch["target"].to(device, non_blocking=True)
            prediction = network(batch["layers"].to(device, non_blocking=True),
                                 batch["illumination"].to(device, non_blocking=True))
            loss = loss_function(prediction, target)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch}, batch {step}: training "
                    f"aborted; lower the learning rate (lr={config.lr}) or check the data in {config.shard_dir}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            lr = optimiser.param_groups[0]["lr"]
            optimiser.step()
            scheduler.step()
            with torch.no_grad():
                sums += [loss.item() * len(target), (prediction - target).abs().sum().item(), len(target)]
        train_loss, train_abs, train_n = dist.all_reduce_sum(sums.tolist())
        prediction, target = evaluate(model, val_loader, device)
        error = prediction - target
        val_loss, val_abs, val_n = dist.all_reduce_sum([
            loss_function(torch.from_numpy(prediction), torch.from_numpy(target), reduction="sum").item(),
            np.abs(error).sum(), len(error)])
        epoch_seconds = time.time() - epoch_start
        row = {"epoch": epoch, "train_loss": train_loss / train_n, "train_mae": train_abs / train_n,
               "val_loss": val_loss / val_n, "val_mae": val_abs / val_n, "lr": lr, "epoch_seconds": epoch_seconds}
        progress["history"].append(row)
        progress["epoch"] = epoch
        improved = row["val_mae"] < progress["best_val_mae"]
        if improved:
            progress.update(best_val_mae=row["val_mae"], best_epoch=epoch, bad_epochs=0)
        else:
            progress["bad_epochs"] += 1
        rng = dist.all_gather(rng_state())
        if dist.is_main:
            if improved:
                Emulator(model_name, asdict(settings), model, domain, asdict(config),
                         {**info, "epoch": epoch, "val_mae": row["val_mae"], "val_loss": row["val_loss"]}
                         ).save(run_dir / SELECTED)
            save_atomic({"config": asdict(config), "model": model_name, "settings": asdict(settings),
                         "model_state": model.state_dict(), "optimiser": optimiser.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": rng, "domain": domain,
                         "progress": progress}, run_dir / CHECKPOINT)
            write_metrics(progress["history"], run_dir / METRICS)
            if writer is not None:
                for key in METRIC_COLUMNS[1:]:
                    writer.add_scalar(key, row[key], epoch)
                writer.flush()
            print(f"epoch {epoch:3d}/{config.epochs}  train loss {row['train_loss']:.3e} MAE {row['train_mae']:.4f}  "
                  f"val loss {row['val_loss']:.3e} MAE {row['val_mae']:.4f}  lr {lr:.2e}  {epoch_seconds:.0f} s"
                  + ("  *" if improved else ""), flush=True)
    if writer is not None:
        writer.close()
    if dist.is_main:
        print(f"training stopped ({stopped}) after epoch {progress['epoch']}; selected epoch "
              f"{progress['best_epoch']} (validation MAE {progress['best_val_mae']:.4f})")
    return {"epochs": progress["epoch"], "best_epoch": progress["best_epoch"],
            "best_val_mae": progress["best_val_mae"], "stopped": stopped,
            "session_seconds": time.time() - session_start, "history": progress["history"], **info}


def load_checkpoint(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (the run stopped before its first epoch ended)")
    return torch.load(path, map_location="cpu", weights_only=True)

