"""The tests' one fake of the OpenAI REST API, on 127.0.0.1: chat completions, models, files, batches, fine-tuning.

Tests script it through `FakeOpenAI`'s fields and read what it recorded; `running(fake)` serves it on a free port in a
thread. Run as a script (``python fake_openai.py serve MODEL --host H --port P --served-model-name NAME ...``, through
a ``vllm`` shim on PATH) it stands in for ``vllm serve`` in the process-hygiene tests: it writes its PID to
``$FAKE_VLLM_DIR/pid``, waits ``$FAKE_VLLM_STARTUP`` seconds before it listens (a start-up in progress), answers every
chat completion with "Paris" after ``$FAKE_VLLM_DELAY`` seconds, touches ``$FAKE_VLLM_DIR/requests`` when the first
one arrives, and ignores SIGINT, as a server in its own session never sees the terminal's Ctrl-C.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROMPT_TOKENS, COMPLETION_TOKENS = 100, 20


def paris(body: dict[str, Any]) -> tuple[str, str]:
    """The default scripted model: "Paris", finish_reason stop."""
    return "Paris", "stop"


@dataclass
class FakeOpenAI:
    """State of the fake server; tests set the scenario fields and read the recorded requests."""

    # chat completions
    responder: Callable[[dict[str, Any]], tuple[str, str]] = paris  # body -> (content, finish_reason)
    errors: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # served, in order, before any success
    errors_match: str = ""  # ... to the requests whose prompt holds this text
    fail_if: Callable[[dict[str, Any]], int | None] = lambda body: None  # a status to answer with, per request
    block_after: int | None = None  # hold requests beyond this many chat calls until `release` is set
    delay: float = 0.0  # seconds before each chat completion is answered
    on_chat: Callable[[], None] = lambda: None  # called as each chat request arrives
    models: list[str] = field(default_factory=lambda: ["fake-model"])  # what GET /v1/models lists
    chat_bodies: list[dict[str, Any]] = field(default_factory=list)
    # batches
    batch_fail_if: Callable[[dict[str, Any]], int | None] = lambda line: None  # per batch line
    polls_to_complete: int = 2
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    # files: id -> {"filename", "bytes", "purpose"}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    # fine-tuning jobs
    outcome: str = "succeeded"  # "succeeded", "failed", "cancelled" or "never" (stays running)
    running_polls: int = 2  # retrieves answered "running" before the outcome
    failing_polls: int = 0  # retrieves answered 503 first
    error_message: str = "The job failed due to an invalid training file: line 7 has too many tokens."
    job_requests: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    retrieves: int = 0
    # every request
    log: list[tuple[str, str]] = field(default_factory=list)
    authorization: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=itertools.count)
    base_url: str = ""

    # --------------------------------------------------------------------------------------------- chat completions

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        content, finish_reason = self.responder(body)
        return {
            "id": f"chatcmpl-{next(self.ids)}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
        }  # fmt: skip

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.on_chat()
        with self.lock:
            self.chat_bodies.append(body)
            calls = len(self.chat_bodies)
            matches = self.errors_match in str(body["messages"][-1]["content"])
            scripted = self.errors.pop(0) if self.errors and matches else None
        if self.block_after is not None and calls > self.block_after:
            self.release.wait(30)
        if self.delay:
            time.sleep(self.delay)
        if scripted is not None:
            status, headers = scripted
            return status, headers, {"error": {"message": f"scripted {status}", "type": "scripted"}}
        status = self.fail_if(body)
        if status is not None:
            return status, {}, {"error": {"message": f"always {status}", "type": "scripted"}}
        return 200, {}, self.completion(body)

    def chat_calls(self) -> int:
        return len(self.chat_bodies)

    # -------------------------------------------------------------------------------------------------------- files

    def add_file(self, filename: str, data: bytes, purpose: str) -> str:
        with self.lock:
            file_id = f"file-{len(self.files) + 1:03d}"
            self.files[file_id] = {"filename": filename, "bytes": data, "purpose": purpose}
        return file_id

    def upload(self, content_type: str, payload: bytes) -> dict[str, Any]:
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + payload)
        fields = {}
        for part in message.iter_parts():
            fields[part.get_param("name", header="content-disposition")] = (
                part.get_filename(), part.get_payload(decode=True)
            )  # fmt: skip
        filename, data = fields["file"]
        purpose = fields["purpose"][1].decode().strip()
        file_id = self.add_file(filename, data, purpose)
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 1_700_000_000,
                "filename": filename, "purpose": purpose, "status": "processed"}  # fmt: skip

    # ------------------------------------------------------------------------------------------------------ batches

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        assert body["endpoint"] == "/v1/chat/completions" and body["completion_window"] == "24h"
        source = self.files[body["input_file_id"]]
        assert source["purpose"] == "batch"
        output, errors = [], []
        for raw in source["bytes"].decode().splitlines():
            line = json.loads(raw)
            assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
            status = self.batch_fail_if(line)
            if status is None:
                response = {"status_code": 200, "request_id": "r", "body": self.completion(line["body"])}
                output.append({"id": "bl", "custom_id": line["custom_id"], "response": response, "error": None})
            else:
                response = {"status_code": status, "request_id": "r", "body": {"error": {"message": "scripted"}}}
                errors.append({"id": "bl", "custom_id": line["custom_id"], "response": response, "error": None})
        batch_id = f"batch_{next(self.ids)}"
        out_id = self.add_file("output.jsonl", "".join(json.dumps(x) + "\n" for x in output).encode(), "batch_output")
        err_id = self.add_file("errors.jsonl", "".join(json.dumps(x) + "\n" for x in errors).encode(), "batch_output")
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
            "completion_window": "24h", "created_at": 0, "status": "validating", "polls": 0,
            "_output": out_id, "_errors": err_id if errors else None,
        }  # fmt: skip
        return self.public(batch_id)

    def public(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        return {k: v for k, v in batch.items() if not k.startswith("_") and k != "polls"}

    def poll(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        batch["polls"] += 1
        if batch["polls"] >= self.polls_to_complete:
            batch.update(status="completed", output_file_id=batch["_output"], error_file_id=batch["_errors"])
        else:
            batch["status"] = "in_progress"
        return self.public(batch_id)

    # --------------------------------------------------------------------------------------------- fine-tuning jobs

    def create_job(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job_id = f"ftjob-{len(self.jobs) + 1:03d}"
            self.job_requests.append(request)
            self.jobs[job_id] = {"id": job_id, "status": "validating_files", "request": request, "polls": 0}
            return self.job_view(self.jobs[job_id])

    def retrieve_job(self, job_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.retrieves += 1
            if self.failing_polls:
                self.failing_polls -= 1
                return 503, {"error": {"message": "overloaded", "type": "server_error"}}
            job = self.jobs[job_id]
            job["polls"] += 1
            if job["polls"] <= self.running_polls or self.outcome == "never":
                job["status"] = "running"
            else:
                job["status"] = self.outcome
            return 200, self.job_view(job)

    def job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        body = job["request"]
        hyper = dict(body["method"]["supervised"]["hyperparameters"])
        hyper["batch_size"] = "auto" if job["status"] == "validating_files" else 4
        view: dict[str, Any] = {
            "id": job["id"], "object": "fine_tuning.job", "created_at": 1_700_000_000, "model": body["model"],
            "organization_id": "org-warmeval", "status": job["status"], "training_file": body["training_file"],
            "validation_file": body.get("validation_file"), "hyperparameters": hyper,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}}, "result_files": [],
            "seed": body.get("seed", 1234), "fine_tuned_model": None, "trained_tokens": None, "finished_at": None,
            "error": None,
        }  # fmt: skip
        if job["status"] == "succeeded":
            view["fine_tuned_model"] = f"ft:gpt-4o-mini:warmeval:{body['suffix']}:abc"
            view["trained_tokens"] = 4321
            view["finished_at"] = 1_700_003_600
        elif job["status"] == "failed":
            view["error"] = {"code": "invalid_training_file", "message": self.error_message, "param": "training_file"}
        return view

    def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        job = self.jobs[job_id]
        model = self.job_view(job)["fine_tuned_model"]
        # As the API: the last three epochs' checkpoints (3 steps an epoch here: 12 examples in batches of 4), newest
        # first.
        epochs = int(job["request"]["method"]["supervised"]["hyperparameters"]["n_epochs"])
        steps = [3 * epoch for epoch in range(epochs, max(0, epochs - 3), -1)]
        return [
            {"id": f"ftckpt-{step}", "object": "fine_tuning.job.checkpoint", "created_at": 1_700_000_000 + step,
             "fine_tuned_model_checkpoint": f"{model}:ckpt-step-{step}", "fine_tuning_job_id": job_id,
             "step_number": step, "metrics": {"step": float(step), "train_loss": 1.0 / step, "full_valid_loss": None}}
            for step in steps
        ]  # fmt: skip


def make_handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            kind = "application/octet-stream" if isinstance(body, bytes) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self) -> None:
            self._send(404, {"error": {"message": f"no route {self.command} {self.path}", "type": "invalid_request"}})

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            fake.log.append(("POST", self.path))
            fake.authorization.add(self.headers.get("Authorization", ""))
            payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path = self.path.rstrip("/")
            if path == "/v1/chat/completions":
                status, headers, body = fake.chat(json.loads(payload or b"{}"))
                self._send(status, body, headers)
            elif path == "/v1/files":
                self._send(200, fake.upload(self.headers["Content-Type"], payload))
            elif path == "/v1/batches":
                self._send(200, fake.create_batch(json.loads(payload)))
            elif path == "/v1/fine_tuning/jobs":
                self._send(200, fake.create_job(json.loads(payload)))
            else:
                self._not_found()

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            fake.log.append(("GET", self.path))
            fake.authorization.add(self.headers.get("Authorization", ""))
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in fake.models]})
            elif match := re.fullmatch(r"/v1/batches/([\w-]+)", self.path):
                self._send(200, fake.poll(match.group(1)))
            elif match := re.fullmatch(r"/v1/files/([\w-]+)/content", self.path):
                self._send(200, fake.files[match.group(1)]["bytes"])
            elif (match := re.fullmatch(r"/v1/fine_tuning/jobs/([\w-]+)(/checkpoints)?(\?.*)?", self.path)) and (
                match.group(1) in fake.jobs
            ):
                if match.group(2):
                    self._send(200, {"object": "list", "data": fake.checkpoints(match.group(1)), "has_more": False})
                else:
                    self._send(*fake.retrieve_job(match.group(1)))
            else:
                self._not_found()

    return Handler


@contextmanager
def running(fake: FakeOpenAI, host: str = "127.0.0.1", port: int = 0) -> Iterator[FakeOpenAI]:
    """Serve ``fake`` on ``host`` in a thread (``port`` 0: a free one); sets ``fake.base_url``; shuts down at exit."""
    server = ThreadingHTTPServer((host, port), make_handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"http://{host}:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def vllm_stand_in(argv: list[str]) -> None:
    """``vllm serve MODEL --host H --port P --served-model-name NAME [--lora-modules a=DIR ...]``: see the docstring."""
    args = argv[1:]
    option = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    names = [option.get("--served-model-name", args[0] if args else "model")]
    if "--lora-modules" in args:
        names += [item.split("=", 1)[0] for item in args[args.index("--lora-modules") + 1 :] if "=" in item]
    folder = Path(os.environ["FAKE_VLLM_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pid").write_text(str(os.getpid()))
    launch = {"argv": argv, "env": {k: v for k, v in os.environ.items() if k.startswith("VLLM_")}}
    (folder / "launch.json").write_text(json.dumps(launch))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP", "0")))
    fake = FakeOpenAI(models=names, delay=float(os.environ.get("FAKE_VLLM_DELAY", "0")),
                      on_chat=(folder / "requests").touch)  # fmt: skip
    server = ThreadingHTTPServer((option.get("--host", "127.0.0.1"), int(option.get("--port", "8000"))),
                                 make_handler(fake))  # fmt: skip
    server.serve_forever()


if __name__ == "__main__":
    vllm_stand_in(sys.argv[1:] if sys.argv[1:2] == ["serve"] else ["serve", *sys.argv[1:]])
