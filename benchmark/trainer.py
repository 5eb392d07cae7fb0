"""The one trainer for every neural method (Lightning-style: the method says what a step and a loss
are; the trainer owns the loop, devices, checkpoints, resume, model selection and logging).

A method may declare several :class:`~benchmark.method.Phase`s (LQ-rPPG trains its label
quantizers, then its model); the trainer runs them in order with the same machinery and has no
per-method branches.

Resume: after every epoch the trainer writes ``<run_dir>/last.pt`` atomically (temp file + rename)
with the phase, epoch, weights, optimiser, scheduler, RNG states, selection state and history; the
same command after an interruption (even ``kill -9`` mid-epoch) continues with the next epoch and
ends with the same weights as an uninterrupted run. Shuffling uses a generator seeded from
(seed, phase, epoch), so it does not depend on where a run was resumed.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.method import NeuralMethod, Phase
from benchmark.shape_guard import unwrap, wrap


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, empty split, ...)."""


@dataclass
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 4
    optimizer: str = "adamw"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str | None = "onecycle"  # onecycle | None
    select: str = "val_loss"  # val_loss | last | val_mae
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "none"  # none | bf16 (CUDA only)
    grad_clip: float | None = None
    num_workers: int = 0
    resume: bool = True
    progress: bool = True
    max_batches_per_epoch: int | None = None
    #: After each training epoch, recompute BatchNorm running statistics from this many training
    #: batches (0 = off); see :meth:`Trainer._precise_bn`.
    precise_bn: int = 0
    #: torch intra-op CPU threads. Fixed (not "all cores") because CPU results depend on it: a
    #: different count splits reductions differently (last-bit changes that a short training run
    #: amplifies) and can change the memory layout an op returns, which changes the elements a
    #: dropout mask hits (see :func:`configure_determinism`).
    threads: int = 2
    #: ``torch.use_deterministic_algorithms`` (CPU: strict; CUDA: warn on ops without a
    #: deterministic kernel) and deterministic cuDNN; see :func:`configure_determinism`.
    deterministic: bool = True

    @classmethod
    def from_dict(cls, d: dict | None) -> TrainerConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # phase → {epoch, value}
    resumed_from: tuple[str, int] | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def configure_determinism(threads: int, deterministic: bool = True) -> None:
    """Make a run's numbers depend on its config only, not on the machine it runs on.

    Why (issue 16.10: PhysFormer ``trainer=quick`` on synthetic_cross gave 38.09 bpm on one machine
    and 12.59 on another, same commit and seed): torch's CPU kernels are deterministic for a given
    intra-op thread count, but not across counts — reductions are split per thread (last-bit
    differences), and some kernels return a different memory layout with one thread than with
    several (PhysFormer's 1×1×1 ``Conv3d`` feed-forward output is channels-last with ≥ 2 threads,
    so the ``transpose`` after it is contiguous there and strided with one). ``Dropout`` fills its
    mask in memory order, so a different layout drops different elements: the training-mode output
    of a freshly initialised PhysFormer differs by ~10 % between one thread and two (with dropout
    off only the last bits differ), and a short run ends in another model — a tiny PhysFormer
    trained for 2 epochs scored 39.0 bpm with one thread and 16.0 with two. torch's default thread count is the
    number of cores, hence machine-dependent results. A fixed ``threads`` (``trainer.threads``,
    logged with the run and part of its identity) removes that; ``deterministic`` additionally asks
    torch for deterministic kernels (on CPU an op without one raises; on CUDA it warns, and cuDNN
    autotuning is off). Still not covered: a different CPU instruction set (AVX2 vs AVX-512 kernels
    in oneDNN/MKL) or torch build can change last bits, which short runs may amplify; bf16 autocast
    and CUDA atomics are not bit-reproducible. Cost of ``deterministic`` on CPU: ≈ +5 % CPU time per
    epoch for PhysFormer at its quick shapes (12.1–12.2 s → 12.4–13.0 s, one thread). Sources: PyTorch
    "Reproducibility" notes
    (https://pytorch.org/docs/stable/notes/randomness.html) and ``torch.set_num_threads``.
    """
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    cuda = torch.cuda.is_available()
    if deterministic and cuda:
        # cuBLAS needs a fixed workspace for deterministic GEMMs (read when cuBLAS initialises)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=bool(deterministic and cuda))
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device=cuda requested but CUDA is not available")
    return torch.device(name)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def _as_loss_dict(out: Any) -> dict[str, torch.Tensor]:
    if isinstance(out, dict):
        if "loss" not in out:
            raise TrainingError(f"loss dict must contain 'loss', got keys {sorted(out)}")
        return out
    return {"loss": out}


class DiskFullError(TrainingError):
    """A checkpoint could not be written because the disk holding it is full."""


_TMP_TAG = ".tmp-"


def _tmp_path(path: Path) -> Path:
    """``.<name>.tmp-<host>-<pid>`` beside ``path``: who wrote it, so a later run can tell a dead
    writer's leftover (removed by :func:`remove_stale_temp_files`) from a live one's file."""
    import socket

    return path.with_name(f".{path.name}{_TMP_TAG}{socket.gethostname()}-{os.getpid()}")


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file beside ``path``, then rename it over ``path``.

    The temp file is removed on every exit path (an exception, Ctrl-C, a full disk). torch is
    handed an open Python file rather than a path: on a path its C++ writer reports a full disk as
    ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``, through a Python file
    the ``OSError(ENOSPC)`` comes through, which is reported as :class:`DiskFullError` naming the file.
    """
    import errno

    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            import shutil

            free = shutil.disk_usage(path.parent).free
            raise DiskFullError(
                f"disk full: could not write checkpoint {path} ({free / 2**20:.0f} MiB free on its disk; "
                f"free space there or point runs_dir / RPPG_BENCH_RUNS at a disk with room)"
            ) from exc
        raise


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove the temp files that writers on this host left behind when they died (``kill -9``,
    power loss: no exit path runs); a live process's file and another host's are kept. Returns
    the removed paths."""
    import socket

    import psutil

    host = socket.gethostname()
    removed = []
    for p in Path(folder).glob(f".*{_TMP_TAG}*"):
        owner = p.name.rsplit(_TMP_TAG, 1)[1]
        who, _, pid = owner.rpartition("-")
        if not pid.isdigit() or (who and who != host):  # older files were ``.tmp-<pid>``: this host's
            continue
        # our own pid: a leftover of an earlier process that had it (a restarted container keeps
        # its host name and often its pids); this process leaves none behind
        if not psutil.pid_exists(int(pid)) or int(pid) == os.getpid():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


class Trainer:
    def __init__(
        self,
        cfg: TrainerConfig,
        run_dir: str | Path,
        *,
        seed: int = 0,
        log_metrics: Callable[[dict[str, float], int], None] | None = None,
        val_metric: Callable[[NeuralMethod], float] | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.seed = int(seed)
        self.log_metrics = log_metrics or (lambda m, s: None)
        self.val_metric = val_metric
        self.device = pick_device(cfg.device)
        configure_determinism(cfg.threads, cfg.deterministic)

    # -- helpers ---------------------------------------------------------------------------------
    def _loader(self, ds: Dataset, shuffle: bool, phase_i: int, epoch: int) -> DataLoader:
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + phase_i * 10_007 + epoch)
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=shuffle, generator=g,
                          num_workers=self.cfg.num_workers, drop_last=False)

    def _optimizer(self, params: Sequence[torch.nn.Parameter], phase: Phase) -> torch.optim.Optimizer:
        lr = phase.lr if phase.lr is not None else self.cfg.lr
        wd = phase.weight_decay if phase.weight_decay is not None else self.cfg.weight_decay
        name = self.cfg.optimizer.lower()
        if name == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd)
        if name == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        raise TrainingError(f"unknown optimizer {self.cfg.optimizer!r}; valid: adam, adamw")

    def _autocast(self):
        if self.cfg.amp == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _run_epoch(self, method, phase: Phase, module, loader, opt, sched, epoch: int, n_epochs: int, train: bool) -> dict[str, float]:
        from tqdm.auto import tqdm

        module.train(train)
        sums: dict[str, float] = {}
        n = 0
        desc = f"{method.name}:{phase.name} ep {epoch + 1}/{n_epochs} {'train' if train else 'val'}"
        bar = tqdm(loader, desc=desc, disable=not self.cfg.progress, leave=False)
        for bi, batch in enumerate(bar):
            if self.cfg.max_batches_per_epoch and bi >= self.cfg.max_batches_per_epoch:
                break
            batch = to_device(batch, self.device)
            with torch.set_grad_enabled(train), self._autocast():
                out = phase.forward(module, batch)
                terms = _as_loss_dict(phase.loss(out, batch, epoch=epoch, num_epochs=n_epochs))
            loss = terms["loss"]
            if not torch.isfinite(loss.detach()).all():
                raise TrainingError(
                    f"non-finite loss ({float(loss.detach().float())}) in method {method.name!r}, phase "
                    f"{phase.name!r}, epoch {epoch + 1}, {'training' if train else 'validation'} batch {bi + 1}"
                )
            if train:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), self.cfg.grad_clip)
                opt.step()
                if sched is not None:
                    sched.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach().float())
            n += 1
            bar.set_postfix(loss=f"{sums['loss'] / n:.4f}")
        if n == 0:
            raise TrainingError(f"{'training' if train else 'validation'} split produced no batches")
        return {k: v / n for k, v in sums.items()}

    def _precise_bn(self, phase: Phase, module: torch.nn.Module, ds: Dataset, pi: int, epoch: int) -> None:
        """Replace BatchNorm running statistics by their average over ``precise_bn`` training batches.

        BatchNorm evaluates with running averages (momentum 0.1) that trail the weights by ~10
        steps. A short run (``trainer=quick``: ~40–70 steps) ends while the weights still move,
        so the eval-mode network differs from the one the loss saw: RhythmMamba (53 BN layers, 24
        blocks deep) trained to a training-mode Pearson of ~0.9 on synthetic_intra gave ~0.1 in
        eval mode, and 0.14 bpm MAE instead of 16 once the statistics were recomputed. This is
        "precise BN" (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021): a no-grad pass with
        only the BN layers in training mode, averaging cumulatively (``momentum=None``); the rest
        of the network runs as at inference. The pass runs under a forked RNG, so the training
        stream (and resume) is unchanged.
        """
        n = int(self.cfg.precise_bn or 0)
        bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if n <= 0 or not bns:
            return
        momenta = [m.momentum for m in bns]
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        was_training = module.training
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad(), self._autocast():
                module.eval()  # dropout, drop-path and EMA codebooks as at inference; only BN collects statistics
                for m in bns:
                    m.reset_running_stats()
                    m.momentum = None
                    m.train(True)
                for bi, batch in enumerate(self._loader(ds, True, pi, 7919 + epoch)):
                    if bi >= n:
                        break
                    phase.forward(module, to_device(batch, self.device))
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom
            module.train(was_training)

    # -- main ------------------------------------------------------------------------------------
    def fit(self, method: NeuralMethod, train_ds: Dataset, val_ds: Dataset | None) -> FitResult:
        if len(train_ds) == 0:
            raise TrainingError("empty training split: no chunks to train on")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.run_dir)
        seed_everything(self.seed)
        method.prepare(train_ds)
        phases = method.phases()
        result = FitResult()
        # checkpoints keep the input spec they were trained with (benchmark.shape_guard); fps: the training records' median
        spec = method.input_spec() if hasattr(method, "input_spec") else None
        rates = [float(r.fps) for r in getattr(train_ds, "records", []) if getattr(r, "fps", None)]
        fps = float(np.median(rates)) if rates else None
        last_path = self.run_dir / "last.pt"
        state = torch.load(last_path, map_location="cpu", weights_only=False) if (self.cfg.resume and last_path.is_file()) else None
        if state is not None:
            result.history = state["history"]
            result.best = state["best"]
            result.resumed_from = (state["phase"], state["epoch"])
        for pi, phase in enumerate(phases):
            fresh_after_resume = state is not None and state["phase_index"] == pi and state["model"] is None
            if fresh_after_resume:
                _set_rng_state(state["rng"])  # the previous phase had just ended: same RNG as then
            module = phase.module()
            module.to(self.device)
            final_path = self.run_dir / f"phase_{phase.name}_final.pt"
            if state is not None and state["phase_index"] > pi:
                # finished in an earlier run: restore its selected weights and its hand-over
                module.load_state_dict(unwrap(torch.load(final_path, map_location=self.device, weights_only=True)))
                if phase.on_end:
                    phase.on_end(module)
                continue
            n_epochs = int(phase.epochs if phase.epochs is not None else self.cfg.epochs)
            select = phase.select or self.cfg.select
            if select == "val_loss" and (val_ds is None or len(val_ds) == 0):
                select = "last"
            params = [p for p in module.parameters() if p.requires_grad]
            opt = self._optimizer(params, phase)
            steps = len(self._loader(train_ds, True, pi, 0))
            if self.cfg.max_batches_per_epoch:
                steps = min(steps, self.cfg.max_batches_per_epoch)
            sched = None
            if self.cfg.scheduler == "onecycle" and n_epochs > 0:
                sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"], epochs=n_epochs, steps_per_epoch=steps)
            start_epoch = 0
            best_val, best_epoch = math.inf, -1
            best_path = self.run_dir / f"phase_{phase.name}_best.pt"
            if state is not None and state["phase_index"] == pi and not fresh_after_resume:
                module.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                if sched is not None and state.get("scheduler") is not None:
                    sched.load_state_dict(state["scheduler"])
                _set_rng_state(state["rng"])
                start_epoch = state["epoch"] + 1
                best_val, best_epoch = state["best_val"], state["best_epoch"]
            for epoch in range(start_epoch, n_epochs):
                tr = self._run_epoch(method, phase, module, self._loader(train_ds, True, pi, epoch), opt, sched, epoch, n_epochs, True)
                self._precise_bn(phase, module, train_ds, pi, epoch)
                row: dict[str, Any] = {"phase": phase.name, "epoch": epoch, **{f"train_{k}": v for k, v in tr.items()}}
                value = float("nan")
                if val_ds is not None and len(val_ds) > 0 and select != "last":
                    with torch.no_grad():
                        va = self._run_epoch(method, phase, module, self._loader(val_ds, False, pi, epoch), None, None, epoch, n_epochs, False)
                    row.update({f"val_{k}": v for k, v in va.items()})
                    value = va["loss"]
                    if select == "val_mae" and self.val_metric is not None:
                        module.eval()
                        value = float(self.val_metric(method))
                        row["val_mae_bpm"] = value
                if select == "last" or value < best_val:
                    best_val = value if select != "last" else float(epoch)
                    best_epoch = epoch
                    _atomic_save(wrap(module.state_dict(), spec, fps), best_path)
                result.history.append(row)
                self.log_metrics({f"{phase.name}/{k}": float(v) for k, v in row.items() if isinstance(v, float)}, len(result.history))
                result.best[phase.name] = {"epoch": best_epoch, "value": best_val, "select": select}
                _atomic_save({
                    "phase": phase.name, "phase_index": pi, "epoch": epoch, "model": module.state_dict(),
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched is not None else None,
                    "rng": _rng_state(), "best_val": best_val, "best_epoch": best_epoch,
                    "history": result.history, "best": result.best,
                }, last_path)
            if best_path.is_file():
                module.load_state_dict(unwrap(torch.load(best_path, map_location=self.device, weights_only=True)))
            _atomic_save(wrap(module.state_dict(), spec, fps), final_path)
            if phase.on_end:
                phase.on_end(module)
            # mark the phase as finished so a resume skips it
            _atomic_save({
                "phase": phase.name, "phase_index": pi + 1, "epoch": -1, "model": None, "optimizer": None,
                "scheduler": None, "rng": _rng_state(), "best_val": math.inf, "best_epoch": -1,
                "history": result.history, "best": result.best,
            }, last_path)
            state = torch.load(last_path, map_location="cpu", weights_only=False)
        return result
