"""Worker processes that run litellm calls, so the pipeline uses every core.

litellm spends several milliseconds of Python per call (request building, response
parsing, cost bookkeeping); at hundreds of calls per second that, not the network, is the
bottleneck of one process. The parent keeps everything that needs one owner (the ledger,
retries, the spending cap, rate limits) and ships only the completion itself to a worker.
A page's calls always go to the same worker, so a local model's prompt cache sees that
page's calls back to back.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
from dataclasses import dataclass


READY = "ready"  # a worker's first message: litellm is imported and set up


@dataclass
class WorkerReply:
    ok: bool
    content: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    retry: bool = False
    reason: str = ""
    retry_after: float | None = None
    message: str = ""


def complete_with_litellm_result(response) -> WorkerReply:
    """Read a litellm response; a reply without text content is malformed."""
    from .llm import MalformedReply

    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError) as error:
        raise MalformedReply(f"reply has no message content ({error})") from error
    if not isinstance(content, str):
        raise MalformedReply("reply content is not text")
    usage = getattr(response, "usage", None)
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    return WorkerReply(
        ok=True,
        content=content,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=float(cost) if cost is not None else None,
    )


async def complete_once(litellm, request: dict) -> WorkerReply:
    """One completion attempt, never raising: failures come back classified."""
    from .llm import classify_failure

    try:
        return complete_with_litellm_result(await litellm.acompletion(**request))
    except Exception as error:  # noqa: BLE001 - classified for the parent's retry policy
        retry, reason, retry_after = classify_failure(error)
        return WorkerReply(ok=False, retry=retry, reason=reason, retry_after=retry_after,
                           message=str(error)[:500])


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with litellm's server extras): less CPU per call."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _warm_up(loop: asyncio.AbstractEventLoop, litellm) -> None:
    """One offline mock completion: litellm imports much of itself on first use, which
    would otherwise land on the first real calls' latency."""
    try:
        loop.run_until_complete(litellm.acompletion(
            model="openai/warm-up", messages=[{"role": "user", "content": "hi"}],
            mock_response="ok"))
    except Exception:  # noqa: BLE001 - warming up is an optimisation only
        pass


def _worker_main(connection, setup: dict) -> None:
    from .llm import prepare_litellm

    litellm = prepare_litellm(**setup)
    loop = _new_event_loop()
    _warm_up(loop, litellm)
    connection.send(READY)
    send_lock = threading.Lock()

    async def handle(request_id: int, request: dict) -> None:
        reply = await complete_once(litellm, request)
        with send_lock:
            connection.send((request_id, reply))

    def receive() -> None:
        while True:
            try:
                message = connection.recv()
            except EOFError:
                message = None
            if message is None:
                loop.call_soon_threadsafe(loop.stop)
                return
            loop.call_soon_threadsafe(loop.create_task, handle(*message))

    threading.Thread(target=receive, daemon=True).start()
    loop.run_forever()


class CallWorkerPool:
    """A fixed set of worker processes, shared by every session of this process."""

    def __init__(self, workers: int, setup: dict):
        context = multiprocessing.get_context("spawn")  # never fork a threaded Dagster process
        self._ids = itertools.count()
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._lock = threading.Lock()
        self._connections = []
        self._processes = []
        self._send_locks: list[threading.Lock] = []
        for _ in range(workers):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end, setup),
                                      daemon=True)
            process.start()
            child_end.close()
            self._connections.append(parent_end)
            self._processes.append(process)
            self._send_locks.append(threading.Lock())
        # Wait until every worker has imported litellm, so start-up is paid here, once,
        # and not hidden in the first calls' latency.
        for connection in self._connections:
            try:
                ready = connection.recv()
            except EOFError:
                ready = None
            if ready != READY:
                self.close()
                raise RuntimeError("a call worker process failed to start")
        for connection in self._connections:
            threading.Thread(target=self._receive, args=(connection,), daemon=True).start()

    @property
    def size(self) -> int:
        return len(self._connections)

    def _receive(self, connection) -> None:
        while True:
            try:
                request_id, reply = connection.recv()
            except (EOFError, OSError):
                self._fail_pending("a call worker process exited")
                return
            with self._lock:
                loop, future = self._pending.pop(request_id, (None, None))
            if future is not None:
                loop.call_soon_threadsafe(_settle, future, reply)

    def _fail_pending(self, message: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for loop, future in pending.values():
            reply = WorkerReply(ok=False, retry=True, reason="WorkerExited", message=message)
            loop.call_soon_threadsafe(_settle, future, reply)

    async def complete(self, request: dict, route: int) -> WorkerReply:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request_id = next(self._ids)
        with self._lock:
            self._pending[request_id] = (loop, future)
        slot = route % self.size
        with self._send_locks[slot]:
            self._connections[slot].send((request_id, request))
        return await future

    def close(self) -> None:
        for connection, lock in zip(self._connections, self._send_locks):
            with lock:
                try:
                    connection.send(None)
                except OSError:
                    pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


def _settle(future: asyncio.Future, reply: WorkerReply) -> None:
    if not future.done():
        future.set_result(reply)


_pools: dict[tuple, CallWorkerPool] = {}
_pools_lock = threading.Lock()


def shared_pool(workers: int, setup: dict) -> CallWorkerPool:
    """One pool per configuration per process: start-up is paid once, not per asset."""
    key = (workers, repr(sorted(setup.items())))
    with _pools_lock:
        if key not in _pools:
            _pools[key] = CallWorkerPool(workers, setup)
            import atexit

            atexit.register(_pools[key].close)
        return _pools[key]
