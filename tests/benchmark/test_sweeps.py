"""Sweeps on several cores (issue 13): ``rppg-bench server`` receives runs from a joblib sweep and a
submitit sweep at once-per-config; a parallel sweep into a SQLite file is refused; one training per
training hash at a time; a training job killed mid-training continues where it stopped.

Real processes on tiny data, as a user runs them: hydra's launchers pickle the job into other
processes, which only a real ``rppg-bench run`` shows.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="the `cluster` extra (make setup installs it)")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the `cluster` extra (make setup installs it)")

import mlflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ["protocol=synthetic_intra", "protocol.datasets.lab.n_subjects=6", "protocol.datasets.lab.duration_s=12",
        "+protocol.datasets.lab.frame_size=32", "progress=false", "eval.n_boot=100"]


def _env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RPPG_BENCH_HYDRA_DIR": str(cwd / "outputs")}


def _cli(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=_env(cwd), capture_output=True,
                          text=True, timeout=timeout)


def test_plan_reads_the_launcher_and_the_store_from_the_command_line(monkeypatch):
    from benchmark.sweeps import plan

    monkeypatch.delenv("RPPG_BENCH_JOBS", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    p = plan(["-m", "method=pos,chrom", "seed=0,1,2", "hydra/launcher=slurm", "tracking.uri=http://h:5000"])
    assert (p.multirun, p.runs, p.launcher, p.at_once, p.uri) == (True, 6, "slurm", 64, "http://h:5000") and p.parallel
    p = plan(["-m", "method=pos,chrom", "hydra/launcher=local", "trainer.threads=2"])
    assert p.at_once == max(1, (os.cpu_count() or 1) // 2) and p.uri == "sqlite:///results/mlflow.db"
    monkeypatch.setenv("RPPG_BENCH_JOBS", "3")
    assert plan(["-m", "method=pos,chrom", "hydra/launcher=local"]).at_once == 3
    assert not plan(["-m", "method=pos,chrom"]).parallel  # hydra's basic launcher: one run after the other
    assert not plan(["-m", "method=pos", "hydra/launcher=slurm_local"]).parallel  # one run
    assert plan(["-m", "method=pos", "seed=0,1", "hydra/launcher=slurm_local"]).parallel
    assert not plan(["method=pos", "hydra/launcher=local"]).multirun


def test_an_interrupted_run_ends_killed_and_the_next_start_of_its_config_continues_it(tmp_path, monkeypatch):
    """Ctrl-C, or submitit requeueing a preempted job (SystemExit): KILLED, not FAILED, and continued."""
    from benchmark import tracking

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracking.setup(uri, "interrupted", str(tmp_path / "art"))
    with pytest.raises(SystemExit), tracking.start_run("r", {"config_hash": "abc"}, {"a": 1}):
        raise SystemExit(144)  # what submitit's requeue raises in the job
    (run,) = _runs(uri, "interrupted")
    assert run.info.status == "KILLED" and run.data.tags["rppg.interrupted"] == "true"
    with tracking.start_run("r", {"config_hash": "abc"}, {"a": 1}) as again:
        assert again.info.run_id == run.info.run_id
    (run,) = _runs(uri, "interrupted")
    assert run.info.status == "FINISHED" and run.data.tags["rppg.restarts"] == "1"
    assert run.data.tags["rppg.interrupted"] == "continued"


def test_a_running_run_of_an_earlier_attempt_of_this_slurm_job_counts_as_gone(monkeypatch):
    from benchmark.tracking import process_gone

    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    fresh = {"rppg.host": "node-7", "rppg.pid": "99", "rppg.heartbeat": str(time.time())}
    assert process_gone({**fresh, "rppg.slurm_job": "4242"})  # requeued: the earlier attempt ended
    assert not process_gone({**fresh, "rppg.slurm_job": "4243"})  # another job, beating recently: alive


@pytest.mark.parametrize("arg, says", [("prot=5000", "unknown argument 'prot=5000'; valid: port="),
                                       ("port=99999", "port must be a number from 1 to 65535"),
                                       ("backend=results/mlflow.db", "backend must be a database URI")])
def test_server_names_a_bad_argument_in_one_line(arg, says, capsys):
    from benchmark.cli import main

    assert main(["server", arg]) == 1
    assert says in capsys.readouterr().err.splitlines()[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``rppg-bench server`` on 127.0.0.1 and a free port, on a SQLite store of its own."""
    d = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = open(d / "server.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "server", f"port={port}",
                             f"backend=sqlite:///{d}/mlflow.db", f"artifacts={d}/art"], cwd=d, env=_env(d),
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the server did not start: {(d / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url, d
    proc.send_signal(signal.SIGTERM)  # cmd_server stops mlflow's process group too
    proc.wait(timeout=30)
    log.close()
    with pytest.raises(OSError):  # nothing left listening
        urllib.request.urlopen(f"{url}/health", timeout=2)


def _runs(url: str, experiment: str = "rppg-bench") -> list:
    client = mlflow.MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_joblib_and_submitit_sweeps_log_one_finished_run_per_config_to_the_server(server, tmp_path):
    url, sdir = server
    store = [f"tracking.uri={url}", f"cache_dir={tmp_path}/cache", f"runs_dir={tmp_path}/runs"]
    p = _cli(["run", "-m", "method=pos,chrom", "seed=0,1", "hydra/launcher=local", "hydra.launcher.n_jobs=2", *TINY, *store],
             tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("[done]") == 4, p.stdout[-3000:]
    assert "n_jobs=2" in p.stdout + p.stderr  # hydra's joblib launcher said it ran two at a time
    q = _cli(["run", "-m", "method=green", "seed=0,1", "hydra/launcher=slurm_local", *TINY, *store], tmp_path)
    assert q.returncode == 0, q.stderr[-3000:]
    job_logs = "".join(f.read_text() for f in (tmp_path / "outputs").rglob(".submitit/*/*_log.*"))
    assert job_logs.count("[done] green/synthetic_intra/seed") == 2  # each in its own submitit job

    runs = _runs(url)
    finished = Counter(r.data.tags["config_hash"] for r in runs if r.info.status == "FINISHED")
    assert len(finished) == 6 and set(finished.values()) == {1}, finished
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {(r.data.tags["method"], r.data.tags["seed"]) for r in runs} == {(m, s) for m in ("pos", "chrom", "green")
                                                                           for s in ("0", "1")}
    logs = p.stdout + p.stderr + q.stdout + q.stderr + job_logs + (sdir / "server.log").read_text()
    assert "database is locked" not in logs
    # artifacts went through the server (proxied) to its artifact folder, and read back through it
    run = next(r for r in runs if r.data.tags["method"] == "pos")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    got = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="predictions.csv",
                                                   tracking_uri=url, dst_path=str(tmp_path / "dl")))
    assert got.read_text().startswith("record,window") and list((sdir / "art").rglob("predictions.csv"))


def test_a_parallel_sweep_into_a_sqlite_store_is_refused(tmp_path):
    db = tmp_path / "mlflow.db"
    p = _cli(["run", "-m", "method=pos,chrom", "hydra/launcher=local", "hydra.launcher.n_jobs=2", *TINY,
              f"tracking.uri=sqlite:///{db}", f"cache_dir={tmp_path}/cache"], tmp_path)
    assert p.returncode == 1
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: a parallel sweep") and "rppg-bench server" in err[0], p.stderr
    assert "database is locked" in err[0] and f"sqlite:///{db}" in err[0]
    assert not db.exists() and not (tmp_path / "cache").exists()  # refused before anything started
    assert not (tmp_path / "outputs").exists()  # hydra launched nothing (one job at a time: test_plan_...)


NEURAL = ["method=deepphys", "trainer.epochs=3", "trainer.max_batches_per_epoch=3"]


def test_two_processes_with_one_training_hash_train_once(tmp_path):
    """Two runs with the same training hash at once (here the same config into two stores): one trains,
    the other waits for the lock on ``runs_dir/train-<hash>.lock`` and then loads the finished training.
    The first is paused (SIGSTOP) while it holds the lock, so the second surely finds it held."""
    def start(i: int) -> tuple[subprocess.Popen, Path]:
        args = ["run", *NEURAL, *TINY, f"tracking.uri=sqlite:///{tmp_path}/store{i}.db", f"tracking.artifacts={tmp_path}/art{i}",
                f"cache_dir={tmp_path}/cache", f"runs_dir={tmp_path}/runs"]
        log = tmp_path / f"out{i}.log"
        with open(log, "w") as f:
            return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], cwd=tmp_path, env=_env(tmp_path),
                                    stdout=f, stderr=subprocess.STDOUT), log

    def wait_for(what, proc: subprocess.Popen, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while not what():
            assert proc.poll() is None and time.time() < deadline, f"gave up waiting: {proc.args}"
            time.sleep(0.05)

    first, log0 = start(0)
    wait_for(lambda: list((tmp_path / "runs").glob("train-*.lock")), first)  # it holds the lock: it made the file
    first.send_signal(signal.SIGSTOP)
    try:
        second, log1 = start(1)
        wait_for(lambda: "[wait] train-" in log1.read_text(), second)
    finally:
        first.send_signal(signal.SIGCONT)
    assert [p.wait(timeout=300) for p in (first, second)] == [0, 0], log0.read_text()[-2000:] + log1.read_text()[-2000:]
    resumed = []
    for i in range(2):
        (run,) = _runs(f"sqlite:///{tmp_path}/store{i}.db")
        assert run.info.status == "FINISHED"
        info = json.loads(Path(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="training.json", dst_path=str(tmp_path / f"dl{i}"),
            tracking_uri=f"sqlite:///{tmp_path}/store{i}.db")).read_text())
        resumed.append(info["resumed_from"])
    assert resumed[0] is None and resumed[1] is not None  # the first trained from scratch, the second loaded its result
    assert len([p for p in (tmp_path / "runs").iterdir() if p.is_dir()]) == 1


def test_a_killed_submitit_training_job_continues_when_resubmitted(server, tmp_path):
    """SIGKILL the submitit job after its first epoch: its MLflow run is left RUNNING (nothing runs in a
    killed process); the same sweep resubmitted continues the training from that epoch and that MLflow
    run, which ends FINISHED with the metrics of an uninterrupted run."""
    import psutil
    import torch

    url, _ = server
    exp = ["tracking.experiment=preempt", f"tracking.uri={url}", f"cache_dir={tmp_path}/cache"]
    sweep = ["run", "-m", *NEURAL, "seed=0", "hydra/launcher=slurm_local", *TINY, *exp, f"runs_dir={tmp_path}/runs"]
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *sweep], cwd=tmp_path, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while not list((tmp_path / "runs").glob("train-*/last.pt")):
        assert proc.poll() is None and time.time() < deadline, "no epoch ended"
        time.sleep(0.1)
    jobs = [c for c in psutil.Process(proc.pid).children(recursive=True) if "submitit.core._submit" in " ".join(c.cmdline())]
    assert len(jobs) == 1
    jobs[0].send_signal(signal.SIGKILL)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1 and "error:" in out, out[-3000:]
    last = torch.load(next((tmp_path / "runs").glob("train-*/last.pt")), map_location="cpu", weights_only=False)
    assert last["phase_index"] == 0 and last["epoch"] < 2  # killed mid-training, not after it
    (killed,) = _runs(url, "preempt")
    assert killed.info.status == "RUNNING"

    q = _cli(sweep, tmp_path)
    assert q.returncode == 0, q.stdout[-3000:] + q.stderr[-3000:]
    (run,) = _runs(url, "preempt")  # the same MLflow run, continued
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["rppg.restarts"] == "1"
    info = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="training.json",
                                                               tracking_uri=url, dst_path=str(tmp_path / "dl"))).read_text())
    assert info["resumed_from"] == ["main", last["epoch"]]

    # the same config without interruption (another checkpoint folder and experiment): the same results
    r = _cli(["run", *NEURAL, "seed=0", *TINY, "tracking.experiment=uninterrupted", f"tracking.uri={url}",
              f"cache_dir={tmp_path}/cache", f"runs_dir={tmp_path}/runs_ref"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (ref,) = _runs(url, "uninterrupted")
    test_metrics = {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}
    assert test_metrics and test_metrics == {k: v for k, v in ref.data.metrics.items() if k.startswith("test/")}
