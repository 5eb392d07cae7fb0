"""Protocols: named splits (train / val / test) over one or more datasets.

A protocol config (hydra group ``protocol/``) looks like::

    name: synthetic_cross
    datasets:                       # dataset instances by alias: loader name + loader kwargs
      lab:  {name: synthetic, domain: lab, n_subjects: 10}
      wild: {name: synthetic, domain: wild, n_subjects: 10, seed: 1}
    splits:
      train: [{dataset: lab, begin: 0.0, end: 0.8}]
      val:   [{dataset: lab, begin: 0.8, end: 1.0}]
      test:  [{dataset: wild}]

Each split part selects units of one dataset: units are subjects by default (``unit: record`` for
per-file splits), sorted deterministically (``order: natural`` — numbers compared as numbers — or
``lexicographic``), optionally filtered on record metadata (``filter: {motion: [1], light: [1, 2]}``),
then sliced ``[int(begin·n), int(end·n))`` as the toolbox does (C.1 of the reference). ``exclude``
drops record ids. Nothing here knows about models.

A *suite* config (``suite: [protocol, ...]`` instead of datasets/splits, e.g. ``synthetic_cross``:
one training world, three test tiers) names protocols that are run and reported one by one;
:func:`expand_suites` turns ``protocol=<suite>`` into those names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.base import Loader, Record, create_dataset

SPLITS = ("train", "val", "test")


class ProtocolError(ValueError):
    """A protocol config is inconsistent (unknown alias, empty split, overlap between splits...)."""


def natural_key(s: str) -> list[Any]:
    """Sort key comparing digit runs as numbers: subject2 < subject10.

    >>> sorted(["s10", "s2", "s1"], key=natural_key)
    ['s1', 's2', 's10']
    """
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


@dataclass
class SplitPart:
    dataset: str
    begin: float = 0.0
    end: float = 1.0
    unit: str = "subject"
    order: str = "natural"
    filter: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    exclude: Sequence[str] = ()
    #: "before": filter on metadata, then slice the remaining units (our default: every split gets
    #: its share of the matching subjects); "after": slice all units first, then filter (toolbox).
    filter_stage: str = "before"


@dataclass
class Protocol:
    name: str
    datasets: dict[str, dict[str, Any]]
    splits: dict[str, list[SplitPart]]

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Protocol:
        cfg = _plain(cfg)
        name = cfg.get("name", "?")
        if cfg.get("suite"):
            raise ProtocolError(f"protocol {name!r} is a suite of {', '.join(cfg['suite'])}: one run takes one of them "
                                f"(`rppg-bench run` and `bench` expand protocol={name} into them)")
        datasets = {k: dict(v) for k, v in (cfg.get("datasets") or {}).items()}
        if not datasets:
            raise ProtocolError(f"protocol {name!r} defines no datasets")
        splits: dict[str, list[SplitPart]] = {}
        for split, parts in (cfg.get("splits") or {}).items():
            if split not in SPLITS:
                raise ProtocolError(f"protocol {name!r}: unknown split {split!r}; valid: {SPLITS}")
            splits[split] = []
            for p in parts or []:
                part = SplitPart(**p)
                if part.dataset not in datasets:
                    raise ProtocolError(
                        f"protocol {name!r}: split {split} uses unknown dataset alias {part.dataset!r}; "
                        f"defined: {sorted(datasets)}"
                    )
                if not 0.0 <= part.begin <= part.end <= 1.0:
                    raise ProtocolError(f"protocol {name!r}: split {split} has invalid range [{part.begin}, {part.end})")
                if part.unit not in ("subject", "record"):
                    raise ProtocolError(f"protocol {name!r}: unit must be subject|record, got {part.unit!r}")
                if part.filter_stage not in ("before", "after"):
                    raise ProtocolError(f"protocol {name!r}: filter_stage must be before|after, got {part.filter_stage!r}")
                if part.order not in ("natural", "lexicographic"):
                    raise ProtocolError(f"protocol {name!r}: order must be natural|lexicographic, got {part.order!r}")
                splits[split].append(part)
        if "test" not in splits or not splits["test"]:
            raise ProtocolError(f"protocol {name!r} has no test split")
        return cls(name=name, datasets=datasets, splits=splits)

    def loader(self, alias: str) -> Loader:
        spec = dict(self.datasets[alias])
        ds_name = spec.pop("name")
        return create_dataset(ds_name, **spec)

    def select(self, alias: str, records: Sequence[Record], part: SplitPart) -> list[Record]:
        """Records of one dataset that fall into ``part``."""
        recs = [r for r in records if r.id not in set(part.exclude)]

        def apply_filter(rs: list[Record]) -> list[Record]:
            for key, allowed in part.filter.items():
                allowed_set = {str(a) for a in allowed}
                rs = [r for r in rs if str(r.meta.get(key)) in allowed_set]
            return rs

        if part.filter_stage == "before":
            recs = apply_filter(recs)
        sort_key = natural_key if part.order == "natural" else (lambda s: s)
        if part.unit == "subject":
            units = sorted({r.subject for r in recs}, key=sort_key)
        else:
            units = sorted({r.id for r in recs}, key=sort_key)
        n = len(units)
        chosen = set(units[int(part.begin * n) : int(part.end * n)])
        attr = "subject" if part.unit == "subject" else "id"
        picked = [r for r in recs if getattr(r, attr) in chosen]
        if part.filter_stage == "after":
            picked = apply_filter(picked)
        return sorted(picked, key=lambda r: natural_key(r.id))

    def check_disjoint(self, assignment: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        """Raise if a record sits in test and in train/val (valid = test is allowed only if declared)."""
        test = set(assignment.get("test", ()))
        for split in ("train", "val"):
            both = test & set(assignment.get(split, ()))
            if both:
                ex = sorted(both)[:3]
                raise ProtocolError(f"protocol {self.name!r}: {len(both)} record(s) in both {split} and test, e.g. {ex}")


def protocol_config_path(name: str) -> Any:
    """The packaged config file of protocol ``name`` (``benchmark/conf/protocol/<name>.yaml``)."""
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "benchmark" / "conf" / "protocol" / f"{name}.yaml"


def suite_members(name: str) -> list[str] | None:
    """The protocols of suite ``name``, or None when ``name`` is not a packaged suite config."""
    import yaml

    path = protocol_config_path(name)
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text()) or {}
    suite = data.get("suite") if isinstance(data, dict) else None
    return [str(s) for s in suite] if suite else None


def expand_suites(names: Sequence[str]) -> list[str]:
    """Protocol names with every suite replaced by its members, in order, without repeats.

    >>> expand_suites(["synthetic_cross", "intra_pure"])
    ['synthetic_cross_ubfc_like', 'synthetic_cross_pure_like', 'synthetic_cross_mmpd_like', 'intra_pure']
    """
    out: list[str] = []
    for n in names:
        for m in suite_members(n) or [n]:
            if m not in out:
                out.append(m)
    return out


def _plain(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return cfg
