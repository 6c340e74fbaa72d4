"""Tests for the loopback OpenAI-compatible server (tests/support/loopback_openai.py).

Support tests: they check the test server, not the product (``pytest -m "not support"``
leaves them out)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# litellm must not fetch its model cost map over the network: set before any import
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm  # noqa: E402

from tests.support.loopback_openai import LoopbackOpenAI, call_key, default_reply  # noqa: E402

pytestmark = pytest.mark.support

REPO_ROOT = Path(__file__).resolve().parents[1]


def post(url: str, body, timeout: float = 10.0):
    """POST JSON; return (status, headers, raw body bytes) even for HTTP errors."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _wait_for(condition, seconds: float = 10.0) -> None:
    """Poll the server's state until ``condition()`` holds (bounded)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.01)


def chat_body(text: str, **extra):
    body = {
        "model": "loopback",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": text},
        ],
        "temperature": 0.0,
        "max_tokens": 256,
    }
    body.update(extra)
    return body


PAGE_A = (
    "The river Thames flows through southern England including London. It is the longest river "
    "entirely in England and the second longest in the United Kingdom after the Severn. Barges once "
    "carried coal and grain along its tidal reaches while rowing clubs raced between Putney and Mortlake."
)
PAGE_B = (
    "Sourdough bread relies on a culture of wild yeast and lactic acid bacteria. Bakers feed the "
    "starter with flour and water, wait for it to bubble, then mix the dough, fold it several times "
    "and bake it in a very hot covered pot to build a crisp blistered crust and an open crumb."
)
TEMPLATE = "Read the web page below and write one instruction a user might ask about it.\n\nPage:\n"


def words(s: str) -> set:
    return set(s.lower().split())


# ----------------------------------------------------------------------------- basics


def test_completion_shape_and_determinism():
    with LoopbackOpenAI() as server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
        url = server.base_url + "/chat/completions"
        status, headers, raw = post(url, chat_body(TEMPLATE + PAGE_A))
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        obj = json.loads(raw)
        assert obj["object"] == "chat.completion"
        assert obj["id"].startswith("chatcmpl-")
        assert isinstance(obj["created"], int)
        assert obj["model"] == "loopback"
        choice = obj["choices"][0]
        assert choice["message"]["role"] == "assistant"
        assert choice["finish_reason"] == "stop"
        text = choice["message"]["content"]
        assert text.strip() and not text.startswith("I'm sorry")
        usage = obj["usage"]
        assert usage["completion_tokens"] == len(text.split())
        assert usage["prompt_tokens"] == len("You are helpful.".split()) + len((TEMPLATE + PAGE_A).split())
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

        # same messages -> same reply (also without the /v1 prefix)
        base = server.base_url[: -len("/v1")]
        _, _, raw2 = post(base + "/chat/completions", chat_body(TEMPLATE + PAGE_A))
        assert json.loads(raw2)["choices"][0]["message"]["content"] == text
        # the reply is made of words from the user message (plus a lead)
        assert len(words(text) & words(PAGE_A)) >= 10


def test_replies_differ_lexically_between_pages():
    a = default_reply([{"role": "user", "content": TEMPLATE + PAGE_A}])
    b = default_reply([{"role": "user", "content": TEMPLATE + PAGE_B}])
    assert a != b
    jaccard = len(words(a) & words(b)) / len(words(a) | words(b))
    assert jaccard < 0.3, (a, b, jaccard)
    # deterministic, never empty even for empty/odd content
    assert default_reply([{"role": "user", "content": TEMPLATE + PAGE_A}]) == a
    assert default_reply([]).strip()
    assert default_reply([{"role": "user", "content": ""}]).strip()
    parts = [{"role": "user", "content": [{"type": "text", "text": PAGE_B}]}]
    assert len(words(default_reply(parts)) & words(PAGE_B)) >= 10
    # many different pages -> many different replies
    replies = {default_reply([{"role": "user", "content": f"{TEMPLATE}{PAGE_A} item {i}"}]) for i in range(50)}
    assert len(replies) == 50


def test_models_endpoint_and_404():
    with LoopbackOpenAI() as server:
        with urllib.request.urlopen(server.base_url + "/models", timeout=5) as resp:
            obj = json.loads(resp.read())
        assert obj["object"] == "list"
        assert [m["id"] for m in obj["data"]] == ["loopback"]
        status, _, _ = post(server.base_url + "/nope", {"x": 1})
        assert status == 404
        status, _, raw = post(server.base_url + "/chat/completions", b"not json")
        assert status == 400 and "error" in json.loads(raw)
        assert server.replies_ok == 0


def test_reply_fn_override_and_streaming():
    with LoopbackOpenAI(reply_fn=lambda msgs: "I'm sorry, I can't help with that.") as server:
        url = server.base_url + "/chat/completions"
        _, _, raw = post(url, chat_body("anything"))
        assert json.loads(raw)["choices"][0]["message"]["content"] == "I'm sorry, I can't help with that."

        status, headers, raw = post(url, chat_body("anything", stream=True))
        assert status == 200 and headers["Content-Type"] == "text/event-stream"
        events = [line[len("data: "):] for line in raw.decode().splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        text = "".join(
            json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]
        )
        assert text == "I'm sorry, I can't help with that."
        assert server.replies_ok == 2


def test_replies_past_max_tokens_or_chosen_by_length_fn_are_cut():
    with LoopbackOpenAI(length_fn=lambda msgs: "cut me" in msgs[-1]["content"]) as server:
        url = server.base_url + "/chat/completions"
        whole = json.loads(post(url, chat_body(PAGE_A))[2])["choices"][0]
        assert whole["finish_reason"] == "stop"
        words = whole["message"]["content"].split()
        # max_tokens is a cap in whitespace words, as a server's cap is in tokens
        capped = json.loads(post(url, chat_body(PAGE_A, max_tokens=5))[2])
        assert capped["choices"][0]["finish_reason"] == "length"
        assert capped["choices"][0]["message"]["content"].split() == words[:5]
        assert capped["usage"]["completion_tokens"] == 5
        chosen = json.loads(post(url, chat_body("cut me " + PAGE_B, top_p=0.9))[2])["choices"][0]
        assert chosen["finish_reason"] == "length"
        _, _, raw = post(url, chat_body("cut me " + PAGE_B, stream=True))
        last = json.loads([line for line in raw.decode().splitlines()
                           if line.startswith("data: {")][-1][len("data: "):])
        assert last["choices"][0]["finish_reason"] == "length"
        assert sum(server.length_reply_keys.values()) == 3
        assert server.sampling_seen == {(0.0, None, 256): 2, (0.0, None, 5): 1,
                                        (0.0, 0.9, 256): 1}


# ----------------------------------------------------------------------------- concurrency


def test_fifty_parallel_requests_are_not_serialised():
    with LoopbackOpenAI(latency_s=1.0) as server:
        url = server.base_url + "/chat/completions"
        post(url, chat_body("warm up"))  # first connection/thread start-up
        server.reset_counters()
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda i: post(url, chat_body(f"page number {i} " + PAGE_A)), range(50)))
        assert all(status == 200 for status, _, _ in results)
        assert server.requests_total == 50 and server.replies_ok == 50
        # Served one at a time, no two requests would ever be open together.
        assert server.max_in_flight >= 25


# ----------------------------------------------------------------------------- faults


def test_fault_429_has_retry_after():
    with LoopbackOpenAI(fault_rate=1.0, faults=("429",), retry_after_s=0.25) as server:
        status, headers, raw = post(server.base_url + "/chat/completions", chat_body("x"))
        assert status == 429
        assert headers["Retry-After"] == "0.25"
        assert headers["retry-after-ms"] == "250"
        assert json.loads(raw)["error"]["type"] == "rate_limit_error"
        assert server.faults_by_kind == {"429": 1}
        assert server.replies_ok == 0 and server.requests_total == 1
    with LoopbackOpenAI(fault_rate=1.0, faults=("429",)) as server:  # default 0.2 s
        _, headers, _ = post(server.base_url + "/chat/completions", chat_body("x"))
        assert headers["Retry-After"] == "0.2"


def test_fault_500():
    with LoopbackOpenAI(fault_rate=1.0, faults=("500",)) as server:
        status, _, raw = post(server.base_url + "/chat/completions", chat_body("x"))
        assert status == 500
        assert json.loads(raw)["error"]["type"] == "server_error"
        assert server.faults_by_kind == {"500": 1} and server.replies_ok == 0


def test_fault_malformed_cycles_invalid_json_and_missing_choices():
    with LoopbackOpenAI(fault_rate=1.0, faults=("malformed",)) as server:
        url = server.base_url + "/chat/completions"
        status, _, raw = post(url, chat_body("x"))
        assert status == 200
        with pytest.raises(ValueError):
            json.loads(raw)
        status, _, raw = post(url, chat_body("x"))
        assert status == 200
        obj = json.loads(raw)
        assert "choices" not in obj
        assert server.faults_by_kind == {"malformed": 2} and server.replies_ok == 0
    with LoopbackOpenAI(fault_rate=1.0, faults=("malformed",), malformed_modes=("no_choices",)) as server:
        for _ in range(2):
            _, _, raw = post(server.base_url + "/chat/completions", chat_body("x"))
            assert "choices" not in json.loads(raw)


def test_fault_hang_times_out_client_without_blocking_others():
    # first request hangs, the rest are normal
    with LoopbackOpenAI(hang_s=5.0, script=["hang"]) as server:
        url = server.base_url + "/chat/completions"
        with ThreadPoolExecutor(max_workers=2) as pool:
            hung = pool.submit(post, url, chat_body("hang me"), 3.0)
            _wait_for(lambda: server.faults_by_kind.get("hang") == 1)  # it is hanging now
            status, _, _ = post(url, chat_body("fine"))
            # answered while the other request still hangs (its client waits 3 s)
            assert status == 200 and not hung.done()
            with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
                hung.result()
        # the server notices the client hung up and abandons the request
        _wait_for(lambda: server.hang_abandoned >= 1)
        assert server.hang_abandoned == 1
        assert server.faults_by_kind == {"hang": 1}
        assert server.replies_ok == 1 and server.requests_total == 2

    # at rate 1.0 every request hangs; closing the server must not wait hang_s
    server = LoopbackOpenAI(fault_rate=1.0, faults=("hang",), hang_s=30.0).start()
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        post(server.base_url + "/chat/completions", chat_body("x"), timeout=0.3)
    t0 = time.perf_counter()
    server.close()
    assert time.perf_counter() - t0 < 15.0  # far less than the 30 s hang


def test_hang_shorter_than_client_timeout_is_answered():
    with LoopbackOpenAI(fault_rate=1.0, faults=("hang",), hang_s=0.2) as server:
        t0 = time.perf_counter()
        status, _, raw = post(server.base_url + "/chat/completions", chat_body("x"), timeout=5)
        assert status == 200 and json.loads(raw)["choices"]
        assert time.perf_counter() - t0 >= 0.2
        assert server.replies_ok == 1


def test_fault_sequence_is_seeded():
    def run(seed):
        with LoopbackOpenAI(fault_rate=0.5, faults=("429", "500"), seed=seed) as server:
            return [post(server.base_url + "/chat/completions", chat_body(f"q{i}"))[0] for i in range(30)]

    first = run(7)
    assert first == run(7)
    assert {200, 429, 500} <= set(first)


# ----------------------------------------------------------------------------- counters


def test_counters_ok_keys_and_reset():
    with LoopbackOpenAI(script=["500", None, None, "429"]) as server:
        url = server.base_url + "/chat/completions"
        body_a = chat_body("page A " + PAGE_A)
        body_b = chat_body("page B " + PAGE_B, top_p=0.9)
        assert post(url, body_a)[0] == 500  # fault, then retry succeeds
        assert post(url, body_a)[0] == 200
        assert post(url, body_b)[0] == 200
        assert post(url, body_b)[0] == 429
        assert server.requests_total == 4
        assert server.replies_ok == 2
        assert server.faults_by_kind == {"500": 1, "429": 1}
        assert server.status_counts == {500: 1, 200: 2, 429: 1}
        key_a = call_key("loopback", body_a["messages"], 0.0, 256, None)
        key_b = call_key("loopback", body_b["messages"], 0.0, 256, 0.9)
        assert server.ok_reply_keys == {key_a: 1, key_b: 1}
        assert server.request_keys == {key_a: 2, key_b: 2}
        assert server.paid_twice() == {}

        assert post(url, body_a)[0] == 200  # same call paid twice
        assert server.paid_twice() == {key_a: 2}
        assert server.stats()["paid_twice"] == 1

        server.reset_counters()
        assert server.requests_total == 0 and server.replies_ok == 0
        assert server.faults_by_kind == {} and not server.ok_reply_keys


# ----------------------------------------------------------------------------- clients


def test_litellm_completion_through_loopback():
    messages = [{"role": "user", "content": "Summarise: " + PAGE_B}]
    with LoopbackOpenAI() as server:
        resp = litellm.completion(
            model="openai/loopback",
            api_base=server.base_url,
            api_key="sk-test",
            messages=messages,
            temperature=0.0,
            max_tokens=64,
        )
        expected = default_reply(messages)
        assert resp.choices[0].message.content == expected
        assert resp.usage.completion_tokens == len(expected.split())
        assert resp.usage.prompt_tokens == len(messages[0]["content"].split())
        assert server.requests_total == 1 and server.replies_ok == 1
        assert server.ok_reply_keys == {call_key("loopback", messages, 0.0, 64, None): 1}


def test_litellm_retries_429_honouring_retry_after():
    messages = [{"role": "user", "content": "Summarise: " + PAGE_A}]
    with LoopbackOpenAI(script=["429"], retry_after_s=0.2) as server:
        t0 = time.perf_counter()
        resp = litellm.completion(
            model="openai/loopback",
            api_base=server.base_url,
            api_key="sk-test",
            messages=messages,
            max_retries=2,  # the OpenAI SDK's own retry loop
        )
        elapsed = time.perf_counter() - t0
        assert resp.choices[0].message.content == default_reply(messages)
        assert server.requests_total == 2 and server.replies_ok == 1
        assert server.faults_by_kind == {"429": 1}
        assert elapsed >= 0.2  # waited the Retry-After


def test_cli_serves_for_bounded_seconds():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.loopback_openai", "--port", "0", "--seconds", "1.5",
         "--latency", "0.01"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        base_url = line.strip().split()[-1]
        status, _, raw = post(base_url + "/chat/completions", chat_body("hello from the cli test"))
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"]
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        stats = json.loads(out.strip().splitlines()[-1])
        assert stats["requests_total"] == 1 and stats["replies_ok"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
