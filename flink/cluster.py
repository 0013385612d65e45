"""The standalone Flink session cluster: its configuration, job submission and status (REST API).

The cluster is the Flink distribution the `apache-flink` wheel ships (.venv-flink/.../pyflink:
bin/jobmanager.sh, bin/taskmanager.sh, bin/flink, lib/*.jar): one JobManager and two TaskManagers,
started by astro/local/stack.sh. Standard library only: stack.sh runs this file with any Python,
tests and benchmarks import it to start clusters and jobs of their own.

    python flink/cluster.py conf STATE_DIR [--rest-port 8081 --rpc-port 6123 --slots 6]
        write STATE_DIR/conf (config.yaml: RocksDB state, checkpoints in STATE_DIR/checkpoints)
    python flink/cluster.py submit CONF_DIR JOB.py --name NAME [job arguments ...]
        submit a job (parallelism 2) unless a job of that name runs from the same code (else it is replaced)
    python flink/cluster.py status [REST_URL]
        the web UI URL and each job: state, uptime, restarts, last checkpoint
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLOTS = 6  # per TaskManager: the stack's three jobs take 6 of the 12 (parallelism 2 each), tests and benches the rest
FLINK_VENV = ROOT / ".venv-flink"
ACTIVE = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "RECONCILING"}
TOLERABLE_FAILED_CHECKPOINTS = 5  # consecutive failed checkpoints before the job restarts


class FlinkError(RuntimeError):
    """The cluster refused a request, or a job did not reach the state asked for in time."""


def flink_home() -> Path:
    """The Flink distribution inside the `apache-flink` wheel (GPUBROKER_FLINK_HOME overrides)."""
    if home := os.environ.get("GPUBROKER_FLINK_HOME"):
        return Path(home)
    found = sorted(FLINK_VENV.glob("lib/python3*/site-packages/pyflink"))
    if not found:
        raise FlinkError(f"no Flink distribution under {FLINK_VENV}: run `make up` (installs apache-flink)")
    return found[-1]


def configuration(state: Path, rest_port: int, rpc_port: int, slots: int) -> dict[str, str]:
    """The cluster's settings on top of the distribution's defaults (values are Flink's syntax)."""
    return {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.bind-host": "127.0.0.1",
        "jobmanager.rpc.port": str(rpc_port),
        "jobmanager.memory.process.size": "1g",
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.numberOfTaskSlots": str(slots),
        "taskmanager.memory.process.size": "2g",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(rest_port),
        "parallelism.default": "2",
        "cluster.evenly-spread-out-slots": "true",  # a job's subtasks on both TaskManagers
        "process.working-dir": str(state / "work"),
        # the JDBC sink writes UTC wall-clock timestamps: the JVMs' zone must be UTC too
        "env.java.opts.jobmanager": "-Duser.timezone=UTC",
        "env.java.opts.taskmanager": "-Duser.timezone=UTC",
        "io.tmp.dirs": str(state / "tmp"),
        # state: RocksDB on local disk, incremental checkpoints every 10 s to a durable directory
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": "true",
        "execution.checkpointing.interval": "10s",
        "execution.checkpointing.min-pause": "2s",
        "execution.checkpointing.dir": (state / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (state / "savepoints").as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "execution.checkpointing.tolerable-failed-checkpoints": str(TOLERABLE_FAILED_CHECKPOINTS),
        # a failure restarts the job from its last checkpoint, backing off up to a minute
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.max-backoff": "1min",
        # a TaskManager that died is noticed in seconds, not the default 50
        "heartbeat.interval": "2000",
        "heartbeat.timeout": "15000",
    }


# The client logs the whole environment of the Python process it starts at INFO, and that holds
# GPUBROKER_DATABASE_URL with its password (the JDBC sink's): never at INFO.
QUIET_ENVIRONMENT = "logger.pyenv.name = org.apache.flink.client.python.PythonEnvUtils\nlogger.pyenv.level = WARN\n"


def write_conf(state: Path, rest_port: int = 8081, rpc_port: int = 6123, slots: int = SLOTS) -> Path:
    """STATE/conf: the distribution's config.yaml with ours applied by its own config tool, and a
    console-only log4j setup (the stack keeps each process's output in its log file)."""
    home, conf = flink_home(), state / "conf"
    for sub in ("conf", "checkpoints", "savepoints", "work", "tmp"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(home / "conf" / "config.yaml", conf / "config.yaml")
    settings = [arg for key, value in configuration(state, rest_port, rpc_port, slots).items() for arg in ("-D", f"{key}={value}")]
    subprocess.run(
        ["bash", str(home / "bin" / "config-parser-utils.sh"), str(conf), str(home / "bin"), str(home / "lib"), *settings, "-flatten"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (conf / "log4j-console.properties").write_text(
        "rootLogger.level = INFO\nrootLogger.appenderRef.console.ref = console\n"
        "appender.console.name = console\nappender.console.type = CONSOLE\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %c{1} - %m%n\n"
        "logger.kafka.name = org.apache.kafka\nlogger.kafka.level = WARN\n" + QUIET_ENVIRONMENT
    )
    for name in ("log4j-cli.properties", "log4j.properties"):
        (conf / name).write_text((home / "conf" / name).read_text() + QUIET_ENVIRONMENT)
    return conf


def process_command(role: str) -> list[str]:
    """The distribution's start script for `jobmanager` or `taskmanager`, in the foreground."""
    return ["bash", str(flink_home() / "bin" / f"{role}.sh"), "start-foreground"]


# --- REST API ---------------------------------------------------------------------------------


def rest_url(conf: Path) -> str:
    text = (conf / "config.yaml").read_text()
    port = re.search(r"^rest\.port:\s*'?(\d+)", text, re.M)
    return f"http://127.0.0.1:{port.group(1) if port else 8081}"


def get(rest: str, path: str, timeout: float = 5.0):
    with urllib.request.urlopen(f"{rest}{path}", timeout=timeout) as response:
        return json.load(response)


def up(rest: str) -> bool:
    try:
        return get(rest, "/overview", timeout=2)["taskmanagers"] >= 0
    except (OSError, ValueError):
        return False


def jobs(rest: str) -> list[dict]:
    """Every job the cluster knows, newest first: id, name, state, start-time, ..."""
    return sorted(get(rest, "/jobs/overview")["jobs"], key=lambda j: -j["start-time"])


def active_job(rest: str, name: str) -> str | None:
    """The id of the job of that name that is running (or starting, or recovering), if any."""
    return next((j["jid"] for j in jobs(rest) if j["name"] == name and j["state"] in ACTIVE), None)


def restarts(rest: str, job_id: str) -> int:
    """How often the job restarted since it was submitted (metric numRestarts)."""
    metrics = get(rest, f"/jobs/{job_id}/metrics?get=numRestarts")
    return int(float(metrics[0]["value"])) if metrics else 0


def checkpoints(rest: str, job_id: str) -> dict:
    """Checkpoint counts (completed, failed, ...) and the latest completed one."""
    stats = get(rest, f"/jobs/{job_id}/checkpoints")
    return {"counts": stats["counts"], "latest": (stats.get("latest") or {}).get("completed")}


def state(rest: str, job_id: str) -> str:
    return get(rest, f"/jobs/{job_id}")["state"]


def task_managers(rest: str, job_id: str) -> set[str]:
    """Ids of the TaskManagers that run at least one of the job's subtasks."""
    found = set()
    for vertex in get(rest, f"/jobs/{job_id}")["vertices"]:
        for tm in get(rest, f"/jobs/{job_id}/vertices/{vertex['id']}/taskmanagers")["taskmanagers"]:
            found.add(tm["taskmanager-id"])
    return found


def wait_until(check, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise FlinkError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_running(rest: str, job_id: str, timeout: float = 120) -> None:
    """Until every subtask of the job runs (a RUNNING job may still be deploying its tasks)."""

    def all_running() -> bool:
        job = get(rest, f"/jobs/{job_id}")
        if job["state"] in ("FAILED", "CANCELED", "FINISHED"):
            raise FlinkError(f"job {job_id} is {job['state']}")
        return job["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in job["vertices"])

    wait_until(all_running, timeout, f"job {job_id} to run")


def cancel(rest: str, job_id: str) -> None:
    request = urllib.request.Request(f"{rest}/jobs/{job_id}?mode=cancel", method="PATCH")
    urllib.request.urlopen(request, timeout=10).close()


# --- submission -------------------------------------------------------------------------------


def submit(conf: Path, job: Path, name: str, args: list[str] = (), parallelism: int = 2, env: dict | None = None) -> str:
    """Submit `job` (a PyFlink script in flink/) as `name` unless a job of that name is active and was
    submitted from the same code; returns the job id. An active job of older code (another `code_stamp`
    of its files) is cancelled and submitted anew: it resumes from its consumer group's committed
    offsets, and an offer with no state yet is compared with the event's own old_* values, so no change
    is lost. The job's Python runs once, in the client, to build the plan; `env` adds to its
    environment (settings such as GPUBROKER_DATABASE_URL)."""
    rest = rest_url(conf)
    stamp = conf.parent / "jobs" / f"{name}.code"
    if running := active_job(rest, name):
        if stamp.exists() and stamp.read_text() == code_stamp(job):
            return running
        cancel(rest, running)
        wait_until(lambda: active_job(rest, name) is None, 60, f"job {name} to cancel")
    python = FLINK_VENV / "bin" / "python"
    env = os.environ | (env or {}) | {"FLINK_CONF_DIR": str(conf)}
    command = [str(flink_home() / "bin" / "flink"), "run", "--detached", "-p", str(parallelism),
               "-py", str(job), "-pyfs", str(job.parent), "-pyclientexec", str(python), "-pyexec", str(python),
               "--name", name, "--parallelism", str(parallelism), *args]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    found = re.search(r"JobID ([0-9a-f]{32})", result.stdout + result.stderr) or re.search(
        r"submitted job ([0-9a-f]{32})", result.stdout
    )
    if result.returncode != 0 or not found:
        raise FlinkError(f"`flink run` of {job.name} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(code_stamp(job))
    return found.group(1)


def code_stamp(job: Path) -> str:
    """What a job was built from: its script, the shared module and the core settings it imports."""
    files = (job, job.parent / "common.py", ROOT / "include" / "gpubroker" / "settings.py")
    return hashlib.sha1(b"".join(f.read_bytes() for f in files)).hexdigest()


def status(rest: str) -> str:
    """Lines for `make status`: the web UI and each active job."""
    if not up(rest):
        return f"Flink web UI {rest} (down)"
    lines = [f"Flink web UI {rest}"]
    for job in jobs(rest):
        if job["state"] in ACTIVE:
            minutes = job["duration"] // 60000
            lines.append(f"  job {job['name']:<28} {job['state']:<10} {job['jid']} up {minutes} min, "
                         f"restarts {restarts(rest, job['jid'])}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    conf = commands.add_parser("conf")
    conf.add_argument("state", type=Path)
    conf.add_argument("--rest-port", type=int, default=8081)
    conf.add_argument("--rpc-port", type=int, default=6123)
    conf.add_argument("--slots", type=int, default=SLOTS)
    run = commands.add_parser("submit")
    run.add_argument("conf", type=Path)
    run.add_argument("job", type=Path)
    run.add_argument("--name", required=True)
    show = commands.add_parser("status")
    show.add_argument("rest", nargs="?", default="http://127.0.0.1:8081")
    args, job_args = parser.parse_known_args(argv)
    if args.command == "conf":
        print(write_conf(args.state, args.rest_port, args.rpc_port, args.slots))
    elif args.command == "submit":
        print(submit(args.conf, args.job.resolve(), args.name, job_args))
    else:
        print(status(args.rest))


if __name__ == "__main__":
    try:
        main()
    except FlinkError as error:
        sys.exit(f"flink: {error}")
