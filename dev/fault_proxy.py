"""A small threaded HTTP/1.1 proxy on 127.0.0.1 for tests and benchmarks.

It forwards every request to one target (e.g. the local HAPI) and can:
- add a fixed latency to every request (`latency` seconds), to stand in for the round trip to a cloud FHIR
  store;
- answer the next N requests itself with a given status (429, 503...) and Retry-After, without forwarding;
- stand in for a store that went down (`go_down`): every connection is dropped without an answer, the
  first request forwarded and its answer lost (the store applied it, then died), until `come_back`;
- record what it saw (method, path, status, whether the answer was injected).

Keep-alive works both ways: each client connection gets its own upstream connection, so a client that
opens a new connection per request (the original sample's behaviour) pays for it through the proxy too.

    with FaultProxy("http://127.0.0.1:8080", latency=0.025) as proxy:
        proxy.inject(503, count=2, retry_after="1")
        url = proxy.url + "/fhir"
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# RFC 9110 7.6.1: connection-specific headers are not forwarded.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: str | None = None
    body: bytes = b""
    content_type: str = "application/fhir+json"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int
    injected: bool
    at: float  # when the answer came (or the fault was given)
    arrived: float  # when the request came in: at - arrived is the time it was at the target


class FaultProxy:
    def __init__(self, target: str, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the proxy forwards to plain http targets such as http://127.0.0.1:8080")
        self.target_host = parts.hostname
        self.target_port = parts.port or 80
        self.latency = latency
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._down = False
        self._lose_next_answer = False
        self.seen: list[Seen] = []
        self._server = _Server((host, port), _Handler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(self, status: int, count: int = 1, *, retry_after: str | None = None, body: bytes | None = None) -> None:
        """Answer the next `count` requests with `status` (and Retry-After) instead of forwarding them."""
        if body is None:
            body = (
                b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient",'
                b'"diagnostics":"injected by the test proxy"}]}'
            )
        with self._lock:
            self._faults.extend(Fault(status, retry_after, body) for _ in range(count))

    def go_down(self, *, applied_first: bool = True) -> None:
        """From now on drop every connection without an answer. `applied_first`: forward the next request
        first and lose its answer, as a store that applied a bundle and died before replying; otherwise the
        store is simply unreachable."""
        with self._lock:
            self._down, self._lose_next_answer = True, applied_first

    def come_back(self) -> None:
        with self._lock:
            self._down = False

    def _outage(self) -> tuple[bool, bool]:
        """(down, forward this request first): the lost answer is taken once."""
        with self._lock:
            forward, self._lose_next_answer = self._down and self._lose_next_answer, False
            return self._down, forward

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.seen.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, method: str, path: str, status: int, injected: bool, arrived: float) -> None:
        with self._lock:
            self.seen.append(Seen(method, path, status, injected, time.monotonic(), arrived))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The per-request baseline opens many short connections at once.
    request_queue_size = 256
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards the client
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        super().finish()
        if self._upstream is not None:
            self._upstream.close()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (base class signature)
        pass  # quiet: tests and the benchmark print their own figures

    def do_GET(self) -> None:  # noqa: N802  (BaseHTTPRequestHandler dispatch names)
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815

    def _handle(self) -> None:
        proxy = self.server.proxy
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if proxy.latency:
            time.sleep(proxy.latency)
        down, forward = proxy._outage()
        if down:
            if forward:
                with contextlib.suppress(OSError):
                    self._forward(body)
            self.close_connection = True  # no answer: the client sees the connection closed
            proxy._record(self.command, self.path, 0, True, arrived)
            return
        fault = proxy._next_fault()
        if fault is not None:
            headers = {"Content-Type": fault.content_type}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            self._reply(fault.status, headers, fault.body)
            proxy._record(self.command, self.path, fault.status, True, arrived)
            return
        try:
            status, headers, payload = self._forward(body)
        except OSError:
            # Target down: answer as a gateway would, and drop the broken upstream connection.
            self._drop_upstream()
            status, headers, payload = 502, {"Content-Type": "text/plain"}, b"upstream unreachable"
        # Recorded before the answer goes back: a client that gave up waiting (its read timeout) still made
        # the target do the work.
        proxy._record(self.command, self.path, status, False, arrived)
        try:
            self._reply(status, headers, payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        proxy = self.server.proxy
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = f"{proxy.target_host}:{proxy.target_port}"
        for attempt in (1, 2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=300)
            try:
                self._upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = self._upstream.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The target closed an idle keep-alive connection: reconnect once.
                self._drop_upstream()
                if attempt == 2:
                    raise
                continue
            out = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            return response.status, out, payload
        raise OSError("unreachable")  # pragma: no cover

    def _drop_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        # send_response_only: the target's own Date and Server headers pass through, not doubled.
        self.send_response_only(status)
        for key, value in headers.items():
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
