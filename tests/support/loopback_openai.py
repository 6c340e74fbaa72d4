"""Loopback OpenAI-compatible chat-completions server for tests and benchmarks.

Never used by the product.  Standard library only, binds to 127.0.0.1 only.

Usage::

    with LoopbackOpenAI(latency_s=0.05, fault_rate=0.1, seed=0) as server:
        litellm.completion(model="openai/loopback", api_base=server.base_url,
                           api_key="sk-test", messages=[...])
        assert server.replies_ok == ...

Endpoints (with or without the ``/v1`` prefix):

* ``POST /v1/chat/completions`` -> ``chat.completion`` JSON (or SSE chunks when
  ``"stream": true``).  The reply is deterministic from the request: a short
  lead ("Here is", ...) followed by ~25 words sampled (in order) from the last
  user message with an RNG seeded by a hash of the messages, so different
  prompts give lexically different replies.  Tokens are whitespace words.
  A reply longer than the request's ``max_tokens`` is cut there with
  ``finish_reason: "length"``, as a real server does; ``length_fn(messages)``
  returning True cuts a reply to half its words the same way (a model that hit
  its cap), whatever ``max_tokens`` says.
* ``GET /v1/models`` -> one model.
* ``GET /health`` -> ``{"ok": true}``.

Fault injection per chat request, in arrival order: first the kinds in
``script`` (``None`` = no fault) are consumed, then with probability
``fault_rate`` (seeded RNG) one of ``faults`` is chosen:

* ``"429"``: status 429, ``Retry-After: <retry_after_s>`` (fractional seconds)
  and ``retry-after-ms`` headers, OpenAI-style error JSON.
* ``"500"``: status 500 with an OpenAI-style error JSON.
* ``"hang"``: wait ``hang_s`` (without blocking other requests) before replying
  normally; if the client disconnects meanwhile the request is abandoned.
* ``"malformed"``: status 200 with a broken body, cycling through
  ``malformed_modes`` (``"invalid_json"``, ``"no_choices"``).

Run standalone: ``python -m tests.support.loopback_openai --port 8765 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import select
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Optional, Sequence

__all__ = ["LoopbackOpenAI", "call_key", "default_reply", "message_text", "FAULT_KINDS"]

HOST = "127.0.0.1"
FAULT_KINDS = ("429", "500", "hang", "malformed")
MALFORMED_MODES = ("invalid_json", "no_choices")
DEFAULT_MODEL = "loopback"

_LEADS = ("Here is", "Please explain", "Consider this", "In short", "To summarise")
_FALLBACK_WORDS = (
    "the loopback server received no readable text so this placeholder answer "
    "stands in for a real model reply"
).split()


# --------------------------------------------------------------------------- helpers


def message_text(content: Any) -> str:
    """Flatten an OpenAI message ``content`` (str or list of parts) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return str(content)


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def call_key(
    model: Any,
    messages: Any,
    temperature: Any = None,
    max_tokens: Any = None,
    top_p: Any = None,
) -> str:
    """Hash identifying one distinct call (as seen on the wire)."""
    return _digest(
        {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "top_p": top_p,
        }
    )


def _body_key(body: dict) -> str:
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_completion_tokens")
    return call_key(
        body.get("model"), body.get("messages"), body.get("temperature"), max_tokens, body.get("top_p")
    )


def default_reply(messages: Sequence[dict]) -> str:
    """Deterministic reply built from words of the last user message."""
    text = ""
    for msg in reversed(list(messages or [])):
        if isinstance(msg, dict) and msg.get("role") == "user":
            text = message_text(msg.get("content"))
            break
    if not text.strip():  # no user message: fall back to any text at all
        text = " ".join(
            message_text(m.get("content")) for m in (messages or []) if isinstance(m, dict)
        )
    words = text.split() or list(_FALLBACK_WORDS)
    seed = int(_digest(messages)[:16], 16)
    rng = random.Random(seed)
    k = min(25, len(words))
    picked = [words[i] for i in sorted(rng.sample(range(len(words)), k))]
    lead = _LEADS[seed % len(_LEADS)]
    return f"{lead} " + " ".join(picked)


def _count_tokens(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- HTTP layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never wait for hung/keep-alive handler threads
    request_queue_size = 1024
    allow_reuse_address = True

    owner: "LoopbackOpenAI"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx/openai clients expect
    server_version = "LoopbackOpenAI/1.0"
    server: _Server

    # -- connection tracking so close() can unblock idle keep-alive readers
    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    # -- plumbing
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: Optional[dict] = None,
    ) -> bool:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            return True
        except OSError:  # client went away (timeout, cancelled)
            self.close_connection = True
            return False

    def _send_json(self, status: int, obj: Any, headers: Optional[dict] = None) -> bool:
        return self._send(status, json.dumps(obj).encode("utf-8"), headers=headers)

    @staticmethod
    def _route(path: str) -> str:
        path = path.split("?", 1)[0].rstrip("/")
        if path.startswith("/v1/"):
            path = path[3:]
        return path or "/"

    # -- verbs
    def do_GET(self) -> None:  # noqa: N802
        route = self._route(self.path)
        owner = self.server.owner
        if route == "/models":
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": owner.model_id, "object": "model", "created": 0, "owned_by": "loopback"}
                    ],
                },
            )
        elif route == "/first-request":
            # For a benchmark in another process: when the first chat request since the
            # last read arrived (wall clock), then forget it.
            self._send_json(200, {"unix_time": owner.take_first_arrival()})
        elif route in ("/health", "/"):
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        route = self._route(self.path)
        raw = self._read_body()
        if route != "/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        self.server.owner._handle_chat(self, raw)


# --------------------------------------------------------------------------- public class


class LoopbackOpenAI:
    """OpenAI-compatible loopback server running in a background thread."""

    def __init__(
        self,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        faults: Iterable[str] = FAULT_KINDS,
        hang_s: float = 30.0,
        seed: int = 0,
        *,
        retry_after_s: float = 0.2,
        reply_fn: Optional[Callable[[list], str]] = None,
        length_fn: Optional[Callable[[list], bool]] = None,
        script: Optional[Iterable[Optional[str]]] = None,
        malformed_modes: Sequence[str] = MALFORMED_MODES,
        model_id: str = DEFAULT_MODEL,
        port: int = 0,
    ) -> None:
        faults = tuple(faults)
        for kind in faults:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        for mode in malformed_modes:
            if mode not in MALFORMED_MODES:
                raise ValueError(f"unknown malformed mode {mode!r}; expected one of {MALFORMED_MODES}")
        if fault_rate > 0 and not faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        self.latency_s = float(latency_s)
        self.fault_rate = float(fault_rate)  # may be changed while running
        self.faults = faults
        self.hang_s = float(hang_s)
        self.retry_after_s = float(retry_after_s)
        self.reply_fn = reply_fn
        self.length_fn = length_fn
        self.malformed_modes = tuple(malformed_modes) or MALFORMED_MODES
        self.model_id = model_id
        self.seed = seed
        self._port = port
        self._rng = random.Random(seed)
        self._script = list(script or [])
        for kind in self._script:
            if kind is not None and kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind in script: {kind!r}")

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set = set()
        self._httpd: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._reset_locked()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> "LoopbackOpenAI":
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = _Server((HOST, self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-openai", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        self._stop.set()  # wakes latency / hang waits
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # unblock handler threads waiting on keep-alive reads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    stop = close

    def __enter__(self) -> "LoopbackOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    # ----------------------------------------------------------------- counters
    def _reset_locked(self) -> None:
        self._requests_total = 0
        self._replies_ok = 0
        self._faults_by_kind: Counter = Counter()
        self._ok_reply_keys: Counter = Counter()
        self._length_reply_keys: Counter = Counter()
        self._sampling_seen: Counter = Counter()
        self._request_keys: Counter = Counter()
        self._status_counts: Counter = Counter()
        self._hang_abandoned = 0
        self._bad_requests = 0
        self._malformed_count = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._arrivals: list = []
        self._first_arrival_unix: float | None = None  # since /first-request was last read

    def reset_counters(self) -> None:
        """Zero every counter (fault RNG / script position are kept)."""
        with self._lock:
            self._reset_locked()

    @property
    def requests_total(self) -> int:
        """Chat-completion requests received (any outcome)."""
        with self._lock:
            return self._requests_total

    @property
    def replies_ok(self) -> int:
        """Successful 200 replies carrying a valid completion that were written out."""
        with self._lock:
            return self._replies_ok

    @property
    def faults_by_kind(self) -> dict:
        with self._lock:
            return dict(self._faults_by_kind)

    @property
    def ok_reply_keys(self) -> Counter:
        """Counter of call_key(...) for each successful reply."""
        with self._lock:
            return Counter(self._ok_reply_keys)

    @property
    def length_reply_keys(self) -> Counter:
        """Counter of call_key(...) for each successful reply cut with finish_reason "length"."""
        with self._lock:
            return Counter(self._length_reply_keys)

    @property
    def sampling_seen(self) -> Counter:
        """Counter of (temperature, top_p, max_tokens) as received in well-formed requests."""
        with self._lock:
            return Counter(self._sampling_seen)

    @property
    def request_keys(self) -> Counter:
        """Counter of call_key(...) for every well-formed chat request received."""
        with self._lock:
            return Counter(self._request_keys)

    @property
    def status_counts(self) -> dict:
        """HTTP status -> count, for chat requests whose response was sent."""
        with self._lock:
            return dict(self._status_counts)

    @property
    def hang_abandoned(self) -> int:
        """Hung requests whose client disconnected before the hang ended."""
        with self._lock:
            return self._hang_abandoned

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def take_first_arrival(self) -> float | None:
        with self._lock:
            first, self._first_arrival_unix = self._first_arrival_unix, None
            return first

    @property
    def arrivals(self) -> list:
        """(time.monotonic(), call key, fault or None) of every well-formed chat request,
        in arrival order: the gaps between one call's attempts are its client's waits."""
        with self._lock:
            return list(self._arrivals)

    def paid_twice(self) -> dict:
        """call keys that received more than one successful reply."""
        with self._lock:
            return {k: n for k, n in self._ok_reply_keys.items() if n > 1}

    def stats(self) -> dict:
        with self._lock:
            return {
                "requests_total": self._requests_total,
                "replies_ok": self._replies_ok,
                "faults_by_kind": dict(self._faults_by_kind),
                "status_counts": dict(self._status_counts),
                "distinct_ok_keys": len(self._ok_reply_keys),
                "paid_twice": sum(1 for n in self._ok_reply_keys.values() if n > 1),
                "hang_abandoned": self._hang_abandoned,
                "bad_requests": self._bad_requests,
                "max_in_flight": self._max_in_flight,
            }

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ----------------------------------------------------------------- request handling
    def _next_fault(self) -> Optional[str]:
        """Decide the fault for the next arriving request (caller holds the lock)."""
        if self._script:
            return self._script.pop(0)
        # always draw so the sequence depends only on arrival order and seed
        draw = self._rng.random()
        if self.fault_rate > 0 and self.faults and draw < self.fault_rate:
            return self._rng.choice(self.faults)
        return None

    def _wait_hang(self, handler: _Handler) -> bool:
        """Sleep hang_s; return False if the client disconnected or the server stops."""
        deadline = time.monotonic() + self.hang_s
        sock = handler.connection
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if self._stop.is_set():
                return False
            try:
                readable, _, _ = select.select([sock], [], [], min(remaining, 0.05))
                if readable:
                    peek = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    if peek == b"":
                        return False  # client closed its end (timed out)
                    # pipelined data from the client: just keep waiting
                    self._stop.wait(min(remaining, 0.05))
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return False

    def _completion(self, body: dict, text: str, finish_reason: str = "stop") -> dict:
        prompt_tokens = sum(
            _count_tokens(message_text(m.get("content")))
            for m in body.get("messages", [])
            if isinstance(m, dict)
        )
        completion_tokens = _count_tokens(text)
        try:
            n = max(1, int(body.get("n") or 1))
        except (TypeError, ValueError):
            n = 1
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model_id,
            "system_fingerprint": "fp_loopback",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens * n,
                "total_tokens": prompt_tokens + completion_tokens * n,
            },
        }

    def _stream_payload(self, completion: dict) -> bytes:
        base = {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
        }
        text = completion["choices"][0]["message"]["content"]
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        ]
        words = text.split(" ")
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        finish_reason = completion["choices"][0]["finish_reason"]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}], "usage": completion["usage"]})
        out = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return out.encode("utf-8")

    def _handle_chat(self, handler: _Handler, raw: bytes) -> None:
        with self._lock:
            self._requests_total += 1
            fault = self._next_fault()
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            self._handle_chat_inner(handler, raw, fault)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _handle_chat_inner(self, handler: _Handler, raw: bytes, fault: Optional[str]) -> None:
        def respond(status: int, obj: Any = None, *, payload: Optional[bytes] = None,
                    content_type: str = "application/json", headers: Optional[dict] = None,
                    ok_key: Optional[str] = None) -> bool:
            """Write a response. Counters are updated *before* the write so a client
            that has read the response always sees them; rolled back if the write
            fails (client gone)."""
            if payload is None:
                payload = json.dumps(obj).encode("utf-8")
            with self._lock:
                self._status_counts[status] += 1
                if ok_key is not None:
                    self._replies_ok += 1
                    self._ok_reply_keys[ok_key] += 1
            if handler._send(status, payload, content_type=content_type, headers=headers):
                return True
            with self._lock:
                _decrement(self._status_counts, status)
                if ok_key is not None:
                    self._replies_ok -= 1
                    _decrement(self._ok_reply_keys, ok_key)
            return False

        try:
            body = json.loads(raw.decode("utf-8") or "{}")
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("body must be a JSON object with a 'messages' list")
        except (ValueError, UnicodeDecodeError) as exc:
            with self._lock:
                self._bad_requests += 1
            respond(400, {"error": {"message": f"invalid request: {exc}", "type": "invalid_request_error"}})
            return

        key = _body_key(body)
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            max_tokens = body.get("max_completion_tokens")
        with self._lock:
            self._request_keys[key] += 1
            self._sampling_seen[(body.get("temperature"), body.get("top_p"), max_tokens)] += 1
            self._arrivals.append((time.monotonic(), key, fault))
            if self._first_arrival_unix is None:
                self._first_arrival_unix = time.time()
            if fault is not None:
                self._faults_by_kind[fault] += 1

        if self.latency_s > 0 and self._stop.wait(self.latency_s):
            handler.close_connection = True
            return

        if fault == "429":
            respond(
                429,
                {"error": {"message": "Rate limit reached (loopback fault injection)",
                           "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}},
                headers={
                    "Retry-After": f"{self.retry_after_s:g}",
                    "retry-after-ms": str(int(round(self.retry_after_s * 1000))),
                },
            )
            return
        if fault == "500":
            respond(500, {"error": {"message": "Internal server error (loopback fault injection)",
                                    "type": "server_error", "param": None, "code": "internal_error"}})
            return
        if fault == "malformed":
            with self._lock:
                mode = self.malformed_modes[self._malformed_count % len(self.malformed_modes)]
                self._malformed_count += 1
            if mode == "invalid_json":
                respond(200, payload=b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"mess')
            else:
                respond(200, {"id": "chatcmpl-broken", "object": "chat.completion",
                              "created": int(time.time()), "model": body.get("model") or self.model_id})
            return
        if fault == "hang":
            if not self._wait_hang(handler):
                with self._lock:
                    self._hang_abandoned += 1
                handler.close_connection = True
                return

        reply_fn = self.reply_fn or default_reply
        try:
            text = reply_fn(body["messages"])
        except Exception as exc:  # a broken reply_fn is a test bug: make it loud
            respond(500, {"error": {"message": f"reply_fn raised {exc!r}", "type": "server_error"}})
            return
        text, finish_reason = str(text), "stop"
        try:
            cut_here = self.length_fn is not None and self.length_fn(body["messages"])
        except Exception as exc:  # a broken length_fn is a test bug: make it loud
            respond(500, {"error": {"message": f"length_fn raised {exc!r}", "type": "server_error"}})
            return
        words = text.split()  # tokens are whitespace words
        cap = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None
        if cut_here:
            cap = max(1, min(cap or len(words), len(words) // 2))
        if cap is not None and len(words) > cap:
            text, finish_reason = " ".join(words[:cap]), "length"
        completion = self._completion(body, text, finish_reason)
        if finish_reason == "length":  # counted before the write, like the other counters
            with self._lock:
                self._length_reply_keys[key] += 1
        if body.get("stream"):
            sent = respond(200, payload=self._stream_payload(completion), content_type="text/event-stream", ok_key=key)
        else:
            sent = respond(200, completion, ok_key=key)
        if not sent and finish_reason == "length":
            with self._lock:
                _decrement(self._length_reply_keys, key)


def _decrement(counter: Counter, key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


# --------------------------------------------------------------------------- CLI


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.loopback_openai",
        description="Loopback OpenAI-compatible chat-completions server (127.0.0.1 only; tests/benchmarks).",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = ephemeral)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept per request")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="comma list of " + ",".join(FAULT_KINDS))
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a 'hang' fault waits")
    parser.add_argument("--retry-after", type=float, default=0.2, help="Retry-After seconds on 429")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: until Ctrl-C)")
    args = parser.parse_args(argv)

    faults = tuple(f.strip() for f in args.faults.split(",") if f.strip())
    server = LoopbackOpenAI(
        latency_s=args.latency,
        fault_rate=args.fault_rate,
        faults=faults,
        hang_s=args.hang,
        seed=args.seed,
        retry_after_s=args.retry_after,
        port=args.port,
    )
    with server:
        print(f"loopback OpenAI server listening on {server.base_url}", flush=True)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        stop = threading.Event()
        # Ctrl-C / SIGTERM stop cleanly (also when started in the background,
        # where shells make the process ignore SIGINT)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            stop.wait(0.2 if remaining is None else min(0.2, remaining))
        print(json.dumps(server.stats()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
