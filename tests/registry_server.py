"""Debian's docker-registry on loopback for the registry tests: own config, storage and port.

``start_registry(work, users=...)`` writes a config (htpasswd auth when users are given,
passwords hashed with bcrypt through libxcrypt, which is what distribution accepts),
starts ``docker-registry serve`` on 127.0.0.1 and a free port, waits for /v2/, and
returns a :class:`Registry` whose ``stop()`` kills exactly that process. Blobs live
under ``storage`` so that a test can play a registry that lies by changing one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass

BINARY = "/usr/bin/docker-registry"


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: str
    proc: subprocess.Popen
    log: str

    def blob_path(self, digest: str) -> str:
        hexd = digest.removeprefix("sha256:")
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_registry(work, users: dict[str, str] | None = None) -> Registry:
    work = str(work)
    storage = os.path.join(work, "storage")
    os.makedirs(storage, exist_ok=True)
    auth = ""
    if users:
        path = os.path.join(work, "htpasswd")
        with open(path, "w") as f:
            for user, password in users.items():
                f.write(f"{user}:{_bcrypt(password)}\n")
        auth = f"auth:\n  htpasswd:\n    realm: lg-test\n    path: {path}\n"
    for _ in range(5):
        port = _free_port()
        config = os.path.join(work, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{port}\n{auth}")
        log = os.path.join(work, "registry.log")
        proc = subprocess.Popen([BINARY, "serve", config], stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        reg = Registry(f"127.0.0.1:{port}", storage, proc, log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=1)
                return reg
            except urllib.error.HTTPError:
                return reg  # 401: up, with auth
            except OSError:
                time.sleep(0.05)
        reg.stop()  # the port was taken meanwhile, or it did not come up: try another
    raise RuntimeError(f"docker-registry did not start; see {log}")
