#!/usr/bin/env python3
"""The official OpenAI Python client against `turbine serve` (the default model, on the CPU).

    openai_client_test.py TURBINE_BINARY MODEL_FILE

Starts the server on a free loopback port (--port 0; the port is read from its startup line),
checks models, completions, chat, streaming, usage, stop strings and API keys, then stops it with
SIGTERM and expects a clean exit. Prints "[skipped] ..." and succeeds when the openai package or
the model is missing (ctest reports the test as skipped).
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time


def skip(why):
    print(f"[skipped] {why}")
    sys.exit(0)


try:
    import openai
except ImportError:
    skip("the openai Python package is not installed (tools/install_deps.sh, or: python3 -m pip install openai)")

if len(sys.argv) != 3:
    sys.exit("usage: openai_client_test.py TURBINE_BINARY MODEL_FILE")
BINARY, MODEL = sys.argv[1], sys.argv[2]
if not os.path.exists(MODEL):
    skip(f"the default model is missing at {MODEL} (tools/fetch_model.sh)")

KEY, OTHER_KEY = "test-key-1", "test-key-2"
MODEL_ID = os.path.splitext(os.path.basename(MODEL))[0]


def start_server():
    cmd = [BINARY, "serve", MODEL, "--host", "127.0.0.1", "--port", "0", "--api-keys", f"{KEY},{OTHER_KEY}",
           "--ctx-size", "2048", "--max-concurrent", "4", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=120)
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/v1", lines[0] if lines else "")
    if not m:
        proc.kill()
        sys.exit(f"turbine serve did not start: {lines!r}\n{proc.stderr.read()}")
    return proc, int(m.group(1))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    proc, port = start_server()
    base = f"http://127.0.0.1:{port}/v1"
    client = openai.OpenAI(base_url=base, api_key=KEY, max_retries=0, timeout=300)
    passed = []

    def run(name, fn):
        fn()
        passed.append(name)
        print(f"ok  {name}", flush=True)

    def models():
        ids = [m.id for m in client.models.list()]
        check(ids == [MODEL_ID], f"models: {ids}")
        check(client.models.retrieve(MODEL_ID).id == MODEL_ID, "retrieve")

    def completions():
        r = client.completions.create(model=MODEL_ID, prompt="The capital of France is", max_tokens=8, temperature=0)
        check(r.object == "text_completion", r.object)
        check(len(r.choices) == 1 and r.choices[0].text, f"text: {r}")
        check(r.choices[0].finish_reason in ("length", "stop"), r.choices[0].finish_reason)
        check(0 < r.usage.completion_tokens <= 8, r.usage)
        check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage)

    question = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Explain gravity to a child in two sentences."}]

    def chat():
        r = client.chat.completions.create(model="default", messages=question, max_tokens=24, temperature=0)
        check(r.object == "chat.completion", r.object)
        check(r.model == MODEL_ID, r.model)
        msg = r.choices[0].message
        check(msg.role == "assistant" and msg.content, msg)
        check(r.usage.completion_tokens <= 24 and r.usage.prompt_tokens > 10, r.usage)
        again = client.chat.completions.create(model=MODEL_ID, messages=question, max_tokens=24, temperature=0)
        check(again.choices[0].message.content == msg.content, "greedy answers differ between two calls")

    def streaming():
        whole = client.chat.completions.create(model=MODEL_ID, messages=question, max_tokens=24, temperature=0)
        text, finish, usage, chunks = "", None, None, 0
        for chunk in client.chat.completions.create(model=MODEL_ID, messages=question, max_tokens=24, temperature=0,
                                                    stream=True, stream_options={"include_usage": True}):
            chunks += 1
            if chunk.usage:
                usage = chunk.usage
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        check(chunks > 3, f"{chunks} chunks")
        check(text == whole.choices[0].message.content, f"streamed {text!r} != {whole.choices[0].message.content!r}")
        check(finish == whole.choices[0].finish_reason, finish)
        check(usage is not None and usage.completion_tokens == whole.usage.completion_tokens, usage)
        check(usage.prompt_tokens == whole.usage.prompt_tokens, usage)
        pieces = [c.choices[0].text for c in client.completions.create(
            model=MODEL_ID, prompt="One, two, three,", max_tokens=6, temperature=0, stream=True) if c.choices]
        check("".join(pieces), "empty completion stream")

    def stop_strings():
        full = client.chat.completions.create(model=MODEL_ID, messages=question, max_tokens=40, temperature=0)
        content = full.choices[0].message.content
        check(len(content) > 20, content)
        stop = content[10:17]  # from the middle, several tokens long
        want = content[:content.find(stop)]
        r = client.chat.completions.create(model=MODEL_ID, messages=question, max_tokens=40, temperature=0, stop=[stop, "zzzz"])
        check(r.choices[0].message.content == want, f"{r.choices[0].message.content!r} != {want!r}")
        check(r.choices[0].finish_reason == "stop", r.choices[0].finish_reason)
        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=MODEL_ID, messages=question, max_tokens=40, temperature=0, stop=stop, stream=True) if c.choices)
        check(streamed == want, f"{streamed!r} != {want!r}")

    def api_keys():
        for key in ("wrong-key", "test-key"):
            bad = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
            try:
                bad.chat.completions.create(model=MODEL_ID, messages=question, max_tokens=2)
                raise AssertionError(f"key {key!r} was accepted")
            except openai.AuthenticationError as e:
                check(e.status_code == 401, e.status_code)
                check(e.body and e.body.get("code") == "invalid_api_key", e.body)
            try:
                bad.models.list()
                raise AssertionError("models.list accepted a wrong key")
            except openai.AuthenticationError:
                pass
        other = openai.OpenAI(base_url=base, api_key=OTHER_KEY, max_retries=0)
        check(other.chat.completions.create(model=MODEL_ID, messages=question, max_tokens=2).choices, "other key")

    def bad_requests():
        for kwargs, status, param in [({"max_tokens": -1}, 400, "max_tokens"), ({"temperature": -1}, 400, "temperature"),
                                      ({"top_p": 0}, 400, "top_p"), ({"n": 2}, 400, "n"), ({"model": "gpt-4"}, 404, "model")]:
            args = {"model": MODEL_ID, "messages": question, "max_tokens": 2} | kwargs
            try:
                client.chat.completions.create(**args)
                raise AssertionError(f"{kwargs} was accepted")
            except openai.APIStatusError as e:
                check(e.status_code == status, f"{kwargs}: {e.status_code}")
                check(e.body.get("param") == param, f"{kwargs}: {e.body}")
        try:
            client.chat.completions.create(model=MODEL_ID, messages=[], max_tokens=2)
            raise AssertionError("empty messages accepted")
        except openai.BadRequestError:
            pass

    def concurrent():
        results, errors = [], []

        def one(i):
            try:
                text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
                    model=MODEL_ID, messages=[{"role": "user", "content": f"Name fruit number {i}."}], max_tokens=8,
                    temperature=0.7, seed=i, stream=True) if c.choices)
                results.append(text)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not errors and len(results) == 8, f"errors: {errors}")

    ok = False
    try:
        t0 = time.time()
        for name, fn in [("models", models), ("completions", completions), ("chat", chat), ("streaming", streaming),
                         ("stop strings", stop_strings), ("API keys", api_keys), ("bad requests", bad_requests),
                         ("8 concurrent streams", concurrent)]:
            run(name, fn)
        ok = True
        print(f"{len(passed)} checks passed in {time.time() - t0:.1f} s (openai {openai.__version__})")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed after 30 s"
        if not ok or rc != 0:
            print(f"server exit: {rc}\n--- server stderr ---\n{proc.stderr.read()}", file=sys.stderr)
    if rc != 0:
        sys.exit(f"turbine serve did not exit cleanly on SIGTERM: {rc}")


if __name__ == "__main__":
    main()
