"""One run = one method × one protocol × one seed: data → (training) → evaluation → MLflow.

:func:`run` takes the resolved config (a hydra ``DictConfig`` or a plain dict with the same keys as
``benchmark/conf/config.yaml``) and returns the test metrics. A run whose config hash already has a
FINISHED MLflow run is skipped (``skip_finished``), so a sweep can be re-launched safely.

Training is keyed by what determines the trained weights only (:func:`training_identity`: method,
trainer, labels, preprocessing, evaluation settings used for model selection, seed and the train/val
data — not the test split), in ``<runs_dir>/train-<training hash>``. So a neural run interrupted
mid-training resumes there, and protocols that share their training data — ``synthetic_cross``'s
three test tiers, or ``cross_pure_ubfc_rppg`` and ``cross_pure_mmpd`` — train once: the later runs
load the finished training's selected weights and only evaluate.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import tracking
from benchmark.evaluate import EvalConfig, RecordSignal, constant_predictor_mae, evaluate_signals, reassemble, record_hr
from benchmark.labels import build_label_pipeline
from benchmark.method import NeuralMethod, UnsupervisedMethod
from benchmark.registry import create_method, get_method_class
from benchmark.shape_guard import guard as shape_guard
from benchmark.settings import (METHOD_META_KEYS, PRESET_METHOD_KEYS, Settings, check_chunk_length, check_config,
                                check_trainer, explicit_keys)
from benchmark.settings import resolve as resolve_with_sources
from protocols.base import Record
from protocols.preprocess import (ON_ERROR, CachedRecord, PreprocessConfig, RecordsFailedError, list_records, preprocess,
                                  preprocess_split)
from protocols.protocol import SPLITS, Protocol

#: Bumped when a change in the code changes results, so old runs are not reused.
RESULTS_VERSION = 1


def _plain(cfg: Any) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            from omegaconf.errors import InterpolationKeyError

            try:
                return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
            except InterpolationKeyError as exc:
                if "'dataset'" in str(exc):  # protocol=eval_only reads the dataset group
                    from benchmark.settings import ConfigError

                    raise ConfigError(f"protocol {cfg.get('protocol', {}).get('name', '?')!r} evaluates the dataset given "
                                      "by dataset=<name> dataset.root=PATH (e.g. dataset=folder), and none was given") from None
                raise
    except ImportError:  # pragma: no cover
        pass
    return json.loads(json.dumps(cfg, default=str))


def build_method(cfg: Mapping[str, Any]) -> Any:
    mcfg = dict(cfg["method"])
    name = mcfg.pop("name")
    for k in METHOD_META_KEYS:  # a named variant (YAML in conf/method/): its row name and trainer block
        mcfg.pop(k, None)
    return create_method(name, **mcfg)


def resolve_settings(cfg: Mapping[str, Any], explicit: Iterable[str] = ()) -> Settings:
    """Method config and trainer settings with the source of each (``benchmark.settings``: command
    line > variant YAML > method preset > trainer preset); ``explicit`` = keys the user set."""
    name = (cfg.get("method") or {}).get("name")
    return resolve_with_sources(cfg, get_method_class(str(name)), explicit)


def resolve_trainer(cfg: Mapping[str, Any], method: Any, explicit: Iterable[str] = ()) -> dict[str, Any]:
    """Trainer settings after the method's quick preset or published recipe, a variant's ``trainer``
    block and the keys the user set explicitly (which win)."""
    return resolve_with_sources(cfg, type(method), explicit).trainer


def apply_quick_shapes(method: Any, cfg: Mapping[str, Any], explicit: Iterable[str] = ()) -> Any:
    """Rebuild a neural method with its quick frames/size unless the user or a variant set them."""
    if not isinstance(method, NeuralMethod):
        return method
    mcfg = resolve_with_sources(cfg, type(method), explicit).method
    if all(mcfg.get(k) == getattr(method.cfg, k, None) for k in PRESET_METHOD_KEYS):
        return method
    return create_method(**mcfg)


class SplitLoader:
    """Lists each dataset alias's records once and preprocesses only what a split needs."""

    def __init__(self, protocol: Protocol, pcfg: PreprocessConfig, cache_dir: str | Path, progress: bool = True,
                 on_error: str = "raise"):
        self.protocol = protocol
        self.pcfg = pcfg
        self.cache_dir = Path(cache_dir)
        self.progress = progress
        self.on_error = on_error
        self.failed: dict[str, str] = {}  # "alias/record id" → error, with on_error=skip
        self._loaders: dict[str, Any] = {}
        self._records: dict[str, list[Record]] = {}

    def _loader(self, alias: str) -> Any:
        if alias not in self._loaders:
            self._loaders[alias] = self.protocol.loader(alias)
        return self._loaders[alias]

    def _alias(self, alias: str) -> tuple[Any, list[Record]]:
        loader = self._loader(alias)
        if alias not in self._records:
            self._records[alias], failed = list_records(loader, self.on_error)
            self.failed.update({f"{alias}/{k}": v for k, v in failed.items()})
        return loader, self._records[alias]

    def data_fingerprints(self) -> dict[str, str]:
        """Alias → content fingerprint of the files of the records the splits use. Only datasets read
        from files are listed (generated data is identified by its config, already in the identity),
        so a finished synthetic run is still skipped without generating its records."""
        from protocols.fingerprint import data_fingerprint

        out = {}
        for alias in sorted({p.dataset for parts in self.protocol.splits.values() for p in parts}):
            loader = self._loader(alias)
            if not getattr(loader, "reads_files", False):
                continue
            _, recs = self._alias(alias)
            ids = {r.id for parts in self.protocol.splits.values() for p in parts if p.dataset == alias
                   for r in self.protocol.select(alias, recs, p)}
            fp = data_fingerprint(loader, sorted(ids), self.cache_dir)
            if fp is not None:
                out[alias] = fp
        return out

    def records(self, split: str) -> list[tuple[str, Record]]:
        out = []
        for part in self.protocol.splits.get(split, []):
            _, recs = self._alias(part.dataset)
            out.extend((part.dataset, r) for r in self.protocol.select(part.dataset, recs, part))
        return out

    def cached(self, split: str) -> list[CachedRecord]:
        out: list[CachedRecord] = []
        by_alias: dict[str, list[Record]] = {}
        for alias, rec in self.records(split):
            by_alias.setdefault(alias, []).append(rec)
        for alias, recs in by_alias.items():
            loader, _ = self._alias(alias)
            got, failed = preprocess_split(loader, self.pcfg, self.cache_dir, recs, progress=self.progress,
                                           on_error=self.on_error, what=f"{split} split")
            self.failed.update({f"{alias}/{k}": v for k, v in failed.items()})
            out.extend(got)
        return out


def prefill(protocol_cfgs: Sequence[Mapping[str, Any]], pcfg: PreprocessConfig, sizes: Iterable[int], cache_dir: str | Path, *,
            workers: int = 2, progress: bool = True) -> None:
    """Preprocess every record the protocols use at every size in ``sizes``, in one pass per record.

    ``bench`` calls this before its runs: the methods' input sizes differ (72, 64, 36, 32), and each
    run would otherwise decode or render every video again for its own size. Loaders shared by several
    protocols (``synthetic_cross``'s ``train_mix``) are done once; ``workers`` processes in parallel.
    """
    sizes = sorted({int(s) for s in sizes})
    if not sizes:
        return
    first = dataclasses.replace(pcfg, size=sizes[0])
    todo: dict[str, tuple[Any, dict[str, Record]]] = {}
    for cfg in protocol_cfgs:
        protocol = Protocol.from_config(cfg)
        loader = SplitLoader(protocol, first, cache_dir, progress=progress)
        for split in SPLITS:
            for alias, rec in loader.records(split) if split in protocol.splits else []:
                ld, _ = loader._alias(alias)
                todo.setdefault(ld.key(), (ld, {}))[1].setdefault(rec.id, rec)
    for ld, recs in todo.values():
        for _ in preprocess(ld, first, cache_dir, records=list(recs.values()), progress=progress, workers=workers,
                            also_sizes=sizes[1:]):
            pass


def training_identity(identity: Mapping[str, Any], protocol: Protocol, data_fp: Mapping[str, str]) -> dict[str, Any]:
    """The part of a run's ``identity`` that determines its trained weights (its training hash).

    Everything but the test split: two runs whose train/val datasets, split parts, method, trainer,
    labels, preprocessing, evaluation settings (validation MAE selects models) and seed agree would
    train the same model, bit for bit on CPU, so the second reuses the first's checkpoint folder.
    """
    used = ("train", "val")
    aliases = sorted({p.dataset for s in used for p in protocol.splits.get(s, [])})
    return {
        **{k: identity.get(k) for k in ("method", "preprocess", "eval", "trainer", "labels", "seed", "version")},
        "datasets": {a: protocol.datasets[a] for a in aliases},
        "splits": {s: [dataclasses.asdict(p) for p in protocol.splits.get(s, [])] for s in used},
        "data_versions": {a: (identity.get("data_versions") or {}).get(a) for a in aliases},
        "data_fingerprint": {a: data_fp[a] for a in aliases if a in data_fp},
    }


@contextmanager
def training_lock(train_dir: Path) -> Iterator[None]:
    """Hold ``<train_dir>.lock`` while training there: two processes with the same training hash (two
    protocols sharing their training data in a parallel sweep, or a config submitted twice) would
    otherwise write the same checkpoints at once. The second one waits, then its fit finds the
    finished training in the folder and only loads the selected weights (as a later run of a
    finished training does). ``filelock`` (fcntl ``flock``) is dropped by the OS when its holder dies,
    so a killed training never blocks the next one; NFS needs working locks (NFSv4, or lockd for v3).
    """
    from filelock import FileLock, Timeout

    train_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(train_dir) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"[wait] {train_dir.name} is being trained by another process ({lock.lock_file} is held); "
              "waiting for it to finish, then this run reuses that training", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _beat_times(rec: CachedRecord) -> np.ndarray | None:
    """The record's known true beat times (synthetic world v3: ``meta["beat_times_s"]``), else None."""
    beats = (getattr(rec, "meta", None) or {}).get("beat_times_s")
    return None if beats is None else np.asarray(beats, dtype=np.float64)


def predict_unsupervised(method: UnsupervisedMethod, records: list[CachedRecord], progress: bool = True) -> list[RecordSignal]:
    from tqdm.auto import tqdm

    out = []
    for rec in tqdm(records, desc=f"{method.name} predict", disable=not progress, leave=False):
        pred = np.asarray(method.predict(rec.frames, rec.fps), dtype=np.float64)
        if pred.shape != (len(rec),):
            raise ValueError(f"method {method.name!r} returned shape {pred.shape} for a {len(rec)}-frame record")
        out.append(RecordSignal(rec.id, rec.subject, rec.dataset, rec.fps, pred, rec.ppg, derivative=False,
                                beat_times=_beat_times(rec)))
    return out


def eval_dataset(method: NeuralMethod, records: list[CachedRecord], stride: int | None = None) -> Any:
    """The chunks a neural method is scored on: every frame covered, stride ``stride`` (default: chunk length)."""
    from benchmark.data import ChunkDataset

    spec = method.input_spec()
    return ChunkDataset(records, spec.frames, spec.transforms, stride=stride or spec.frames, cover_tail=True)


def predict_neural(method: NeuralMethod, records: list[CachedRecord], *, batch_size: int = 4, stride: int | None = None,
                   device: str = "auto", progress: bool = True, dataset: Any = None) -> list[RecordSignal]:
    """Model outputs per record, reassembled from chunks; ``dataset`` (from :func:`eval_dataset` on the
    same records) saves rebuilding the chunk index and per-record statistics on repeated calls."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from benchmark.trainer import pick_device, to_device

    ds = dataset if dataset is not None else eval_dataset(method, records, stride)
    dev = pick_device(device)
    model = method.inference_model().to(dev).eval()
    chunks: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in range(len(records))}
    with torch.no_grad():
        for batch in tqdm(DataLoader(ds, batch_size=batch_size), desc=f"{method.name} predict", disable=not progress, leave=False):
            sigs = method.signal(method.forward(model, to_device(batch, dev))).float().cpu().numpy()
            for j in range(sigs.shape[0]):
                chunks[int(batch["record"][j])].append((int(batch["start"][j]), sigs[j]))
    out = []
    for i, rec in enumerate(records):
        pred = reassemble(len(rec), chunks[i])
        out.append(RecordSignal(rec.id, rec.subject, rec.dataset, rec.fps, pred, rec.ppg, derivative=method.signal_is_derivative,
                                beat_times=_beat_times(rec)))
    return out


def _scatter_figure(df: Any, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    sns.scatterplot(data=df, x="hr_ref", y="hr_pred", hue="dataset", ax=axes[0], s=18)
    lo = float(min(df["hr_ref"].min(), df["hr_pred"].min())) - 5
    hi = float(max(df["hr_ref"].max(), df["hr_pred"].max())) + 5
    axes[0].plot([lo, hi], [lo, hi], "k--", lw=1)
    axes[0].set(xlabel="reference HR (bpm)", ylabel="predicted HR (bpm)", title=title)
    mean = (df["hr_ref"] + df["hr_pred"]) / 2
    diff = df["hr_pred"] - df["hr_ref"]
    bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    axes[1].scatter(mean, diff, s=12)
    for y, ls in ((bias, "-"), (bias + 1.96 * sd, "--"), (bias - 1.96 * sd, "--")):
        axes[1].axhline(y, color="k", ls=ls, lw=1)
    axes[1].set(xlabel="mean of reference and predicted HR (bpm)", ylabel="predicted − reference (bpm)",
                title=f"Bland–Altman: bias {bias:.2f}, LoA ±{1.96 * sd:.2f}")
    fig.tight_layout()
    return fig


def run(cfg: Any, overrides: Sequence[str] | None = None) -> dict[str, float]:
    """Execute one run; returns the test metrics (``test/...``).

    ``overrides``: the hydra override strings the user gave (their keys win over every preset); by
    default ``cfg.hydra.overrides.task`` when present (``benchmark.cli.compose`` and ``rppg-bench run``
    put it there), else none. The config is checked (unknown keys, degenerate values) before any data
    work, and one line with the resolved trainer settings and their sources is printed.
    """
    from benchmark.data import ChunkDataset
    from benchmark.trainer import Trainer, TrainerConfig, configure_determinism, seed_everything

    plain = _plain(cfg)
    # the shape guard's switch is no method setting and no part of the run's identity (the shape it permits is)
    allow_shape = bool((plain.get("method") or {}).pop("allow_shape_change", False))
    hydra_node = plain.pop("hydra", None) or {}
    if overrides is None:
        overrides = list((hydra_node.get("overrides") or {}).get("task") or [])
    check_config(plain)
    seed = int(plain.get("seed", 0))
    progress = bool(plain.get("progress", True))
    settings = resolve_settings(plain, explicit_keys(overrides))
    settings = shape_guard(settings, get_method_class(str(settings.method["name"])), allow_shape)  # checkpoints keep their shape
    neural = settings.neural
    if neural:
        check_trainer(settings)
    print(settings.line())
    tcfg = settings.trainer
    if neural:
        configure_determinism(int(tcfg.get("threads", TrainerConfig.threads)), bool(tcfg.get("deterministic", TrainerConfig.deterministic)))
    seed_everything(seed)
    method = create_method(**settings.method)
    ckpt_path = getattr(method.cfg, "checkpoint", None) if neural else None
    if ckpt_path and not Path(ckpt_path).is_file():  # before any data work, like every config check
        raise FileNotFoundError(f"checkpoint file not found: {ckpt_path} (method.checkpoint)")
    ecfg = EvalConfig.from_dict({**(plain.get("eval") or {}), "seed": seed})
    protocol = Protocol.from_config(plain["protocol"])
    if neural and not ckpt_path and not protocol.splits.get("train"):
        raise ValueError(f"method {method.name!r} must be trained, and protocol {protocol.name!r} has no training split: "
                         f"give method.checkpoint=FILE (ours or a published rPPG-Toolbox .pth), or use a protocol with a train split")
    pp = dict(plain.get("preprocess") or {})
    if pp.get("size") is None:
        pp["size"] = method.input_spec().size if neural else 72
    pcfg = PreprocessConfig(**pp)
    labels_cfg = dict(plain.get("labels") or {})
    label_specs = list(labels_cfg.get("transforms") or []) + (method.label_transforms() if neural else [])
    from protocols.base import _DATASETS, _import_loaders

    _import_loaders()
    data_versions = {alias: getattr(_DATASETS.get(spec.get("name")), "version", None) for alias, spec in protocol.datasets.items()}
    on_error = str(plain.get("on_error", "raise"))
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {'|'.join(ON_ERROR)}, got {on_error!r}")
    loader = SplitLoader(protocol, pcfg, plain.get("cache_dir", "cache"), progress=progress, on_error=on_error)
    identity = {
        "method": {**dict(plain["method"]), **(dataclasses.asdict(method.cfg))},
        "protocol": plain["protocol"], "data_versions": data_versions, "preprocess": dataclasses.asdict(pcfg), "eval": dataclasses.asdict(ecfg),
        "trainer": tcfg if neural else None, "labels": label_specs if neural else None, "seed": seed,
        "version": RESULTS_VERSION,
    }
    data_fp = loader.data_fingerprints()  # edited recordings/labels → another hash → the run is not skipped
    if data_fp:  # absent for generated data, whose identity is its config (hashes of those runs unchanged)
        identity["data_fingerprint"] = data_fp
    chash = tracking.config_hash(identity)
    thash = tracking.config_hash(training_identity(identity, protocol, data_fp)) if neural else None
    tr = dict(plain.get("tracking") or {})
    exp_id = tracking.setup(tr.get("uri"), tr.get("experiment", "rppg-bench"), tr.get("artifacts"))
    if plain.get("skip_finished", True):
        done = tracking.find_finished(exp_id, chash)
        if done is not None:
            print(f"[skip] {method.name} on {protocol.name} seed {seed}: finished run {done.info.run_id} has config {chash}")
            return {k: v for k, v in done.data.metrics.items() if k.startswith("test/")}

    split_ids = {s: [f"{a}/{r.id}" for a, r in loader.records(s)] for s in SPLITS if s in protocol.splits}
    protocol.check_disjoint(split_ids)
    if neural:  # every split must hold one chunk per record: checked on frame counts, before preprocessing
        for split in SPLITS:
            if split in protocol.splits and (split == "test" or not getattr(method.cfg, "checkpoint", None)):
                check_chunk_length(method.input_spec().frames, loader.records(split), split)
    train_hrs = [record_hr(r.ppg, r.fps, ecfg) for _, r in loader.records("train")] if "train" in protocol.splits else []
    method_label = str((plain["method"] or {}).get("variant") or method.name)
    tags = {"config_hash": chash, **({"train_hash": thash} if thash else {}), "method": method_label, "protocol": protocol.name, "seed": str(seed),
            "kind": method.kind, "trainer": str(plain.get("trainer", {}).get("name", "")) if neural else "none",
            "labels": str(labels_cfg.get("name", "clean"))}
    tags.update({str(k): str(v) for k, v in (tr.get("tags") or {}).items()})  # e.g. an experiment's grid cell
    run_name = f"{method_label}/{protocol.name}/seed{seed}"
    with tracking.start_run(run_name, tags, identity):
        tracking.log_text(json.dumps(split_ids, indent=1), "splits.json")
        tracking.log_text(settings.text(), "settings.txt")
        fit_info: dict[str, Any] = {}
        if neural:
            spec = method.input_spec()
            ckpt = getattr(method.cfg, "checkpoint", None)
            if ckpt:
                method.load_checkpoint(ckpt)
                fit_info["checkpoint"] = str(ckpt)
            else:
                train_recs = loader.cached("train")
                if not train_recs:
                    raise ValueError(f"protocol {protocol.name!r}: empty training split")
                val_recs = loader.cached("val") if "val" in protocol.splits else []
                pipeline = build_label_pipeline(label_specs)
                train_ds = ChunkDataset(train_recs, spec.frames, spec.transforms, label_transforms=pipeline, seed=seed, fit_labels=True)
                val_ds = ChunkDataset(val_recs, spec.frames, spec.transforms, label_transforms=pipeline, seed=seed) if val_recs else None
                tconf = TrainerConfig.from_dict(tcfg)
                tconf.progress = progress

                val_chunks = eval_dataset(method, val_recs, ecfg.stride) if val_recs else None

                def val_mae(m: NeuralMethod) -> float:
                    met, _ = evaluate_signals(predict_neural(m, val_recs, batch_size=tconf.batch_size, device=tconf.device,
                                                             progress=False, dataset=val_chunks),
                                              dataclasses.replace(ecfg, n_boot=0))
                    return met["mae_bpm"]

                train_dir = Path(plain.get("runs_dir", "runs")) / f"train-{thash}"
                trainer = Trainer(tconf, train_dir, seed=seed,
                                  log_metrics=lambda m, s: tracking.log_metrics(m, step=s), val_metric=val_mae if val_recs else None)
                with training_lock(train_dir):
                    res = trainer.fit(method, train_ds, val_ds)
                fit_info = {"best": res.best, "resumed_from": res.resumed_from, "epochs": len(res.history)}
                tracking.log_text(json.dumps({"history": res.history, **fit_info}, indent=1, default=str), "training.json")
        test_recs = loader.cached("test")
        if neural:
            signals = predict_neural(method, test_recs, batch_size=int(tcfg.get("batch_size", 4)),
                                     stride=ecfg.stride, device=tcfg.get("device", "auto"), progress=progress)
        else:
            signals = predict_unsupervised(method, test_recs, progress=progress)
        metrics, df = evaluate_signals(signals, ecfg)
        if train_hrs:
            metrics["const_mae_bpm"] = constant_predictor_mae(train_hrs, df)
            metrics["const_hr_bpm"] = float(np.mean(train_hrs))  # the leaderboard's subject-level floor predicts this
        out = {f"test/{k}": float(v) for k, v in metrics.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
        tracking.log_metrics(out)
        tracking.log_dataframe(df[["record", "window", "start", "stop", "hr_pred", "hr_ref", "snr_db", "macc", "pearson_wave", "dataset", "subject"]], "predictions.csv")
        try:
            import matplotlib.pyplot as plt

            fig = _scatter_figure(df, run_name)
            tracking.log_figure(fig, "hr_scatter.png")
            plt.close(fig)
        except Exception as exc:  # noqa: BLE001 - a plotting failure must not lose the run's metrics
            print(f"[warn] could not draw the HR figure: {exc}")
        if loader.failed:  # on_error=skip: the good records' metrics are logged, the run ends FAILED
            tracking.log_text(json.dumps(loader.failed, indent=1), "failed_records.json")
            print(f"[partial] {run_name}: MAE {metrics['mae_bpm']:.2f} bpm over {int(metrics['n'])} windows of the "
                  f"records that loaded; {len(loader.failed)} failed (failed_records.json)")
            raise RecordsFailedError(loader.failed, run_name)
    print(f"[done] {run_name}: MAE {metrics['mae_bpm']:.2f} bpm (±{metrics['mae_bpm_se']:.2f} SE), RMSE {metrics['rmse_bpm']:.2f}, "
          f"r {metrics['pearson']:.3f}, {int(metrics['n'])} windows"
          + (f"; against the true HR (known beats): MAE {metrics['true_mae_bpm']:.2f} bpm, reference PPG off by "
             f"{metrics['ref_vs_true_mae_bpm']:.2f}" if "true_mae_bpm" in metrics else ""))
    return out
