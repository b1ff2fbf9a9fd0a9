"""lg compose, run as a user runs it. (The reading of files, in process: tests/unit/test_compose.py.)"""

from __future__ import annotations

import json
import time

import pytest

from .runtime_helpers import IMAGE, rt, runtime_template  # noqa: F401

FILE = """\
services:
  db:
    image: mariadb:11
    environment: {MARIADB_ROOT_PASSWORD: "${DBPASS:?set DBPASS in .env}"}
    volumes: [dbdata:/var/lib/mysql]
    restart: no
  web:
    image: wordpress:${TAG:-6}
    ports: ["8080:80"]
    depends_on: {db: {condition: service_healthy}}
volumes:
  dbdata:
"""


def test_config_prints_the_file_normalised(lg, tmp_path):
    """Variables from .env, the project named after the directory, short forms spelled out;
    YAML that a YAML 1.1 reader reads the same (``restart: "no"``), and JSON on request."""
    site = tmp_path / "My_Site"
    site.mkdir()
    (site / "compose.yaml").write_text(FILE)
    (site / ".env").write_text("DBPASS=secret\n")
    out = lg.out("compose", "--project-directory", site, "-f", site / "compose.yaml", "config")
    assert 'restart: "no"' in out and "name: my_site" in out
    doc = json.loads(lg.out("compose", "-f", site / "compose.yaml", "config", "--format", "json"))
    assert doc["services"]["db"]["environment"] == {"MARIADB_ROOT_PASSWORD": "secret"}
    assert doc["services"]["web"]["image"] == "wordpress:6"
    assert doc["services"]["web"]["ports"] == [{"target": 80, "published": "8080", "protocol": "tcp"}]
    assert doc["volumes"] == {"dbdata": {"name": "my_site_dbdata"}}
    assert lg.out("compose", "-f", site / "compose.yaml", "config", "--services").split() == ["db", "web"]


def test_interpolated_flags_and_ports_are_read_as_compose_reads_them(lg, tmp_path):
    """``${VAR}`` gives a string; a key that wants a boolean or a port number takes it as
    one, as docker compose does, instead of refusing the file; a short volume's modes are
    a comma-separated list in any order."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: x\n    read_only: ${RO:-false}\n    tty: ${TTY}\n"
        "    ports: [{target: '${PORT}', published: '${PORT}'}]\n    volumes: ['./src:/src:z,ro']\n")
    (tmp_path / ".env").write_text("TTY=true\nPORT=8080\n")
    doc = json.loads(lg.out("compose", "-f", tmp_path / "compose.yaml", "config", "--format", "json"))
    web = doc["services"]["web"]
    assert web["tty"] is True and web["read_only"] is False
    assert web["ports"] == [{"target": 8080, "published": "8080", "protocol": "tcp"}]
    assert web["volumes"] == [{"type": "bind", "target": "/src", "source": str(tmp_path / "src"), "read_only": True}]


def test_a_later_env_file_wins(lg, tmp_path):
    """env_file: [a, b] is read top down: b's value of a variable both set stands, and
    ``environment`` stands over both (compose-spec); a quoted value may span lines."""
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n    env_file: [a.env, b.env]\n"
                                           "    environment: {C: key}\n")
    (tmp_path / "a.env").write_text("A=a\nB=a\nC=a\n")
    (tmp_path / "b.env").write_text('B=b\nC=b\nPEM="-----BEGIN KEY-----\nabc\n-----END KEY-----"\nD=d\n')
    doc = json.loads(lg.out("compose", "-f", tmp_path / "compose.yaml", "config", "--format", "json"))
    assert doc["services"]["web"]["environment"] == {"A": "a", "B": "b", "C": "key", "D": "d",
                                                     "PEM": "-----BEGIN KEY-----\nabc\n-----END KEY-----"}


def test_dotenv_can_name_the_project(lg, tmp_path):
    """COMPOSE_PROJECT_NAME in .env names the project, as in docker compose (so its
    containers are the ones docker compose would call the project's)."""
    (tmp_path / "compose.yaml").write_text("name: fromfile\nservices:\n  web: {image: x}\n")
    (tmp_path / ".env").write_text("COMPOSE_PROJECT_NAME=shop\n")
    doc = json.loads(lg.out("compose", "-f", tmp_path / "compose.yaml", "config", "--format", "json"))
    assert doc["name"] == "shop" and doc["networks"]["default"]["name"] == "shop_default"


def test_a_file_lg_cannot_use_is_one_line_and_starts_nothing(lg, tmp_path):
    (tmp_path / "compose.yaml").write_text(FILE)
    err = lg.fails("compose", "-f", tmp_path / "compose.yaml", "config", code=1)
    assert err == "lg: services.db.environment.MARIADB_ROOT_PASSWORD: required variable DBPASS is missing a value:" \
                  " set DBPASS in .env\n"
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n    profiles: [debug]\n")
    assert "services.web.profiles: not supported by lg" in lg.fails("compose", "-f", tmp_path / "compose.yaml",
                                                                    "config", code=1)
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n")
    assert "cycle: a -> b -> a" in lg.fails("compose", "-f", tmp_path / "compose.yaml", "config", code=1)
    assert "no compose file here" in lg.fails("compose", "--project-directory", tmp_path / "nowhere", "config", code=1)
    (tmp_path / "compose.yaml").write_text('services:\n  web: {image: "' + "${A:-" * 5000 + "}" * 5000 + '"}\n')
    assert lg.fails("compose", "-f", tmp_path / "compose.yaml", "config", code=1) == \
        "lg: services.web.image: variables nest more than 32 levels deep\n"
    assert lg.out("ps", "-a", "-q") == ""


APP = f"""\
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "cat /data/greeting > /tmp/index.html 2>/dev/null || echo none > /tmp/index.html;
      httpd -f -p 80 -h /tmp"]
    volumes: [data:/data]
    networks: {{back: {{aliases: [www]}}}}
  client:
    image: {IMAGE}
    depends_on: [web]
    command: ["sleep", "300"]
    networks: [back]
networks:
  back:
volumes:
  data:
"""


def _wait_for(rt, what, check, timeout: float = 30):  # noqa: F811
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.root
def test_up_reaches_services_by_name_and_down_removes_what_up_made(rt, tmp_path):  # noqa: F811
    """Two services on a project network: the client reaches the web service by its service
    name, its alias and its container name; a named volume keeps data across down and up;
    up again changes nothing, a changed service is recreated; down leaves no container or
    network, and the volume only goes with -v."""
    project = tmp_path / "app"
    project.mkdir()
    (project / "compose.yaml").write_text(APP)
    compose = ("compose", "--project-directory", project, "-f", project / "compose.yaml")
    networks_before = rt.out("network", "ls", "-q")
    rt(*compose, "up", "-d", timeout=120)
    assert sorted(rt.out("ps", "--format", "{{.Names}}").split()) == ["app-client-1", "app-web-1"]

    def served(host: str) -> str:
        proc = rt(*compose, "exec", "client", "wget", "-q", "-O", "-", f"http://{host}/", check=False, timeout=60)
        return proc.stdout.decode() if proc.returncode == 0 else ""

    _wait_for(rt, "the web service to answer", lambda: served("web") == "none\n")
    assert served("www") == served("app-web-1") == "none\n"
    rt(*compose, "exec", "web", "sh", "-c", "echo kept > /data/greeting", timeout=60)
    ids = rt.out(*compose, "ps", "-q").split()
    assert len(ids) == 2

    again = rt(*compose, "up", "-d", timeout=120).stderr.decode()
    assert "app-web-1  Running" in again and rt.out(*compose, "ps", "-q").split() == ids
    (project / "compose.yaml").write_text(APP.replace('"sleep", "300"', '"sleep", "301"'))
    changed = rt(*compose, "up", "-d", timeout=120).stderr.decode()
    assert "app-client-1  Recreated" in changed and "app-web-1  Running" in changed

    rt(*compose, "down", timeout=120)
    assert rt.out("ps", "-a", "-q") == "" and rt.out("network", "ls", "-q") == networks_before
    assert rt.out("volume", "ls", "-q").split() == ["app_data"]
    rt(*compose, "up", "-d", "web", timeout=120)
    assert rt.out("ps", "--format", "{{.Names}}").split() == ["app-web-1"]
    _wait_for(rt, "the volume's greeting", lambda: rt(*compose, "exec", "web", "cat", "/tmp/index.html",
                                                         check=False).stdout == b"kept\n")
    logs = rt.out(*compose, "logs", "web")
    assert all(line.startswith("app-web-1  | ") for line in logs.splitlines())
    rt(*compose, "down", "-v", timeout=120)
    assert rt.out("volume", "ls", "-q") == "" and rt.out("ps", "-a", "-q") == ""


COMPARED = """\
services:
  web:
    image: {image}
    command: ["sleep", "300"]
    working_dir: /tmp
    user: "1000"
    environment:
      A: "1"
      B: two words
    ports: ["{port}:80", "127.0.0.1:{port2}:443/tcp"]
    volumes: [data:/data, ./conf:/conf:ro]
    labels: {{tier: web}}
volumes:
  data:
"""


def _facts(inspected: dict, project: str) -> dict:
    """What a compose file decides about a container, from Docker-style inspect output."""
    env = dict(e.partition("=")[::2] for e in inspected["Config"]["Env"])
    bindings = inspected["HostConfig"].get("PortBindings") or {}
    ports = sorted((port, b.get("HostIp") or "", b["HostPort"]) for port, bs in bindings.items() for b in bs or [])
    mounts = sorted((m.get("Name") if m["Type"] == "volume" else m["Source"], m["Destination"], m["RW"])
                    for m in inspected["Mounts"])
    labels = inspected["Config"]["Labels"] or {}
    network = inspected["NetworkSettings"]["Networks"][f"{project}_default"]
    return {"env": {k: env.get(k) for k in ("A", "B")}, "cmd": inspected["Config"]["Cmd"],
            "workdir": inspected["Config"]["WorkingDir"], "user": inspected["Config"]["User"], "ports": ports,
            "mounts": mounts, "labels": {k: labels.get(k) for k in ("tier", "com.docker.compose.project",
                                                                     "com.docker.compose.service")},
            "alias": "web" in (network.get("Aliases") or [])}


@pytest.mark.root
def test_podman_compose_reads_the_file_the_same_way(rt, tmp_path, busybox_rootfs):  # noqa: F811
    """The same file through podman-compose (Debian's 1.0.3, on podman) and lg compose gives
    containers with the same command, environment, user, working directory, published
    ports, volumes and bind mounts, labels and network alias. (podman-compose 1.0.3 names
    containers PROJECT_SERVICE_1, compose v2 and lg PROJECT-SERVICE-1; it has no config.)"""
    import shutil
    import socket
    import subprocess
    import uuid

    if not shutil.which("podman-compose"):
        pytest.fail("podman-compose is not installed: bootstrap.sh installs it")
    token = uuid.uuid4().hex[:8]
    image, project = f"localhost/lgcompose{token}:1", f"cmp{token}"
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    where = tmp_path / "proj"
    (where / "conf").mkdir(parents=True)
    (where / "compose.yaml").write_text(COMPARED.format(image=image, port=ports[0], port2=ports[1]))
    podman_compose = ["podman-compose", "-p", project, "-f", str(where / "compose.yaml")]
    rootfs_tar = tmp_path / "busybox.tar"
    subprocess.run(["tar", "--numeric-owner", "-C", busybox_rootfs, "-cf", rootfs_tar, "."], check=True)
    try:
        subprocess.run(["podman", "import", "-q", rootfs_tar, image], check=True, capture_output=True)
        subprocess.run([*podman_compose, "up", "-d"], check=True, capture_output=True, cwd=where, timeout=120)
        podman_view = json.loads(subprocess.run(["podman", "inspect", f"{project}_web_1"], check=True,
                                                capture_output=True).stdout)[0]
    finally:
        subprocess.run([*podman_compose, "down", "-v"], capture_output=True, cwd=where, timeout=120)
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
    rt("tag", IMAGE, image)
    rt("compose", "-p", project, "-f", where / "compose.yaml", "up", "-d", timeout=120)
    try:
        lg_view = json.loads(rt.out("inspect", f"{project}-web-1"))[0]
    finally:
        rt("compose", "-p", project, "-f", where / "compose.yaml", "down", "-v", timeout=120)
    expected = _facts(podman_view, project)
    assert expected["env"] == {"A": "1", "B": "two words"} and expected["alias"], expected
    assert _facts(lg_view, project) == expected


HEALTHY = f"""\
services:
  db:
    image: {IMAGE}
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 300"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 50
    restart: always
  web:
    image: {IMAGE}
    command: ["sh", "-c", "date +%s%N > /tmp/started; exec sleep 300"]
    depends_on:
      db: {{condition: service_healthy}}
"""


@pytest.mark.root
def test_depends_on_waits_for_healthy_and_policies_apply(rt, tmp_path):  # noqa: F811
    """web starts only once db's check (exec form) passed; db's restart policy brings it
    back after its process is killed; the containers carry compose's depends_on label,
    which lg system boot orders by."""
    (tmp_path / "compose.yaml").write_text(HEALTHY)
    compose = ("compose", "-p", "hc", "-f", tmp_path / "compose.yaml")
    said = rt(*compose, "up", "-d", timeout=120).stderr.decode()
    assert said.index("hc-db-1  Healthy") < said.index("hc-web-1  Started"), said
    db = json.loads(rt.out("inspect", "hc-db-1"))[0]
    assert db["State"]["Health"]["Status"] == "healthy"
    assert db["HostConfig"]["RestartPolicy"]["Name"] == "always"
    web = json.loads(rt.out("inspect", "hc-web-1"))[0]
    assert web["Config"]["Labels"]["com.docker.compose.depends_on"] == "db:service_healthy:false"
    import os
    import signal

    os.kill(db["State"]["Pid"], signal.SIGKILL)
    _wait_for(rt, "db to be restarted by its policy",
              lambda: json.loads(rt.out("inspect", "hc-db-1"))[0]["RestartCount"] >= 1
              and json.loads(rt.out("inspect", "hc-db-1"))[0]["State"]["Running"])
    rt(*compose, "down", timeout=120)
    assert rt.out("ps", "-a", "-q") == ""
