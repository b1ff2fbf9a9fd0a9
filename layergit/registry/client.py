"""The OCI Distribution API on urllib3: manifests, blobs, uploads, auth challenges.

Written here rather than taken from python-dxf, oras-py or aioregistry: all three sit
on requests or aiohttp (a new dependency and its own pool), none verifies a blob's
digest and size as it streams or bounds what a registry sends, and none does both
cross-repository mounts and resumable chunked uploads; urllib3 is already here (through
dulwich) and gives streamed bodies, timeouts and connection reuse. Everything a
registry sends is hostile: JSON documents are read to a bound, blobs are verified by
the caller as they stream (:class:`BlobStream`), header values are never printed raw.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import quote, urlencode, urljoin, urlsplit

from ..errors import LgError, NotFound, UsageError
from ..text import printable

if TYPE_CHECKING:
    import urllib3

MAX_MANIFEST = 4 << 20  # what distribution itself accepts
MAX_JSON = 16 << 20  # a config blob or a token answer
MAX_RETRY_AFTER = 60.0  # seconds: a 429 asking for longer is an error, not a wait
CHUNK = 1 << 20
DRAIN_MAX = 64 << 10  # bytes of an unwanted body read to keep its connection; longer: it is closed
DRAIN_TIME = 2.0  # seconds those bytes may take; slower: the connection is closed
MAX_REDIRECTS = 5
# A socket's read timeout bounds one silence, not a server that sends a byte just before
# each would end: a JSON document (manifest, token, tag list, config, error) must arrive
# whole within this many read timeouts.
DOCUMENT_TIMEOUTS = 4
DEFAULT_CHUNK_UPLOAD = 32 << 20  # bytes per PATCH

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


class Chunks(Protocol):
    """What an upload sends: bytes at an offset, empty at the end (a file, or a spool
    still being written, layergit.fs.spool)."""

    def chunk(self, offset: int, n: int) -> bytes: ...


@dataclass
class Upload:
    """An upload session: its repository and the location the registry gave last."""

    repository: str
    location: str


class _FileChunks:
    def __init__(self, f: IO[bytes], size: int):
        self._f, self._size = f, size

    def chunk(self, offset: int, n: int) -> bytes:
        self._f.seek(offset)
        return self._f.read(max(0, min(n, self._size - offset)))


class RegistryError(LgError):
    """A registry refused, failed or lied; the message names what and where."""


class TransportError(RegistryError):
    """No answer: refused, unreachable, TLS failed, timed out, dropped. Another
    endpoint (plain HTTP for a loopback registry) may still answer."""


class AuthError(RegistryError):
    """401/403: credentials missing or wrong."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str  # or an identity token with username "<token>"


@dataclass(frozen=True)
class Endpoint:
    """Where a registry answers and how: scheme and host, TLS checks, timeouts."""

    host: str  # host[:port] of the API
    secure: bool = True  # https with certificates checked; False: plain http
    tls_verify: bool = True
    ca_certs: str | None = None  # a file of CA certificates (certs.d)
    client_cert: tuple[str, str] | None = None  # (cert, key) files
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    proxy: str | None = None

    @property
    def base(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}"


# What OpenSSL says when the answer to its ClientHello is not TLS at all: plain HTTP's
# "HTTP/1.1 400" read as a record header.
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"})
PROBE_SECONDS = 2.0  # what answers_plain_http waits for a reply at most


def answers_plain_http(endpoint: Endpoint) -> bool:
    """Whether ``endpoint``'s host answers a TLS handshake with something that is not
    TLS: a plain HTTP registry, found without loading a certificate.

    For an https endpoint with a plain http one after it (a loopback or insecure
    registry): trying it with certificates checked first loads the system's CA store,
    24 ms of every such ``lg pull`` and ``lg push``, to fail the same way. Only a reply
    that is not TLS counts; a refusal, a timeout, a closed connection or any TLS failure
    leaves the decision to the checked handshake, which reports what it finds. Nothing
    but the ClientHello is sent, so skipping the checks sends nothing to trust them with.
    A registry that does speak TLS pays one handshake more (a few ms on a loopback), and
    a silent one at most PROBE_SECONDS more before the checked try meets the same silence.
    """
    import socket
    import ssl

    if not endpoint.secure or endpoint.proxy:
        return False
    parts = urlsplit(endpoint.base)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        address, seconds = (parts.hostname, parts.port or 443), min(PROBE_SECONDS, endpoint.connect_timeout)
        with socket.create_connection(address, timeout=seconds) as sock, \
                context.wrap_socket(sock, server_hostname=parts.hostname):
            return False
    except ssl.SSLError as exc:
        return exc.reason in _NOT_TLS
    except (OSError, ValueError):
        return False


def _header_text(value: str | None) -> str:
    return printable((value or "")[:200])


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` as (scheme, params)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class Client:
    """One registry, one repository scope at a time; tokens cached per scope."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials | None = None,
                 user_agent: str = "layergit"):
        import urllib3

        self.endpoint = endpoint
        self.credentials = credentials
        timeout = urllib3.Timeout(connect=endpoint.connect_timeout, read=endpoint.read_timeout)
        # Nothing is retried behind our back; redirects are followed by _send.
        retries = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=False)
        kw: dict = {"timeout": timeout, "retries": retries, "maxsize": 8, "block": False}
        if endpoint.secure:
            kw["cert_reqs"] = "CERT_REQUIRED" if endpoint.tls_verify else "CERT_NONE"
            if endpoint.ca_certs:
                kw["ca_certs"] = endpoint.ca_certs
            if endpoint.client_cert:
                kw["cert_file"], kw["key_file"] = endpoint.client_cert
        if not endpoint.tls_verify:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._http: urllib3.PoolManager = (urllib3.ProxyManager(endpoint.proxy, **kw) if endpoint.proxy
                                           else urllib3.PoolManager(**kw))
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._token_lock = threading.Lock()  # blobs move in parallel: one token per scope
        self.user_agent = user_agent
        self.document_time = DOCUMENT_TIMEOUTS * endpoint.read_timeout  # seconds a JSON document may take
        self.requests = 0  # every HTTP request sent: benchmarks and tests count them

    # --- plumbing -------------------------------------------------------------------

    @staticmethod
    def _ref(reference: str) -> str:
        return quote(reference, safe=":")

    def _url(self, path: str) -> str:
        return path if "://" in path else self.endpoint.base + path

    def request(self, method: str, path: str, scope: str, *, headers: dict | None = None,
                body=None, ok: tuple[int, ...] = (200,),
                what: str = "") -> urllib3.BaseHTTPResponse:
        """Send, answering one auth challenge and one 429; raise on a status not in ``ok``."""
        url = self._url(path)
        retried_429 = authed = False
        self._known_token(scope)
        while True:
            hdrs = {"User-Agent": self.user_agent, **(headers or {})}
            if scope in self._auth:
                hdrs["Authorization"] = self._auth[scope]
            elif self._challenge and self._challenge[0] == "basic" and self.credentials:
                hdrs["Authorization"] = self._basic()
            resp, answered = self._send(method, url, hdrs, body, self.endpoint.host)
            if resp.status == 401 and _origin(answered) != _origin(self.endpoint.base):
                _discard(resp)
                raise AuthError(f"{self.endpoint.host}: {what or method}: redirected to "
                                f"{_header_text(urlsplit(answered).netloc)}, which asks for credentials;"
                                f" lg gives {self.endpoint.host}'s to it alone")
            if resp.status == 401 and not authed and self._answer(resp, scope):
                _discard(resp)
                authed = True
                _rewind(body)
                continue
            if resp.status == 429 and not retried_429:
                delay = _retry_after(resp.headers.get("Retry-After"))
                _discard(resp)
                if delay is not None:
                    retried_429 = True
                    time.sleep(delay)
                    _rewind(body)
                    continue
            if resp.status in ok:
                return resp
            self._fail(resp, what or f"{method} {urlsplit(url).path}")

    def _send(self, method: str, url: str, headers: dict, body, where: str
              ) -> tuple[urllib3.BaseHTTPResponse, str]:
        """One request, and the redirects of a GET or HEAD followed here, not by urllib3:
        its redirects read a redirect's body to the end, however long a hostile server
        makes it. Authorization goes only to the origin (scheme, host, port) of ``url``:
        a blob's redirect to a CDN, as Docker does, gets none, nor does a move from
        https to http. Returns the response and the URL that gave it."""
        import urllib3

        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            self.requests += 1
            sent = headers if _origin(url) == origin else \
                {k: v for k, v in headers.items() if k.lower() != "authorization"}
            try:
                resp = self._http.request(method, url, headers=sent, body=body, preload_content=False,
                                          redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                raise TransportError(f"{where}: {_transport_error(exc)}") from None
            location = resp.get_redirect_location() if method in ("GET", "HEAD") else None
            if not location:
                return resp, url
            _discard(resp)
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise RegistryError(f"{where}: redirected to {_header_text(location)!r}, not an http(s) URL")
        raise RegistryError(f"{where}: more than {MAX_REDIRECTS} redirects")

    def _known_token(self, scope: str) -> None:
        """Once the registry has asked for a Bearer token, fetch one for a new scope
        before the request, not after its 401 (once, whichever thread asks first)."""
        if scope in self._auth or not self._challenge or self._challenge[0] != "bearer":
            return
        with self._token_lock:
            if scope not in self._auth:
                self._auth[scope] = "Bearer " + self._token(self._challenge[1], scope)

    def _basic(self) -> str:
        assert self.credentials is not None
        pair = f"{self.credentials.username}:{self.credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _answer(self, resp, scope: str) -> bool:
        """Take a 401's challenge: Basic with our credentials, or fetch a Bearer token."""
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        self._challenge = (scheme, params)
        if scheme == "basic":
            if not self.credentials:
                return False
            self._auth[scope] = self._basic()
            return True
        if scheme == "bearer" and params.get("realm"):
            with self._token_lock:
                self._auth[scope] = "Bearer " + self._token(params, scope)
            return True
        return False

    def _token(self, params: dict[str, str], scope: str) -> str:
        realm = params["realm"]
        if urlsplit(realm).scheme not in ("https", "http"):
            raise RegistryError(f"{self.endpoint.host}: token realm {_header_text(realm)!r} is not a URL")
        if self.credentials and self.endpoint.secure and urlsplit(realm).scheme != "https":
            # The password would cross the network in the clear, where the registry
            # itself is spoken to over TLS.
            raise AuthError(f"{self.endpoint.host}: its token service {_header_text(realm)!r} is plain http;"
                            " lg sends the credentials of a TLS registry over TLS only")
        query = {"service": params.get("service", "")} if params.get("service") else {}
        if scope:
            query["scope"] = scope
        headers = {"User-Agent": self.user_agent}
        if self.credentials:
            headers["Authorization"] = self._basic()
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        resp, _ = self._send("GET", url, headers, None, f"token service {_header_text(realm)}")
        if resp.status in (401, 403):
            _discard(resp)
            raise AuthError(f"{self.endpoint.host}: the token service refused the credentials")
        if resp.status != 200:
            self._fail(resp, "token request")
        doc = read_json(resp, MAX_JSON, "token answer", self.document_time)
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise RegistryError(f"{self.endpoint.host}: the token service answered no token")
        return token

    def _fail(self, resp, what: str):
        status = resp.status
        detail = _error_detail(resp, self.document_time)
        _discard(resp)
        host = self.endpoint.host
        if status in (401, 403):
            hint = "wrong credentials" if self.credentials else "authentication required (lg login)"
            raise AuthError(f"{host}: {what}: {hint}{detail}")
        if status == 404:
            raise NotFound(f"{host}: {what}: not found{detail}")
        if status == 429:
            raise RegistryError(f"{host}: {what}: too many requests (rate limited){detail}")
        raise RegistryError(f"{host}: {what}: HTTP {status}{detail}")

    # --- the API ----------------------------------------------------------------------

    @staticmethod
    def scope(repository: str, push: bool = False) -> str:
        return f"repository:{repository}:{'pull,push' if push else 'pull'}"

    def ping(self, refused_ok: bool = False) -> None:
        """GET /v2/: checks the API's presence and, unless ``refused_ok``, the credentials (login)."""
        resp = self.request("GET", "/v2/", "", ok=(200, 401) if refused_ok else (200,),
                            what="the registry API (/v2/)")
        _discard(resp)  # its body too: left in the connection, it would be read as the next answer

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or index; the digest is checked when
        the reference is one, and the registry's Docker-Content-Digest never trusted."""
        resp = self.request("GET", f"/v2/{repository}/manifests/{self._ref(reference)}",
                            self.scope(repository),
                            headers={"Accept": ", ".join(MANIFEST_TYPES)},
                            what=f"manifest {repository}:{reference}" if not reference.startswith("sha256:")
                            else f"manifest {repository}@{reference}")
        body = read_bounded(resp, MAX_MANIFEST, f"manifest of {repository}", self.document_time)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{self.endpoint.host}: manifest {repository}@{reference} has digest "
                                f"{digest}: the registry sent something else")
        media = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        return body, media, digest

    def open_blob(self, repository: str, digest: str) -> urllib3.BaseHTTPResponse:
        return self.request("GET", f"/v2/{repository}/blobs/{digest}", self.scope(repository),
                            what=f"blob {digest[:19]} of {repository}")

    def has_blob(self, repository: str, digest: str, push: bool = True) -> bool:
        resp = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", self.scope(repository, push),
                            ok=(200, 404), what=f"blob {digest[:19]}")
        _discard(resp)
        return resp.status == 200

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Ask for ``digest`` from ``source`` (same registry): True-ish (None) when
        mounted, else the upload location the registry opened instead."""
        query = urlencode({"mount": digest, "from": source})
        scope = f"{self.scope(repository, True)} repository:{source}:pull"
        resp = self.request("POST", f"/v2/{repository}/blobs/uploads/?{query}", scope, ok=(201, 202),
                            headers={"Content-Length": "0"}, what=f"mount of {digest[:19]}")
        _discard(resp)
        if resp.status == 201:
            return None
        return self._location(resp)

    def _location(self, resp) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.endpoint.host}: the registry opened an upload without a Location")
        url = urljoin(self.endpoint.base + "/", location)
        if _origin(url) != _origin(self.endpoint.base):
            raise RegistryError(f"{self.endpoint.host}: upload location on another host: "
                                f"{_header_text(location)}")
        return url

    def start_upload(self, repository: str) -> str:
        resp = self.request("POST", f"/v2/{repository}/blobs/uploads/", self.scope(repository, True),
                            ok=(202,), headers={"Content-Length": "0"}, what="upload start")
        _discard(resp)
        return self._location(resp)

    def upload_blob(self, repository: str, digest: str, size: int, f: IO[bytes], location: str | None = None,
                    chunk: int = DEFAULT_CHUNK_UPLOAD, on_bytes=None) -> None:
        """Upload ``size`` bytes of ``f`` whose digest is ``digest``: its chunks, then the PUT."""
        if on_bytes and size == 0:
            on_bytes(0)
        upload = Upload(repository, location or self.start_upload(repository))
        self.send_chunks(upload, _FileChunks(f, size), chunk, on_bytes)
        self.finish_upload(upload, digest)

    def send_chunks(self, upload: Upload, source: Chunks, chunk: int = DEFAULT_CHUNK_UPLOAD, on_bytes=None,
                    resumes: int = 3) -> None:
        """PATCH what ``source`` gives, chunk by chunk, until it ends, keeping ``upload``'s
        location the registry's latest (for :meth:`finish_upload` or :meth:`cancel_upload`,
        whatever stops the sending). A dropped connection is resumed where the registry
        says it has got to (GET on the upload's location). ``on_bytes`` is called with the
        bytes the registry holds after each chunk."""
        scope = self.scope(upload.repository, True)
        offset = 0
        while data := source.chunk(offset, chunk):
            n = len(data)
            try:
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(n),
                           "Content-Range": f"{offset}-{offset + n - 1}"}
                resp = self.request("PATCH", upload.location, scope, body=data, ok=(202,),
                                    what="upload chunk", headers=headers)
            except TransportError:
                if resumes <= 0:
                    raise
                resumes -= 1
                offset = self._upload_offset(upload.location, scope)
                continue
            _discard(resp)
            upload.location = self._location(resp)
            offset += n
            if on_bytes:
                on_bytes(offset)

    def finish_upload(self, upload: Upload, digest: str) -> None:
        """The upload is complete: the registry checks it against ``digest``."""
        url = f"{upload.location}{'&' if '?' in upload.location else '?'}{urlencode({'digest': digest})}"
        resp = self.request("PUT", url, self.scope(upload.repository, True), ok=(201,),
                            headers={"Content-Length": "0"}, what=f"upload of {digest[:19]}")
        _discard(resp)

    def cancel_upload(self, upload: Upload) -> None:
        """Drop an unfinished upload. Best effort: a registry that refuses, or has forgotten
        it (404), lets it expire by itself, as distribution does."""
        try:
            resp = self.request("DELETE", upload.location, self.scope(upload.repository, True), ok=(204,),
                                what="upload cancel")
            _discard(resp)
        except LgError:
            pass

    def _upload_offset(self, location: str, scope: str) -> int:
        """How many bytes of the upload the registry holds (its Range: 0-N)."""
        resp = self.request("GET", location, scope, ok=(204,), what="upload status")
        _discard(resp)
        m = re.fullmatch(r"0-(\d+)", (resp.headers.get("Range") or "").strip())
        return int(m.group(1)) + 1 if m else 0

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        resp = self.request("PUT", f"/v2/{repository}/manifests/{self._ref(reference)}",
                            self.scope(repository, True), body=body, ok=(201,),
                            headers={"Content-Type": media_type}, what=f"manifest {repository}:{reference}")
        _discard(resp)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def tags(self, repository: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repository}/tags/list", self.scope(repository),
                            what=f"tags of {repository}")
        doc = read_json(resp, MAX_MANIFEST, "tag list", self.document_time)
        tags = doc.get("tags") if isinstance(doc, dict) else None
        return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []

    def close(self) -> None:
        self._http.clear()


def _pieces(resp, what: str, seconds: float | None) -> Iterator[bytes]:
    """The body of ``resp`` as it arrives; with ``seconds``, all of it within that time
    (each piece as it comes, so that a trickle cannot hold one read open)."""
    if seconds is None:
        yield from resp.stream(CHUNK)
        return
    deadline = time.monotonic() + seconds
    while piece := resp.read1(CHUNK):
        if time.monotonic() > deadline:
            _discard(resp, reuse=False)
            raise RegistryError(f"{what}: not received within {seconds:g} seconds")
        yield piece


def read_bounded(resp, limit: int, what: str, seconds: float | None = None) -> bytes:
    """The whole body, at most ``limit`` bytes (within ``seconds``)."""
    data = bytearray()
    for chunk in _pieces(resp, what, seconds):
        data += chunk
        if len(data) > limit:
            _discard(resp, reuse=False)
            raise RegistryError(f"{what} is over {limit} bytes")
    return bytes(data)


def read_json(resp, limit: int, what: str, seconds: float | None = None):
    data = read_bounded(resp, limit, what, seconds)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what} is not valid JSON") from None


class BlobStream:
    """A blob's body as a file to read, checked against its digest and size as it flows:
    reading past the size, or ending short or with another digest, raises."""

    def __init__(self, resp, digest: str, size: int | None, what: str, on_bytes=None,
                 seconds: float | None = None):
        self._resp = resp
        self._chunks: Iterator[bytes] = _pieces(resp, what, seconds)  # seconds: a document's bound
        self._buf = b""  # the last chunk received, handed out from _pos: never copied whole per read
        self._pos = 0
        self._digest, self._size, self._what = digest, size, what
        self._sha = hashlib.sha256()
        self.received = 0
        self._done = False
        self._on_bytes = on_bytes  # called with the bytes received so far

    def readable(self) -> bool:
        return True

    def _more(self) -> bool:
        import urllib3

        if self._done:
            return False
        try:
            chunk = next(self._chunks, b"")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RegistryError(f"{self._what}: {_transport_error(exc)}") from None
        if not chunk:
            self._done = True
            self._check_end()
            return False
        self.received += len(chunk)
        if self._size is not None and self.received > self._size:
            raise RegistryError(f"{self._what}: more than the {self._size} bytes the manifest says")
        self._sha.update(chunk)
        if self._on_bytes:
            self._on_bytes(self.received)
        self._buf = self._buf[self._pos:] + chunk if self._pos < len(self._buf) else chunk
        self._pos = 0
        return True

    def _check_end(self) -> None:
        if self._size is not None and self.received != self._size:
            raise RegistryError(f"{self._what}: {self.received} bytes, the manifest says {self._size}")
        if "sha256:" + self._sha.hexdigest() != self._digest:
            raise RegistryError(f"{self._what}: content does not match its digest {self._digest}")

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all with -1); short only at the end, where the checks run."""
        if n < 0:
            while self._more():
                pass
        else:
            while len(self._buf) - self._pos < n and self._more():
                pass
        end = len(self._buf) if n < 0 else min(len(self._buf), self._pos + n)
        out = self._buf[self._pos:end]
        self._pos = end
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        _discard(self._resp)

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _discard(resp, reuse: bool = True) -> None:
    """Done with ``resp``: the rest of a short body (at most DRAIN_MAX bytes, in at most
    DRAIN_TIME) is read so that its connection carries the next request; a longer one,
    one of unknown length or a trickle is not (nor any without ``reuse``): the connection
    is closed, since a hostile server may send without end."""
    if not (reuse and _drained(resp)):
        try:
            resp.close()
        except Exception:  # already broken: nothing to close
            pass
    resp.release_conn()


def _drained(resp) -> bool:
    """Whether the rest of ``resp``'s body was short and came quickly, and is now read."""
    try:
        remaining = resp.length_remaining
        if not resp.closed and (remaining is None or remaining > DRAIN_MAX):
            return False
        deadline = time.monotonic() + DRAIN_TIME
        while resp.read1(DRAIN_MAX):
            if time.monotonic() > deadline:
                return False
        return True
    except Exception:  # broken: the connection is not reused
        return False


def _rewind(body) -> None:
    if hasattr(body, "seek"):
        body.seek(0)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait before the one retry of a 429, None to fail now (no header,
    a date, or longer than MAX_RETRY_AFTER)."""
    try:
        delay = float(value or "")
    except ValueError:
        return None
    return delay if 0 <= delay <= MAX_RETRY_AFTER else None


def _error_detail(resp, seconds: float) -> str:
    """The first error message of the registry's JSON error body, escaped and cut."""
    try:
        data = read_bounded(resp, DRAIN_MAX, "error", seconds) if resp.status >= 400 else b""
        errors = json.loads(data).get("errors") if data else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message") or errors[0].get("code")
            if isinstance(message, str) and message:
                return f" ({printable(message[:200])})"
    except Exception:  # an error body is a courtesy; a hostile one is ignored
        pass
    return ""


def _transport_error(exc: Exception) -> str:
    import urllib3

    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError)):
        return "timed out"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS failed: {printable(str(exc)[:200])}"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or unreachable"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "connection dropped"
    return printable(str(exc)[:200])


def check_host(host: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", host):
        raise UsageError(f"invalid registry {printable(host[:100])!r}")
