"""Start the project's loopback OpenAI-compatible server in its own process (so its CPU
use does not share the benchmark's interpreter) and stop it afterwards."""

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def loopback_server(latency_s: float, fault_rate: float = 0.0, hang_s: float = 30.0,
                    seconds: int = 1800, faults: str = "429,500,hang,malformed"):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.loopback_openai", "--port", str(port),
         "--latency", str(latency_s), "--fault-rate", str(fault_rate), "--hang", str(hang_s),
         "--faults", faults, "--seconds", str(seconds)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/models", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
