"""Worker processes that run litellm calls, so the pipeline uses every core.

litellm spends several milliseconds of Python per call (request building, response
parsing, cost bookkeeping); at hundreds of calls per second that, not the network, is the
bottleneck of one process. The parent keeps everything that needs one owner (the ledger,
retries, the spending cap, rate limits) and ships only the completion itself to a worker.
A page's calls go to the same worker, so a local model's prompt cache sees that page's
calls back to back.

A worker can die (a signal, the OOM killer, a crash in native code). Its in-flight calls
come back at once as failed with the cause (``worker died: SIGKILL``), a fresh worker takes
its place, and after ``MAX_RESTARTS`` replacements the pool is broken: every further call
raises ``CallWorkersFailed`` so the stage stops with that reason instead of waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import signal
import threading

from .completion import CompletionReply, complete_once

READY = "ready"  # a worker's first message: litellm is imported and set up
MAX_RESTARTS = 3
START_TIMEOUT_S = 120.0  # importing litellm and loading a model on a busy machine


class CallWorkersFailed(RuntimeError):
    """The call workers kept dying, so no more calls can be made in this process."""


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
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .litellm_setup import prepare_litellm

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


def _settle(future: asyncio.Future, reply: CompletionReply) -> None:
    if not future.done():
        future.set_result(reply)


def _settle_from_thread(loop: asyncio.AbstractEventLoop, future: asyncio.Future,
                        reply: CompletionReply) -> None:
    try:
        loop.call_soon_threadsafe(_settle, future, reply)
    except RuntimeError:  # the session that asked has ended (a late reply): nobody waits
        pass


class _Worker:
    """One worker process, its pipe, and the calls sent to it that await a reply."""

    def __init__(self, context, setup: dict, slot: int):
        parent_end, child_end = context.Pipe()
        self.slot = slot
        self.process = context.Process(target=_worker_main, args=(child_end, setup),
                                       daemon=True)
        self.process.start()
        child_end.close()
        self.connection = parent_end
        self.send_lock = threading.Lock()
        self.pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}

    def wait_ready(self) -> bool:
        try:
            if not self.connection.poll(START_TIMEOUT_S):
                return False
            return self.connection.recv() == READY
        except (EOFError, OSError):
            return False

    def cause_of_death(self) -> str:
        self.process.join(timeout=2)
        code = self.process.exitcode
        if code is None:
            self.process.kill()
            return "worker stopped answering"
        if code < 0:
            try:
                return f"worker died: {signal.Signals(-code).name}"
            except ValueError:
                return f"worker died: signal {-code}"
        return f"worker died: exit code {code}"

    def stop(self) -> None:
        with self.send_lock:
            try:
                self.connection.send(None)
            except (OSError, ValueError):
                pass


class CallWorkerPool:
    """A fixed number of worker slots, shared by every session of this process."""

    def __init__(self, workers: int, setup: dict, max_restarts: int = MAX_RESTARTS):
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded process
        self._setup = setup
        self._ids = itertools.count()
        self._lock = threading.Lock()  # slots, pending calls, restarts, broken
        self._closing = False
        self.max_restarts = max_restarts
        self.restarts = 0
        self.deaths: list[str] = []
        self.broken: str | None = None
        self._slots: list[_Worker | None] = [
            _Worker(self._context, setup, slot) for slot in range(workers)]
        # Wait until every worker has imported litellm, so start-up is paid here, once,
        # and not hidden in the first calls' latency.
        for worker in self._slots:
            if not worker.wait_ready():
                cause = worker.cause_of_death()
                self.close()
                raise RuntimeError(f"a call worker process failed to start ({cause})")
        for worker in self._slots:
            self._watch(worker)

    @property
    def size(self) -> int:
        return len(self._slots)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._slots if w is not None]

    def in_flight(self) -> dict[int, int]:
        """Calls awaiting a reply, by worker process id."""
        with self._lock:
            return {w.process.pid: len(w.pending) for w in self._slots if w is not None}

    def _watch(self, worker: _Worker) -> None:
        threading.Thread(target=self._receive, args=(worker,), daemon=True).start()

    def _receive(self, worker: _Worker) -> None:
        while True:
            try:
                request_id, reply = worker.connection.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                entry = worker.pending.pop(request_id, None)
            if entry is not None:
                _settle_from_thread(*entry, reply)
        if not self._closing:
            self._replace(worker, worker.cause_of_death())

    def _replace(self, dead: _Worker, cause: str) -> None:
        """Fail the dead worker's calls with the cause, then start a fresh worker in its
        slot while restarts remain; past that, the pool is broken."""
        while True:
            with self._lock:
                pending, dead.pending = dead.pending, {}
                self._slots[dead.slot] = None
                self.deaths.append(cause)
                restart = self.restarts < self.max_restarts
                if restart:
                    self.restarts += 1
                else:
                    self.broken = (f"{cause}; the call workers died {len(self.deaths)} times, "
                                   "so no further calls are started in this process")
            failure = CompletionReply(ok=False, retry=False, reason=cause,
                                      message="the call was in flight when its worker died")
            for loop, future in pending.values():
                _settle_from_thread(loop, future, failure)
            if not restart or self._closing:
                return
            replacement = _Worker(self._context, self._setup, dead.slot)
            if replacement.wait_ready():
                with self._lock:
                    self._slots[dead.slot] = replacement
                self._watch(replacement)
                return
            dead, cause = replacement, replacement.cause_of_death()

    def _pick(self, route: int) -> _Worker | None:
        """The page's own worker, or while it is being replaced any live one."""
        worker = self._slots[route % len(self._slots)]
        return worker or next((w for w in self._slots if w is not None), None)

    async def complete(self, request: dict, route: int) -> CompletionReply:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request_id = next(self._ids)
        while True:
            with self._lock:
                if self.broken:
                    raise CallWorkersFailed(self.broken)
                worker = self._pick(route)
                if worker is not None:
                    worker.pending[request_id] = (loop, future)
                    break
            await asyncio.sleep(0.05)  # every slot is being replaced right now
        try:
            with worker.send_lock:
                worker.connection.send((request_id, request))
        except (OSError, ValueError):
            pass  # it died before the send: its watcher settles this call with the cause
        try:
            return await future
        finally:
            with self._lock:
                worker.pending.pop(request_id, None)

    def close(self) -> None:
        self._closing = True
        workers = [w for w in self._slots if w is not None]
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()


_pools: dict[tuple, CallWorkerPool] = {}
_pools_lock = threading.Lock()


def start_shared_pool(workers: int, setup: dict) -> None:
    """``shared_pool`` for a background thread: a failure is left to the stage to report."""
    try:
        shared_pool(workers, setup)
    except Exception:  # noqa: BLE001 - the stage starts the pool itself and says why not
        pass


def shared_pool(workers: int, setup: dict) -> CallWorkerPool:
    """One pool per configuration per process: start-up is paid once, not per asset."""
    key = (workers, repr(sorted(setup.items())))
    with _pools_lock:
        if key not in _pools:
            _pools[key] = CallWorkerPool(workers, setup)
            import atexit

            atexit.register(_pools[key].close)
        return _pools[key]
