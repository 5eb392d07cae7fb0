"""Run settings a user can predict and read: where each setting came from, and the checks that reject a
bad config before any data work.

Precedence (highest first; ``DESIGN.md``, "principles added after the first release"):

1. **command line** — every key the user set explicitly (``trainer.epochs=1``, ``+trainer.x=..``,
   ``method.frames=32``), found from hydra's override list (``hydra.overrides.task``);
2. **variant YAML** — a named variant in ``benchmark/conf/method/<variant>.yaml``: its method keys and
   an optional ``trainer:`` block of trainer settings for that variant;
3. **method preset** — the method's ``quick`` preset under ``trainer=quick`` (input ``frames``/``size``
   and trainer keys), or its ``paper_recipe`` under ``trainer=paper``;
4. **trainer preset** — ``benchmark/conf/trainer/<name>.yaml``.

:func:`resolve` returns the method config and trainer settings after this order, with the source of
each value; :meth:`Settings.line` is the one line ``rppg-bench run`` prints at start and the runner
logs it to MLflow (``settings.txt``). :func:`check_config` rejects unknown keys (listing the valid
ones) and degenerate values (``epochs < 1``, ``lr <= 0``, a NaN anywhere, a seed outside
[0, 2**32 - 1], an unknown optimizer, ...) before anything is read or trained.

>>> sorted(explicit_keys(["trainer.epochs=1", "+trainer.lr=0.1", "method=physformer", "seed=3"]))
['method', 'seed', 'trainer.epochs', 'trainer.lr']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Trainer keys that name the preset rather than set the training loop.
TRAINER_META_KEYS = ("name", "quick_shapes", "recipe")
#: Keys a method's ``quick``/``paper_recipe`` preset may hold besides trainer keys: input shape
#: (method config) and per-phase settings read by the method itself.
PRESET_METHOD_KEYS = ("frames", "size")
PRESET_EXTRA_KEYS = ("phases",)
#: Method-config keys that are not passed to the method: its registered name, the variant's name
#: (leaderboard row), the variant's trainer block and the checkpoint shape guard's switch
#: (``benchmark.shape_guard``).
METHOD_META_KEYS = ("name", "variant", "trainer", "allow_shape_change")
#: Sections whose keys are checked against a fixed list (see :func:`valid_keys`).
LABELS_KEYS = ("name", "transforms")
TRACKING_KEYS = ("uri", "experiment", "artifacts", "tags")
#: Valid values of the trainer's name-valued settings (``benchmark/trainer.py`` accepts these).
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = (None, "none", "onecycle")
SELECTS = ("val_loss", "last", "val_mae")
AMPS = ("none", "bf16")
SEED_MAX = 2**32 - 1
#: Protocols that take their dataset from the top-level ``dataset`` group (``dataset=<name> dataset.root=...``).
DATASET_PROTOCOLS = ("eval_only",)

COMMAND_LINE = "command line"


class ConfigError(ValueError):
    """A run config has an unknown key or a value that cannot give a meaningful run."""


def explicit_keys(overrides: Iterable[str] | None) -> frozenset[str]:
    """Dotted keys the user set in hydra override strings (``key=value``, ``+key=``, ``++key=``).
    A group choice (``method=physformer``) comes back as its group name, which names no setting."""
    if not overrides:
        return frozenset()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = set()
    for ov in OverridesParser.create().parse_overrides(list(overrides)):
        if not ov.is_delete():
            keys.add(ov.key_or_group)
    return frozenset(keys)


def trainer_keys() -> tuple[str, ...]:
    """Every key a ``trainer`` config may hold: :class:`~benchmark.trainer.TrainerConfig` fields and
    the preset's own keys (``name``, ``quick_shapes``, ``recipe``)."""
    from benchmark.trainer import TrainerConfig

    return tuple(f.name for f in dataclasses.fields(TrainerConfig)) + TRAINER_META_KEYS


def _base_config() -> Any:
    """``benchmark/conf/config.yaml`` as written (interpolations unresolved)."""
    from omegaconf import OmegaConf

    return OmegaConf.load(Path(__file__).parent / "conf" / "config.yaml")


def top_level_keys() -> tuple[str, ...]:
    """Top-level keys of ``benchmark/conf/config.yaml`` and its config groups (a key added there is
    valid everywhere)."""
    base = _base_config()
    groups = []
    for d in base.get("defaults", []):
        if isinstance(d, str) and d != "_self_":
            groups.append(d)
        elif not isinstance(d, str):
            groups.extend(str(k).lstrip("+").split("@")[0] for k in d)
    return tuple(dict.fromkeys([*(str(k) for k in base if k != "defaults"), *groups, "hydra"]))


def _unknown(section: str, given: Iterable[str], valid: Iterable[str]) -> None:
    valid = list(valid)
    bad = sorted(set(given) - set(valid))
    if bad:
        where = f"under {section!r}" if section else "at the top level"
        raise ConfigError(f"unknown config key(s) {bad} {where}; valid: {sorted(valid)}")


def _non_finite(node: Any, path: str) -> str | None:
    if isinstance(node, float) and not math.isfinite(node):
        return f"{path}={node}"
    if isinstance(node, Mapping):
        for k, v in node.items():
            bad = _non_finite(v, f"{path}.{k}" if path else str(k))
            if bad:
                return bad
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            bad = _non_finite(v, f"{path}[{i}]")
            if bad:
                return bad
    return None


def check_config(plain: Mapping[str, Any]) -> None:
    """Reject unknown keys (top level, ``trainer``, the method's ``trainer`` block, ``labels``, ``eval``,
    ``preprocess``, ``tracking``), non-finite numbers anywhere and a seed outside [0, 2**32 - 1].
    Method keys are checked when the method is built; trainer values by :func:`check_trainer`."""
    from benchmark.evaluate import EvalConfig
    from protocols.preprocess import PreprocessConfig

    # `dataset=<name>` is read by the protocols that name it (eval_only) and by `preprocess`; elsewhere it
    # would be ignored silently, so it stays an unknown key there
    uses_dataset = str((plain.get("protocol") or {}).get("name", "")) in DATASET_PROTOCOLS
    _unknown("", plain, [k for k in top_level_keys() if k != "dataset" or uses_dataset])
    tkeys = trainer_keys()
    _unknown("trainer", plain.get("trainer") or {}, tkeys)
    method = plain.get("method") or {}
    if not isinstance(method, Mapping) or "name" not in method:
        raise ConfigError("config key 'method' must be a mapping with a 'name' (e.g. method=pos)")
    vt = method.get("trainer")
    if vt is not None:
        if not isinstance(vt, Mapping):
            raise ConfigError(f"method.trainer must be a mapping of trainer settings, got {vt!r}")
        _unknown("method.trainer", vt, [k for k in tkeys if k not in TRAINER_META_KEYS])
    _unknown("labels", plain.get("labels") or {}, LABELS_KEYS)
    _unknown("eval", plain.get("eval") or {}, [f.name for f in dataclasses.fields(EvalConfig)])
    _unknown("preprocess", plain.get("preprocess") or {}, [f.name for f in dataclasses.fields(PreprocessConfig)])
    _unknown("tracking", plain.get("tracking") or {}, TRACKING_KEYS)
    _unknown("paths", plain.get("paths") or {}, _base_config().get("paths") or {})
    bad = _non_finite({k: v for k, v in plain.items() if k != "hydra"}, "")
    if bad:
        raise ConfigError(f"non-finite number in the config: {bad}")
    seed = plain.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed must be an integer in [0, {SEED_MAX}] (numpy's seed range), got {seed!r}")


@dataclass
class Settings:
    """Resolved settings and where each came from (``"trainer.epochs" -> "command line"``)."""

    method: dict[str, Any]
    trainer: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    neural: bool = True

    def items(self) -> list[tuple[str, Any, str]]:
        """(dotted key, value, source) for the input shape and every trainer setting."""
        out = [(f"method.{k}", self.method.get(k), self.sources[f"method.{k}"]) for k in PRESET_METHOD_KEYS
               if f"method.{k}" in self.sources]
        out += [(f"trainer.{k}", v, self.sources.get(f"trainer.{k}", "?")) for k, v in self.trainer.items()
                if k not in TRAINER_META_KEYS]
        return out

    def line(self) -> str:
        """One line: ``trainer: epochs=1 (command line), lr=0.003 (physformer quick preset), ...``."""
        if not self.neural:
            return f"trainer: not used (method {self.method.get('name')!r} is not trained)"
        parts = [f"{k.removeprefix('trainer.')}={v} ({src})" for k, v, src in self.items()]
        return f"trainer ({self.trainer.get('name', '?')}): " + ", ".join(parts)

    def text(self) -> str:
        """One ``key = value  # source`` line per setting (the MLflow artifact ``settings.txt``)."""
        rows = self.items() if self.neural else []
        width = max((len(f"{k} = {v!r}") for k, v, _ in rows), default=0)
        body = "\n".join(f"{f'{k} = {v!r}':<{width}}  # {src}" for k, v, src in rows)
        head = ("# resolved run settings; precedence: command line > variant YAML > method preset > trainer preset\n"
                if self.neural else self.line() + "\n")
        return head + body + ("\n" if body else "")


def _preset(method_cls: type, recipe: str, quick_shapes: bool) -> tuple[dict[str, Any], str]:
    """The method preset that applies under this trainer preset, and its label."""
    name = getattr(method_cls, "name", "?")
    if recipe == "paper":
        preset, label = dict(getattr(method_cls, "paper_recipe", {}) or {}), f"{name} paper recipe"
    elif quick_shapes:
        preset, label = dict(getattr(method_cls, "quick", {}) or {}), f"{name} quick preset"
    else:
        return {}, ""
    tkeys = set(trainer_keys()) - set(TRAINER_META_KEYS)
    bad = sorted(set(preset) - tkeys - set(PRESET_METHOD_KEYS) - set(PRESET_EXTRA_KEYS))
    if bad:
        raise ConfigError(f"{label} has unknown key(s) {bad}; valid: {sorted(tkeys | set(PRESET_METHOD_KEYS) | set(PRESET_EXTRA_KEYS))}")
    return preset, label


def resolve(plain: Mapping[str, Any], method_cls: type, explicit: Iterable[str] = ()) -> Settings:
    """Method config (without ``name``/``variant``/``trainer``) and trainer settings after the
    precedence order (module docstring), each with its source.

    ``method_cls`` is the registered class; ``explicit`` the keys the user set (:func:`explicit_keys`).
    A value the user set equal to a preset's value still wins (it is explicit).
    """
    from benchmark.method import NeuralMethod

    explicit = frozenset(explicit)
    mcfg = dict(plain.get("method") or {})
    variant = mcfg.get("variant")
    vtrainer = dict(mcfg.get("trainer") or {})
    for k in METHOD_META_KEYS:
        mcfg.pop(k, None)
    tcfg = dict(plain.get("trainer") or {})
    neural = isinstance(method_cls, type) and issubclass(method_cls, NeuralMethod)
    tname = tcfg.get("name", "?")
    sources: dict[str, str] = {f"trainer.{k}": f"trainer preset {tname}" for k in tcfg}

    def user(key: str) -> bool:
        return key in explicit

    for k in tcfg:
        if user(f"trainer.{k}"):
            sources[f"trainer.{k}"] = COMMAND_LINE
    if not neural:
        return Settings({"name": method_cls.name, **mcfg}, tcfg, sources, neural=False)

    # keys the trainer preset leaves out run at TrainerConfig's defaults: recorded too (run identity)
    from benchmark.trainer import TrainerConfig

    for f in dataclasses.fields(TrainerConfig):
        if f.name not in tcfg and f.name != "progress":  # progress: the top-level key
            tcfg[f.name] = f.default
            sources[f"trainer.{f.name}"] = "trainer default"
    preset, plabel = _preset(method_cls, str(tcfg.get("recipe", "")), bool(tcfg.get("quick_shapes")))
    vlabel = f"variant {variant}" if variant else "method config"
    # method input shape: command line > variant YAML > method preset > the method's own default
    for k in PRESET_METHOD_KEYS:
        if k not in mcfg and k not in preset:
            continue
        key = f"method.{k}"
        if user(key):
            sources[key] = COMMAND_LINE
        elif mcfg.get(k) is not None:
            sources[key] = vlabel
        elif k in preset and tcfg.get("quick_shapes"):
            mcfg[k] = preset[k]
            sources[key] = plabel
        else:
            sources[key] = "method default"
    # trainer: command line > variant's trainer block > method preset > trainer preset
    for k, v in preset.items():
        if k in PRESET_METHOD_KEYS or k in PRESET_EXTRA_KEYS or user(f"trainer.{k}"):
            continue
        tcfg[k] = v
        sources[f"trainer.{k}"] = plabel
    for k, v in vtrainer.items():
        if user(f"trainer.{k}") or user(f"method.trainer.{k}"):
            continue
        tcfg[k] = v
        sources[f"trainer.{k}"] = f"variant {variant}" if variant else "method.trainer"
    for k in vtrainer:
        if user(f"method.trainer.{k}") and not user(f"trainer.{k}"):
            tcfg[k] = vtrainer[k]
            sources[f"trainer.{k}"] = COMMAND_LINE
    return Settings({"name": method_cls.name, **mcfg}, tcfg, sources, neural=True)


def _num(key: str, v: Any, *, integer: bool, low: float, low_inclusive: bool, none_ok: bool = False) -> str | None:
    if v is None:
        return None if none_ok else f"{key} must be set"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not float(v).is_integer()):
        return f"{key} must be {'an integer' if integer else 'a number'}, got {v!r}"
    if not math.isfinite(float(v)):
        return f"{key} must be finite, got {v!r}"
    if (v < low) if low_inclusive else (v <= low):
        return f"{key} must be {'>=' if low_inclusive else '>'} {low:g}, got {v!r}"
    return None


def check_trainer(settings: Settings) -> None:
    """Reject trainer settings that cannot give a meaningful run, naming the key and its source.

    ``epochs=0`` would evaluate an untrained model and record it as a finished run (which could
    replace a real result in the leaderboard), so it is refused here, before any data work.
    """
    t, src = settings.trainer, settings.sources
    errors = [
        _num("epochs", t.get("epochs"), integer=True, low=1, low_inclusive=True),
        _num("batch_size", t.get("batch_size"), integer=True, low=1, low_inclusive=True),
        _num("lr", t.get("lr"), integer=False, low=0, low_inclusive=False),
        _num("weight_decay", t.get("weight_decay", 0.0), integer=False, low=0, low_inclusive=True),
        _num("grad_clip", t.get("grad_clip"), integer=False, low=0, low_inclusive=False, none_ok=True),
        _num("max_batches_per_epoch", t.get("max_batches_per_epoch"), integer=True, low=1, low_inclusive=True, none_ok=True),
        _num("precise_bn", t.get("precise_bn", 0), integer=True, low=0, low_inclusive=True),
        _num("num_workers", t.get("num_workers", 0), integer=True, low=0, low_inclusive=True),
        _num("threads", t.get("threads", 1), integer=True, low=1, low_inclusive=True),
    ]
    for key, valid in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS), ("select", SELECTS), ("amp", AMPS)):
        if key in t and t[key] not in valid:
            errors.append(f"{key} must be one of {list(valid)}, got {t[key]!r}")
    dev = t.get("device", "auto")
    if not (isinstance(dev, str) and (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()))):
        errors.append(f"device must be auto, cpu, cuda or cuda:N, got {dev!r}")
    for e in errors:
        if e:
            key = e.split(" ", 1)[0]
            raise ConfigError(f"trainer.{e} (set by {src.get(f'trainer.{key}', '?')})")


def check_chunk_length(frames: int, records: Sequence[tuple[str, Any]], split: str) -> None:
    """Every record of a split must hold at least one chunk of ``frames`` frames (checked on the
    records' frame counts, before preprocessing)."""
    from benchmark.data import ChunkError

    short = [f"{alias}/{r.id} ({len(r.frames)} frames)" for alias, r in records if 0 < len(r.frames) < frames]
    if short:
        raise ChunkError(f"chunk length {frames} is longer than {len(short)} record(s) of the {split} split: "
                         f"{', '.join(short[:5])}{' ...' if len(short) > 5 else ''}; set method.frames lower")


_OWN_PACKAGES = ("benchmark", "protocols", "methods", "lq_rppg", "hydra", "omegaconf")


def _fold(lines: list[str]) -> str:
    """Message lines → one line: a list after a ``header:`` becomes ``header: a, b, c``; hydra's
    "Config search path" appendix is dropped.

    >>> _fold(["Could not find 'method/x'", "Available options in 'method':", "chrom", "pos", "Config search path:", "p"])
    "Could not find 'method/x'; Available options in 'method': chrom, pos"
    """
    out, in_list = "", False
    for ln in lines:
        if ln.startswith("Config search path"):
            break
        if not out:
            out = ln
        elif out.endswith(":"):
            out, in_list = f"{out} {ln}", " " not in ln
        elif in_list and " " not in ln:
            out = f"{out}, {ln}"
        else:
            out, in_list = out + (" " if out[-1] in ".;!?" else "; ") + ln, False
        in_list = in_list or out.endswith(":")
    return out


def one_line(exc: BaseException) -> str:
    """An exception as one line (``error: <this>``): its message with newlines folded; the type is
    named when the exception comes from outside the project (e.g. ``RuntimeError: ...`` from torch).

    >>> one_line(ValueError("bad value"))
    'ValueError: bad value'
    """
    parts = [str(exc).strip()]
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("omegaconf"):
        parts.append(str(cause).strip().splitlines()[0] if str(cause).strip() else "")
        parent = getattr(cause, "parent_node", None)  # an unknown key: list the valid ones
        if parent is not None and hasattr(parent, "keys") and "not in struct" in parts[-1]:
            parts.append(f"valid keys under {str(getattr(cause, 'full_key', '')).rpartition('.')[0] or 'the top level'!r}: "
                         f"{sorted(str(k) for k in parent.keys())}")
    msg = _fold([x.strip() for p in parts for x in p.splitlines() if x.strip()])
    if not msg:
        return type(exc).__name__
    tb, raised_in = exc.__traceback__, ""
    while tb is not None:  # the module of the frame that raised it
        raised_in, tb = str(tb.tb_frame.f_globals.get("__name__", "")), tb.tb_next
    own = type(exc).__module__.split(".")[0] in _OWN_PACKAGES or raised_in.split(".")[0] in _OWN_PACKAGES
    return msg if own else f"{type(exc).__name__}: {msg}"
