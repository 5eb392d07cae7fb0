"""MLflow tracking: one run per (method × protocol × seed × config), identified by a config hash.

Default tracking URI ``sqlite:///results/mlflow.db`` with artifacts under ``results/mlartifacts``;
``tracking.uri`` (or ``MLFLOW_TRACKING_URI``) points elsewhere, e.g. a shared server on a cluster.
The resolved config is logged as flattened params plus ``config.yaml``; metrics use the stable
names of DESIGN.md (``test/mae_bpm``, ``eff/params``, ...); the run carries the tags
``config_hash``, ``method``, ``protocol``, ``seed`` that the leaderboard and the skip logic read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_URI = "sqlite:///results/mlflow.db"
DEFAULT_ARTIFACTS = "results/mlartifacts"


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} → {'a.b': 1}; lists become JSON strings.

    >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": None})
    {'a.b': 1, 'a.c': '[1, 2]', 'd': 'None'}
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(list(v))
        elif v is None:
            out[key] = "None"
        else:
            out[key] = v
    return out


def config_hash(cfg: Mapping[str, Any]) -> str:
    """Stable short hash of a (plain) config mapping."""
    blob = json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _quiet() -> None:
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def setup(uri: str | None = None, experiment: str = "rppg-bench", artifacts: str | None = None) -> str:
    """Point MLflow at ``uri`` and make sure ``experiment`` exists; returns the experiment id."""
    _quiet()
    import mlflow

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    mlflow.set_tracking_uri(uri)
    with _store_lock(uri):
        # The first access builds the store; on a new SQLite file that creates and migrates the schema,
        # which two processes must not do at once ("table experiments already exists", "duplicate
        # column name"): one process does it under the lock, the others then find it done.
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            art = artifacts or DEFAULT_ARTIFACTS
            location = Path(art).resolve().as_uri() if "://" not in art else art
            exp_id = mlflow.create_experiment(experiment, artifact_location=f"{location}/{experiment}")
        else:
            exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _store_lock(uri: str) -> Any:
    """A file lock beside a local store (SQLite file or ``file:`` folder); a no-op for a server URI,
    which serialises its own writes. ``filelock`` rather than hand-written ``fcntl``: it is portable,
    re-entrant and releases the lock when the process dies (the OS drops the ``flock``)."""
    from contextlib import nullcontext

    from filelock import FileLock

    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(db) + ".lock")
    if uri.startswith("file:") or "://" not in uri:
        folder = Path(uri.removeprefix("file://").removeprefix("file:"))
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(folder / ".rppg-bench.lock"))
    return nullcontext()


def find_finished(exp_id: str, chash: str) -> Any | None:
    """The newest FINISHED run with this config hash, or None."""
    import mlflow

    runs = mlflow.search_runs(
        experiment_ids=[exp_id],
        filter_string=f"tags.config_hash = '{chash}' and attributes.status = 'FINISHED'",
        output_format="list",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


@contextmanager
def start_run(name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> Iterator[Any]:
    import mlflow

    with mlflow.start_run(run_name=name, tags=dict(tags)) as run:
        items = list(flatten(params).items())
        for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            mlflow.log_params({k: str(v)[:6000] for k, v in items[i : i + 100]})
        yield run


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    import math

    import mlflow

    clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_text(text: str, name: str) -> None:
    import mlflow

    mlflow.log_text(text, name)


def log_dataframe(df: Any, name: str) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        df.to_csv(path, index=False)
        mlflow.log_artifact(str(path))


def log_figure(fig: Any, name: str) -> None:
    import mlflow

    mlflow.log_figure(fig, name)
