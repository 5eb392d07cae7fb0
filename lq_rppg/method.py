"""LQ-rPPG as a benchmark method: two training phases (label quantizers, then the C2F model).

Phase ``quantizer`` trains the learned label quantizers LQ_1…LQ_M (K = 2, 4, …, 2^M; M =
``max_bits``) on the training labels; its ``on_end`` freezes them and injects their codebooks into
the C2F model. Phase ``c2f`` trains the coarse-to-fine model under hierarchical supervision. Both
run through the one trainer (``benchmark/trainer.py``), which only sees the declared phases.

Reconstruction choices (the release lacks ``train()``; ``shared/reference/models.md`` §10.4, §12):

* Labels: the batch label (whole-record Standardized, as the release's loader) is band-passed
  (order 1, 0.75–2.5 Hz, zero-phase, at the batch's fps) and z-scored per chunk inside the method
  (``label_filter``), following the paper's overview figure. The release imports the filter but
  never calls it — an assumption.
* Phase 1 loss per quantizer: ``lq_rec_weight``·NegPearson(q̃_b, y) + ``lq_commit_weight``·L_commit
  (LQ_Alpha = LQ_Beta = 1.0 in every released yaml). The five quantizers are independent, so they
  are trained jointly as one ``nn.ModuleList`` with one optimiser on the sum of their losses: the
  gradients do not mix (no shared parameter) and AdamW is per-parameter, so this equals separate
  training with the same lr/schedule — except that the best epoch is selected once for all five
  (the release selects per quantizer), which is the one difference.
* Phase 2 loss: stage k (bit level b_k) — ``cls_weight``·CE(−|h_k − c^{(b_k)}|, code index of the
  label under quantizer b_k) + ``rec_weight``·Hybrid(s_k, q^{(b_k)}), with Hybrid = 0.2·NegPearson +
  1.0·spectral CE (45–149 bpm, target bin = argmax of the target's spectrum) and q^{(b)} the b-bit
  quantized label; the final stage the same with b = M on the predictor output. Stages are weighted
  ``stage_weight`` each, the final stage ``final_weight`` (C2F_Alpha/Beta/Gamma = 1.0 in the config).
  ``supervision="final_only"`` drops the stage terms.
* ``max_bits`` M < 5: stage k uses b_k = min(k, M) and the final stage M (the architecture stays the
  same; levels above M are clipped).
* ``labels="raw"``: no codebooks at all — the projections see h_k directly (the release's
  no-codebook path) and every term is Hybrid(h_k or ŷ, filtered label).
* ``quantizer="lloyd"``: training-free Lloyd-Max codebooks from the filtered training labels; no
  phase 1. The trainer calls :meth:`LQRPPG.prepare` with the training labels before the first
  phase (the hook this method needs); CE targets are then the nearest codeword of the label.
* The learned quantizers stay in eval mode (frozen EMA) during phase 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from benchmark.method import InputSpec, MethodConfigError, NeuralMethod, Phase, read_state_dict
from benchmark.registry import register_method
from lq_rppg.losses import codebook_ce, hybrid_loss_batched, quantizer_objective
from lq_rppg.mamba import BACKENDS
from lq_rppg.model import C2FModel
from lq_rppg.quantizer import (
    LabelQuantizer,
    QuantizerError,
    bandpass_zscore_batch,
    chunk_label_values,
    check_bits,
    lloyd_max_codebook,
    load_quantizer_state,
    nearest_code,
)


class CodebookError(RuntimeError):
    """The C2F phase needs quantizer codebooks that were never produced or loaded."""


def training_label_chunks(train_data: Any, fps: float | Sequence[float] | None = None) -> tuple[list[np.ndarray], list[float]]:
    """(labels, fps per label) of a training split, without decoding frames where possible.

    Accepts label arrays plus ``fps``; a dataset with a public ``label_chunks()`` iterator of
    ``(label, fps)`` (:class:`benchmark.data.ChunkDataset`); or any dataset of dicts with ``label`` and ``fps`` (frames are then loaded and dropped).
    """
    if fps is not None:
        labels = [np.asarray(y, dtype=np.float64) for y in train_data]
        rates = [float(fps)] * len(labels) if np.isscalar(fps) else [float(f) for f in fps]  # type: ignore[union-attr]
        if len(rates) != len(labels):
            raise ValueError(f"{len(labels)} training labels but {len(rates)} fps values")
        return labels, rates
    if hasattr(train_data, "label_chunks"):
        pairs = list(train_data.label_chunks())
        return [np.asarray(y, dtype=np.float64) for y, _ in pairs], [float(f) for _, f in pairs]
    labels, rates = [], []
    for i in range(len(train_data)):
        item = train_data[i]
        labels.append(np.asarray(item["label"], dtype=np.float64))
        rates.append(float(item["fps"]))
    return labels, rates


@register_method("lq_rppg")
class LQRPPG(NeuralMethod):
    """LQ-rPPG (label-quantized coarse-to-fine rPPG): learned label quantizers + C2F BiMamba model."""

    input = InputSpec(frames=160, size=128, transforms=("standardized",), label="standardized")
    # Release recipe (configs/*_LQC2F.yaml, LQC2FTrainer): C2F AdamW lr 3e-4 (per dataset: 6e-5 for
    # PURE→PURE, 5e-3 for MMPD→MMPD), wd 1e-5, OneCycleLR, 50 epochs, batch 16; the quantizers
    # AdamW lr 1e-3, wd 0, OneCycleLR, 30 epochs. "phases" holds the per-phase overrides.
    # Selection by validation HR MAE is an inference (the trainer imports calculate_metrics_return).
    paper_recipe = {
        "optimizer": "adamw", "lr": 3e-4, "weight_decay": 1e-5, "epochs": 50, "batch_size": 16,
        "scheduler": "onecycle", "select": "val_mae",
        "phases": {"quantizer": {"lr": 1e-3, "weight_decay": 0.0, "epochs": 30},
                   "c2f": {"lr": 3e-4, "weight_decay": 1e-5, "epochs": 50}},
    }

    #: CPU-quick preset: 128-frame chunks at 64×64 (stem output 8×8), as PhysFormer's quick preset.
    quick = {"frames": 128, "size": 64}

    @dataclass
    class Config:
        frames: int | None = None
        size: int | None = None
        checkpoint: str | None = None
        #: the release's five trained quantizer files (LQ_1…LQ_5) or our phase-1 checkpoint; skips phase 1
        lq_checkpoints: tuple[str, ...] | None = None
        max_bits: int = 5
        supervision: str = "hierarchical"  # or "final_only"
        labels: str = "quantized"  # or "raw"
        quantizer: str = "learned"  # or "lloyd"
        label_filter: bool = True
        cls_weight: float = 1.0
        rec_weight: float = 1.0
        stage_weight: float = 1.0
        final_weight: float = 1.0
        pearson_weight: float = 0.2
        spectral_weight: float = 1.0
        #: softmax over the normalised spectrum in the spectral CE, as the release (False: −log P̂)
        freq_quirk: bool = True
        lq_rec_weight: float = 1.0
        lq_commit_weight: float = 1.0
        lq_epochs: int | None = None
        lq_lr: float = 1e-3
        c2f_epochs: int | None = None
        c2f_lr: float | None = None
        c2f_weight_decay: float = 1e-5
        dim: int = 64
        d_state: int = 48
        expand: int = 2
        backend: str = "auto"
        seed: int = 0

    def __init__(self, **cfg: Any) -> None:
        super().__init__(**cfg)
        c = self.cfg
        try:
            c.max_bits = check_bits(c.max_bits, "max_bits")
        except QuantizerError as exc:
            raise MethodConfigError(f"lq_rppg: {exc}") from None
        for key, valid in (("supervision", ("hierarchical", "final_only")), ("labels", ("quantized", "raw")),
                           ("quantizer", ("learned", "lloyd")), ("backend", BACKENDS)):
            if getattr(c, key) not in valid:
                raise MethodConfigError(f"lq_rppg: {key} must be one of {valid}, got {getattr(c, key)!r}")
        spec = self.input_spec()
        if spec.frames <= 9:
            raise MethodConfigError(f"lq_rppg: frames must be > 9 (the label band-pass needs it), got {spec.frames}")
        if spec.size % 8:
            raise MethodConfigError(f"lq_rppg: size must be a multiple of 8, got {spec.size}")
        if c.dim % 4:
            raise MethodConfigError(f"lq_rppg: dim must be a multiple of 4, got {c.dim}")
        if c.lq_checkpoints is not None and len(c.lq_checkpoints) not in (1, 5, c.max_bits):
            raise MethodConfigError(
                f"lq_rppg: lq_checkpoints takes the 5 release files LQ_1…LQ_5, {c.max_bits} files, or one "
                f"phase-1 checkpoint; got {len(c.lq_checkpoints)}"
            )
        self.stage_bits = tuple(min(k, c.max_bits) for k in range(1, 5))
        self.final_bits = c.max_bits
        self.bit_levels = tuple(range(1, c.max_bits + 1))
        self.quantizers: nn.ModuleList | None = None
        self._lloyd: dict[int, Tensor] | None = None
        self._quantizers_frozen = False

    # -- properties ----------------------------------------------------------------------------
    @property
    def quantized(self) -> bool:
        return self.cfg.labels == "quantized"

    @property
    def needs_quantizer_phase(self) -> bool:
        return self.quantized and self.cfg.quantizer == "learned" and self.cfg.lq_checkpoints is None

    # -- models --------------------------------------------------------------------------------
    def build_model(self) -> C2FModel:
        c = self.cfg
        model = C2FModel(self.input_spec().frames, c.dim, c.d_state, c.expand, self.stage_bits, self.final_bits,
                         c.backend)  # type: ignore[arg-type]
        self.model = model
        if self.quantized and c.quantizer == "learned" and c.lq_checkpoints is not None:
            self._load_lq_checkpoints(model)
        return model

    def get_quantizers(self) -> nn.ModuleList:
        """The learned quantizers LQ_1…LQ_M as one ``nn.ModuleList`` (index b−1 holds 2^b codewords)."""
        if self.quantizers is None:
            c = self.cfg
            frames = self.input_spec().frames
            self.quantizers = nn.ModuleList(
                LabelQuantizer(2**b, length=frames, d_state=c.d_state, expand=c.expand, backend=c.backend)  # type: ignore[arg-type]
                for b in self.bit_levels
            )
        return self.quantizers

    def _load_lq_checkpoints(self, model: C2FModel) -> None:
        paths = list(self.cfg.lq_checkpoints or ())
        files = paths * self.cfg.max_bits if len(paths) == 1 else paths[: self.cfg.max_bits]
        lqs = [load_quantizer_state(p, b, backend=self.cfg.backend) for b, p in zip(self.bit_levels, files)]  # type: ignore[arg-type]
        frames = self.input_spec().frames
        for lq, p in zip(lqs, files):
            if lq.length != frames:
                raise MethodConfigError(f"{p}: quantizer length {lq.length} differs from frames {frames}")
        self.quantizers = nn.ModuleList(lqs)
        self._freeze_and_inject(self.quantizers, model)

    def _freeze_and_inject(self, quantizers: nn.ModuleList, model: C2FModel | None = None) -> None:
        quantizers.eval()
        for p in quantizers.parameters():
            p.requires_grad_(False)
            p.grad = None
        self.quantizers = quantizers
        self._quantizers_frozen = True
        model = model if model is not None else self.get_model()
        model.load_codebooks({b: lq.codebook.detach().cpu() for b, lq in zip(self.bit_levels, quantizers)})

    def inference_model(self) -> C2FModel:
        return self.get_model()

    # -- training-free codebooks ---------------------------------------------------------------
    def prepare(self, train_data: Any, fps: float | Sequence[float] | None = None) -> None:
        """Hook the trainer calls with the training split before the first phase.

        With ``quantizer="lloyd"`` (and quantized labels) it fits the Lloyd-Max codebooks of every
        bit level on the training labels — each chunk band-passed and z-scored as in training — and
        injects them into the C2F model; otherwise it does nothing. ``train_data`` is the training
        ``ChunkDataset`` (as ``Trainer.fit`` passes it), or a sequence of label arrays with ``fps``.
        """
        if not (self.quantized and self.cfg.quantizer == "lloyd"):
            return
        labels, rates = training_label_chunks(train_data, fps)
        frames = self.input_spec().frames
        if self.cfg.label_filter:
            values = chunk_label_values(labels, rates, frames)
        else:
            values = np.concatenate([np.asarray(y, dtype=np.float64).reshape(-1) for y in labels])
        self._lloyd = {
            b: torch.tensor(lloyd_max_codebook(values, 2**b, seed=self.cfg.seed), dtype=torch.float32)
            for b in self.bit_levels
        }
        self.get_model().load_codebooks(self._lloyd)

    # -- phases --------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        c = self.cfg
        c2f = Phase("c2f", self.get_model, self.forward, self.loss, epochs=c.c2f_epochs, lr=c.c2f_lr,
                    weight_decay=c.c2f_weight_decay)
        if not self.needs_quantizer_phase:
            return [c2f]
        lq = Phase("quantizer", self.get_quantizers, self.quantizer_forward, self.quantizer_loss,
                   epochs=c.lq_epochs, lr=c.lq_lr, weight_decay=0.0, on_end=self._quantizer_phase_end,
                   select="val_loss")
        return [lq, c2f]

    def _quantizer_phase_end(self, module: nn.ModuleList) -> None:
        self._freeze_and_inject(module)

    def _label(self, batch: dict) -> Tensor:
        """The training label as the method uses it: (B, T), band-passed and z-scored per chunk."""
        y = batch["label"]
        if y.dim() != 2:
            raise ValueError(f"lq_rppg: batch['label'] must be (B, T), got {tuple(y.shape)}")
        if not self.cfg.label_filter:
            return y.float()
        if "fps" not in batch:
            raise KeyError("lq_rppg: batch['fps'] is required to band-pass the labels")
        return bandpass_zscore_batch(y, batch["fps"])

    def quantizer_forward(self, module: nn.ModuleList, batch: dict) -> dict:
        y = self._label(batch)
        return {"label": y, "lq": [lq(y) for lq in module]}

    def quantizer_loss(self, out: dict, batch: dict, *, epoch: int = 0, num_epochs: int = 1) -> dict:
        c = self.cfg
        return quantizer_objective(out["lq"], out["label"], self.bit_levels,
                                   rec_weight=c.lq_rec_weight, commit_weight=c.lq_commit_weight)

    # -- C2F -----------------------------------------------------------------------------------
    def _require_codebooks(self, model: C2FModel) -> None:
        if self.quantized and not model.has_codebooks:
            how = ("run the 'quantizer' phase first or set lq_checkpoints" if self.cfg.quantizer == "learned"
                   else "call prepare(train_labels, fps) before training")
            raise CodebookError(
                f"lq_rppg: C2F started without quantizer codebooks (labels='quantized', quantizer="
                f"{self.cfg.quantizer!r}); {how}, or set labels='raw'"
            )

    def forward(self, model: C2FModel, batch: dict) -> dict:
        if model.training:  # evaluation/profiling without codebooks runs the release's no-codebook path
            self._require_codebooks(model)
        return model(batch["frames"])

    def _codes(self, y: Tensor, bits: int) -> tuple[Tensor, Tensor]:
        """(code indices, quantized label) of the filtered label y (B, T) under the b-bit quantizer."""
        if self.cfg.quantizer == "learned":
            if self.quantizers is None or not self._quantizers_frozen:
                raise CodebookError("lq_rppg: C2F loss needs the trained quantizers; run the 'quantizer' phase first")
            lq = self.quantizers[bits - 1].to(y.device).eval()
            with torch.no_grad():
                _, q, idx = lq(y)
            return idx, q
        return nearest_code(y, self._codebook_for(bits).reshape(-1).to(y))

    def _codebook_for(self, bits: int) -> Tensor:
        model = self.get_model()
        if bits == self.final_bits:
            return model.codebook_final
        return model.stage_codebooks()[self.stage_bits.index(bits)]

    def loss(self, out: dict, batch: dict, *, epoch: int = 0, num_epochs: int = 1) -> dict:
        c = self.cfg
        y = self._label(batch).to(out["pred"].device)
        fs = torch.as_tensor(batch["fps"]).to(y.device, torch.float32)
        model = self.get_model()
        self._require_codebooks(model)
        terms: dict[str, Tensor] = {}
        cache: dict[int, tuple[Tensor, Tensor]] = {}

        def stage_term(name: str, h: Tensor, s: Tensor, bits: int | None) -> Tensor:
            if bits is None:  # raw labels
                rec = hybrid_loss_batched(h, y, fs, c.pearson_weight, c.spectral_weight, toolbox_quirk=c.freq_quirk)
                terms[f"{name}_rec"] = rec.detach()
                return c.rec_weight * rec
            if bits not in cache:
                cache[bits] = self._codes(y, bits)
            codes, q = cache[bits]
            cls = codebook_ce(h, self._codebook_for(bits), codes)
            rec = hybrid_loss_batched(s, q, fs, c.pearson_weight, c.spectral_weight, toolbox_quirk=c.freq_quirk)
            terms[f"{name}_cls"], terms[f"{name}_rec"] = cls.detach(), rec.detach()
            return c.cls_weight * cls + c.rec_weight * rec

        total = y.new_zeros(())
        if c.supervision == "hierarchical":
            for k in range(4):
                bits = self.stage_bits[k] if self.quantized else None
                total = total + c.stage_weight * stage_term(f"stage{k + 1}", out["heads"][k], out["stage_signal"][k], bits)
        bits = self.final_bits if self.quantized else None
        total = total + c.final_weight * stage_term("final", out["pred"], out["final"], bits)
        return {"loss": total, **terms}

    def signal(self, out: dict) -> Tensor:
        return out["signal"]

    def efficiency_extras(self) -> dict[str, float]:
        """thop-visible parameters and the scan MAC estimate at the reference shape (``lq_rppg.profile``)."""
        from lq_rppg.profile import efficiency_extras

        return efficiency_extras(self.inference_model(), self.example_shape())

    # -- checkpoints ---------------------------------------------------------------------------
    def load_checkpoint(self, path: str | Path) -> None:
        """Load C2F weights: our own checkpoint (codebooks included) or the release's
        ``{name}_rPPG_Epoch{e}.pth`` (``{'C2F_model': state}``; codebooks then come from
        ``lq_checkpoints``, which are loaded when the model is built)."""
        path = Path(path)
        state = read_state_dict(path, MethodConfigError, wrappers=("C2F_model", "model", "state_dict", "model_state_dict"))
        if any(k.startswith("codebook_") for k in state):
            super().load_checkpoint(path)
            return
        model = self.get_model()
        try:
            model.load_reference_state_dict(state)
        except (KeyError, RuntimeError, AttributeError) as exc:
            raise MethodConfigError(f"{path}: checkpoint does not fit lq_rppg's C2F model: {exc}") from exc
