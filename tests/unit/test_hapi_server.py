"""Unit tests for fhir_portal.hapi_server that need neither Java nor Maven.

A fake ``java`` (a small Python script put first on PATH) stands in for the server where a
process is needed; a fake ``mvn`` stands in for the build.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_portal import hapi_server
from fhir_portal.hapi_server import HapiConfig, HapiError

FAKE_JAVA_SERVER = textwrap.dedent(
    """\
    #!{python}
    # Fake `java`: answers GET /fhir/metadata on -Dserver.port like the HAPI server would.
    import http.server, signal, sys
    port = next(int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("-Dserver.port="))
    print("fake HAPI on port", port, flush=True)

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path.startswith("/fhir/metadata")
            body = b'{{"resourceType":"CapabilityStatement"}}' if ok else b"{{}}"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)

FAKE_JAVA_CRASH = textwrap.dedent(
    """\
    #!{python}
    import sys
    print("Error: APPLICATION FAILED TO START: boom", flush=True)
    sys.exit(3)
    """
)

FAKE_JAVA_SILENT = textwrap.dedent(
    """\
    #!{python}
    import time
    time.sleep(60)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A HAPI project dir with a pom, a source file and an up-to-date jar."""
    proj = tmp_path / "hapi"
    (proj / "src" / "main" / "java").mkdir(parents=True)
    (proj / "pom.xml").write_text("<project/>", encoding="utf-8")
    (proj / "src" / "main" / "java" / "App.java").write_text("class App {}", encoding="utf-8")
    (proj / "target").mkdir()
    jar = proj / "target" / "portal-hapi.jar"
    jar.write_bytes(b"PK")
    future = time.time() + 5
    os.utime(jar, (future, future))
    return proj


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin dir put first on PATH (and nothing else: no real java / mvn)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    return bindir


@pytest.fixture
def cfg(project: Path, tmp_path: Path) -> Iterator[HapiConfig]:
    c = HapiConfig(
        project_dir=project,
        port=_free_port(),
        data_dir=tmp_path / "data",
        java_opts="-Xmx64m",
        start_timeout=20.0,
    )
    yield c
    hapi_server.stop(c)


def test_paths(cfg: HapiConfig, project: Path) -> None:
    assert hapi_server.jar_path(cfg) == project.resolve() / "target" / "portal-hapi.jar"
    assert hapi_server.base_url(cfg) == f"http://127.0.0.1:{cfg.port}/fhir"


def test_relative_paths_resolve_against_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    c = HapiConfig(project_dir=Path("hapi"), data_dir=Path("var/hapi"))
    assert hapi_server.jar_path(c) == tmp_path.resolve() / "hapi" / "target" / "portal-hapi.jar"
    java = hapi_server._java_command(c, "java")
    assert f"-Dportal.hapi.data-dir={tmp_path.resolve() / 'var' / 'hapi'}" in java
    assert "-Dserver.port=8090" in java
    assert java[-2:] == ["-jar", str(hapi_server.jar_path(c))]


def test_jdbc_settings_passed_to_jvm(tmp_path: Path) -> None:
    c = HapiConfig(
        project_dir=tmp_path,
        jdbc_url="jdbc:postgresql://db/fhir",
        jdbc_user="fhir",
        jdbc_password="s3cret",
    )
    cmd = hapi_server._java_command(c, "java")
    assert "-Dspring.datasource.url=jdbc:postgresql://db/fhir" in cmd
    assert "-Dspring.datasource.username=fhir" in cmd
    assert not any("s3cret" in a for a in cmd)  # not visible in ps
    assert hapi_server._java_env(c)["SPRING_DATASOURCE_PASSWORD"] == "s3cret"


def test_status_down_without_pid_file(cfg: HapiConfig) -> None:
    assert hapi_server.status(cfg) == (False, "down")
    assert hapi_server.stop(cfg) is False


def test_stale_pid_file_of_dead_process(cfg: HapiConfig) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    pid_file = Path(cfg.data_dir) / "hapi.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{proc.pid}\n")
    assert hapi_server.status(cfg) == (False, "down")
    assert not pid_file.exists()
    pid_file.write_text(f"{proc.pid}\n")
    assert hapi_server.stop(cfg) is False
    assert not pid_file.exists()


def test_garbage_pid_file(cfg: HapiConfig) -> None:
    pid_file = Path(cfg.data_dir) / "hapi.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text("not a pid")
    assert hapi_server.status(cfg) == (False, "down")
    assert not pid_file.exists()


def test_pid_file_of_unrelated_live_process_is_not_killed(cfg: HapiConfig) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file = Path(cfg.data_dir) / "hapi.pid"
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(f"{other.pid}\n")
        assert hapi_server.stop(cfg) is False
        assert other.poll() is None  # still running
        assert not pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_start_refuses_busy_port(cfg: HapiConfig) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", cfg.port))
        s.listen()
        with pytest.raises(HapiError, match=f"port {cfg.port} is already in use by another program"):
            hapi_server.start(cfg)


def test_start_without_java(cfg: HapiConfig, fake_bin: Path) -> None:
    with pytest.raises(HapiError, match="Java"):
        hapi_server.start(cfg)


def test_start_without_java_via_which(cfg: HapiConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hapi_server.shutil, "which", lambda name: None)
    with pytest.raises(HapiError, match="java"):
        hapi_server.start(cfg)


def test_build_skipped_when_jar_is_fresh(cfg: HapiConfig, fake_bin: Path) -> None:
    hapi_server.build(cfg)  # no mvn on PATH, but nothing to do


def test_build_without_mvn(cfg: HapiConfig, fake_bin: Path) -> None:
    hapi_server.jar_path(cfg).unlink()
    with pytest.raises(HapiError, match="mvn"):
        hapi_server.build(cfg)


def test_build_when_sources_newer_than_jar(cfg: HapiConfig, fake_bin: Path) -> None:
    jar = hapi_server.jar_path(cfg)
    os.utime(jar, (time.time() - 100, time.time() - 100))
    with pytest.raises(HapiError, match="mvn"):
        hapi_server.build(cfg)


def test_build_failure_reports_last_lines(cfg: HapiConfig, fake_bin: Path) -> None:
    hapi_server.jar_path(cfg).unlink()
    _write_exe(
        fake_bin / "mvn",
        "#!{python}\nimport sys\nfor i in range(40):\n    print('line', i)\n"
        "print('[ERROR] Could not resolve dependencies')\nsys.exit(1)\n",
    )
    with pytest.raises(HapiError) as err:
        hapi_server.build(cfg)
    msg = str(err.value)
    assert "mvn exit 1" in msg
    assert "Could not resolve dependencies" in msg
    assert "line 39" in msg and "line 0 " not in msg
    assert "\n" not in msg


def test_build_runs_mvn_package(cfg: HapiConfig, fake_bin: Path, tmp_path: Path) -> None:
    jar = hapi_server.jar_path(cfg)
    jar.unlink()
    args_file = tmp_path / "mvn-args"
    _write_exe(
        fake_bin / "mvn",
        "#!{python}\nimport os, sys, pathlib\n"
        f"pathlib.Path({str(args_file)!r}).write_text(' '.join(sys.argv[1:]) + '|' + os.getcwd())\n"
        "pathlib.Path('target/portal-hapi.jar').write_bytes(b'PK')\n",
    )
    hapi_server.build(cfg)
    assert jar.is_file()
    args, cwd = args_file.read_text().split("|")
    assert args == "-q -B -DskipTests package"
    assert Path(cwd) == Path(cfg.project_dir).resolve()


def test_missing_project(tmp_path: Path) -> None:
    with pytest.raises(HapiError, match="pom.xml"):
        hapi_server.build(HapiConfig(project_dir=tmp_path / "nope"))


def test_start_reports_crash_with_log_tail(cfg: HapiConfig, fake_bin: Path) -> None:
    _write_exe(fake_bin / "java", FAKE_JAVA_CRASH)
    with pytest.raises(HapiError) as err:
        hapi_server.start(cfg)
    assert "exited (code 3)" in str(err.value)
    assert "APPLICATION FAILED TO START: boom" in str(err.value)
    assert not (Path(cfg.data_dir) / "hapi.pid").exists()


def test_start_times_out_and_stops_the_process(cfg: HapiConfig, fake_bin: Path) -> None:
    _write_exe(fake_bin / "java", FAKE_JAVA_SILENT)
    quick = dataclasses.replace(cfg, start_timeout=1.5)
    with pytest.raises(HapiError, match="did not answer"):
        hapi_server.start(quick)
    assert not (Path(cfg.data_dir) / "hapi.pid").exists()
    assert hapi_server.status(quick) == (False, "down")


def test_start_status_stop_cycle(cfg: HapiConfig, fake_bin: Path) -> None:
    _write_exe(fake_bin / "java", FAKE_JAVA_SERVER)
    seconds = hapi_server.start(cfg)
    assert seconds > 0
    pid = int((Path(cfg.data_dir) / "hapi.pid").read_text())
    up, text = hapi_server.status(cfg)
    assert up and text == f"up (pid {pid}, http://127.0.0.1:{cfg.port}/fhir)"
    assert "fake HAPI on port" in (Path(cfg.data_dir) / "hapi.log").read_text()
    # the JVM gets the data dir, port and options
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert f"-Dserver.port={cfg.port}".encode() in cmdline
    assert b"-Xmx64m" in cmdline
    # already running: nothing to do
    assert hapi_server.start(cfg) == 0.0
    assert hapi_server.stop(cfg) is True
    assert not (Path(cfg.data_dir) / "hapi.pid").exists()
    assert hapi_server.status(cfg) == (False, "down")
    assert hapi_server.stop(cfg) is False
    # a second start keeps the previous log as hapi.log.1
    hapi_server.start(cfg)
    assert (Path(cfg.data_dir) / "hapi.log.1").exists()
    assert hapi_server.stop(cfg) is True
