"""A real Spark standalone cluster on 127.0.0.1 for integration tests, and spark-submit.

The cluster is started with pyspark's own launcher, the way a deployment starts it (and the way
`docker/compose.spark.yml` does):

    $SPARK_HOME/bin/spark-class org.apache.spark.deploy.master.Master \\
        --host 127.0.0.1 --port PORT --webui-port UI_PORT
    $SPARK_HOME/bin/spark-class org.apache.spark.deploy.worker.Worker spark://127.0.0.1:PORT \\
        --host 127.0.0.1 --cores 1 --memory 1g --webui-port W_UI_PORT --work-dir DIR

where SPARK_HOME is the pip-installed pyspark package. Layout under the `tmp_path` given to
`standalone_cluster`: `logs/master.log`, `logs/worker-N.log`, and `worker-N/` (each worker's
work directory: one `app-*/EXECUTOR_ID/` folder with `stdout`/`stderr` per executor it ran).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent
REPO = Path(__file__).resolve().parents[1]
SCORE_TABLE = REPO / "spark_jobs" / "score_table.py"
HOST = "127.0.0.1"

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"

#: What every application gets: one core and 1 GiB per executor, a 1 GiB driver, no driver UI.
#: The same options as the `submit` service of docker/compose.spark.yml. The driver binds to and
#: advertises SPARK_LOCAL_IP (127.0.0.1 here; in compose, the container's address).
SUBMIT_OPTIONS = [
    "--driver-memory", "1g",
    "--executor-memory", "1g",
    "--conf", "spark.executor.cores=1",
    "--conf", "spark.ui.enabled=false",
]  # fmt: skip


class ClusterError(RuntimeError):
    """The standalone cluster did not come up."""


def spark_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the master, the workers (and so the executors) and spark-submit."""
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP=HOST,
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    # A pyspark session in this process must not leak its launcher arguments to the children.
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("PYSPARK_GATEWAY_SECRET", None)
    # Spark 4's master also opens a REST submission server on a fixed port (6066): not needed.
    env.setdefault("SPARK_MASTER_OPTS", "-Dspark.master.rest.enabled=false")
    if extra:
        env.update(extra)
    return env


def master_command(port: int, webui_port: int) -> list[str]:
    return [
        str(SPARK_HOME / "bin" / "spark-class"),
        MASTER_CLASS,
        "--host", HOST,
        "--port", str(port),
        "--webui-port", str(webui_port),
    ]  # fmt: skip


def worker_command(
    master_url: str, cores: int, memory: str, webui_port: int, work_dir: Path
) -> list[str]:
    return [
        str(SPARK_HOME / "bin" / "spark-class"),
        WORKER_CLASS,
        master_url,
        "--host", HOST,
        "--cores", str(cores),
        "--memory", memory,
        "--webui-port", str(webui_port),
        "--work-dir", str(work_dir),
    ]  # fmt: skip


def submit_command(master: str, args: Sequence[str], app: Path = SCORE_TABLE) -> list[str]:
    """`spark-submit --master URL <SUBMIT_OPTIONS> app args...`."""
    return [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master", master,
        *SUBMIT_OPTIONS,
        str(app),
        *args,
    ]  # fmt: skip


def spark_submit(
    master: str,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    app: Path = SCORE_TABLE,
    timeout: float = 600.0,
) -> subprocess.CompletedProcess[str]:
    """Run `app` (score_table.py by default) on `master`; output captured, never raises on exit.

    `env` is added to `spark_env()`. On `timeout` the whole process group (the spark-submit JVM
    and the Python driver it starts) is killed and subprocess.TimeoutExpired raised.
    """
    cmd = submit_command(master, args, app)
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=spark_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        _stop_group(proc, grace=5.0)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@contextlib.contextmanager
def standalone_cluster(
    tmp_path: Path,
    *,
    workers: int = 2,
    cores_per_worker: int = 1,
    memory: str = "1g",
    timeout: float = 120.0,
) -> Iterator[str]:
    """Start a master and `workers` workers on 127.0.0.1; yield the master URL (spark://...).

    Waits until the master's web UI reports every worker ALIVE (ClusterError with the log tails
    after `timeout` seconds, or as soon as a process exits). Every process started here, with
    the executors and Python workers below it, is stopped on exit, whatever happened.
    """
    tmp_path = Path(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = spark_env()
    port, master_ui, *worker_uis = _free_ports(2 + workers)
    started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(name: str, cmd: list[str]) -> None:
        log = logs / f"{name}.log"
        with open(log, "wb") as out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                cmd,
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: executors die with it
            )
        started.append((name, proc, log))

    try:
        deadline = time.monotonic() + timeout
        start("master", master_command(port, master_ui))
        # Workers retry registration only every 5-15 s (then every minute): start them once
        # the master answers, with the URL it reports (the port it really bound).
        state = _wait_for(
            f"http://{HOST}:{master_ui}/json/",
            lambda s: s.get("status") == "ALIVE",
            "the master to come up",
            deadline,
            started,
        )
        url = str(state.get("url") or f"spark://{HOST}:{port}")
        for i, ui in enumerate(worker_uis):
            work_dir = tmp_path / f"worker-{i}"
            work_dir.mkdir(exist_ok=True)
            start(f"worker-{i}", worker_command(url, cores_per_worker, memory, ui, work_dir))
        _wait_for(
            f"http://{HOST}:{master_ui}/json/",
            lambda s: _alive_workers(s) >= workers,
            f"{workers} workers to be ALIVE",
            deadline,
            started,
        )
        yield url
    finally:
        _stop_all([proc for _, proc, _ in started])


# -- startup ---------------------------------------------------------------------------------
def _free_ports(n: int) -> list[int]:
    """n distinct ports free now (held open together so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        socks = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]


def _alive_workers(state: dict) -> int:
    return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


def _wait_for(url, ready, what, deadline, started) -> dict:
    state: dict = {}
    last_error = "no answer yet"
    while True:
        for name, proc, _ in started:
            if proc.poll() is not None:
                raise ClusterError(
                    f"Spark {name} exited with code {proc.returncode} while waiting for {what}"
                    + _log_tails(started)
                )
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                state = json.load(response)
            if ready(state):
                return state
            last_error = f"last state: {_summary(state)}"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = f"{url}: {exc}"
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what} ({last_error})" + _log_tails(started))
        time.sleep(0.5)


def _summary(state: dict) -> str:
    workers = [f"{w.get('id')}={w.get('state')}" for w in state.get("workers", [])]
    return f"master {state.get('status')}, workers [{', '.join(workers)}]"


def _log_tails(started, lines: int = 40) -> str:
    parts = []
    for name, _, log in started:
        try:
            tail = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            tail = [f"(cannot read {log}: {exc})"]
        parts.append(f"\n--- {name}: last {lines} lines of {log} ---\n" + "\n".join(tail))
    return "".join(parts)


# -- shutdown --------------------------------------------------------------------------------
def _stop_all(procs: list[subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM each process group (workers first), wait, then SIGKILL whatever is left,
    including descendants that made their own group (pyspark's daemon calls setpgid)."""
    stray = {d for p in procs for d in _descendants(p.pid)}
    for proc in reversed(procs):
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in reversed(procs):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    for pid, started_at in stray:
        if _start_time(pid) == started_at:  # the same process, not a reused pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    # start_new_session made each child the leader of a group whose id is its pid; the group
    # outlives its leader while executors or other children are in it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def _stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (Linux), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of every process below `root` (empty where /proc is absent)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat(entry)
                if fields and len(fields) > 1:
                    children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[tuple[int, str]] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        started_at = _start_time(pid)
        if started_at is not None:
            found.add((pid, started_at))
        todo.extend(children.get(pid, []))
    return found
