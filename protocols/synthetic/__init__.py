"""Synthetic rPPG data, generated deterministically from a seed (``dataset=synthetic``).

Two generators share the one registered loader :class:`SyntheticDataset`:

* ``SyntheticDataset(tier=...)`` — generator v3, the physics-first world
  (:mod:`protocols.synthetic.world`): camera-resolution frames of a dichromatic skin model under
  several light sources, rigid and non-rigid head motion with BCG, and a camera pipeline with
  compression. Tiers mirror the *conditions* of public datasets (``ubfc_like``, ``pure_like``,
  ``mmpd_like``) plus the domain-randomised training world ``train_mix``
  (:mod:`protocols.synthetic.tiers`). See ``docs/synthetic_world.md``.
* ``SyntheticDataset(domain="lab" | "wild")`` (the default when no tier is given) — the legacy v2
  generator (:mod:`protocols.synthetic.legacy`), square low-resolution frames. Kept because the
  label-quality lab renders tiny 32–64 px records with it, ``perf`` writes test videos with it, and
  the ``synthetic_intra`` / ``synthetic_cross`` protocols use it until the default benchmark moves
  to the tiers. Its frames are unchanged from version 2.

>>> SyntheticDataset(domain="lab", n_subjects=1, duration_s=2, frame_size=32).key().startswith("synthetic-lab-")
True
"""

from __future__ import annotations

from typing import Any

from protocols.base import Loader, register_dataset
from protocols.synthetic.legacy import LegacyDataset

#: Version of what ``dataset=synthetic`` produces (part of every run's identity). 3: the v3 world
#: (tiers) joined the legacy lab/wild generator, whose own output (and cache key) is unchanged.
GENERATOR_VERSION = 3


@register_dataset("synthetic")
class SyntheticDataset(Loader):
    """``dataset=synthetic``: builds the v3 world for ``tier=...``, else the legacy ``domain`` generator.

    A factory: the returned object is a :class:`~protocols.synthetic.world.WorldDataset` or a
    :class:`~protocols.synthetic.legacy.LegacyDataset` (both loaders named ``synthetic``); all other
    arguments go to that class. Giving both ``tier`` and ``domain`` is an error.
    """

    version = GENERATOR_VERSION

    def __new__(cls, *args: Any, tier: str | None = None, domain: str | None = None, **kwargs: Any) -> Any:  # type: ignore[misc]
        if tier is not None and domain is not None:
            raise ValueError(f"synthetic: give either tier= (v3 world) or domain= (legacy lab/wild), not both (got {tier!r}, {domain!r})")
        if tier is None:
            return LegacyDataset(domain or "lab", *args, **kwargs)
        from protocols.synthetic.world import WorldDataset

        return WorldDataset(tier, *args, **kwargs)


__all__ = ["GENERATOR_VERSION", "LegacyDataset", "SyntheticDataset"]
