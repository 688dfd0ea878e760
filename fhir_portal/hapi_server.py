"""Control the portal's own HAPI FHIR R4 server (``hapi/`` Maven module).

Used by ``fhir-portal hapi start|stop|status``. The server is a Spring Boot executable jar
(``hapi/target/portal-hapi.jar``) run as a background JVM in its own session; its pid file
and log live in the data directory next to the H2 database files::

    <data_dir>/h2.mv.db   the database (unless a JDBC URL is configured)
    <data_dir>/hapi.pid   pid of the running JVM
    <data_dir>/hapi.log   its stdout/stderr (the previous run's log is kept as hapi.log.1)

Every failure a user can act on is raised as :class:`HapiError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "HapiConfig",
    "HapiError",
    "base_url",
    "build",
    "jar_path",
    "start",
    "status",
    "stop",
]

JAR_NAME = "portal-hapi.jar"
PID_FILE = "hapi.pid"
LOG_FILE = "hapi.log"
STOP_GRACE_SECONDS = 60.0
_POLL_SECONDS = 0.5
_TAIL_LINES = 12

# JVMs started by this process, so they can be waited for (no zombies) and are not
# garbage-collected as "still running" Popen objects.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class HapiConfig:
    project_dir: Path  # where hapi/pom.xml lives (repo root / "hapi")
    port: int = 8090
    data_dir: Path = Path("var/hapi")  # H2 files, pid file, log file live here
    java_opts: str = "-Xmx1g"
    jdbc_url: str | None = None
    jdbc_user: str | None = None
    jdbc_password: str | None = None
    start_timeout: float = 240.0


class HapiError(Exception):
    """A one-line, user-facing error about building or running the HAPI server."""


# ---------------------------------------------------------------------------------------
# paths


def _abs(path: Path) -> Path:
    path = Path(path).expanduser()
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def _project_dir(cfg: HapiConfig) -> Path:
    return _abs(cfg.project_dir)


def _data_dir(cfg: HapiConfig) -> Path:
    return _abs(cfg.data_dir)


def _pid_file(cfg: HapiConfig) -> Path:
    return _data_dir(cfg) / PID_FILE


def _log_file(cfg: HapiConfig) -> Path:
    return _data_dir(cfg) / LOG_FILE


def jar_path(cfg: HapiConfig) -> Path:
    """Where ``mvn package`` puts the executable jar."""
    return _project_dir(cfg) / "target" / JAR_NAME


def base_url(cfg: HapiConfig) -> str:
    """The FHIR base URL of the server, e.g. ``http://127.0.0.1:8090/fhir``."""
    return f"http://127.0.0.1:{cfg.port}/fhir"


# ---------------------------------------------------------------------------------------
# build


def _newest_mtime(paths: Iterable[Path]) -> float:
    newest = 0.0
    for p in paths:
        with contextlib.suppress(OSError):
            newest = max(newest, p.stat().st_mtime)
    return newest


def _needs_build(cfg: HapiConfig) -> bool:
    jar = jar_path(cfg)
    if not jar.is_file():
        return True
    project = _project_dir(cfg)
    sources = [project / "pom.xml"]
    src = project / "src"
    if src.is_dir():
        sources.extend(p for p in src.rglob("*") if p.is_file())
    return _newest_mtime(sources) > jar.stat().st_mtime


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = [ln.strip()[:300] for ln in text.splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


def build(cfg: HapiConfig) -> None:
    """Build the server jar with Maven when it is missing or older than pom.xml / src."""
    project = _project_dir(cfg)
    if not (project / "pom.xml").is_file():
        raise HapiError(f"no HAPI server project at {project} (pom.xml missing)")
    if not _needs_build(cfg):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise HapiError("Maven (mvn) is not on PATH: install Maven 3.8+ and Java 17 to build the HAPI server")
    # unlink (not overwrite) the old jar: a JVM still running from it keeps its open copy
    with contextlib.suppress(FileNotFoundError):
        jar_path(cfg).unlink()
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [mvn, "-q", "-B", "-DskipTests", "package"],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
    except OSError as exc:
        raise HapiError(f"cannot run Maven ({mvn}): {exc}") from exc
    output = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise HapiError(
            f"HAPI server build failed (mvn exit {proc.returncode}): {_tail(output) or 'no output'}"
        )
    if not jar_path(cfg).is_file():
        raise HapiError(f"HAPI server build produced no {jar_path(cfg)}: {_tail(output)}")


# ---------------------------------------------------------------------------------------
# processes


def _read_pid(cfg: HapiConfig) -> int | None:
    try:
        text = _pid_file(cfg).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _remove_pid_file(cfg: HapiConfig) -> None:
    with contextlib.suppress(FileNotFoundError):
        _pid_file(cfg).unlink()


def _reap(pid: int) -> None:
    """Collect the exit status of a child of ours that has ended (no zombie left)."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            _children.pop(pid, None)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _pid_alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # "pid (comm) S ..." - a zombie has ended
        state = stat.read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    return True


def _is_our_server(pid: int) -> bool:
    """Whether pid runs the portal's HAPI jar (guards against a recycled pid)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not Path("/proc/self/cmdline").exists():
        return True  # no procfs (macOS): trust the pid file
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.endswith(JAR_NAME.encode()) for arg in args)


def _running_pid(cfg: HapiConfig) -> int | None:
    """The pid of our live server, or None (a stale pid file is removed)."""
    pid = _read_pid(cfg)
    if pid is None:
        if _pid_file(cfg).exists():
            _remove_pid_file(cfg)
        return None
    if _pid_alive(pid) and _is_our_server(pid):
        return pid
    _remove_pid_file(cfg)
    return None


def _answers(cfg: HapiConfig, timeout: float = 5.0) -> bool:
    try:
        resp = httpx.get(
            f"{base_url(cfg)}/metadata",
            headers={"Accept": "application/fhir+json"},
            timeout=timeout,
        )
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # with SO_REUSEADDR, bind fails only while something listens on the port
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _log_tail(cfg: HapiConfig, lines: int = _TAIL_LINES) -> str:
    try:
        with _log_file(cfg).open("r", encoding="utf-8", errors="replace") as fh:
            kept = deque((ln.rstrip() for ln in fh if ln.strip()), maxlen=lines)
    except OSError:
        return ""
    return " | ".join(ln[:300] for ln in kept)


def _java_command(cfg: HapiConfig, java: str) -> list[str]:
    cmd = [java, *shlex.split(cfg.java_opts)]
    cmd.append(f"-Dportal.hapi.data-dir={_data_dir(cfg)}")
    cmd.append(f"-Dserver.port={cfg.port}")
    if cfg.jdbc_url:
        cmd.append(f"-Dspring.datasource.url={cfg.jdbc_url}")
    if cfg.jdbc_user:
        cmd.append(f"-Dspring.datasource.username={cfg.jdbc_user}")
    cmd += ["-jar", str(jar_path(cfg))]
    return cmd


def _java_env(cfg: HapiConfig) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.jdbc_password is not None:
        # through the environment, so the password does not show in `ps`
        env["SPRING_DATASOURCE_PASSWORD"] = cfg.jdbc_password
    return env


def _wait_until_up(cfg: HapiConfig, pid: int, started: float) -> float:
    deadline = started + cfg.start_timeout
    child = _children.get(pid)
    while True:
        exited = child.poll() if child is not None else (None if _pid_alive(pid) else -1)
        if exited is not None:
            _children.pop(pid, None)
            _remove_pid_file(cfg)
            tail = _log_tail(cfg) or "no output"
            raise HapiError(f"HAPI server exited (code {exited}) while starting; {_log_file(cfg)}: {tail}")
        if _answers(cfg, timeout=min(5.0, max(0.5, deadline - time.monotonic()))):
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            _terminate(pid, grace=10.0)
            _remove_pid_file(cfg)
            raise HapiError(
                f"HAPI server did not answer {base_url(cfg)}/metadata within "
                f"{cfg.start_timeout:.0f} s and was stopped; see {_log_file(cfg)}"
            )
        time.sleep(_POLL_SECONDS)


def start(cfg: HapiConfig) -> float:
    """Start the server in the background; return the seconds it took to answer.

    Returns 0.0 when it is already running and answering.
    """
    started = time.monotonic()
    pid = _running_pid(cfg)
    if pid is not None:
        if _answers(cfg):
            return 0.0
        # started a moment ago by someone else: wait for it like for our own start
        return _wait_until_up(cfg, pid, started)

    if _port_in_use(cfg.port):
        raise HapiError(f"port {cfg.port} is already in use by another program")
    java = shutil.which("java")
    if java is None:
        raise HapiError("Java (java) is not on PATH: install a Java 17+ runtime to run HAPI")
    build(cfg)

    data_dir = _data_dir(cfg)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        log = _log_file(cfg)
        if log.exists():
            log.replace(log.with_name(LOG_FILE + ".1"))
        log_fh = log.open("ab")
    except OSError as exc:
        raise HapiError(f"cannot use data directory {data_dir}: {exc}") from exc
    try:
        proc = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
            _java_command(cfg, java),
            cwd=data_dir,
            env=_java_env(cfg),
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise HapiError(f"cannot start java ({java}): {exc}") from exc
    finally:
        log_fh.close()
    _children[proc.pid] = proc
    _pid_file(cfg).write_text(f"{proc.pid}\n", encoding="ascii")
    return _wait_until_up(cfg, proc.pid, started)


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    child = _children.get(pid)
    while True:
        if child is not None:
            if child.poll() is not None:
                _children.pop(pid, None)
                return True
        elif not _pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _terminate(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_exit(pid, grace):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_exit(pid, 10.0)


def stop(cfg: HapiConfig) -> bool:
    """Stop the server (SIGTERM, SIGKILL after 60 s). False when it was not running."""
    pid = _running_pid(cfg)
    if pid is None:
        return False
    _terminate(pid, STOP_GRACE_SECONDS)
    _remove_pid_file(cfg)
    return True


def status(cfg: HapiConfig) -> tuple[bool, str]:
    """(up, one-line description)."""
    url = base_url(cfg)
    pid = _running_pid(cfg)
    if pid is not None:
        if _answers(cfg, timeout=3.0):
            return True, f"up (pid {pid}, {url})"
        return False, f"starting or not answering (pid {pid}, {url})"
    if _answers(cfg, timeout=2.0):
        return True, f"up (not started by fhir-portal, {url})"
    return False, "down"


if __name__ == "__main__":  # pragma: no cover - manual use
    _cfg = HapiConfig(project_dir=Path("hapi"))
    _cmd = sys.argv[1] if len(sys.argv) > 1 else "status"
    try:
        if _cmd == "start":
            print(f"started in {start(_cfg):.1f} s: {base_url(_cfg)}")
        elif _cmd == "stop":
            print("stopped" if stop(_cfg) else "not running")
        else:
            print(status(_cfg)[1])
    except HapiError as _exc:
        print(f"error: {_exc}", file=sys.stderr)
        sys.exit(1)
