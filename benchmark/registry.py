"""Method registry: a decorator fills a name → class table, in the manner of timm's model registry.

Methods register themselves when their module is imported; :func:`discover` imports every module
of the ``methods`` and ``lq_rppg`` packages (and any extra module named in ``RPPG_BENCH_PLUGINS``,
comma-separated), so adding a method is one new file: no edit anywhere else.

Listing needs no import: :func:`method_index` reads the same files' source (``ast``) for each
``@register_method("name")`` class, its kind and docstring, so ``rppg-bench methods`` does not
import torch; :func:`get_method_class` then imports only the module that declares the method.

>>> from benchmark.registry import list_methods
>>> "pos" in list_methods()
True
>>> list_methods("c*")[:1]
['chrom']
>>> method_index()["physnet"].kind
'neural'
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import importlib
import importlib.util
import os
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

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
    if "checkpoint" in node:  # benchmark.shape_guard: not a method setting (settings.METHOD_META_KEYS), a guard switch
        node["allow_shape_change"] = False
    ConfigStore.instance().store(group="method", name=name, node=node)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return "???"
    return list(value) if isinstance(value, tuple) else value


def _plugins() -> list[str]:
    return [m.strip() for m in os.environ.get("RPPG_BENCH_PLUGINS", "").split(",") if m.strip()]


def discover() -> None:
    """Import every module of the method packages (once) so their decorators run."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for pkg_name in METHOD_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    for mod_name in _plugins():
        importlib.import_module(mod_name)


class MethodEntry(NamedTuple):
    """What the listing needs of a method, read from its module's source without importing it."""

    name: str
    kind: str  # 'unsupervised' | 'neural'
    doc: str  # first line of the class docstring
    module: str


_INDEX: dict[tuple[str, ...], dict[str, MethodEntry]] = {}
_BASE_KINDS = {"UnsupervisedMethod": "unsupervised", "NeuralMethod": "neural"}


def package_files(pkg_name: str, *, private: bool = False) -> list[tuple[str, Path | None]]:
    """(module name, source file) of a package's modules (its ``__init__`` first), without importing
    the package (its parents are); the file is None when there is no ``.py`` source."""
    spec = importlib.util.find_spec(pkg_name)
    if spec is None:
        return []
    if not spec.submodule_search_locations:  # a plain module
        return [(pkg_name, Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None)]
    out: list[tuple[str, Path | None]] = []
    if spec.origin and spec.origin.endswith("__init__.py"):
        out.append((pkg_name, Path(spec.origin)))
    for mod in sorted(pkgutil.iter_modules(spec.submodule_search_locations), key=lambda m: m.name):
        if private or not mod.name.startswith("_"):
            path = Path(mod.module_finder.path) / f"{mod.name}.py"  # type: ignore[union-attr]
            out.append((f"{pkg_name}.{mod.name}", path if path.is_file() else None))
    return out


def declared(files: list[tuple[str, Path | None]], decorator: str) -> tuple[list[tuple[str, str, ast.ClassDef]], dict[str, tuple[str, ast.ClassDef]], list[str]]:
    """Classes decorated ``@<decorator>("name")`` in these files' source, read with ``ast``, nothing
    imported: ``[(name, module, class node)]``, every class by simple name, and the modules that
    must be imported to know (no source, or a ``<decorator>(...)`` call that is not a literal class
    decorator)."""
    classes: dict[str, tuple[str, ast.ClassDef]] = {}
    registered: list[tuple[str, str, ast.ClassDef]] = []
    opaque: list[str] = []
    for mod_name, path in files:
        if path is None:
            opaque.append(mod_name)
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) == decorator]
        found = 0
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, (mod_name, node))
                name = _registered_name(node, decorator)
                if name is not None:
                    registered.append((name, mod_name, node))
                    found += 1
        if found != len(calls):
            opaque.append(mod_name)
    return registered, classes, opaque


def _module_files() -> list[tuple[str, Path | None]]:
    """(module name, source file) of every method module and plugin, without importing them."""
    out = [f for pkg_name in METHOD_PACKAGES for f in package_files(pkg_name) if f[0] != pkg_name]
    for mod_name in _plugins():
        spec = importlib.util.find_spec(mod_name)
        if spec is None:
            raise ModuleNotFoundError(f"RPPG_BENCH_PLUGINS names {mod_name!r}, which cannot be found", name=mod_name)
        origin = Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
        out.append((mod_name, origin))
    return out


def _literal_kind(cls: ast.ClassDef) -> str | None:
    for stmt in cls.body:
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else (stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "kind":
            value = stmt.value
            return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else "?"
    return None


def _registered_name(cls: ast.ClassDef, decorator: str = "register_method") -> str | None:
    for deco in cls.decorator_list:
        if isinstance(deco, ast.Call) and _call_name(deco) == decorator:
            if deco.args and isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str):
                return deco.args[0].value
    return None


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _scan() -> tuple[dict[str, MethodEntry], list[str]]:
    """Entries read from source, and the modules that must be imported to be listed (no source, a
    ``register_method`` call that is not a literal class decorator, or a kind the source does not
    tell). Reading the source (stdlib ``ast``) rather than keeping a hand-written name list next to
    the methods keeps "a method is one file" true; entry points would need a packaging edit per method.
    """
    registered, classes, opaque = declared(_module_files(), "register_method")

    def kind_of(node: ast.ClassDef, seen: frozenset[str] = frozenset()) -> str | None:
        literal = _literal_kind(node)
        if literal is not None:
            return literal
        for base in node.bases:
            bname = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
            if bname in _BASE_KINDS:
                return _BASE_KINDS[bname]
            if bname in classes and bname not in seen:
                k = kind_of(classes[bname][1], seen | {bname})
                if k is not None:
                    return k
        return None

    entries: dict[str, MethodEntry] = {}
    for name, mod_name, node in registered:
        kind = kind_of(node)
        if kind not in ("unsupervised", "neural"):
            opaque.append(mod_name)
            continue
        doc = (ast.get_docstring(node) or "").strip().splitlines()
        entries.setdefault(name, MethodEntry(name, kind, doc[0] if doc else "", mod_name))
    return entries, sorted(set(opaque))


def method_index() -> dict[str, MethodEntry]:
    """Every method by name (kind, first doc line, module) — without importing method modules,
    except the few whose source does not tell (see :func:`_scan`), and merged with methods
    registered in-process (e.g. by a test or a notebook)."""
    key = tuple(_plugins())
    if key not in _INDEX:
        entries, opaque = _scan()
        for mod_name in opaque:
            importlib.import_module(mod_name)
        _INDEX[key] = entries
    out = dict(_INDEX[key])
    for name, cls in _METHODS.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        out[name] = MethodEntry(name, getattr(cls, "kind", "?"), doc[0] if doc else "", cls.__module__)
    return out


def list_methods(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered method names matching a shell wildcard; ``kind`` is 'unsupervised' or 'neural'."""
    index = method_index()
    names = sorted(n for n in index if fnmatch.fnmatch(n, pattern))
    if kind is not None:
        names = [n for n in names if index[n].kind == kind]
    return names


def get_method_class(name: str) -> type:
    """The class registered as ``name``: imports only the module that declares it."""
    if name not in _METHODS:
        entry = method_index().get(name)
        if entry is not None:
            importlib.import_module(entry.module)
        if name not in _METHODS:
            discover()
    if name not in _METHODS:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(sorted(method_index()))}")
    return _METHODS[name]


def create_method(name: str, **cfg: Any) -> Any:
    """Instantiate a registered method with its config overrides (unknown keys are an error)."""
    cls = get_method_class(name)
    cfg = {k: v for k, v in cfg.items() if k != "name"}
    return cls(**cfg)
