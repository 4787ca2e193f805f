"""Serving a model over an OpenAI-compatible API on localhost: `transformers serve`, started and stopped.

Chapter 01's judge and chapter 06's teacher are remote LLMs in the hub profile; in the tiny profile
(and in the tests) `served` starts `transformers serve` on a local folder, waits until it answers,
and stops it on exit. With `request_log`, a small proxy in front of the server writes every request
body it forwards to a JSONL file: the record of what the "remote" side received.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from llmtut.precision import precision_for

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # the CLI would otherwise ask PyPI for a newer version
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


QUIET_ENV = {k: v for k, v in OFFLINE_ENV.items() if "OFFLINE" not in k}


class ServeError(RuntimeError):
    """`transformers serve` exited or did not answer in time; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to kill it when the parent dies, so a killed kernel
    (papermill on a failed cell, a crashed notebook) does not leave the server running."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG; it keeps no state


def _wait_until_healthy(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise ServeError(f"transformers serve exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise ServeError(f"transformers serve did not answer in {timeout_s:.0f} s:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)


@contextmanager
def _logging_proxy(target: str, request_log: Path) -> Iterator[str]:
    """A localhost HTTP proxy to `target` that appends each POST body (JSON) to `request_log`."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock, open(request_log, "a") as f:
                f.write(json.dumps({"time": time.time(), "path": self.path, "body": json.loads(body or b"{}")}) + "\n")
            request = urllib.request.Request(target + self.path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=600) as r:
                    status, payload = r.status, r.read()
            except urllib.error.HTTPError as err:
                status, payload = err.code, err.read()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # the JSONL log is the record; keep stderr quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    # A notebook may never close the block (a cell failed, the kernel exits): stop at exit, while the
    # serving thread still runs. Once the interpreter is finalizing, that daemon thread is frozen and
    # shutdown() would wait for it forever.
    atexit.register(server.shutdown)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        atexit.unregister(server.shutdown)
        if not sys.is_finalizing():
            server.shutdown()
        server.server_close()


def serve_command(model_dir: str | os.PathLike, device: str, port: int) -> list[str]:
    """The `transformers serve` command line for `model_dir` on `device`, listening on localhost:`port`."""
    # An inference-only model: in the half precision this GPU computes in natively (fp16 on a T4, whose
    # emulated bf16 is slow), in fp32 on the CPU; the default "auto" would keep the checkpoint's dtype.
    dtype = str(precision_for(device).load_kwargs(trains=False)["dtype"]).removeprefix("torch.")
    return [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir),
            "--host", "127.0.0.1", "--port", str(port), "--device", device, "--dtype", dtype]


@contextmanager
def served(
    model_dir: str | os.PathLike,
    device: str = "cpu",
    request_log: str | os.PathLike | None = None,
    timeout_s: float = 120,
    offline: bool = True,
) -> Iterator[str]:
    """Run `transformers serve` on `model_dir` and yield its base URL (`http://.../v1`).

    `model_dir` is a local folder, or with `offline=False` also a Hub id that the server may download.

    The server's own output goes to `serve.log` next to `request_log` (or in the model folder's
    parent). It is stopped when the block ends, also after an error.
    """
    port = free_port()
    log_dir = Path(request_log).parent if request_log else Path(model_dir).parent
    log_path = log_dir / "serve.log"
    command = serve_command(model_dir, device, port)
    with open(log_path, "ab") as log:  # appended: a restarted server keeps the earlier log
        env = {**os.environ, **(OFFLINE_ENV if offline else QUIET_ENV)}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        atexit.register(_stop, process)  # also when the block is never closed
        try:
            _wait_until_healthy(f"http://127.0.0.1:{port}/health", process, log_path, timeout_s)
            if request_log is None:
                yield f"http://127.0.0.1:{port}/v1"
            else:
                with _logging_proxy(f"http://127.0.0.1:{port}", Path(request_log)) as proxy:
                    yield f"{proxy}/v1"
        finally:
            atexit.unregister(_stop)
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def read_request_log(path: str | os.PathLike) -> list[dict]:
    """The requests a `served(..., request_log=path)` server received, oldest first."""
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []
