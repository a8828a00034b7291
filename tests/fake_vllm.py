"""A stand-in for ``vllm serve`` in process-hygiene tests: an OpenAI-compatible server that answers slowly.

Run as ``vllm serve MODEL --host H --port P --served-model-name NAME ...`` (through a ``vllm`` shim on PATH). It
writes its PID to ``$FAKE_VLLM_DIR/pid``, waits ``$FAKE_VLLM_STARTUP`` seconds before it listens (a start-up in
progress), answers every chat completion with "Paris" after ``$FAKE_VLLM_DELAY`` seconds, and touches
``$FAKE_VLLM_DIR/requests`` when the first one arrives. It ignores SIGINT, as a server in its own session would never
see the terminal's Ctrl-C; only SIGTERM/SIGKILL stop it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main(argv: list[str]) -> None:
    args = argv[1:]
    option = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    names = [option.get("--served-model-name", args[0] if args else "model")]
    if "--lora-modules" in args:
        names += [item.split("=", 1)[0] for item in args[args.index("--lora-modules") + 1 :] if "=" in item]
    folder = Path(os.environ["FAKE_VLLM_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pid").write_text(str(os.getpid()))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP", "0")))
    delay = float(os.environ.get("FAKE_VLLM_DELAY", "0"))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/").endswith("/models"):
                self._send({"object": "list", "data": [{"id": n, "object": "model"} for n in names]})
            else:
                self._send({})

        def do_POST(self) -> None:  # noqa: N802
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            (folder / "requests").touch()
            time.sleep(delay)
            self._send({
                "id": "cmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": request.get("model", names[0]),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Paris"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            })  # fmt: skip

    server = ThreadingHTTPServer((option.get("--host", "127.0.0.1"), int(option.get("--port", "8000"))), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:] if sys.argv[1:2] == ["serve"] else ["serve", *sys.argv[1:]])
