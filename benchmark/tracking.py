"""MLflow tracking: one run per (method × protocol × seed × config), identified by a config hash.

Default tracking URI ``sqlite:///results/mlflow.db`` with artifacts under ``results/mlartifacts``;
``tracking.uri`` (or ``MLFLOW_TRACKING_URI``) points elsewhere, e.g. a shared server on a cluster.
The resolved config is logged as flattened params plus ``config.yaml``; metrics use the stable
names of DESIGN.md (``test/mae_bpm``, ``eff/params``, ...); the run carries the tags
``config_hash``, ``method``, ``protocol``, ``seed`` that the leaderboard and the skip logic read.

One run per config: each run records the process that runs it (tags ``rppg.host``, ``rppg.pid``,
``rppg.pid_started``) and a heartbeat (``rppg.heartbeat``, refreshed as metrics are logged). A run
of a config that finds an earlier RUNNING run of the same config hash whose process is gone (killed,
out of memory, node lost) continues *that* run — as the trainer continues its checkpoint — and
marks older leftovers KILLED, so a killed run does not stay RUNNING forever nor finish as a second
run. A process on this host is checked directly (pid and start time, so a reused pid does not
count); one on another host cannot be, so its run counts as gone when its heartbeat is older than
``RPPG_BENCH_STALE_HOURS`` (default 12) — or at once when it carries this process's own SLURM job id
(``rppg.slurm_job``: a requeued job keeps its id, so that run was an earlier attempt of this job).
A run stopped by Ctrl-C or by a submitit requeue (preemption, time-out) ends KILLED with the tag
``rppg.interrupted=true``, and the next start of its config continues it too. A SIGKILLed run stays
RUNNING until then: nothing runs in a killed process to mark it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_URI = "sqlite:///results/mlflow.db"
DEFAULT_ARTIFACTS = "results/mlartifacts"
#: A RUNNING run whose process is on another host counts as gone after this long without a heartbeat.
STALE_HOURS = 12.0
HEARTBEAT_S = 60.0  # the heartbeat tag is written at most this often

_state: dict[str, Any] = {"uri": None, "experiment_id": None, "heartbeat": 0.0}


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
        if uri.startswith(("http://", "https://")) and "://" not in (artifacts or ""):
            # a tracking server stores the artifacts itself (`rppg-bench server`: --serve-artifacts): a local
            # path here would make every client write to its own disk instead of uploading to the server
            exp_id = experiment_under(experiment, None)
        else:
            exp_id = experiment_under(experiment, artifacts or DEFAULT_ARTIFACTS)
    mlflow.set_experiment(experiment_id=exp_id)
    _state.update(uri=uri, experiment_id=exp_id)
    return exp_id


def artifacts_root(experiment: str) -> str:
    """The artifact root (URI) under which ``experiment``'s folder lies; the default root if it does not exist."""
    import mlflow

    exp = mlflow.get_experiment_by_name(experiment)
    return exp.artifact_location.rsplit("/", 1)[0] if exp is not None else Path(DEFAULT_ARTIFACTS).resolve().as_uri()


def experiment_under(experiment: str, artifacts: str | None) -> str:
    """Id of ``experiment``, created with its artifacts in ``<artifacts>/<experiment>`` if new (without a
    location MLflow would use ./mlruns of the working folder). An existing experiment elsewhere (made by an
    older version; MLflow cannot move it) is kept, and a note says where its artifacts go. ``artifacts=None``
    (a tracking server): the server's artifact root."""
    import mlflow

    if artifacts is None:
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is not None:
            return exp.experiment_id
        try:
            return mlflow.create_experiment(experiment)
        except mlflow.exceptions.MlflowException:  # created meanwhile by another process of the sweep
            exp = mlflow.get_experiment_by_name(experiment)
            if exp is None:
                raise
            return exp.experiment_id
    root = Path(artifacts).resolve().as_uri() if "://" not in artifacts else artifacts.rstrip("/")
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return mlflow.create_experiment(experiment, artifact_location=f"{root}/{experiment}")
    if exp.artifact_location != f"{root}/{experiment}":
        print(f"note: the MLflow artifacts of experiment {experiment!r} go to {exp.artifact_location} (it was created there "
              f"before); rename that experiment to have the next one created under {root}/")
    return exp.experiment_id


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


def slurm_job() -> str | None:
    """This process's SLURM job (``<array job>_<task>`` in a job array), None outside SLURM. A job requeued
    after preemption or a time-out keeps its id, so a RUNNING run tagged with our own job id belongs to
    an earlier, ended attempt of this job even when it ran on another node.

    >>> slurm_job() if "SLURM_JOB_ID" not in os.environ else None
    """
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


def _process_tags() -> dict[str, str]:
    import psutil

    me = psutil.Process()
    tags = {"rppg.host": socket.gethostname(), "rppg.pid": str(me.pid), "rppg.pid_started": f"{me.create_time():.3f}",
            "rppg.heartbeat": f"{time.time():.0f}"}
    job = slurm_job()
    if job:
        tags["rppg.slurm_job"] = job
    return tags


def process_gone(tags: Mapping[str, str], start_time_ms: int | None = None, now: float | None = None) -> bool:
    """Whether the process that ran a RUNNING run has ended (see the module docstring for the rule).

    >>> process_gone({"rppg.host": socket.gethostname(), "rppg.pid": str(os.getpid()), "rppg.pid_started": "0"})
    True
    >>> process_gone({"rppg.host": "elsewhere", "rppg.heartbeat": str(time.time() - 60)})
    False
    """
    import psutil

    now = time.time() if now is None else now
    pid = tags.get("rppg.pid", "")
    job = slurm_job()
    if job and tags.get("rppg.slurm_job") == job and not (tags.get("rppg.host") == socket.gethostname() and pid == str(os.getpid())):
        return True  # an earlier attempt of this SLURM job (requeued): it has ended wherever it ran
    if tags.get("rppg.host") == socket.gethostname() and pid.isdigit():
        try:
            started = psutil.Process(int(pid)).create_time()
        except psutil.Error:  # no such process (or not ours to see: then it is not the one we started)
            return True
        return abs(started - float(tags.get("rppg.pid_started") or 0)) > 1.0  # pid reused by another process
    beat = tags.get("rppg.heartbeat")
    last = float(beat) if beat else (start_time_ms or 0) / 1000
    stale_h = float(os.environ.get("RPPG_BENCH_STALE_HOURS", STALE_HOURS))
    return now - last > stale_h * 3600


def _claim_interrupted(chash: str) -> str | None:
    """The newest RUNNING run of this config whose process is gone, now claimed by this process
    (to be continued); older gone ones are marked KILLED. None if there is none."""
    import mlflow

    exp_id = _state["experiment_id"]
    if exp_id is None or not chash:
        return None
    client = mlflow.MlflowClient()
    runs = client.search_runs([exp_id], filter_string=f"tags.config_hash = '{chash}' and attributes.status = 'RUNNING'",
                              order_by=["attributes.start_time DESC"])
    gone = [r for r in runs if process_gone(r.data.tags, r.info.start_time)]
    if len(gone) < len(runs):
        print(f"[warn] config {chash} is being run by another live process too (MLflow run "
              f"{next(r.info.run_id for r in runs if r not in gone)}); this one starts its own run")
    # runs stopped by Ctrl-C, or by submitit's requeue on preemption/time-out (see start_run): continued too
    stopped = client.search_runs([exp_id], filter_string=f"tags.config_hash = '{chash}' and attributes.status = 'KILLED' "
                                 "and tags.`rppg.interrupted` = 'true'", order_by=["attributes.start_time DESC"])
    gone = sorted([*gone, *stopped], key=lambda r: -r.info.start_time)
    if not gone:
        return None
    keep, older = gone[0], gone[1:]
    for r in older:
        client.set_tag(r.info.run_id, "rppg.superseded_by", keep.info.run_id)
        if r.data.tags.get("rppg.interrupted") == "true":
            client.set_tag(r.info.run_id, "rppg.interrupted", "superseded")  # never continued again
        if r.info.status != "KILLED":
            client.set_terminated(r.info.run_id, "KILLED")
    t = keep.data.tags
    if t.get("rppg.interrupted"):
        client.set_tag(keep.info.run_id, "rppg.interrupted", "continued")
    client.set_tag(keep.info.run_id, "rppg.restarts", str(int(t.get("rppg.restarts", "0")) + 1))
    client.set_tag(keep.info.run_id, "rppg.interrupted_process", f"{t.get('rppg.host', '?')}:{t.get('rppg.pid', '?')}")
    for k, v in _process_tags().items():  # claimed: a concurrent starter now sees a live process
        client.set_tag(keep.info.run_id, k, v)
    return keep.info.run_id


@contextmanager
def start_run(name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> Iterator[Any]:
    """An MLflow run for this config: a new one, or the interrupted run of the same config hash
    (``tags["config_hash"]``) continued — see the module docstring."""
    import mlflow

    with _store_lock(_state["uri"] or mlflow.get_tracking_uri()):
        resume_id = _claim_interrupted(str(tags.get("config_hash", "")))
        if resume_id is not None:
            print(f"[resume] continuing MLflow run {resume_id} of this config: it was interrupted (its process is gone)")
            active = mlflow.start_run(run_id=resume_id, tags={**tags, **_process_tags()})
        else:
            active = mlflow.start_run(run_name=name, tags={**tags, **_process_tags()})
    _state["heartbeat"] = time.time()
    with active as run:
        items = list(flatten(params).items())
        for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            mlflow.log_params({k: str(v)[:6000] for k, v in items[i : i + 100]})
        try:
            yield run
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C, or submitit requeueing a preempted/timed-out job (it exits with SystemExit): not a
            # failure of the run. KILLED and tagged, so the next start of this config continues it.
            mlflow.set_tag("rppg.interrupted", "true")
            mlflow.end_run("KILLED")
            raise


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    import math

    import mlflow

    clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
    if clean:
        mlflow.log_metrics(clean, step=step)
    if mlflow.active_run() is not None and time.time() - _state["heartbeat"] > HEARTBEAT_S:
        _state["heartbeat"] = time.time()
        mlflow.set_tag("rppg.heartbeat", f"{_state['heartbeat']:.0f}")


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
