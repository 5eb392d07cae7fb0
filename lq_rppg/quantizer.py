"""Label quantizers of LQ-rPPG and the label transforms that expose them to every method.

* :func:`bandpass_zscore` — the label preprocessing of the paper's overview figure: zero-phase
  1st-order Butterworth band-pass 0.75–2.5 Hz at the record's fps, then a per-chunk z-score
  ((y − mean)/(std + 1e-6), unbiased std, as the release's test path). The release imports the
  filter but never calls it (``models.md`` §12); band-passing is therefore an **assumption** taken
  from the paper's figure.
* :class:`LabelQuantizer` — the learned quantizer ``Label_Quantizer(K)`` of the release
  (``neural_methods/model/LQC2F.py``; ``models.md`` §10.2): dilated Conv1d encoder with a residual,
  learned position embedding, one bidirectional Mamba block (D = 1), and :class:`EMAQuantizer`, a
  VQ-EMA codebook of K scalar codewords with straight-through gradients and a commitment loss.
  Parameters 810 + 2K (814/818/826/842/874 for K = 2…32). The EMA keeps the release's quirks:
  Laplace-smoothed counts are *written back* every step and unused codes get e = m/N with a tiny
  N, so they are thrown far away early in training and drift back later.
* :func:`lloyd_max_codebook` — the training-free alternative: Lloyd-Max (1-D k-means) codewords
  of the filtered, z-scored training labels, K = 2^b. Used by the ``quantizer: lloyd`` ablation,
  as a fast fallback, and by the ``quantize`` label transform.
* Label transforms ``lq_bandpass_zscore`` and ``quantize`` (registered in ``benchmark.labels``),
  so any method can train on band-passed or b-bit quantized labels by configuration.

>>> import numpy as np
>>> cb = lloyd_max_codebook(np.random.default_rng(0).standard_normal(20000), 2)
>>> [round(float(c), 1) for c in cb]   # the two centroids of N(0, 1): ±sqrt(2/pi)
[-0.8, 0.8]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import signal as sig
from benchmark.labels import LabelTransform, register_label_transform
from benchmark.method import read_state_dict
from lq_rppg.mamba import Backend, BiMambaBlock
from lq_rppg.model import ChunkLengthError, segm_init_weights

#: Band of the label band-pass (Hz) and its Butterworth order, as the release's ``_bandpass_filter``.
LABEL_BAND = sig.DEFAULT_BAND
LABEL_ORDER = 1
MIN_BITS, MAX_BITS = 1, 5


class QuantizerError(ValueError):
    """A quantizer was configured or used wrongly (bit level, missing fit, unreadable state file)."""


def check_bits(bits: Any, what: str = "bits") -> int:
    """Validate a bit level (1–5) and return it as int."""
    try:
        b = int(bits)
    except (TypeError, ValueError):
        raise QuantizerError(f"{what} must be an integer in {MIN_BITS}–{MAX_BITS}, got {bits!r}") from None
    if b != bits or not MIN_BITS <= b <= MAX_BITS:
        raise QuantizerError(f"{what} must be an integer in {MIN_BITS}–{MAX_BITS}, got {bits!r}")
    return b


# ---------------------------------------------------------------------------------------------
# label preprocessing
# ---------------------------------------------------------------------------------------------
def bandpass_zscore(label: np.ndarray, fps: float, band: tuple[float, float] = LABEL_BAND, order: int = LABEL_ORDER) -> np.ndarray:
    """Band-pass (zero-phase Butterworth) then z-score along the last axis; (..., T) → same shape.

    >>> import numpy as np
    >>> t = np.arange(160) / 30.0
    >>> y = bandpass_zscore(np.sin(2 * np.pi * 1.2 * t) + 0.05 * t, 30.0)
    >>> abs(round(float(y.mean()), 6)), round(float(y.std(ddof=1)), 3)
    (0.0, 1.0)
    """
    x = np.asarray(label, dtype=np.float64)
    if x.shape[-1] <= 9:
        raise ValueError(f"label of {x.shape[-1]} samples is too short to band-pass (needs > 9)")
    x = sig.bandpass(x, fps, band, order)
    sd = x.std(axis=-1, ddof=1, keepdims=True)
    return (x - x.mean(axis=-1, keepdims=True)) / (sd + 1e-6)


def bandpass_zscore_batch(label: Tensor, fps: Tensor | float | Sequence[float]) -> Tensor:
    """:func:`bandpass_zscore` on a (B, T) tensor with one fps per row (computed in numpy, no gradient)."""
    y = label.detach().cpu().double().numpy()
    fs = np.broadcast_to(np.asarray(torch.as_tensor(fps).cpu(), dtype=np.float64).reshape(-1), (y.shape[0],))
    out = np.empty_like(y)
    for f in np.unique(fs):
        rows = fs == f
        out[rows] = bandpass_zscore(y[rows], float(f))
    return torch.from_numpy(out).to(label.device, torch.float32)


# ---------------------------------------------------------------------------------------------
# training-free quantizer
# ---------------------------------------------------------------------------------------------
def lloyd_max_codebook(values: np.ndarray, k: int, seed: int = 0, max_iter: int = 300) -> np.ndarray:
    """Lloyd-Max codewords (sorted, (k,)) minimising the mean squared quantisation error of ``values``.

    For scalars Lloyd-Max is exactly k-means; scikit-learn's ``KMeans`` runs it, started from the
    (2i+1)/2k quantiles so the result is deterministic (``seed`` only breaks exact ties).
    """
    from sklearn.cluster import KMeans

    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if len(np.unique(v)) < k:
        raise QuantizerError(f"Lloyd-Max with K={k} needs at least {k} distinct finite label values, got {len(np.unique(v))}")
    init = np.quantile(v, (2 * np.arange(k) + 1) / (2 * k)).reshape(-1, 1)
    if len(np.unique(init)) < k:  # heavy ties: fall back to evenly spaced quantile-range points
        init = np.linspace(v.min(), v.max(), k).reshape(-1, 1)
    km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=max_iter, tol=1e-10, random_state=seed)
    km.fit(v.reshape(-1, 1))
    return np.sort(km.cluster_centers_.reshape(-1))


def nearest_code(x: np.ndarray | Tensor, codebook: np.ndarray | Tensor):
    """(indices, quantized) of the nearest codeword of each element (numpy or torch, same type out)."""
    if isinstance(x, Tensor):
        cb = torch.as_tensor(codebook).reshape(-1).to(x)
        idx = (x.unsqueeze(-1) - cb).abs().argmin(-1)
        return idx, cb[idx]
    cb = np.asarray(codebook, dtype=np.float64).reshape(-1)
    idx = np.abs(np.asarray(x, dtype=np.float64)[..., None] - cb).argmin(-1)
    return idx, cb[idx]


def chunk_label_values(labels: Sequence[np.ndarray], fps: float | Sequence[float], chunk: int) -> np.ndarray:
    """Concatenate the band-passed, per-chunk z-scored values of non-overlapping ``chunk``-long pieces.

    Labels shorter than one chunk are band-passed whole; a remainder shorter than a chunk is dropped
    (as the toolbox chunker does).
    """
    if isinstance(fps, (int, float)):
        fps = [float(fps)] * len(labels)
    if len(fps) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(fps)} fps values")
    out = []
    for y, f in zip(labels, fps):
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        n = len(y) // chunk
        pieces = y[: n * chunk].reshape(n, chunk) if n else y[None, :]
        if pieces.shape[-1] <= 9:
            continue
        out.append(bandpass_zscore(pieces, f).reshape(-1))
    if not out:
        raise QuantizerError("no training label long enough (> 9 samples) to fit a quantizer")
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# learned quantizer (release's Label_Encoder + Quantizer)
# ---------------------------------------------------------------------------------------------
class LabelEncoder(nn.Module):
    """``Label_Encoder``: (B, 1, T) → (B, T, 1); names match the release for checkpoint loading.

    Five length-preserving Conv1d 1→1 k5 with dilations 1, 2, 4, 8, 16 (GELU between; receptive
    field 125 samples), a residual, a learned zero-initialised position embedding (1, T, 1), and one
    BiMamba block with d_model 1 (E = 2, N = 48, R = 1).
    """

    def __init__(self, length: int = 160, d_state: int = 48, expand: int = 2, backend: Backend = "auto") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, dil in enumerate((1, 2, 4, 8, 16)):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Conv1d(1, 1, kernel_size=5, padding=2 * dil, dilation=dil))
        self.dilated_conv_block = nn.Sequential(*layers)
        self.mamba_encoder = nn.Sequential(BiMambaBlock(1, d_state=d_state, expand=expand, backend=backend))
        self.position_embedding = nn.Parameter(torch.zeros(1, length, 1))
        self.apply(segm_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dilated_conv_block(x) + x  # (B, 1, T)
        x = x.transpose(1, 2) + self.position_embedding  # (B, T, 1)
        return self.mamba_encoder(x)


class EMAQuantizer(nn.Module):
    """VQ with an EMA-updated codebook of K scalars (release ``Quantizer``; §10.2).

    forward(z (B, T, 1)) → (commitment loss, straight-through quantized (B, T, 1), indices (B, T)).
    In training mode, under no_grad: N ← γN + (1−γ)n; N ← (N + ε)/(ΣN + Kε)·ΣN (written back);
    m ← γm + (1−γ)Σz; e ← m/N. The codebook (``embeddings.weight``) and ``ema_w`` are
    ``nn.Parameter`` s as in the release (they count towards the 810 + 2K parameters) but receive no
    gradient, so they are created with ``requires_grad=False`` — the same training behaviour.
    """

    def __init__(self, num_codebooks: int, embedding_dim: int = 1, commitment_cost: float = 0.5,
                 decay: float = 0.99, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.num_codebooks, self.embedding_dim = int(num_codebooks), int(embedding_dim)
        self.commitment_cost, self.decay, self.epsilon = commitment_cost, decay, epsilon
        k = self.num_codebooks
        self.embeddings = nn.Embedding(k, embedding_dim)
        self.embeddings.weight.data.uniform_(-1 / k, 1 / k)
        self.embeddings.weight.requires_grad_(False)
        self.register_buffer("ema_cluster_size", torch.zeros(k))
        self.ema_w = nn.Parameter(torch.empty(k, embedding_dim).uniform_(-1 / k, 1 / k), requires_grad=False)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = z.contiguous()
        flat = z.reshape(-1, self.embedding_dim)  # (B·T, d)
        codebook = self.embeddings.weight
        idx = torch.cdist(flat, codebook).argmin(1)  # (B·T,)
        q = codebook[idx].view_as(z)
        c_loss = self.commitment_cost * F.mse_loss(q.detach(), z)
        # straight-through: the forward value is exactly q (z − sg[z] is exactly 0, so no rounding
        # residue as in the release's z + sg[q − z]); the gradient goes to z unchanged
        q_st = q + (z - z.detach())
        if self.training:
            self._ema_update(flat.detach(), idx)
        return c_loss, q_st, idx.view(z.shape[0], z.shape[1])

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, idx: Tensor) -> None:
        onehot = F.one_hot(idx, self.num_codebooks).to(flat.dtype)  # (B·T, K)
        self.ema_cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        total = self.ema_cluster_size.sum()
        self.ema_cluster_size.copy_(
            (self.ema_cluster_size + self.epsilon) / (total + self.num_codebooks * self.epsilon) * total
        )
        self.ema_w.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        self.embeddings.weight.copy_(self.ema_w / self.ema_cluster_size.unsqueeze(1))


class LabelQuantizer(nn.Module):
    """``Label_Quantizer(K)``: labels (B, T) → (commitment loss (1,), quantized (B, T), indices (B, T)).

    There is no decoder: the quantized sequence (values among K codewords) is the reconstruction.

    >>> [sum(p.numel() for p in LabelQuantizer(k).parameters()) for k in (2, 4, 8, 16, 32)]
    [814, 818, 826, 842, 874]
    """

    def __init__(self, num_codebooks: int = 16, length: int = 160, d_state: int = 48, expand: int = 2,
                 backend: Backend = "auto") -> None:
        super().__init__()
        self.length = int(length)
        self.encoder = LabelEncoder(length, d_state, expand, backend)
        self.quantizer = EMAQuantizer(num_codebooks)

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_codebooks

    @property
    def bits(self) -> int:
        return int(round(np.log2(self.num_codebooks)))

    @property
    def codebook(self) -> Tensor:
        """The (K, 1) codebook (a view of ``quantizer.embeddings.weight``)."""
        return self.quantizer.embeddings.weight

    def forward(self, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if labels.dim() != 2:
            raise ValueError(f"LabelQuantizer expects labels (B, T), got {tuple(labels.shape)}")
        if labels.shape[1] != self.length:
            raise ChunkLengthError(
                f"LabelQuantizer: label length {labels.shape[1]} differs from the position-embedding length {self.length}"
            )
        z = self.encoder(labels.unsqueeze(1))  # (B, T, 1)
        c_loss, q, idx = self.quantizer(z)
        return c_loss.unsqueeze(0), q.squeeze(-1), idx


def load_quantizer_state(path: str | Path, bits: int, backend: Backend = "auto") -> LabelQuantizer:
    """Build a :class:`LabelQuantizer` of 2^bits codes from a saved state file.

    Accepts a release ``{name}_{k}th_LQ_Epoch{e}.pth`` (``module.`` prefixes allowed), a plain state
    dict, ``{"model"|"state_dict": ...}``, or a checkpoint of several quantizers keyed ``"<i>.…"``
    (this method's phase-1 ``nn.ModuleList``): the one with 2^bits codewords is taken.
    """
    path = Path(path)
    if not path.is_file():
        raise QuantizerError(f"quantizer state file not found: {path}")
    state = read_state_dict(path, QuantizerError)
    return quantizer_from_state(state, bits, backend, source=str(path))


def quantizer_from_state(state: Mapping[str, Any], bits: int, backend: Backend = "auto", source: str = "state") -> LabelQuantizer:
    bits = check_bits(bits)
    if isinstance(state, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping):
        raise QuantizerError(f"{source}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    key = "quantizer.embeddings.weight"
    if key not in state:  # several quantizers: pick the one with 2^bits codes
        prefixes = sorted({k.split(".", 1)[0] for k in state if k.endswith(key)})
        chosen = [p for p in prefixes if state[f"{p}.{key}"].shape[0] == 2**bits]
        if not chosen:
            raise QuantizerError(f"{source}: no label quantizer with {2**bits} codewords ({bits} bits) in this file")
        state = {k[len(chosen[0]) + 1:]: v for k, v in state.items() if k.startswith(chosen[0] + ".")}
    k = state[key].shape[0]
    if k != 2**bits:
        raise QuantizerError(f"{source}: quantizer has {k} codewords, expected 2^{bits} = {2**bits}")
    length = state["encoder.position_embedding"].shape[1]
    lq = LabelQuantizer(k, length=length, backend=backend)
    missing, unexpected = lq.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise QuantizerError(f"{source}: not a Label_Quantizer state dict (missing {missing[:4]}, unexpected {unexpected[:4]})")
    return lq.eval()


# ---------------------------------------------------------------------------------------------
# label transforms
# ---------------------------------------------------------------------------------------------
@register_label_transform("lq_bandpass_zscore")
class LQBandpassZScore(LabelTransform):
    """Per-chunk band-pass (order 1, 0.75–2.5 Hz, zero-phase, at the record's fps) then z-score."""

    scope = "chunk"

    def __init__(self, low: float = LABEL_BAND[0], high: float = LABEL_BAND[1], order: int = LABEL_ORDER):
        self.low, self.high, self.order = float(low), float(high), int(order)

    def __call__(self, label, fps, rng):
        return bandpass_zscore(label, fps, (self.low, self.high), self.order)


@register_label_transform("quantize")
class Quantize(LabelTransform):
    """Replace a chunk's label by its b-bit quantization (values among 2^b codewords).

    ``kind="lloyd"``: training-free Lloyd-Max codewords, learned by :meth:`fit` from the training
    labels (chunked at ``chunk`` samples, each band-passed and z-scored). ``kind="learned"``: a
    trained :class:`LabelQuantizer` loaded from ``state`` (a state file path; chunks must have its
    length). With ``prefilter`` (default) the chunk is first band-passed and z-scored
    (:func:`bandpass_zscore`), the domain both quantizers are fitted in.
    """

    scope = "chunk"
    needs_fit = True

    def __init__(self, bits: int = 3, kind: str = "lloyd", state: str | None = None, prefilter: bool = True,
                 chunk: int = 160, seed: int = 0):
        self.bits = check_bits(bits)
        if kind not in ("lloyd", "learned"):
            raise QuantizerError(f"quantize: kind must be 'lloyd' or 'learned', got {kind!r}")
        self.kind, self.state, self.prefilter = kind, state, bool(prefilter)
        self.chunk, self.seed = int(chunk), int(seed)
        self.needs_fit = kind == "lloyd"  # type: ignore[misc]
        self._codebook: np.ndarray | None = None
        self._model: LabelQuantizer | None = None
        if kind == "learned":
            if not state:
                raise QuantizerError("quantize(kind='learned') needs `state`: the path of a trained quantizer state file")
            self._model = load_quantizer_state(state, self.bits, backend="mambapy")

    def fit(self, labels: Sequence[np.ndarray], fps: float | Sequence[float]) -> None:
        if self.kind != "lloyd":
            return
        values = chunk_label_values(labels, fps, self.chunk) if self.prefilter else np.concatenate(
            [np.asarray(y, dtype=np.float64).reshape(-1) for y in labels])
        self._codebook = lloyd_max_codebook(values, 2**self.bits, seed=self.seed)

    @property
    def codebook(self) -> np.ndarray:
        if self.kind == "learned":
            assert self._model is not None
            return self._model.codebook.detach().numpy().reshape(-1).astype(np.float64)
        if self._codebook is None:
            raise QuantizerError("quantize(kind='lloyd') used before fit(): fit it on the training labels first")
        return self._codebook

    def __call__(self, label, fps, rng):
        y = bandpass_zscore(label, fps) if self.prefilter else np.asarray(label, dtype=np.float64)
        if self.kind == "lloyd":
            return nearest_code(y, self.codebook)[1]
        assert self._model is not None
        with torch.no_grad():
            _, q, _ = self._model(torch.as_tensor(y, dtype=torch.float32)[None])
        return q[0].double().numpy()
