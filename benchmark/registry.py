"""Method registry: a decorator fills a name → class table, in the manner of timm's model registry.

Methods register themselves when their module is imported; :func:`discover` imports every module
of the ``methods`` and ``lq_rppg`` packages (and any extra module named in ``RPPG_BENCH_PLUGINS``,
comma-separated), so adding a method is one new file: no edit anywhere else.

>>> from benchmark.registry import list_methods
>>> "pos" in list_methods()
True
>>> list_methods("c*")[:1]
['chrom']
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import os
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_METHODS: dict[str, type] = {}
_DISCOVERED = False

#: Packages whose modules are imported to find methods.
METHOD_PACKAGES = ("methods", "lq_rppg")


def register_method(name: str) -> Callable[[T], T]:
    """Class decorator registering a method under ``name`` (lower case, used as ``method=<name>``).

    If the class has a ``Config`` dataclass, it is also stored in hydra's ConfigStore under the
    ``method`` group, so ``method=<name>`` works without a YAML file.
    """

    def deco(cls: T) -> T:
        if name in _METHODS and _METHODS[name] is not cls:
            prev = _METHODS[name]
            if f"{prev.__module__}.{prev.__qualname__}" != f"{cls.__module__}.{cls.__qualname__}":
                raise ValueError(f"method {name!r} is already registered by {prev.__module__}")
        cls.name = name  # type: ignore[attr-defined]
        _METHODS[name] = cls  # type: ignore[assignment]
        _store_config(name, cls)
        return cls

    return deco


def _store_config(name: str, cls: Any) -> None:
    cfg_cls = getattr(cls, "Config", None)
    if cfg_cls is None or not dataclasses.is_dataclass(cfg_cls):
        return
    try:
        from hydra.core.config_store import ConfigStore
    except ImportError:  # pragma: no cover - hydra is a hard dependency
        return
    node = {"name": name, **{f.name: _default(f) for f in dataclasses.fields(cfg_cls)}}
    ConfigStore.instance().store(group="method", name=name, node=node)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return "???"
    return list(value) if isinstance(value, tuple) else value


def discover() -> None:
    """Import every module of the method packages (once) so their decorators run."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    extra = [m for m in os.environ.get("RPPG_BENCH_PLUGINS", "").split(",") if m.strip()]
    for pkg_name in METHOD_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    for mod_name in extra:
        importlib.import_module(mod_name.strip())


def list_methods(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered method names matching a shell wildcard; ``kind`` is 'unsupervised' or 'neural'."""
    discover()
    names = sorted(n for n in _METHODS if fnmatch.fnmatch(n, pattern))
    if kind is not None:
        names = [n for n in names if getattr(_METHODS[n], "kind", None) == kind]
    return names


def get_method_class(name: str) -> type:
    discover()
    if name not in _METHODS:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def create_method(name: str, **cfg: Any) -> Any:
    """Instantiate a registered method with its config overrides (unknown keys are an error)."""
    cls = get_method_class(name)
    cfg = {k: v for k, v in cfg.items() if k != "name"}
    return cls(**cfg)
