"""lg compose, run as a user runs it. (The reading of files, in process: tests/unit/test_compose.py.)"""

from __future__ import annotations

import json

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
    assert lg.out("ps", "-a", "-q") == ""
