"""Label-quality lab: ``rppg-bench label-report`` and ``rppg-bench label-experiment``.

Does quantizing the training label make rPPG training robust to a noisy contact-PPG reference?
Two commands answer it from two sides:

``label-report`` — the labels alone (no model). Clean synthetic PPG (the truth), corrupted by
:class:`benchmark.label_noise.LabelNoise` at severity 0–3, then turned into each *label mode*:

==============  ==================================================================================
``raw``         the noisy label as recorded
``bandpassed``  zero-phase Butterworth order 1, 0.75–2.5 Hz over the whole record (``labels=bandpassed``)
``bp_zscore``   per-chunk band-pass + z-score (:func:`lq_rppg.quantizer.bandpass_zscore`): the input
                of both quantizers, i.e. the b = ∞ limit of quantization
``lloyd_b<b>``  ``bp_zscore`` then the nearest of 2^b Lloyd-Max codewords fitted on training labels
``learned_b<b>`` ``bp_zscore`` then LQ-rPPG's learned quantizer ``Label_Quantizer(2^b)`` trained
                briefly on the same training labels (:func:`train_learned_quantizers`)
==============  ==================================================================================

Units of analysis (one place to look them up):

* **chunk** — 160 samples at 30 Hz (5.33 s), the LQ-rPPG training chunk: quantizers act per chunk,
  and fidelity to the truth is measured per chunk: Pearson r and the scale-invariant SQNR
  (:func:`si_sqnr_db`) against the clean truth band-passed over the whole record (the cardiac
  component the evaluation measures). Chunks are non-overlapping, the last one aligned to the
  record's end.
* **window** — 10 s, non-overlapping (the evaluation window): label HR (evaluation chain:
  detrend + band-pass over the record, periodogram peak per window) against the truth's HR, and the
  label SQIs of :mod:`benchmark.sqi` (template match, skewness, ho2025, spectral SNR, spectrum-vs-
  peak HR and, on synthetic data, label HR vs POS HR of the matching video).

The real contact-PPG recordings that ship with heartpy (``heartpy/data/*.csv``) have no truth, so
only SQIs and HR agreement are reported for them; they are resampled to ≈30 Hz first (the rate
labels have once aligned to video frames).

``label-experiment`` — the models. A grid of runs (methods × label-noise severity × label mode ×
seeds) through :func:`benchmark.runner.run`, each tracked in MLflow with tags ``method``,
``labels`` (``<mode>_s<severity>``, e.g. ``quantized_b3_s2``) and ``seed``; finished runs are
skipped by config hash, so the sweep can be relaunched. The training labels of a run are
``label_noise(severity)`` followed by the mode's transforms (the runner appends the method's own
label type); the test set is always scored against the untouched PPG. Afterwards the per-record
absolute HR errors are read back from each run's ``predictions.csv`` and summarised: MAE with 95 %
bootstrap CIs per method × mode × severity, a paired Wilcoxon signed-rank test of every mode
against ``raw`` over (record, seed) pairs, and LQ-rPPG against its raw-label backbone.

Both commands take ``key=value`` arguments (``rppg-bench label-report n_records=4 seeds=0,1``);
``rppg-bench label-report help`` lists them with their defaults.

>>> parse_args(["n_records=3", "seeds=0,1", "heartpy=false"], {"n_records": 8, "seeds": (0,), "heartpy": True})
{'n_records': 3, 'seeds': (0, 1), 'heartpy': False}
>>> mode_transforms("quantized_b3")
[{'name': 'quantize', 'bits': 3, 'kind': 'lloyd'}]
>>> parse_labels_name("quantized_b3_s2")
('quantized_b3', 2)
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import signal as sig

#: LQ-rPPG chunk (samples) and the rate labels are analysed at (Hz).
CHUNK = 160
FPS = 30.0
#: Evaluation window (s) for label HR and SQIs.
WINDOW_S = 10.0
#: Label band-pass of ``bandpassed`` / the quantizers' prefilter (Hz), Butterworth order 1: the
#: toolbox / LQ-rPPG band, ``benchmark.signal``'s default (``lq_rppg.quantizer.LABEL_BAND`` too).
LABEL_BAND = sig.DEFAULT_BAND
#: Largest lag (s) of the lag-tolerant correlation (MACC): the largest ``time_lag`` of the noise models.
MACC_LAG_S = 0.5
#: SI-SQNR values are capped here (a label identical to the truth would be +inf).
SQNR_CAP_DB = 60.0
BITS = (1, 2, 3, 4, 5)
SEVERITIES = (0, 1, 2, 3)
#: ppg_quality methods reported (see :mod:`benchmark.sqi`).
QUALITY = ("templatematch", "skewness", "ho2025")
SQI_COLUMNS = {
    "templatematch": "template match ↑",
    "skewness": "skewness ↑",
    "ho2025": "ho2025 ↑",
    "snr_db": "spectral SNR dB ↑",
    "d_spectrum_peaks_bpm": "ΔHR spectrum vs peaks ↓",
    "d_spectrum_video_bpm": "ΔHR label vs POS ↓",
    "d_raw_peaks_bpm": "ΔHR vs raw-label peaks ↓",
}


class LabLabError(ValueError):
    """Bad argument or unusable input for a label-lab command."""


# =============================================================================================
# argument parsing
# =============================================================================================
def _coerce(key: str, text: str, default: Any) -> Any:
    def one(t: str, like: Any) -> Any:
        if isinstance(like, bool):
            low = t.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise LabLabError(f"{key}: expected true/false, got {t!r}")
        if isinstance(like, int):
            try:
                return int(t)
            except ValueError:
                raise LabLabError(f"{key}: expected an integer, got {t!r}") from None
        if isinstance(like, float):
            try:
                return float(t)
            except ValueError:
                raise LabLabError(f"{key}: expected a number, got {t!r}") from None
        return t.strip()

    if isinstance(default, tuple):
        like = default[0] if default else ""
        parts = [p for p in text.split(",") if p.strip()]
        return tuple(one(p, like) for p in parts)
    if default is None:
        return None if text.strip().lower() in ("", "none", "null") else text.strip()
    return one(text, default)


def parse_args(argv: Sequence[str], defaults: Mapping[str, Any], *, passthrough: bool = False) -> dict[str, Any]:
    """``key=value`` arguments → dict typed like ``defaults`` (tuples are comma-separated lists).

    Unknown keys raise :class:`LabLabError` listing the valid ones, unless ``passthrough``: then they
    are collected, verbatim, under ``"overrides"`` (hydra overrides for the runs).
    """
    out = dict(defaults)
    extra: list[str] = []
    for arg in argv:
        if "=" not in arg:
            raise LabLabError(f"argument {arg!r} is not key=value; valid keys: {', '.join(sorted(defaults))}")
        key, value = arg.split("=", 1)
        if key in defaults:
            out[key] = _coerce(key, value, defaults[key])
        elif passthrough:
            extra.append(arg)
        else:
            raise LabLabError(f"unknown argument {key!r}; valid: {', '.join(sorted(defaults))}")
    if passthrough:
        out["overrides"] = tuple(extra)
    return out


def _usage(name: str, defaults: Mapping[str, Any], doc: str) -> str:
    def fmt(v: Any) -> str:
        if v in ("", (-1,), ("",)):
            return "(from size / derived)"
        if isinstance(v, tuple):
            return ",".join(str(x) for x in v)
        return str(v).lower() if isinstance(v, bool) else str(v)

    lines = [f"rppg-bench {name} [key=value ...]", doc, "", "keys (default):"]
    lines += [f"  {k:14s} {fmt(v)}" for k, v in defaults.items()]
    return "\n".join(lines)


# =============================================================================================
# pure signal helpers
# =============================================================================================
def chunk_starts(n: int, chunk: int = CHUNK) -> list[int]:
    """Non-overlapping chunk starts covering ``n`` samples, the last chunk aligned to the end.

    >>> chunk_starts(400, 160)
    [0, 160, 240]
    """
    from benchmark.data import chunk_starts as _starts

    starts = _starts(n, chunk, chunk, cover_tail=True)
    if not starts:
        raise LabLabError(f"a label of {n} samples is shorter than one chunk ({chunk})")
    return starts


def to_chunks(x: np.ndarray, starts: Sequence[int], chunk: int = CHUNK) -> np.ndarray:
    """(T,) → (k, chunk) at the given starts."""
    x = np.asarray(x, dtype=np.float64)
    return np.stack([x[s : s + chunk] for s in starts])


def from_chunks(chunks: np.ndarray, starts: Sequence[int], n: int) -> np.ndarray:
    """(k, chunk) → (n,): chunks written in order, so a later (end-aligned) chunk wins its overlap."""
    out = np.empty(n, dtype=np.float64)
    c = chunks.shape[-1]
    for s, y in zip(starts, chunks):
        out[s : s + c] = y
    return out


def _center(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(axis=-1, keepdims=True)


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis; ``nan`` where either row is constant.

    >>> round(float(pearson_rows(np.array([1.0, 2, 3]), np.array([2.0, 4, 7]))), 4)
    0.9934
    """
    a, b = _center(a), _center(b)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def si_sqnr_db(estimate: np.ndarray, reference: np.ndarray, cap: float = SQNR_CAP_DB) -> np.ndarray:
    """Scale-invariant signal-to-(quantization-)noise ratio in dB along the last axis.

    SI-SDR of Le Roux et al., "SDR – half-baked or well done?", ICASSP 2019: both rows are centred,
    the reference is scaled by the least-squares gain, ``target = (<e, r>/<r, r>) r``, and the ratio
    is ``|target|² / |e − target|²``; it equals ``r²/(1 − r²)`` for the Pearson r of the rows, so it
    ranks like r but spreads the region near r = 1 where quantization levels differ. Scale
    invariance matters: the learned quantizer's codewords live in its encoder's (arbitrary) scale.
    Capped at ``cap`` dB (an exact copy is +inf); ``nan`` for a constant row.

    >>> t = np.linspace(0, 1, 200)
    >>> x = np.sin(2 * np.pi * 3 * t)
    >>> float(si_sqnr_db(5 * x + 1, x))
    60.0
    >>> round(float(si_sqnr_db(np.sign(x), x)), 1)  # 1 bit: r = 2·sqrt(2)/pi = 0.90
    6.3
    """
    e, r = _center(estimate), _center(reference)
    rr = (r * r).sum(-1)
    ee = (e * e).sum(-1)
    ok = (rr > 0) & (ee > 0)
    alpha = np.where(ok, (e * r).sum(-1) / np.where(rr > 0, rr, 1.0), 0.0)
    target = alpha[..., None] * r
    noise = ((e - target) ** 2).sum(-1)
    power = (target**2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(power / noise)
    db = np.where(noise <= 1e-12 * np.maximum(power, 1e-300), cap, db)
    return np.where(ok, np.minimum(db, cap), np.nan)


def record_hr(x: np.ndarray, fps: float, window_s: float = WINDOW_S) -> np.ndarray:
    """Evaluation-chain HR per window, blind: detrend + band-pass the whole record, periodogram peak
    per non-overlapping ``window_s`` window — exactly how :mod:`benchmark.evaluate` scores both a
    prediction and the reference PPG."""
    from benchmark.evaluate import EvalConfig

    ec = EvalConfig()
    p = sig.postprocess(x, fps, ec.filter_band or ec.band, detrend_lambda=ec.detrend_lambda, order=ec.filter_order)
    return np.array([sig.hr_spectrum(p[a:b], fps, ec.band) for a, b in sig.windows(len(p), fps, window_s)])


def truth_hr(truth: np.ndarray, fps: float, window_s: float = WINDOW_S, around_bpm: float | None = None) -> np.ndarray:
    """The truth's HR per window: periodogram peak of the (Elgendi-cleaned, as in
    :func:`benchmark.sqi.hr_agreement`) clean label, searched within 0.8–1.25 × its known mean rate
    ``around_bpm`` when given, so a strong 2nd harmonic of a slow heart cannot be taken for the rate."""
    from benchmark.sqi import clean

    band = sig.DEFAULT_BAND if around_bpm is None else (0.8 * around_bpm / 60.0, 1.25 * around_bpm / 60.0)
    t = np.asarray(truth, dtype=np.float64)
    return np.array([sig.hr_spectrum(clean(t[a:b], fps), fps, band) for a, b in sig.windows(len(t), fps, window_s)])


def harmonic_probe(bins: Sequence[tuple[float, float]] = ((45, 50), (50, 55), (55, 60), (60, 70)), n_records: int = 6,
                   duration_s: float = 30.0, fps: float = FPS, window_s: float = WINDOW_S) -> pd.DataFrame:
    """How often each HR route returns the 2nd harmonic of a *clean* slow-heart label.

    Clean synthetic ``lab`` labels with the mean HR drawn in each bin; per 10-s window, the HR of the
    label's own spectrum (Elgendi-cleaned) for the raw, band-passed and per-chunk band-passed +
    z-scored label, and the evaluation chain's HR of the raw and band-passed label, against the
    truth (:func:`truth_hr`). A window counts as a harmonic error when it is off by > 30 %."""
    from benchmark.sqi import clean
    from protocols.synthetic import SyntheticDataset

    rows = []
    for lo, hi in bins:
        ds = SyntheticDataset(domain="lab", n_subjects=n_records, duration_s=duration_s, fps=fps, frame_size=32,
                              seed=7, hr_range=(lo, hi))
        for r in ds.records():
            x = np.asarray(r.ppg, dtype=np.float64)
            wins = sig.windows(len(x), fps, window_s)
            truth = truth_hr(x, fps, window_s, r.meta["hr_bpm"])
            starts = chunk_starts(len(x))
            bpz = from_chunks(bp_zscore_chunks(x, fps, starts), starts, len(x))
            bp = sig.bandpass(x, fps, LABEL_BAND, 1)
            routes = {
                "label spectrum: raw": [sig.hr_spectrum(clean(x[a:b], fps), fps) for a, b in wins],
                "label spectrum: bandpassed": [sig.hr_spectrum(clean(bp[a:b], fps), fps) for a, b in wins],
                "label spectrum: bp_zscore": [sig.hr_spectrum(clean(bpz[a:b], fps), fps) for a, b in wins],
                "evaluation chain: raw": list(record_hr(x, fps, window_s)),
                "evaluation chain: bandpassed": list(record_hr(bp, fps, window_s)),
            }
            for route, hrs in routes.items():
                for w, (h, t) in enumerate(zip(hrs, truth)):
                    rows.append({"hr_bin": f"{lo:.0f}–{hi:.0f}", "route": route, "record": r.id, "window": w,
                                 "hr_truth": float(t), "abs_err": abs(float(h) - float(t)),
                                 "harmonic": abs(float(h) - float(t)) > 0.3 * float(t)})
    return pd.DataFrame(rows)


# =============================================================================================
# quantizers and label modes
# =============================================================================================
def bp_zscore_chunks(x: np.ndarray, fps: float, starts: Sequence[int], chunk: int = CHUNK) -> np.ndarray:
    """Per-chunk band-pass + z-score (the quantizers' input), (k, chunk)."""
    from lq_rppg.quantizer import bandpass_zscore

    return bandpass_zscore(to_chunks(x, starts, chunk), fps)


def training_chunks(labels: Iterable[np.ndarray], fps: float, chunk: int = CHUNK, stride: int = 32) -> np.ndarray:
    """Overlapping (stride ``stride``) band-passed, z-scored chunks of training labels, (N, chunk)."""
    from lq_rppg.quantizer import bandpass_zscore

    out = []
    for y in labels:
        y = np.asarray(y, dtype=np.float64)
        if len(y) < chunk:
            continue
        out.append(np.stack([y[s : s + chunk] for s in range(0, len(y) - chunk + 1, stride)]))
    if not out:
        raise LabLabError(f"no training label is at least one chunk ({chunk} samples) long")
    return bandpass_zscore(np.concatenate(out), fps)


def train_learned_quantizers(
    chunks: np.ndarray,
    bits: Sequence[int] = BITS,
    *,
    steps: int = 150,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[int, Any]:
    """Train LQ-rPPG's ``Label_Quantizer(2^b)`` for each b on (N, T) z-scored label chunks.

    The objective is the one of ``lq_rppg/method.py``'s quantizer phase
    (:func:`lq_rppg.losses.quantizer_objective`, the release's LQ_Alpha = LQ_Beta = 1):
    NegPearson(q̃, y) + commitment loss, the codebook updated by EMA; trained by the one trainer
    (AdamW lr 1e-3, wd 0, one-cycle, as the release) for about ``steps`` mini-batches — whole
    shuffled epochs, the last one cut at the step budget — instead of 30 epochs: a brief CPU
    training, so these codebooks are a lower bound on what the learned quantizer can do. The
    quantizers are independent, so they train jointly on the summed loss (no shared parameter:
    identical to separate training). Returns eval-mode quantizers.
    """
    import tempfile

    import torch

    from benchmark.method import Phase
    from benchmark.trainer import Trainer, TrainerConfig
    from lq_rppg.losses import quantizer_objective
    from lq_rppg.quantizer import LabelQuantizer

    data = torch.as_tensor(np.asarray(chunks), dtype=torch.float32)
    if data.dim() != 2 or len(data) == 0:
        raise LabLabError(f"train_learned_quantizers: expected (N, T) chunks, got {tuple(data.shape)}")
    bits = tuple(int(b) for b in bits)
    torch.manual_seed(int(seed))
    lqs = torch.nn.ModuleList(LabelQuantizer(2**b, length=data.shape[1], backend="mambapy") for b in bits)

    class _Quantizers:  # what Trainer.fit needs of a method: a name, prepare() and its phases
        name = "label_quantizers"

        @staticmethod
        def prepare(train_data: Any) -> None:
            return None

        @staticmethod
        def phases() -> list[Phase]:
            return [Phase("quantizer", lambda: lqs, lambda m, b: [lq(b["label"]) for lq in m],
                          lambda out, b, **_: quantizer_objective(out, b["label"], bits), select="last")]

    batch_size = min(int(batch_size), len(data))
    per_epoch = -(-len(data) // batch_size)
    steps = max(1, int(steps))
    # threads=1: ~800-parameter models, where intra-op threads only add overhead and stall badly on a
    # shared CPU (with the trainer's default 2, four steps took 30 s on a busy 2-core machine)
    cfg = TrainerConfig(epochs=-(-steps // per_epoch), batch_size=batch_size, optimizer="adamw", lr=lr,
                        weight_decay=0.0, scheduler="onecycle", select="last", device="cpu", resume=False,
                        progress=False, max_batches_per_epoch=min(per_epoch, steps), threads=1)
    dataset = [{"label": y} for y in data]
    threads = torch.get_num_threads()  # the trainer sets the process-wide count; the caller's is restored below
    try:
        with tempfile.TemporaryDirectory(prefix="lq-quantizers-") as run_dir:
            Trainer(cfg, run_dir, seed=int(seed)).fit(_Quantizers(), dataset, None)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)
    lqs.eval()
    return {b: lq for b, lq in zip(bits, lqs)}


@dataclasses.dataclass
class QuantizerSet:
    """Codebooks of the training-free quantizer and trained learned quantizers, by bit level."""

    lloyd: dict[int, np.ndarray]
    learned: dict[int, Any]

    @classmethod
    def fit(cls, train_labels: Sequence[np.ndarray], fps: float, bits: Sequence[int] = BITS, *,
            learned: bool = True, steps: int = 150, seed: int = 0, chunk: int = CHUNK) -> QuantizerSet:
        """Fit Lloyd-Max codebooks (:func:`lq_rppg.quantizer.lloyd_max_codebook`) and, with
        ``learned``, train learned quantizers on the band-passed, per-chunk z-scored labels."""
        from lq_rppg.quantizer import chunk_label_values, lloyd_max_codebook

        values = chunk_label_values(list(train_labels), fps, chunk)
        lloyd = {b: lloyd_max_codebook(values, 2**b, seed=seed) for b in bits}
        lq = train_learned_quantizers(training_chunks(train_labels, fps, chunk), bits, steps=steps, seed=seed) if learned else {}
        return cls(lloyd, lq)

    def apply(self, bpz: np.ndarray) -> dict[str, np.ndarray]:
        """(k, chunk) quantizer input → {``lloyd_b<b>`` / ``learned_b<b>``: (k, chunk)}."""
        import torch

        from lq_rppg.quantizer import nearest_code

        out = {f"lloyd_b{b}": nearest_code(bpz, cb)[1] for b, cb in self.lloyd.items()}
        for b, lq in self.learned.items():
            with torch.no_grad():
                _, q, _ = lq(torch.as_tensor(bpz, dtype=torch.float32))
            out[f"learned_b{b}"] = q.double().numpy()
        return out


def version_order(bits: Sequence[int] = BITS, learned: bool = True) -> list[str]:
    names = ["raw", "bandpassed", "bp_zscore"] + [f"lloyd_b{b}" for b in bits]
    return names + ([f"learned_b{b}" for b in bits] if learned else [])


def label_versions(x: np.ndarray, fps: float, quant: QuantizerSet, chunk: int = CHUNK) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every label mode of one record label: {name: (record-level (T,), chunks (k, chunk))}.

    ``raw`` and ``bandpassed`` are record-level signals (chunks are slices of them); ``bp_zscore``
    and the quantized modes are made per chunk and reassembled for the record-level view.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    starts = chunk_starts(n, chunk)
    bp = sig.bandpass(x, fps, LABEL_BAND, 1)
    bpz = bp_zscore_chunks(x, fps, starts, chunk)
    out = {"raw": (x, to_chunks(x, starts, chunk)), "bandpassed": (bp, to_chunks(bp, starts, chunk)),
           "bp_zscore": (from_chunks(bpz, starts, n), bpz)}
    for name, q in quant.apply(bpz).items():
        out[name] = (from_chunks(q, starts, n), q)
    return out


# =============================================================================================
# label-report: per-record measurements
# =============================================================================================
def noisy_label(clean: np.ndarray, fps: float, severity: int, seed: int, record_id: str) -> np.ndarray:
    """``label_noise`` at ``severity`` with a generator seeded from (seed, severity, record id)."""
    from benchmark.labels import create_label_transform

    rng = np.random.default_rng([int(seed), int(severity), zlib.crc32(record_id.encode())])
    return create_label_transform("label_noise", severity=int(severity))(clean, fps, rng)


def fidelity_rows(versions: Mapping[str, tuple[np.ndarray, np.ndarray]], truth: np.ndarray, fps: float,
                  chunk: int = CHUNK) -> list[dict[str, Any]]:
    """Per chunk and version: Pearson r, MACC (max |r| over lags ≤ 0.5 s, so a time-lagged but
    otherwise faithful label still scores high) and SI-SQNR to the truth's cardiac component (the
    clean label band-passed over the record), and for quantized versions the quantizer's own
    SI-SQNR (output vs its ``bp_zscore`` input)."""
    truth = np.asarray(truth, dtype=np.float64)
    starts = chunk_starts(len(truth), chunk)
    ref = to_chunks(sig.bandpass(truth, fps, LABEL_BAND, 1), starts, chunk)
    bpz = versions["bp_zscore"][1]
    max_lag = int(round(MACC_LAG_S * fps))
    rows = []
    for name, (_, ch) in versions.items():
        r = pearson_rows(ch, ref)
        s = si_sqnr_db(ch, ref)
        qs = si_sqnr_db(ch, bpz) if name.startswith(("lloyd_", "learned_")) else np.full(len(ch), np.nan)
        for i in range(len(ch)):
            mc = sig.macc(ch[i], ref[i], max_lag) if np.ptp(ch[i]) > 0 else float("nan")
            rows.append({"version": name, "chunk": i, "pearson": float(r[i]), "macc": mc, "si_sqnr_db": float(s[i]),
                         "quant_sqnr_db": float(qs[i])})
    return rows


def window_rows(versions: Mapping[str, tuple[np.ndarray, np.ndarray]], fps: float, *, truth: np.ndarray | None = None,
                truth_hr_bpm: float | None = None, video: np.ndarray | None = None, quality: Sequence[str] = QUALITY,
                window_s: float = WINDOW_S, max_windows: int | None = None) -> list[dict[str, Any]]:
    """Per 10-s window and version (plus ``truth`` when given): the label's own HR (``hr_label``:
    spectral peak of the Elgendi-cleaned window, blind, as :func:`benchmark.sqi.hr_agreement`) and
    its evaluation-chain HR (``hr_eval``, :func:`record_hr`), their absolute errors to the truth's HR
    (:func:`truth_hr`, searched around ``truth_hr_bpm`` when given), and the SQIs of
    :func:`benchmark.sqi.label_sqis` (with the ``video`` rPPG signal for the label-vs-video HR
    agreement). ``d_raw_peaks_bpm``: |``hr_label`` − peak HR of the raw label|, the best reference
    when there is no truth."""
    from benchmark.sqi import label_sqis

    items = list(versions.items())
    if truth is not None:
        t = np.asarray(truth, dtype=np.float64)
        items = [("truth", (t, None))] + items
    n = len(items[0][1][0])
    wins = sig.windows(n, fps, window_s)[: max_windows or None]
    hr_true = truth_hr(truth, fps, window_s, truth_hr_bpm) if truth is not None else None
    raw_peaks = []
    rows = []
    for name, (x, _) in items:
        hr_eval = record_hr(x, fps, window_s)
        for w, (a, b) in enumerate(wins):
            q = label_sqis(x[a:b], fps, video_signal=None if video is None else np.asarray(video)[a:b], quality=tuple(quality))
            row = {"version": name, "window": w, "hr_label": q["hr_spectrum_bpm"], "hr_eval": float(hr_eval[w]), **q}
            if hr_true is not None:
                row["hr_truth"] = float(hr_true[w])
                row["hr_abs_err"] = abs(row["hr_label"] - row["hr_truth"])
                row["hr_eval_abs_err"] = abs(row["hr_eval"] - row["hr_truth"])
            if name == "raw":
                raw_peaks.append(q["hr_peaks_bpm"])
            rows.append(row)
    peaks = dict(enumerate(raw_peaks))
    for row in rows:
        rp = peaks.get(row["window"], float("nan"))
        row["d_raw_peaks_bpm"] = abs(row["hr_label"] - rp) if np.isfinite(rp) else float("nan")
    return rows


# =============================================================================================
# label-report: data sources
# =============================================================================================
def synthetic_labels(n_records: int, duration_s: float, fps: float, seed: int) -> list[Any]:
    """Records of the synthetic ``lab`` domain (clean PPG truth in ``Record.ppg``)."""
    from protocols.synthetic import SyntheticDataset

    ds = SyntheticDataset(domain="lab", n_subjects=n_records, duration_s=duration_s, fps=fps, frame_size=64, seed=seed)
    return list(ds.records())


def pos_signal(record: Any) -> np.ndarray:
    """POS rPPG of a synthetic record's face box (the video side of the HR agreement)."""
    from benchmark.registry import create_method

    frames = record.frames.read_all()
    box = record.meta.get("face_box")
    if box is not None:
        x, y, w, h = (int(v) for v in box)
        frames = frames[:, max(y, 0) : y + h, max(x, 0) : x + w]
    return np.asarray(create_method("pos").predict(frames, record.fps), dtype=np.float64)


def heartpy_dir() -> Path | None:
    """``heartpy/data`` without importing heartpy (its import needs ``pkg_resources``)."""
    import importlib.util

    spec = importlib.util.find_spec("heartpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def read_heartpy_csv(path: str | Path) -> tuple[np.ndarray, float, str]:
    """(signal, sampling rate Hz, how the rate was found) of one heartpy example CSV.

    * one headerless column (``data.csv``): 100 Hz, the rate heartpy's documentation passes for it
      (``hp.process(data, sample_rate=100.0)``);
    * a ``timer`` column in ms (``data2.csv``): n / (t_last − t_first) · 1000, heartpy's
      ``get_samplerate_mstimer`` (≈117.0 Hz);
    * a ``datetime`` column (``data3.csv``): n / elapsed seconds, heartpy's
      ``get_samplerate_datetime`` (≈100.42 Hz; its timestamps jitter, so the mean rate is used).
    """
    from protocols.base import DatasetFormatError

    path = Path(path)
    with open(path) as fh:
        first = fh.readline().strip()
    try:
        float(first.split(",")[0])
        headerless = True
    except ValueError:
        headerless = False
    if headerless:
        df = pd.read_csv(path, header=None)
        if df.shape[1] != 1:
            raise DatasetFormatError(path, f"headerless heartpy CSV must have one column, found {df.shape[1]}")
        x, fs, how = df.iloc[:, 0].to_numpy(np.float64), 100.0, "100 Hz (heartpy docs)"
    else:
        df = pd.read_csv(path)
        value_cols = [c for c in df.columns if c not in ("timer", "datetime")]
        if len(value_cols) != 1:
            raise DatasetFormatError(path, f"expected one signal column besides timer/datetime, found {list(df.columns)}")
        x = df[value_cols[0]].to_numpy(np.float64)
        if "timer" in df.columns:
            t = df["timer"].to_numpy(np.float64)
            fs, how = len(t) / (t[-1] - t[0]) * 1000.0, "ms timer"
        elif "datetime" in df.columns:
            t = pd.to_datetime(df["datetime"], format="ISO8601")
            fs, how = len(t) / (t.iloc[-1] - t.iloc[0]).total_seconds(), "datetime stamps"
        else:
            raise DatasetFormatError(path, f"no timer/datetime column to derive the sampling rate: {list(df.columns)}")
    if not np.all(np.isfinite(x)):
        raise DatasetFormatError(path, "NaN/inf in the signal")
    if not (np.isfinite(fs) and fs > 0):
        raise DatasetFormatError(path, f"could not derive a sampling rate ({fs})")
    return x, float(fs), how


def resample_to(x: np.ndarray, fs: float, target: float = FPS) -> tuple[np.ndarray, float]:
    """Polyphase resampling (``scipy.signal.resample_poly``, anti-aliasing FIR) to ≈ ``target`` Hz;
    returns the signal and its exact new rate fs·up/down."""
    from fractions import Fraction

    import scipy.signal

    frac = Fraction(target / fs).limit_denominator(1000)
    y = scipy.signal.resample_poly(np.asarray(x, dtype=np.float64), frac.numerator, frac.denominator, padtype="line")
    return y, fs * frac.numerator / frac.denominator


# =============================================================================================
# label-report: command
# =============================================================================================
REPORT_DEFAULTS: dict[str, Any] = {
    "n_records": 6,        # synthetic test records (subjects)
    "n_train": 6,          # synthetic training records the quantizers are fitted on
    "duration_s": 30.0,
    "seeds": (0,),         # noise seeds (the synthetic records themselves are fixed)
    "severities": SEVERITIES,
    "bits": BITS,
    "learned": True,       # train LQ-rPPG's learned quantizers too
    "lq_steps": 80,        # training mini-batches (32 chunks) of the learned quantizers, per severity
    "pos": True,           # POS HR of the matching video for the HR-agreement SQI
    "heartpy": True,       # real contact-PPG examples shipped with heartpy
    "max_windows": 20,     # windows per heartpy file (data3.csv is 11 min)
    "out": "results",
    "figures": "results/figures",
}


def run_report(opts: Mapping[str, Any], log: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """Compute every label-report table; returns raw per-chunk/per-window frames."""
    import torch

    torch.set_num_threads(1)
    fps = FPS
    bits = tuple(int(b) for b in opts["bits"])
    for b in bits:
        if not 1 <= b <= 5:
            raise LabLabError(f"bits must lie in 1–5, got {b}")
    sevs = tuple(int(s) for s in opts["severities"])
    for s in sevs:
        if s not in SEVERITIES:
            raise LabLabError(f"severities must lie in 0–3, got {s}")
    if int(opts["n_records"]) < 1 or int(opts["n_train"]) < 1:
        raise LabLabError("n_records and n_train must be >= 1")
    if float(opts["duration_s"]) * fps < max(CHUNK, WINDOW_S * fps):
        raise LabLabError(f"duration_s must be >= {WINDOW_S} s (one evaluation window)")
    t0 = time.time()
    test = synthetic_labels(int(opts["n_records"]), float(opts["duration_s"]), fps, seed=0)
    train = synthetic_labels(int(opts["n_train"]), float(opts["duration_s"]), fps, seed=1)
    videos = {r.id: pos_signal(r) for r in test} if opts["pos"] else {}
    log(f"[label-report] {len(test)} test + {len(train)} training synthetic records ({time.time() - t0:.0f}s)")
    fid, win = [], []
    quant_by_sev: dict[tuple[int, int], QuantizerSet] = {}
    for seed in opts["seeds"]:
        for sev in sevs:
            t1 = time.time()
            train_noisy = [noisy_label(r.ppg, fps, sev, 10_000 + int(seed), r.id) for r in train]
            quant = QuantizerSet.fit(train_noisy, fps, bits, learned=bool(opts["learned"]), steps=int(opts["lq_steps"]),
                                     seed=int(seed))
            quant_by_sev[(int(seed), sev)] = quant
            for r in test:
                noisy = noisy_label(r.ppg, fps, sev, int(seed), r.id)
                versions = label_versions(noisy, fps, quant)
                key = {"source": "synthetic", "seed": int(seed), "severity": sev, "record": r.id}
                fid += [{**key, **row} for row in fidelity_rows(versions, r.ppg, fps)]
                win += [{**key, **row} for row in window_rows(versions, fps, truth=r.ppg, truth_hr_bpm=r.meta.get("hr_bpm"),
                                                              video=videos.get(r.id))]
            log(f"[label-report] seed {seed} severity {sev}: done in {time.time() - t1:.0f}s")
    out = {"fidelity": pd.DataFrame(fid), "windows": pd.DataFrame(win)}
    # an example chunk for the figure: first record, worst severity, first seed
    ex_sev, ex_seed = max(sevs), int(opts["seeds"][0])
    r0 = test[0]
    out["example"] = _example_frame(r0.ppg, noisy_label(r0.ppg, fps, ex_sev, ex_seed, r0.id), fps,
                                    quant_by_sev[(ex_seed, ex_sev)], ex_sev)
    t1 = time.time()
    out["harmonic"] = harmonic_probe()
    log(f"[label-report] slow-heart harmonic probe in {time.time() - t1:.0f}s")
    hp_rows, hp_files = [], []
    folder = heartpy_dir() if opts["heartpy"] else None
    if opts["heartpy"] and folder is None:
        log("[label-report] heartpy is not installed: the real-data section is skipped")
    if folder is not None:
        t1 = time.time()
        recs = []
        for path in sorted(folder.glob("*.csv")):
            x, fs, how = read_heartpy_csv(path)
            y, fs30 = resample_to(x, fs, fps)
            recs.append((path.name, y, fs30))
            hp_files.append({"file": path.name, "fs_hz": fs, "rate_from": how, "duration_s": len(x) / fs,
                             "resampled_hz": fs30, "n_samples": len(y)})
        # no train/test split exists for three files: the quantizers are fitted on all of them
        # (unsupervised, label-only fitting), at the heartpy files' own resampled rate
        fs_fit = float(np.mean([r[2] for r in recs]))
        quant = QuantizerSet.fit([r[1] for r in recs], fs_fit, bits, learned=bool(opts["learned"]),
                                 steps=int(opts["lq_steps"]), seed=0)
        for name, y, fs30 in recs:
            versions = label_versions(y, fs30, quant)
            hp_rows += [{"source": "heartpy", "file": name, **row}
                        for row in window_rows(versions, fs30, max_windows=int(opts["max_windows"]))]
        log(f"[label-report] heartpy: {len(recs)} files in {time.time() - t1:.0f}s")
    out["heartpy"] = pd.DataFrame(hp_rows)
    out["heartpy_files"] = pd.DataFrame(hp_files)
    return out


def _example_frame(truth: np.ndarray, noisy: np.ndarray, fps: float, quant: QuantizerSet, severity: int) -> pd.DataFrame:
    versions = label_versions(noisy, fps, quant)
    starts = chunk_starts(len(truth), CHUNK)
    ref = to_chunks(sig.bandpass(truth, fps, LABEL_BAND, 1), starts)[1 if len(starts) > 1 else 0]
    k = 1 if len(starts) > 1 else 0
    show = ["raw", "bandpassed", "bp_zscore", "lloyd_b1", "lloyd_b3", "learned_b1", "learned_b3"]
    rows = []
    t = np.arange(CHUNK) / fps
    z = (ref - ref.mean()) / (ref.std() + 1e-12)
    for name in ["truth (band-passed)"] + [s for s in show if s in versions]:
        y = z if name.startswith("truth") else versions[name][1][k]
        y = (y - y.mean()) / (y.std() + 1e-12)
        rows += [{"version": name, "t_s": float(tt), "value": float(v), "severity": severity} for tt, v in zip(t, y)]
    return pd.DataFrame(rows)


def summarize_report(frames: Mapping[str, pd.DataFrame], bits: Sequence[int] = BITS,
                     learned: bool = True) -> dict[str, pd.DataFrame]:
    """Aggregate the raw report frames into the tables of ``label_quality.md``."""
    order = version_order(bits, learned)
    fid, win = frames["fidelity"], frames["windows"]
    tabs: dict[str, pd.DataFrame] = {}

    def pivot(df: pd.DataFrame, value: str, rows: list[str]) -> pd.DataFrame:
        p = df.groupby(["version", "severity"])[value].mean().unstack("severity")
        p.columns = [f"s{c}" for c in p.columns]
        return p.reindex([r for r in rows if r in p.index])

    tabs["pearson"] = pivot(fid, "pearson", order)
    tabs["macc"] = pivot(fid, "macc", order)
    tabs["si_sqnr_db"] = pivot(fid, "si_sqnr_db", order)
    tabs["hr_mae_bpm"] = pivot(win, "hr_abs_err", ["truth"] + order)
    tabs["hr_eval_mae_bpm"] = pivot(win, "hr_eval_abs_err", ["truth"] + order)
    q = fid[fid["version"].str.startswith(("lloyd_", "learned_"))].copy()
    if not q.empty:
        q["kind"] = q["version"].str.split("_").str[0]
        q["bits"] = q["version"].str.extract(r"_b(\d)$")[0].astype(int)
        p = q.groupby(["kind", "severity", "bits"])["quant_sqnr_db"].mean().unstack("bits")
        p.columns = [f"b{c}" for c in p.columns]
        tabs["quant_sqnr_db"] = p
    sqi_cols = [c for c in SQI_COLUMNS if c in win.columns and c != "d_raw_peaks_bpm"]
    for sev, g in win.groupby("severity"):
        t = g.groupby("version")[sqi_cols].mean()
        tabs[f"sqi_s{sev}"] = t.reindex([r for r in ["truth"] + order if r in t.index])
    hm = frames.get("harmonic")
    if hm is not None and not hm.empty:
        t = hm.groupby(["route", "hr_bin"])["harmonic"].mean().unstack("hr_bin") * 100
        t.columns = [f"HR {c} bpm" for c in t.columns]
        tabs["harmonic_pct"] = t.reindex([r for r in dict.fromkeys(hm["route"])])
    hp = frames.get("heartpy")
    if hp is not None and not hp.empty:
        cols = [c for c in SQI_COLUMNS if c in hp.columns and c != "d_spectrum_video_bpm"]
        t = hp.groupby("version")[cols].mean()
        tabs["heartpy_sqi"] = t.reindex([r for r in order if r in t.index])
        per_file = hp[hp["version"] == "raw"].groupby("file")[cols].mean()
        tabs["heartpy_raw_per_file"] = per_file
    return tabs


def _md_table(df: pd.DataFrame, fmt: str = "{:.2f}", index_name: str | None = None, rename: Mapping[str, str] | None = None) -> str:
    df = df.rename(columns=dict(rename or {}))
    cols = [index_name or (df.index.name or "")] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * len(df.columns)) + "|"]
    for idx, row in df.iterrows():
        label = " / ".join(str(v) for v in idx) if isinstance(idx, tuple) else str(idx)
        cells = []
        for v in row.to_numpy():
            if isinstance(v, (float, np.floating)):
                cells.append("—" if not np.isfinite(v) else fmt.format(v))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return plt, sns


def _sqi_panels(plt: Any, sns: Any, df: pd.DataFrame, cols: Sequence[str], order: Sequence[str], hue: str,
                height: float, path: Path, title: str, **point_kw: Any) -> Path:
    """One panel per SQI column: mean ± 95 % CI per label version (rows), coloured by ``hue``; saved to ``path``."""
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), height), sharey=True)
    for ax, c in zip(np.atleast_1d(axes), cols):
        sns.pointplot(data=df, y="version", x=c, hue=hue, order=order, ax=ax, errorbar=("ci", 95),
                      n_boot=300, seed=0, dodge=0.5, linestyle="none", markersize=4, **point_kw)
        ax.set(title=SQI_COLUMNS.get(c, c), xlabel="", ylabel="")
        if c != cols[-1]:
            ax.get_legend().remove()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report_figures(frames: Mapping[str, pd.DataFrame], fig_dir: Path, bits: Sequence[int] = BITS,
                   learned: bool = True) -> list[Path]:
    """Seaborn figures of the label report (PNG); returns the paths written."""
    plt, sns = _plt()
    fig_dir.mkdir(parents=True, exist_ok=True)
    order = version_order(bits, learned)
    fid, win = frames["fidelity"], frames["windows"]
    paths = []
    main = ["raw", "bandpassed", "bp_zscore"] + [f"lloyd_b{b}" for b in (1, 3) if b in bits] + \
        ([f"learned_b{b}" for b in (1, 3) if b in bits] if learned else [])
    # 1. fidelity and HR error vs severity
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
    kw = dict(hue="version", hue_order=main, marker="o", errorbar=("ci", 95), n_boot=500, seed=0)
    sub = fid[fid["version"].isin(main)]
    sns.lineplot(data=sub, x="severity", y="pearson", ax=axes[0], legend=False, **kw)
    sns.lineplot(data=sub, x="severity", y="macc", ax=axes[1], legend=False, **kw)
    sns.lineplot(data=sub, x="severity", y="si_sqnr_db", ax=axes[2], legend=False, **kw)
    sns.lineplot(data=win[win["version"].isin(main)], x="severity", y="hr_abs_err", ax=axes[3], **kw)
    axes[0].set(title="Pearson r to the truth (160-sample chunks)", ylabel="r")
    axes[1].set(title="MACC (|r| at best lag ≤ 0.5 s)", ylabel="max |r|")
    axes[2].set(title="SI-SQNR to the truth (axis cut at 25 dB)", ylabel="dB")
    axes[2].set_ylim(top=25)
    axes[3].set(title="label HR error (10-s windows)", ylabel="|ΔHR| (bpm)")
    for ax in axes:
        ax.set_xticks(sorted(fid["severity"].unique()))
    axes[3].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    paths.append(fig_dir / "label_quality_vs_severity.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    # 2. quantizers vs bits
    q = fid[fid["version"].str.startswith(("lloyd_", "learned_"))].copy()
    if not q.empty:
        q["quantizer"] = q["version"].str.split("_").str[0]
        q["bits"] = q["version"].str.extract(r"_b(\d)$")[0].astype(int)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
        kw2 = dict(x="bits", hue="severity", style="quantizer", marker="o", errorbar=("ci", 95), n_boot=500, seed=0,
                   palette="viridis")
        sns.lineplot(data=q, y="quant_sqnr_db", ax=axes[0], legend=False, **kw2)
        sns.lineplot(data=q, y="si_sqnr_db", ax=axes[1], **kw2)
        axes[0].set(title="quantizer SI-SQNR (output vs its input)", ylabel="dB")
        axes[1].set(title="SI-SQNR of the quantized label to the clean truth", ylabel="dB")
        for ax in axes:
            ax.set_xticks(list(bits))
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        paths.append(fig_dir / "label_quality_bits.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    # 3. SQIs per version and severity
    cols = [c for c in ("templatematch", "skewness", "snr_db", "d_spectrum_video_bpm") if c in win.columns]
    rows_order = ["truth"] + [v for v in order if v in set(win["version"])]
    paths.append(_sqi_panels(plt, sns, win, cols, rows_order, "severity", 5.5, fig_dir / "label_quality_sqi.png",
                             "label SQIs on synthetic labels (10-s windows; truth = clean label)", palette="viridis"))
    # 4. example chunk
    ex = frames.get("example")
    if ex is not None and not ex.empty:
        names = list(dict.fromkeys(ex["version"]))
        fig, axes = plt.subplots(len(names), 1, figsize=(9, 1.15 * len(names)), sharex=True)
        for ax, name in zip(axes, names):
            g = ex[ex["version"] == name]
            ax.plot(g["t_s"], g["value"], lw=1.2, drawstyle="steps-mid" if "_b" in name else "default")
            ax.set_ylabel(name, rotation=0, ha="right", fontsize=9)
            ax.set_yticks([])
        axes[-1].set_xlabel("time in the chunk (s)")
        fig.suptitle(f"one 160-sample chunk at severity {int(ex['severity'].iloc[0])} (each trace z-scored)")
        fig.tight_layout()
        paths.append(fig_dir / "label_quality_example.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    # 5. heartpy
    hp = frames.get("heartpy")
    if hp is not None and not hp.empty:
        cols = [c for c in ("templatematch", "skewness", "snr_db", "d_raw_peaks_bpm") if c in hp.columns]
        hp_order = [v for v in order if v in set(hp["version"])]
        paths.append(_sqi_panels(plt, sns, hp, cols, hp_order, "file", 5.0, fig_dir / "label_quality_heartpy.png",
                                 "label SQIs on heartpy's real contact-PPG examples (10-s windows, resampled to ≈30 Hz)"))
    return paths


def write_report_md(path: Path, tabs: Mapping[str, pd.DataFrame], frames: Mapping[str, pd.DataFrame],
                    opts: Mapping[str, Any], figures: Sequence[Path], seconds: float) -> None:
    fid, win = frames["fidelity"], frames["windows"]
    n_rec = fid["record"].nunique()
    seeds = ",".join(str(s) for s in opts["seeds"])
    rel = [p.relative_to(path.parent) if p.is_relative_to(path.parent) else p for p in figures]
    sqi_names = {k: v for k, v in SQI_COLUMNS.items()}
    L = [
        "# Label quality: raw vs band-passed vs quantized labels",
        "",
        f"Generated by `rppg-bench label-report {' '.join(opts.get('_argv', ()))}` in {seconds:.0f} s "
        "(see `benchmark/label_lab.py` for every definition).",
        "",
        "**Data.** Synthetic: the clean PPG of "
        f"{n_rec} synthetic `lab` records ({opts['duration_s']:.0f} s at 30 Hz) is the truth; the training label is "
        "`label_noise` (all seven noise models) at severity 0–3 applied to it "
        f"(noise seeds {seeds}). Quantizers are fitted on {opts['n_train']} *other* synthetic records at the same "
        "severity (Lloyd-Max: 2^b codewords; learned: LQ-rPPG's `Label_Quantizer(2^b)`, "
        f"trained for only {opts['lq_steps']} mini-batches of 32 chunks on CPU"
        + (")." if opts["learned"] else "; not run here)."),
        "",
        "**Units.** Pearson r and SI-SQNR are per **160-sample chunk** (the LQ-rPPG chunk, 5.3 s at 30 Hz; "
        "quantizers act per chunk) against the clean label band-passed 0.75–2.5 Hz over the whole record (the "
        "cardiac component the evaluation scores). SI-SQNR is the scale-invariant SDR (Le Roux et al. 2019): "
        "10·log10(r²/(1−r²)), capped at 60 dB; it ranks like r but separates levels near r = 1. Label HR and "
        "SQIs are per **10-s window** (the evaluation window); label HR uses the evaluation chain (detrend + "
        "band-pass over the record, periodogram peak). `bp_zscore` is the per-chunk band-pass + z-score that "
        "feeds both quantizers (quantization with b = ∞).",
        "",
        "## Fidelity to the clean truth (synthetic)",
        "",
        "Pearson r (mean over chunks):",
        "",
        _md_table(tabs["pearson"], "{:.3f}", "label"),
        "",
        "MACC — the largest |r| over lags up to ±0.5 s (so the `time_lag` model alone does not count as "
        "lost information; mean over chunks):",
        "",
        _md_table(tabs["macc"], "{:.3f}", "label"),
        "",
        "SI-SQNR to the truth, dB (mean over chunks):",
        "",
        _md_table(tabs["si_sqnr_db"], "{:.1f}", "label"),
        "",
        "Label-HR absolute error to the truth HR, bpm (mean over 10-s windows). Label HR = the label's own "
        "spectral peak in 0.75–2.5 Hz after neurokit's Elgendi cleaning, blind; truth HR = the same on the clean "
        "label, searched within 0.8–1.25 × the record's known mean HR (so `truth` shows the blind estimator's own "
        "error on a perfect label):",
        "",
        _md_table(tabs["hr_mae_bpm"], "{:.2f}", "label"),
        "",
        "The same under the **evaluation chain** the runner applies to predictions and to the test reference "
        "(smoothness-prior detrend λ = 100, then order-1 band-pass 0.6–3.3 Hz over the record, periodogram peak "
        "in 0.75–2.5 Hz per window):",
        "",
        _md_table(tabs["hr_eval_mae_bpm"], "{:.2f}", "label"),
        "",
    ]
    if "harmonic_pct" in tabs:
        hm = frames["harmonic"]
        L += ["**Slow hearts.** % of 10-s windows of *clean* synthetic labels whose HR comes out > 30 % off (the 2nd "
              f"harmonic), by HR route and true mean HR ({hm['record'].nunique()} records × "
              f"{hm['window'].nunique()} windows per bin):", "", _md_table(tabs["harmonic_pct"], "{:.0f}", "HR route"), ""]
    if "quant_sqnr_db" in tabs:
        L += ["Quantizer SI-SQNR, dB (quantized output vs its own `bp_zscore` input; rises with b when the "
              "quantizer uses its levels well):", "", _md_table(tabs["quant_sqnr_db"], "{:.1f}", "quantizer / severity"), ""]
    L += ["## Label SQIs before and after (synthetic)", "",
          "`truth` = the clean label, `raw` = the noisy label before any processing; the other rows are the "
          "processed labels. Template match, skewness and ho2025 from neurokit2 `ppg_quality`; spectral SNR of "
          "the label around its own HR; ΔHR spectrum vs peaks: |spectral − beat HR| of the label; ΔHR label vs "
          "POS: |label HR − POS rPPG HR of the matching video| (bpm). Means over windows; NaN windows (no beats) "
          "left out.", ""]
    for sev in sorted(win["severity"].unique()):
        L += [f"Severity {sev}:", "", _md_table(tabs[f"sqi_s{sev}"], "{:.2f}", "label", sqi_names), ""]
    if "heartpy_sqi" in tabs:
        files = frames["heartpy_files"]
        L += ["## Real contact PPG (heartpy examples; no truth)", "",
              "Files and sampling rates (rate found as heartpy does; resampled with `resample_poly` to ≈30 Hz; "
              f"at most {opts['max_windows']} windows per file; quantizers fitted on these files themselves):", "",
              _md_table(files.set_index("file"), "{:.2f}", "file"), "",
              "SQIs and HR agreement, mean over the windows of all files (ΔHR vs raw-label peaks: |the label's HR − "
              "the beat HR of the raw label|, the best reference available without truth):", "",
              _md_table(tabs["heartpy_sqi"], "{:.2f}", "label", sqi_names), "",
              "Raw label per file:", "", _md_table(tabs["heartpy_raw_per_file"], "{:.2f}", "file", sqi_names), ""]
    L += ["## Figures", ""] + [f"![{p.stem}]({p.as_posix()})" for p in rel] + [""]
    L += ["## Reading the numbers", "", *_report_findings(tabs, win), ""]
    path.write_text("\n".join(L))


def _report_findings(tabs: Mapping[str, pd.DataFrame], win: pd.DataFrame) -> list[str]:
    """A few sentences computed from the tables (no hand-typed numbers)."""
    out = []
    p, mc, h = tabs["pearson"], tabs["macc"], tabs["hr_mae_bpm"]
    last = mc.columns[-1]
    best = mc[last].idxmax()
    out.append(f"- Fidelity falls steeply with severity for every label mode: MACC of the raw label "
               + ", ".join(f"{c} {mc.loc['raw', c]:.2f}" for c in mc.columns) + f". At {last} the closest label is "
               f"`{best}` (MACC {mc.loc[best, last]:.3f}; raw {mc.loc['raw', last]:.3f}, band-passed "
               f"{mc.loc['bandpassed', last]:.3f}). Plain Pearson r goes negative at s2 because the `time_lag` model "
               "shifts the label by 0.25 s, about half a beat at 100 bpm; MACC tolerates that lag.")
    if "lloyd_b1" in mc.index and "bp_zscore" in mc.index:
        bits = [b for b in range(1, 6) if f"lloyd_b{b}" in mc.index]
        out.append("- Quantization is a deterministic function of its input `bp_zscore`, so it cannot add fidelity: "
                   f"at {last} Lloyd b = " + ", ".join(f"{b}: {mc.loc[f'lloyd_b{b}', last]:.3f}" for b in bits)
                   + f" vs {mc.loc['bp_zscore', last]:.3f} unquantized; at {mc.columns[0]} the cost in MACC is "
                   + ", ".join(f"{mc.loc['bp_zscore', mc.columns[0]] - mc.loc[f'lloyd_b{b}', mc.columns[0]]:.3f} at {b} bit"
                               for b in bits) + ". Whatever robustness quantized labels give a model must come from how the model learns from "
                   "them, not from a cleaner label — which is what `label-experiment` tests.")
    hb = h.drop(index="truth", errors="ignore")[last].idxmin()
    first = h.columns[0]
    out.append(f"- Label HR error at {last}: raw {h.loc['raw', last]:.1f} bpm, band-passed {h.loc['bandpassed', last]:.1f} "
               f"bpm, lowest `{hb}` {h.loc[hb, last]:.1f} bpm: at this severity the label's own HR is wrong in most "
               "windows (motion bursts, dropouts and wrong-rate segments cover 30–50 % of the time).")
    if "harmonic_pct" in tabs:
        hp = tabs["harmonic_pct"]
        slow = hp.columns[0]

        def pct(route: str, col: str = slow) -> str:
            return f"{hp.loc[route, col]:.0f} %" if route in hp.index else "—"

        out.append(
            f"- Band-passing hurts slow hearts even without noise. For clean labels with true {slow}, the label's own "
            f"spectrum peaks at the 2nd harmonic in {pct('label spectrum: raw')} of windows raw, "
            f"{pct('label spectrum: bandpassed')} band-passed and {pct('label spectrum: bp_zscore')} after the per-chunk "
            "band-pass + z-score that feeds the quantizers (and LQ-rPPG's label filter): an order-1 band-pass with "
            "its lower edge at 0.75 Hz pulls a ≈0.8 Hz fundamental below its harmonic, so these label modes can teach "
            "the harmonic for such subjects. The evaluation chain (detrend λ = 100 + a wider 0.6–3.3 Hz band-pass) returns the "
            f"harmonic for {pct('evaluation chain: raw')} of the *clean* raw labels' windows in that bin "
            f"({pct('evaluation chain: raw', hp.columns[-1])} at {hp.columns[-1]}); the runner computes test "
            "reference HRs this way, so slow-HR test windows can carry a doubled reference HR.")
    if "learned_b3" in mc.index and "lloyd_b3" in mc.index and "quant_sqnr_db" in tabs:
        qs = tabs["quant_sqnr_db"]
        lb = [c for c in qs.columns]
        out.append("- Learned vs training-free quantizer: the learned one (briefly trained) reaches quantizer SI-SQNR "
                   + ", ".join(f"{c} {qs.loc[('learned', 0), c]:.1f}" for c in lb) + " dB at s0 vs Lloyd-Max "
                   + ", ".join(f"{c} {qs.loc[('lloyd', 0), c]:.1f}" for c in lb)
                   + " dB; Lloyd-Max is optimal for this criterion by construction, and the two give nearly the same "
                   "fidelity to the truth.")
    if "lloyd_b1" in tabs.get("sqi_s0", pd.DataFrame()).index:
        t = tabs["sqi_s0"]
        out.append(f"- SQIs designed for PPG morphology misread coarse labels: ho2025 of a 1-bit label is "
                   f"{t.loc['lloyd_b1', 'ho2025']:.2f} at s0 (clean label {t.loc['truth', 'ho2025']:.2f}), because "
                   "a square wave gives the two beat detectors different fiducials; compare SQIs across severities "
                   "within one label mode, not across modes.")
    return out


def cmd_label_report(argv: Sequence[str]) -> int:
    """Label fidelity and SQIs of raw / band-passed / quantized labels (synthetic + heartpy)."""
    if argv and argv[0] in ("help", "-h", "--help"):
        print(_usage("label-report", REPORT_DEFAULTS, cmd_label_report.__doc__ or ""))
        return 0
    opts = parse_args(argv, REPORT_DEFAULTS)
    opts["_argv"] = tuple(argv)
    t0 = time.time()
    frames = run_report(opts)
    bits, learned = tuple(opts["bits"]), bool(opts["learned"])
    tabs = summarize_report(frames, bits, learned)
    out = Path(opts["out"])
    out.mkdir(parents=True, exist_ok=True)
    figs = report_figures(frames, Path(opts["figures"]), bits, learned)
    frames["fidelity"].groupby(["severity", "version"])[["pearson", "macc", "si_sqnr_db", "quant_sqnr_db"]].mean().to_csv(
        out / "label_quality_fidelity.csv")
    num = [c for c in frames["windows"].columns if c not in ("source", "record", "version", "window", "seed", "severity")]
    frames["windows"].groupby(["severity", "version"])[num].mean().to_csv(out / "label_quality_windows.csv")
    if not frames["heartpy"].empty:
        num = [c for c in frames["heartpy"].columns if c not in ("source", "file", "version", "window")]
        frames["heartpy"].groupby(["file", "version"])[num].mean().to_csv(out / "label_quality_heartpy.csv")
    md = out / "label_quality.md"
    write_report_md(md, tabs, frames, opts, figs, time.time() - t0)
    print(f"written: {md}, {len(figs)} figures in {opts['figures']} ({time.time() - t0:.0f}s)")
    return 0


# =============================================================================================
# label-experiment: grid
# =============================================================================================
@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A method of the experiment: registry name, config overrides, and whether it brings its own
    label processing (then the label-mode axis is ``lq_modes`` rather than ``modes``)."""

    alias: str
    method: str
    overrides: tuple[tuple[str, Any], ...] = ()
    own_labels: bool = False


#: Named methods; any other name is taken as a registered method with no overrides.
METHOD_SPECS: dict[str, MethodSpec] = {
    "physnet": MethodSpec("physnet", "physnet"),
    "deepphys": MethodSpec("deepphys", "deepphys"),
    "physformer": MethodSpec("physformer", "physformer"),
    "lq_rppg": MethodSpec("lq_rppg", "lq_rppg", own_labels=True),
    # LQ-rPPG's backbone on raw labels (no codebooks; ``benchmark/conf/method/lq_rppg_raw_labels.yaml``)
    "lq_rppg_raw": MethodSpec("lq_rppg_raw", "lq_rppg", (("labels", "raw"),), own_labels=True),
}

_MODE_RE = re.compile(r"^(raw|bandpassed|quantized_b([1-5]))$")
_LABELS_RE = re.compile(r"^(?P<mode>.+)_s(?P<sev>[0-3])$")


def method_spec(alias: str) -> MethodSpec:
    return METHOD_SPECS.get(alias, MethodSpec(alias, alias))


def mode_transforms(mode: str) -> list[dict[str, Any]]:
    """Label-transform specs of a label mode (applied after the noise, before the method's own):
    ``raw`` → none; ``bandpassed`` → record-level band-pass (as ``labels=bandpassed``);
    ``quantized_b<b>`` → per-chunk band-pass + z-score + b-bit Lloyd-Max quantization fitted on the
    run's training labels (``lq_rppg.quantizer.Quantize``)."""
    m = _MODE_RE.match(mode)
    if not m:
        raise LabLabError(f"unknown label mode {mode!r}; valid: raw, bandpassed, quantized_b1 … quantized_b5")
    if mode == "raw":
        return []
    if mode == "bandpassed":
        return [{"name": "bandpass", "low": LABEL_BAND[0], "high": LABEL_BAND[1], "order": 1}]
    return [{"name": "quantize", "bits": int(m.group(2)), "kind": "lloyd"}]


def labels_node(mode: str, severity: int) -> dict[str, Any]:
    """The run's ``labels`` config: name ``<mode>_s<severity>``; noise first, then the mode.

    Severity 0 keeps an explicit identity ``label_noise`` so its config hash differs from a plain
    ``labels=clean`` run of the main benchmark.

    >>> labels_node("bandpassed", 2)["transforms"][0]
    {'name': 'label_noise', 'severity': 2}
    """
    if int(severity) not in SEVERITIES:
        raise LabLabError(f"severity must be 0–3, got {severity}")
    return {"name": f"{mode}_s{int(severity)}",
            "transforms": [{"name": "label_noise", "severity": int(severity)}] + mode_transforms(mode)}


def parse_labels_name(name: str) -> tuple[str, int]:
    """``quantized_b3_s2`` → (``quantized_b3``, 2)."""
    m = _LABELS_RE.match(str(name))
    if not m or not _MODE_RE.match(m.group("mode")):
        raise LabLabError(f"labels name {name!r} is not <mode>_s<severity>")
    return m.group("mode"), int(m.group("sev"))


@dataclasses.dataclass(frozen=True)
class Cell:
    alias: str
    severity: int
    mode: str
    seed: int

    @property
    def labels_name(self) -> str:
        return f"{self.mode}_s{self.severity}"


def build_grid(methods: Sequence[str], severities: Sequence[int], modes: Sequence[str], seeds: Sequence[int],
               lq_modes: Sequence[str] = ("raw",)) -> list[Cell]:
    """Cells in run order: seed-major (a partial sweep still has complete seeds), then method,
    severity, mode."""
    for m in list(modes) + list(lq_modes):
        mode_transforms(m)
    for s in severities:
        if int(s) not in SEVERITIES:
            raise LabLabError(f"severity must be 0–3, got {s}")
    cells = []
    for seed in seeds:
        for alias in methods:
            spec = method_spec(alias)
            for sev in severities:
                for mode in (lq_modes if spec.own_labels else modes):
                    cells.append(Cell(alias, int(sev), mode, int(seed)))
    return cells


#: Experiment sizes. ``quick`` (2-core CPU, ≤ 60 min): PhysNet with the label-mode axis + LQ-rPPG and
#: its raw-label backbone, 4 severities, modes raw / band-passed / 3-bit, 2 seeds = 40 runs on the
#: standard synthetic_intra protocol (12 lab subjects × 30 s: 6 train, 2 val, 4 test), each method's
#: ``quick`` shapes and epochs. A smaller protocol (4 training records × 20 s) was tried first and
#: left PhysNet untrained even on clean labels (MAE 10–21 bpm), which would make the comparison
#: meaningless. DeepPhys and PhysFormer are left to ``full`` (for a GPU) to fit the CPU budget.
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "methods": ("physnet", "lq_rppg", "lq_rppg_raw"),
        "severities": (0, 1, 2, 3),
        "modes": ("raw", "bandpassed", "quantized_b3"),
        "lq_modes": ("raw",),
        "seeds": (0, 1),
        "overrides": ("protocol=synthetic_intra", "trainer=quick", "eval.n_boot=200", "progress=false"),
    },
    "full": {
        "methods": ("physnet", "deepphys", "physformer", "lq_rppg", "lq_rppg_raw"),
        "severities": (0, 1, 2, 3),
        "modes": ("raw", "bandpassed", "quantized_b1", "quantized_b3", "quantized_b5"),
        "lq_modes": ("raw",),
        "seeds": (0, 1, 2),
        "overrides": ("protocol=synthetic_intra", "trainer=paper", "progress=false"),
    },
}

EXPERIMENT_DEFAULTS: dict[str, Any] = {
    "size": "quick",
    "methods": ("",),       # empty = the size's default
    "severities": (-1,),
    "modes": ("",),
    "lq_modes": ("",),
    "seeds": (-1,),
    "run": True,            # false: only re-analyse the runs already in MLflow
    "analyze": True,
    "dry": False,           # print the grid and exit
    "fail_fast": False,
    "experiment": "",       # MLflow experiment (default label-noise-<size>)
    "out": "results",
    "figures": "results/figures",
    "name": "",             # report file stem (default label_noise for quick, label_noise_<size> else)
}

_FORBIDDEN = ("method", "labels", "seed", "tracking.experiment")


def resolve_experiment(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the size defaults into the parsed options; validate."""
    size = opts["size"]
    if size not in SIZES:
        raise LabLabError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    base = SIZES[size]
    r = dict(opts)
    for key in ("methods", "modes", "lq_modes"):
        vals = tuple(v for v in opts[key] if v)
        r[key] = vals or tuple(base[key])
    for key in ("severities", "seeds"):
        vals = tuple(int(v) for v in opts[key] if int(v) >= 0)
        r[key] = vals or tuple(base[key])
    for o in opts.get("overrides", ()):
        key = o.split("=", 1)[0].lstrip("+~")
        if key in _FORBIDDEN:
            raise LabLabError(f"{key}= is set by the experiment grid per run; use methods=/modes=/severities=/seeds= "
                              "(and experiment= for the MLflow experiment)")
    r["experiment"] = opts["experiment"] or f"label-noise-{size}"
    r["name"] = opts["name"] or ("label_noise" if size == "quick" else f"label_noise_{size}")
    r["overrides"] = tuple(base["overrides"]) + tuple(opts.get("overrides", ()))
    r["grid"] = build_grid(r["methods"], r["severities"], r["modes"], r["seeds"], r["lq_modes"])
    return r


def cell_config(cell: Cell, overrides: Sequence[str], experiment: str, compose: Callable[[list[str]], Any] | None = None) -> Any:
    """The composed run config of one cell (hydra, like one job of ``rppg-bench run -m``)."""
    from omegaconf import OmegaConf, open_dict

    if compose is None:
        from benchmark.cli import compose as compose
    spec = method_spec(cell.alias)
    ov = [f"method={spec.method}", *[f"method.{k}={v}" for k, v in spec.overrides], *overrides,
          f"seed={cell.seed}", f"tracking.experiment={experiment}"]
    cfg = compose(ov)
    with open_dict(cfg):
        cfg.labels = OmegaConf.create(labels_node(cell.mode, cell.severity))
    return cfg


def run_grid(cells: Sequence[Cell], make_cfg: Callable[[Cell], Any], run_fn: Callable[[Any], Mapping[str, float]] | None = None,
             *, fail_fast: bool = False, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every cell (skipped inside the runner when its config hash already finished); returns
    per-cell status rows with wall time."""
    if run_fn is None:
        from benchmark.runner import run as run_fn
    rows = []
    for i, cell in enumerate(cells, 1):
        t = time.time()
        status, err, mae = "ok", "", float("nan")
        try:
            metrics = run_fn(make_cfg(cell))
            mae = float(metrics.get("test/mae_bpm", float("nan")))
        except Exception as exc:  # noqa: BLE001 - a sweep records a failed cell and goes on (fail_fast stops)
            if fail_fast:
                raise
            status, err = "failed", f"{type(exc).__name__}: {exc}"
        dt = time.time() - t
        rows.append({**dataclasses.asdict(cell), "labels": cell.labels_name, "status": status, "seconds": dt,
                     "mae_bpm": mae, "error": err})
        log(f"[label-experiment] {i}/{len(cells)} {cell.alias} {cell.labels_name} seed {cell.seed}: {status}"
            f" MAE {mae:.2f} ({dt:.0f}s){'  ' + err if err else ''}")
    return rows


# =============================================================================================
# label-experiment: reading MLflow back
# =============================================================================================
def _match_alias(method: str, params: Mapping[str, Any], aliases: Sequence[str]) -> str | None:
    """The most specific alias whose method and overrides match a run's logged params."""
    best, best_n = None, -1
    for a in aliases:
        spec = method_spec(a)
        if spec.method != method:
            continue
        if all(str(params.get(f"method.{k}")) == str(v) for k, v in spec.overrides) and len(spec.overrides) > best_n:
            best, best_n = a, len(spec.overrides)
    return best


def collect_runs(experiment: str, cells: Sequence[Cell] | None = None, aliases: Sequence[str] | None = None) -> pd.DataFrame:
    """FINISHED runs of an MLflow experiment (tracking URI already set) as one row per grid cell:
    alias, mode, severity, seed, run_id, test MAE, wall seconds. When several runs fill one cell
    (the grid's config changed between sweeps), the newest wins. ``cells`` restricts to a grid."""
    import mlflow

    exp = mlflow.get_experiment_by_name(experiment)
    cols = ["alias", "method", "mode", "severity", "seed", "labels", "run_id", "mae_bpm", "seconds", "start_time"]
    if exp is None:
        return pd.DataFrame(columns=cols)
    runs = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              output_format="pandas", order_by=["attributes.start_time DESC"])
    if runs.empty:
        return pd.DataFrame(columns=cols)
    if aliases is None:
        aliases = sorted({c.alias for c in cells} if cells else set(METHOD_SPECS) | set(runs.get("tags.method", [])))
    rows = []
    for _, r in runs.iterrows():
        labels = r.get("tags.labels")
        try:
            mode, sev = parse_labels_name(labels)
        except LabLabError:
            continue
        params = {k[len("params."):]: v for k, v in r.items() if k.startswith("params.")}
        alias = _match_alias(str(r.get("tags.method")), params, aliases)
        if alias is None:
            continue
        start, end = r.get("start_time"), r.get("end_time")
        secs = (end - start).total_seconds() if pd.notna(start) and pd.notna(end) else float("nan")
        rows.append({"alias": alias, "method": r.get("tags.method"), "mode": mode, "severity": sev,
                     "seed": int(r.get("tags.seed")), "labels": labels, "run_id": r["run_id"],
                     "mae_bpm": float(r.get("metrics.test/mae_bpm", float("nan"))), "seconds": secs, "start_time": start})
    df = pd.DataFrame(rows, columns=cols)
    df = df.sort_values("start_time", ascending=False).drop_duplicates(["alias", "mode", "severity", "seed"])
    if cells is not None:
        keep = {(c.alias, c.mode, c.severity, c.seed) for c in cells}
        df = df[[(a, m, s, d) in keep for a, m, s, d in zip(df["alias"], df["mode"], df["severity"], df["seed"])]]
    return df.sort_values(["alias", "severity", "mode", "seed"]).reset_index(drop=True)


def record_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per-record absolute HR error (mean over the record's windows) from a ``predictions.csv``.

    >>> p = pd.DataFrame({"record": ["a", "a", "b"], "dataset": "d", "hr_pred": [70.0, 74.0, 60.0], "hr_ref": [72.0, 72.0, 65.0]})
    >>> record_errors(p)[["record", "abs_err"]].values.tolist()
    [['a', 2.0], ['b', 5.0]]
    """
    df = predictions.copy()
    if "dataset" not in df.columns:
        df["dataset"] = ""
    df = df[np.isfinite(df["hr_pred"]) & np.isfinite(df["hr_ref"])]
    df["abs_err"] = (df["hr_pred"] - df["hr_ref"]).abs()
    out = df.groupby(["dataset", "record"], as_index=False).agg(abs_err=("abs_err", "mean"), n_windows=("abs_err", "size"))
    return out


def load_errors(runs: pd.DataFrame, cache_dir: Path | None = None) -> pd.DataFrame:
    """Download every run's ``predictions.csv`` and stack the per-record errors with the cell keys."""
    import tempfile

    import mlflow

    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for _, r in runs.iterrows():
            dst = Path(tmp) / r["run_id"]
            dst.mkdir()
            path = mlflow.artifacts.download_artifacts(run_id=r["run_id"], artifact_path="predictions.csv", dst_path=str(dst))
            e = record_errors(pd.read_csv(path))
            for k in ("alias", "mode", "severity", "seed", "run_id"):
                e[k] = r[k]
            frames.append(e)
    cols = ["alias", "mode", "severity", "seed", "run_id", "dataset", "record", "abs_err", "n_windows"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


# =============================================================================================
# label-experiment: statistics
# =============================================================================================
def mean_ci(values: Sequence[float], level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): bootstrap CI of the mean from :func:`benchmark.stats.bootstrap_ci`; nan CI for n < 2.

    >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0])
    >>> m, lo <= m <= hi
    (2.5, True)
    """
    from benchmark import stats as S

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    try:
        _, lo, hi = S.bootstrap_ci(v, level=level, n_boot=n_boot, seed=seed)
    except S.StatsError:  # fewer than 2 units
        return m, float("nan"), float("nan")
    return m, lo, hi


def summarize_cells(errors: pd.DataFrame) -> pd.DataFrame:
    """MAE with 95 % CI per alias × mode × severity over (record, seed) units."""
    rows = []
    for (alias, mode, sev), g in errors.groupby(["alias", "mode", "severity"]):
        m, lo, hi = mean_ci(g["abs_err"].to_numpy())
        rows.append({"alias": alias, "mode": mode, "severity": int(sev), "mae_bpm": m, "ci_lo": lo, "ci_hi": hi,
                     "n_units": len(g), "n_seeds": g["seed"].nunique()})
    return pd.DataFrame(rows)


def paired_test(a: pd.DataFrame, b: pd.DataFrame, keys: Sequence[str] = ("seed", "dataset", "record")) -> dict[str, float]:
    """Paired comparison of per-record errors ``a`` vs ``b`` (a − b; negative = a better) over the units
    present in both, by :func:`benchmark.stats.paired_difference`: Wilcoxon signed-rank (two-sided,
    zero differences dropped), mean difference with its bootstrap 95 % CI, median difference."""
    from benchmark import stats as S

    m = a.merge(b, on=list(keys), suffixes=("_a", "_b"))
    ea, eb = m["abs_err_a"].to_numpy(np.float64), m["abs_err_b"].to_numpy(np.float64)
    d = ea - eb
    out = {"n": float(len(d)), "mean_a": float(ea.mean()) if len(d) else float("nan"),
           "mean_b": float(eb.mean()) if len(d) else float("nan"), "mean_diff": float(d.mean()) if len(d) else float("nan"),
           "ci_lo": float("nan"), "ci_hi": float("nan"), "median_diff": float(np.median(d)) if len(d) else float("nan"),
           "statistic": float("nan"), "p": float("nan")}
    try:
        r = S.paired_difference(ea, eb)
    except S.StatsError:  # fewer than 2 paired units
        return out
    out.update({k: r[k] for k in ("mean_diff", "ci_lo", "ci_hi", "median_diff", "statistic", "p")})
    return out


def mode_tests(errors: pd.DataFrame, baseline: str = "raw") -> pd.DataFrame:
    """Every mode vs ``baseline`` per alias and severity (``comparison="mode"``); the same pooled over
    all methods that have several modes (``"pooled"``, units = method × seed × record); and every pair
    (X, X_raw) of methods present — LQ-rPPG vs its raw-label backbone — at the same mode
    (``"method"``). Benjamini–Hochberg q over all tests of the table."""
    from scipy import stats

    rows = []
    for (alias, sev), g in errors.groupby(["alias", "severity"]):
        base = g[g["mode"] == baseline]
        if base.empty:
            continue
        for mode in sorted(set(g["mode"]) - {baseline}):
            rows.append({"comparison": "mode", "alias": alias, "severity": int(sev), "a": mode, "b": baseline,
                         **paired_test(g[g["mode"] == mode], base)})
    # pooled over the methods that have the mode axis: units are (method, seed, record)
    multi = [a for a, g in errors.groupby("alias") if g["mode"].nunique() > 1]
    if len(multi) > 1:
        pool = errors[errors["alias"].isin(multi)]
        for sev, g in pool.groupby("severity"):
            base = g[g["mode"] == baseline]
            for mode in sorted(set(g["mode"]) - {baseline}):
                a = g[g["mode"] == mode]
                if base.empty or a.empty:
                    continue
                rows.append({"comparison": "pooled", "alias": "pooled: " + "+".join(multi), "severity": int(sev), "a": mode,
                             "b": baseline, **paired_test(a, base, keys=("alias", "seed", "dataset", "record"))})
    aliases = set(errors["alias"])
    for alias in sorted(aliases):
        other = f"{alias}_raw"
        if other not in aliases:
            continue
        for (sev, mode), g in errors[errors["alias"].isin([alias, other])].groupby(["severity", "mode"]):
            a, b = g[g["alias"] == alias], g[g["alias"] == other]
            if a.empty or b.empty:
                continue
            rows.append({"comparison": "method", "alias": f"{alias} vs {other}", "severity": int(sev), "a": alias,
                         "b": other, "mode": mode, **paired_test(a, b)})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    ok = df["p"].notna()
    df["q_bh"] = np.nan
    if ok.any():
        df.loc[ok, "q_bh"] = stats.false_discovery_control(df.loc[ok, "p"].to_numpy(), method="bh")
    return df


def headline(summary: pd.DataFrame, tests: pd.DataFrame, severity: int | None = None, alpha: float = 0.05) -> list[str]:
    """Sentences: per method, the label mode with the lowest MAE at ``severity`` (default: the
    highest present), its difference to raw with CI and test, and LQ-rPPG vs its raw backbone."""
    if summary.empty:
        return ["No finished runs: nothing to report."]
    sev = int(summary["severity"].max()) if severity is None else int(severity)
    if tests.empty:
        tests = pd.DataFrame(columns=["comparison", "alias", "severity", "a", "b", "mode", "n", "mean_a", "mean_b",
                                      "mean_diff", "ci_lo", "ci_hi", "median_diff", "statistic", "p", "q_bh"])
    out = []
    s = summary[summary["severity"] == sev]
    for alias, g in s.groupby("alias"):
        if g["mode"].nunique() < 2:
            continue
        best = g.loc[g["mae_bpm"].idxmin()]
        if best["mode"] == "raw":
            t = tests[(tests["comparison"] == "mode") & (tests["alias"] == alias) & (tests["severity"] == sev)]
            runner_up = g[g["mode"] != "raw"].sort_values("mae_bpm").iloc[0]
            tt = t[t["a"] == runner_up["mode"]]
            extra = ""
            if not tt.empty:
                r = tt.iloc[0]
                extra = (f"; the best processed mode `{runner_up['mode']}` is {r['mean_diff']:+.2f} bpm "
                         f"[{r['ci_lo']:+.2f}, {r['ci_hi']:+.2f}] vs raw (Wilcoxon p = {r['p']:.3g}, n = {int(r['n'])})")
            out.append(f"- **{alias}**, severity {sev}: raw labels give the lowest MAE ({best['mae_bpm']:.2f} bpm "
                       f"[{best['ci_lo']:.2f}, {best['ci_hi']:.2f}]){extra}.")
            continue
        r = tests[(tests["comparison"] == "mode") & (tests["alias"] == alias) & (tests["severity"] == sev) & (tests["a"] == best["mode"])]
        if r.empty:
            continue
        r = r.iloc[0]
        sig_txt = "significant" if r["q_bh"] < alpha else "not significant"
        out.append(f"- **{alias}**, severity {sev}: `{best['mode']}` wins with MAE {best['mae_bpm']:.2f} bpm "
                   f"[{best['ci_lo']:.2f}, {best['ci_hi']:.2f}] vs raw {r['mean_b']:.2f}; paired difference "
                   f"{r['mean_diff']:+.2f} bpm [95 % CI {r['ci_lo']:+.2f}, {r['ci_hi']:+.2f}], Wilcoxon p = {r['p']:.3g} "
                   f"(BH q = {r['q_bh']:.3g}, {sig_txt} at {alpha}), n = {int(r['n'])} record×seed pairs.")
    pooled = tests[(tests["comparison"] == "pooled") & (tests["severity"] == sev)]
    if len(pooled):
        best = pooled.loc[pooled["mean_a"].astype(float).idxmin()]
        who = best["alias"].removeprefix("pooled: ").replace("+", ", ")
        if best["mean_a"] < best["mean_b"]:
            sig_txt = "significant" if best["q_bh"] < alpha else "not significant"
            out.append(f"- **Pooled over {who}**, severity {sev}: `{best['a']}` has the lowest MAE, {best['mean_a']:.2f} vs "
                       f"raw {best['mean_b']:.2f} bpm; paired difference {best['mean_diff']:+.2f} bpm [95 % CI "
                       f"{best['ci_lo']:+.2f}, {best['ci_hi']:+.2f}], Wilcoxon p = {best['p']:.3g} (BH q = {best['q_bh']:.3g}, "
                       f"{sig_txt}), n = {int(best['n'])} method×record×seed pairs.")
        else:
            out.append(f"- **Pooled over {who}**, severity {sev}: no processed mode beats raw labels (raw "
                       f"{best['mean_b']:.2f} bpm; best processed `{best['a']}` {best['mean_a']:.2f} bpm, difference "
                       f"{best['mean_diff']:+.2f} [{best['ci_lo']:+.2f}, {best['ci_hi']:+.2f}], p = {best['p']:.3g}).")
    if len(tests):
        for _, r in tests[(tests["comparison"] == "method") & (tests["severity"] == sev)].iterrows():
            better = r["a"] if r["mean_diff"] < 0 else r["b"]
            sig_txt = "significant" if r["q_bh"] < alpha else "not significant"
            out.append(f"- **{r['alias']}** ({r['mode']} labels), severity {sev}: MAE {r['mean_a']:.2f} vs {r['mean_b']:.2f} bpm, "
                       f"difference {r['mean_diff']:+.2f} bpm [95 % CI {r['ci_lo']:+.2f}, {r['ci_hi']:+.2f}] "
                       f"(`{better}` lower), Wilcoxon p = {r['p']:.3g} (BH q = {r['q_bh']:.3g}, {sig_txt}), n = {int(r['n'])}.")
    return out or [f"No method has two label modes at severity {sev}: no comparison possible."]


def _ci_lines(ax: Any, summary: pd.DataFrame, key: str, order: Sequence[str], colors: Mapping[str, Any]) -> None:
    """MAE vs severity per ``key`` value with its 95 % CI band (from :func:`summarize_cells`, i.e. benchmark.stats)."""
    for name in order:
        sub = summary[summary[key] == name].sort_values("severity")
        if sub.empty:
            continue
        ax.plot(sub["severity"], sub["mae_bpm"], marker="o", color=colors[name], label=name)
        ax.fill_between(sub["severity"], sub["ci_lo"], sub["ci_hi"], color=colors[name], alpha=0.2, lw=0)


def experiment_figure(errors: pd.DataFrame, path: Path, mode_order: Sequence[str] | None = None,
                      method_order: Sequence[str] | None = None) -> Path:
    """MAE vs severity per method (panel) and mode (line), 95 % bootstrap CI over (record, seed)
    (:func:`summarize_cells`: the CIs of benchmark.stats, not a plotting library's own bootstrap)."""
    plt, sns = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    modes = [m for m in (mode_order or sorted(errors["mode"].unique(), key=lambda m: (m != "raw", m))) if m in set(errors["mode"])]
    present = set(errors["alias"])
    aliases = [a for a in (method_order or []) if a in present] + sorted(present - set(method_order or []))
    summary = summarize_cells(errors)
    colors = dict(zip(modes, sns.color_palette(n_colors=len(modes))))
    ncol = min(3, len(aliases))
    nrow = -(-len(aliases) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.6 * nrow), squeeze=False)
    for ax, alias in zip(axes.ravel(), aliases):
        _ci_lines(ax, summary[summary["alias"] == alias], "mode", modes, colors)
        ax.set(title=alias, xlabel="label-noise severity", ylabel="test MAE (bpm), 95 % CI")
        ax.set_xticks(sorted(errors["severity"].unique()))
    for ax in axes.ravel()[len(aliases):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="mode", loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("test HR error vs training-label noise (synthetic_intra; test on clean truth)", y=1.03)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def pair_figure(errors: pd.DataFrame, path: Path) -> Path | None:
    """MAE vs severity of each method X against its raw-label variant X_raw (same mode), 95 % CI."""
    aliases = set(errors["alias"])
    pairs = [(a, f"{a}_raw") for a in sorted(aliases) if f"{a}_raw" in aliases]
    if not pairs:
        return None
    plt, sns = _plt()
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.2), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        sub = errors[errors["alias"].isin([a, b])]
        sub = sub.assign(variant=[f"{al} ({m})" for al, m in zip(sub["alias"], sub["mode"])])
        summary = summarize_cells(sub.assign(alias=sub["variant"])).rename(columns={"alias": "variant"})
        order = sorted(summary["variant"].unique())
        _ci_lines(ax, summary, "variant", order, dict(zip(order, sns.color_palette(n_colors=len(order)))))
        ax.legend(fontsize=8)
        ax.set(title=f"{a} vs {b}", xlabel="label-noise severity", ylabel="test MAE (bpm), 95 % CI")
        ax.set_xticks(sorted(sub["severity"].unique()))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_experiment_md(path: Path, r: Mapping[str, Any], runs: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame,
                        figure: Path | None, status: Sequence[Mapping[str, Any]] = (), extra_figures: Sequence[Path] = ()) -> None:
    n_cells = len(r["grid"])
    L = [f"# Label-noise experiment ({r['size']})", "",
         f"Generated by `rppg-bench label-experiment {' '.join(r.get('_argv', ()))}` from MLflow experiment "
         f"`{r['experiment']}` (see `benchmark/label_lab.py`).", "",
         "**Grid.** methods " + ", ".join(f"`{m}`" for m in r["methods"]) + f"; label-noise severities {list(r['severities'])}; "
         "label modes " + ", ".join(f"`{m}`" for m in r["modes"]) + " (for methods with their own label processing — "
         "LQ-rPPG and its raw-label backbone — " + ", ".join(f"`{m}`" for m in r["lq_modes"]) + "); seeds "
         f"{list(r['seeds'])}. Hydra overrides: `{' '.join(r['overrides'])}`. "
         f"{len(runs)} of {n_cells} grid cells have a finished run.", "",
         "Training labels = `label_noise(severity)` → the mode's transforms → the method's own label type; "
         "validation labels likewise; the test split is scored against the untouched PPG. The unit of every "
         "statistic is one test record in one seed (its absolute HR error averaged over its 10-s windows); "
         "CIs are expanded-percentile bootstraps of the mean over those units (`benchmark/stats/`); paired tests are Wilcoxon signed-rank over "
         "(record, seed) pairs present in both arms, with Benjamini–Hochberg q over all tests in the table.", "",
         "## Headline", "", *headline(summary, tests), ""]
    for fig in [f for f in (figure, *extra_figures) if f is not None]:
        rel = fig.relative_to(path.parent) if fig.is_relative_to(path.parent) else fig
        L += [f"![{fig.stem}]({rel.as_posix()})", ""]
    if not summary.empty:
        t = summary.copy()
        t["cell"] = [f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in zip(t["mae_bpm"], t["ci_lo"], t["ci_hi"])]
        p = t.pivot_table(index=["alias", "mode"], columns="severity", values="cell", aggfunc="first")
        p.columns = [f"s{c}" for c in p.columns]
        alias_rank = {a: i for i, a in enumerate(r["methods"])}
        mode_rank = {m: i for i, m in enumerate(["raw", *r["modes"], *r["lq_modes"]])}
        p = p.loc[sorted(p.index, key=lambda am: (alias_rank.get(am[0], 99), mode_rank.get(am[1], 99), am))]
        L += ["## MAE (bpm) with 95 % CI, per method × label mode × severity", "", _md_table(p, index_name="method / mode"), ""]
    if not tests.empty:
        t = tests.copy()
        t["Δ mean [95 % CI]"] = [f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]" for m, lo, hi in zip(t["mean_diff"], t["ci_lo"], t["ci_hi"])]
        t["comparison"] = [f"{a} vs {b}" for a, b in zip(t["a"], t["b"])]
        t["method"] = t["alias"]
        cols = ["method", "severity", "comparison", "n", "mean_a", "mean_b", "Δ mean [95 % CI]", "median_diff", "p", "q_bh"]
        show = t[cols].set_index("method")
        L += ["## Paired tests (a − b; negative = a better)", "",
              _md_table(show, "{:.3g}", "method", {"mean_a": "MAE a", "mean_b": "MAE b", "median_diff": "Δ median"}), ""]
    if not runs.empty:
        w = runs.groupby("alias")["seconds"].agg(["count", "median", "sum"])
        w.columns = ["runs", "median s/run", "total s"]
        L += ["## Run time (from MLflow start/end)", "", _md_table(w, "{:.0f}", "method"), ""]
    failed = [s for s in status if s.get("status") == "failed"]
    if failed:
        L += ["## Failed cells in this sweep", ""] + [f"- {f['alias']} {f['labels']} seed {f['seed']}: {f['error']}" for f in failed] + [""]
    path.write_text("\n".join(L))


def analyze_experiment(r: Mapping[str, Any], status: Sequence[Mapping[str, Any]] = (), log: Callable[[str], None] = print) -> dict[str, Any]:
    """Read the grid's finished runs back from MLflow and write table, figure and markdown."""
    runs = collect_runs(r["experiment"], r["grid"])
    if runs.empty:
        log(f"[label-experiment] no finished runs of this grid in MLflow experiment {r['experiment']!r}")
    errors = load_errors(runs)
    summary = summarize_cells(errors) if not errors.empty else pd.DataFrame()
    tests = mode_tests(errors) if not errors.empty else pd.DataFrame()
    out = Path(r["out"])
    out.mkdir(parents=True, exist_ok=True)
    fig, extra = None, []
    if not errors.empty:
        order = ["raw", *[m for m in r["modes"] if m != "raw"], *[m for m in r["lq_modes"] if m not in r["modes"]]]
        fig = experiment_figure(errors, Path(r["figures"]) / f"{r['name']}_mae.png", order, r["methods"])
        pair = pair_figure(errors, Path(r["figures"]) / f"{r['name']}_lq_vs_raw.png")
        extra = [pair] if pair is not None else []
        summary.to_csv(out / f"{r['name']}.csv", index=False)
        if not tests.empty:
            tests.to_csv(out / f"{r['name']}_tests.csv", index=False)
    md = out / f"{r['name']}.md"
    write_experiment_md(md, r, runs, summary, tests, fig, status, extra)
    for line in headline(summary, tests):
        log(line)
    log(f"written: {md}" + (f", {fig}" if fig else ""))
    return {"runs": runs, "errors": errors, "summary": summary, "tests": tests, "markdown": md, "figure": fig}


def cmd_label_experiment(argv: Sequence[str]) -> int:
    """Label-noise experiment: methods × severity × label mode × seeds through the runner (MLflow),
    then MAE curves with CIs and paired Wilcoxon tests. Other key=value pairs are hydra overrides
    for every run (e.g. trainer.epochs=1 protocol.datasets.lab.n_subjects=4)."""
    if argv and argv[0] in ("help", "-h", "--help"):
        print(_usage("label-experiment", EXPERIMENT_DEFAULTS, cmd_label_experiment.__doc__ or ""))
        for k, v in SIZES.items():
            print(f"\nsize={k}: " + json.dumps({kk: list(vv) for kk, vv in v.items()}))
        return 0
    opts = parse_args(argv, EXPERIMENT_DEFAULTS, passthrough=True)
    r = resolve_experiment(opts)
    r["_argv"] = tuple(argv)
    if r["dry"]:
        for c in r["grid"]:
            print(f"{c.alias:14s} {c.labels_name:18s} seed {c.seed}")
        print(f"{len(r['grid'])} runs; overrides: {' '.join(r['overrides'])}; MLflow experiment {r['experiment']}")
        return 0
    status: list[dict[str, Any]] = []
    if r["run"]:
        t0 = time.time()
        status = run_grid(r["grid"], lambda c: cell_config(c, r["overrides"], r["experiment"]), fail_fast=r["fail_fast"])
        print(f"[label-experiment] {len(status)} cells in {time.time() - t0:.0f}s; "
              f"{sum(s['status'] == 'failed' for s in status)} failed")
    if r["analyze"]:
        from benchmark import tracking
        from benchmark.cli import compose

        tr = compose(list(r["overrides"]) + [f"tracking.experiment={r['experiment']}"]).tracking
        tracking.setup(tr.uri, tr.experiment, tr.artifacts)
        analyze_experiment(r, status)
    return 1 if any(s["status"] == "failed" for s in status) else 0


def _main_guard(fn: Callable[[Sequence[str]], int]) -> Callable[[Sequence[str]], int]:
    def wrapped(argv: Sequence[str]) -> int:
        try:
            return fn(argv)
        except LabLabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    wrapped.__doc__ = fn.__doc__
    return wrapped


COMMANDS = {"label-report": _main_guard(cmd_label_report), "label-experiment": _main_guard(cmd_label_experiment)}

__all__ = [
    "COMMANDS", "QuantizerSet", "Cell", "MethodSpec", "parse_args", "si_sqnr_db", "pearson_rows", "label_versions",
    "mode_transforms", "labels_node", "build_grid", "collect_runs", "record_errors", "paired_test", "mode_tests",
    "summarize_cells", "headline", "mean_ci",
]
