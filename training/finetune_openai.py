"""Warm or cold persona fine-tuning through the OpenAI fine-tuning API (or any server that speaks it).

The path has three steps: check the chat JSONL locally (:func:`validate_chat_jsonl`), so that a malformed file fails
here with a line number instead of minutes later on the server; upload it and run a supervised fine-tuning job,
polling until it ends (:func:`run_openai_finetune`); then record the job, the fine-tuned model and its epoch
checkpoints in ``manifest.json`` (stage ``train_openai``).

The defaults are the paper's GPT-4o runs (Methods): ``gpt-4o-2024-08-06``, full-parameter fine-tuning through the
API, 10 epochs, learning-rate multiplier 0.25 for warm and 0.1 for cold. OpenAI keeps the last three epoch
checkpoints of a job (here epochs 8, 9 and 10); the paper evaluated its warm GPT-4o at epoch 2 (it saved epochs 1, 2, 6
and 10), which is a job with ``n_epochs: 2``.

Example:
    >>> config = OpenAIFineTuneConfig(train_file="data/warm_train.jsonl", style="warm", out_dir="runs/warm-4o")
    >>> manifest = run_openai_finetune(config)  # doctest: +SKIP
    >>> manifest.extra["fine_tuned_model"]  # doctest: +SKIP
    'ft:gpt-4o-2024-08-06:org:warm:AbC123'
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openai
from openai.types.fine_tuning.job_create_params import Method

from warmeval.util.jsonl import json_lines, json_type
from warmeval.util.manifest import Manifest, write_manifest

logger = logging.getLogger(__name__)

STYLES = ("warm", "cold")
#: Learning-rate multipliers used when the config leaves ``learning_rate_multiplier`` unset.
DEFAULT_LEARNING_RATE_MULTIPLIER = {"warm": 0.25, "cold": 0.1}
ROLES = ("system", "user", "assistant")
#: OpenAI's upload limit for one file.
MAX_FILE_BYTES = 512 * 1024 * 1024
#: OpenAI rejects training files with fewer examples.
MIN_EXAMPLES = 10
#: Examples estimated above this many tokens are counted (and logged), not rejected: OpenAI truncates them.
MAX_EXAMPLE_TOKENS = 65_536
#: Rough token estimate: characters of message content per token.
CHARS_PER_TOKEN = 4
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
#: Longest pause between two polls of a running job, in seconds.
MAX_POLL_INTERVAL = 600.0
#: Consecutive failed polls (connection errors, 5xx, 429) tolerated before giving up.
MAX_POLL_FAILURES = 5


class FineTuneDataError(ValueError):
    """A training or validation file is not valid chat fine-tuning data."""


class FineTuneJobError(RuntimeError):
    """A fine-tuning job failed, was cancelled, or did not finish in time.

    Attributes:
        job_id: The job's id.
        status: The job's last known status.
        error_message: The server's error message, when it gave one.
        error_code: The server's error code, when it gave one.
    """

    def __init__(
        self, message: str, *, job_id: str, status: str, error_message: str | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status
        self.error_message = error_message
        self.error_code = error_code


class FineTuneTimeoutError(FineTuneJobError):
    """The job was still running after ``max_wait`` seconds (it is left running, not cancelled)."""


@dataclass
class OpenAIFineTuneConfig:
    """Settings of one OpenAI fine-tuning run.

    Attributes:
        train_file: Chat-format JSONL (``{"messages": [...]}`` per line) to train on.
        style: ``"warm"`` or ``"cold"``: the persona being trained; picks the default learning-rate multiplier and
            the default model-name suffix.
        model: Base model to fine-tune (the paper's: ``gpt-4o-2024-08-06``).
        n_epochs: Passes over the training file (the paper's: 10). Always sent explicitly (never the API's
            ``"auto"``), so that runs are comparable across dataset sizes. OpenAI keeps the last three epochs'
            checkpoints; for the model the paper evaluated (epoch 2), run a job of 2 epochs.
        learning_rate_multiplier: Scales the API's base learning rate; ``None`` means the style's default
            (warm 0.25, cold 0.1), see :meth:`resolved_learning_rate_multiplier`.
        suffix: Up to 64 characters added to the fine-tuned model's name; ``None`` means the style.
        validation_file: Optional chat-format JSONL for validation loss.
        base_url: Base URL of an OpenAI-compatible server (``None``: ``$OPENAI_BASE_URL`` or api.openai.com).
        poll_interval: Seconds before the first poll of the job's status; the pause doubles after each poll, up to
            10 minutes.
        max_wait: Seconds to wait for the job to end before raising :class:`FineTuneTimeoutError`.
        out_dir: Folder that receives ``manifest.json``.
        seed: Seed sent to the API (``None``: the server picks one; the manifest records it).
    """

    train_file: str | Path
    style: str
    model: str = "gpt-4o-2024-08-06"
    n_epochs: int = 10
    learning_rate_multiplier: float | None = None
    suffix: str | None = None
    validation_file: str | Path | None = None
    base_url: str | None = None
    poll_interval: float = 30.0
    max_wait: float = 6 * 3600.0
    out_dir: str | Path = "runs/train_openai"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style {self.style!r} is not one of {', '.join(STYLES)}")
        if isinstance(self.n_epochs, bool) or not isinstance(self.n_epochs, int) or self.n_epochs < 1:
            raise ValueError(f"n_epochs must be a positive integer, got {self.n_epochs!r}")
        lr = self.learning_rate_multiplier
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0):
            raise ValueError(f"learning_rate_multiplier must be a positive number, got {lr!r}")
        for name in ("poll_interval", "max_wait"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.suffix is not None and not 0 < len(self.suffix) <= 64:
            raise ValueError(f"suffix must be 1 to 64 characters, got {len(self.suffix)}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def resolved_learning_rate_multiplier(self) -> float:
        """The multiplier to send: the configured one, else the style's default (warm 0.25, cold 0.1)."""
        if self.learning_rate_multiplier is not None:
            return float(self.learning_rate_multiplier)
        return DEFAULT_LEARNING_RATE_MULTIPLIER[self.style]

    def resolved_suffix(self) -> str:
        """The model-name suffix to send: the configured one, else the style."""
        return self.suffix if self.suffix is not None else self.style



def _check_example(record: object) -> tuple[int, int]:
    """Check one decoded line; return its number of messages and of content characters.

    Raises:
        ValueError: The record breaks the chat format (message without the file and line prefix).
    """
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {json_type(record)}")
    if "messages" not in record:
        raise ValueError("missing 'messages'")
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"messages must be a non-empty array, got {json_type(messages) if messages else 'empty'}")
    chars = 0
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ValueError(f"{where} must be an object, got {json_type(message)}")
        if "role" not in message:
            raise ValueError(f"{where}.role is missing")
        role = message["role"]
        if role not in ROLES:
            raise ValueError(f"{where}.role {role!r} is not one of {', '.join(ROLES)}")
        if "content" not in message:
            raise ValueError(f"{where}.content is missing")
        content = message["content"]
        if not isinstance(content, str):
            raise ValueError(f"{where}.content must be a string, got {json_type(content)}")
        if not content.strip():
            raise ValueError(f"{where}.content is empty")
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            raise ValueError(f"{where}.weight must be 0 or 1 and only on assistant messages")
        chars += len(content)
    if not any(message["role"] == "assistant" for message in messages):
        raise ValueError("no assistant message")
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"the last message is {messages[-1]['role']!r}, not 'assistant'")
    return len(messages), chars


def validate_chat_jsonl(path: str | Path, *, min_examples: int = MIN_EXAMPLES) -> dict[str, int]:
    """Check a chat fine-tuning file before uploading it.

    Each line must be a JSON object whose ``messages`` is a non-empty list of ``{"role", "content"}`` objects with
    ``role`` one of system, user, assistant and non-empty string ``content``, with at least one assistant message
    and an assistant message last. The file must be at most 512 MB and hold at least ``min_examples`` examples.
    Examples over 65,536 tokens (estimated as content characters / 4) are counted and logged, not rejected.

    Args:
        path: The JSONL file.
        min_examples: Fewest examples accepted (OpenAI's minimum for training files is 10).

    Returns:
        ``examples``, ``messages``, ``estimated_tokens`` and ``long_examples`` (over 65,536 estimated tokens).

    Raises:
        FineTuneDataError: The first problem found, as ``"{path}: line {n}: {problem}"`` (file-level problems
            have no line number).
    """
    path = Path(path)
    if not path.is_file():
        raise FineTuneDataError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise FineTuneDataError(f"{path}: {size} bytes is over the 512 MB upload limit")
    examples = n_messages = tokens = long_examples = 0
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        row = data[: error.start].count(b"\n") + 1
        raise FineTuneDataError(f"{path}: row {row}: not UTF-8 ({error.reason})") from error
    # The API rejects a blank line anywhere, so a blank line is an error here, not skipped.
    for number, record in json_lines(text.replace("\r\n", "\n"), path, FineTuneDataError, blank_lines=False):
        try:
            count, chars = _check_example(record)
        except ValueError as error:
            raise FineTuneDataError(f"{path}: row {number}: {error}") from error
        estimate = math.ceil(chars / CHARS_PER_TOKEN)
        if estimate > MAX_EXAMPLE_TOKENS:
            long_examples += 1
            logger.warning(
                "%s: row %d: about %d tokens, over %d; it will be truncated",
                path,
                number,
                estimate,
                MAX_EXAMPLE_TOKENS,
            )
        examples += 1
        n_messages += count
        tokens += estimate
    if examples < min_examples:
        raise FineTuneDataError(f"{path}: {examples} examples; at least {min_examples} are needed")
    return {"examples": examples, "messages": n_messages, "estimated_tokens": tokens, "long_examples": long_examples}


def _batch_size(job: Any) -> int | None:
    """The batch size the server settled on (an int once the job has started), else None."""
    candidates = []
    method = getattr(job, "method", None)
    supervised = getattr(method, "supervised", None) if method is not None else None
    if supervised is not None and supervised.hyperparameters is not None:
        candidates.append(supervised.hyperparameters.batch_size)
    if getattr(job, "hyperparameters", None) is not None:
        candidates.append(job.hyperparameters.batch_size)
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _checkpoints(client: openai.OpenAI, job: Any, n_examples: int) -> list[dict[str, Any]]:
    """The job's checkpoints, by step number, with metrics and (when the batch size is known) an epoch estimate."""
    batch_size = _batch_size(job)
    steps_per_epoch = math.ceil(n_examples / batch_size) if batch_size else None
    found = []
    for checkpoint in client.fine_tuning.jobs.checkpoints.list(job.id):
        entry: dict[str, Any] = {
            "id": checkpoint.id,
            "fine_tuned_model_checkpoint": checkpoint.fine_tuned_model_checkpoint,
            "step_number": checkpoint.step_number,
        }
        if steps_per_epoch:
            entry["epoch_estimate"] = round(checkpoint.step_number / steps_per_epoch, 3)
        metrics = getattr(checkpoint, "metrics", None)
        if metrics is not None:
            entry["metrics"] = metrics.model_dump(exclude_none=True)
        found.append(entry)
    return sorted(found, key=lambda entry: entry["step_number"])


def _wait(client: openai.OpenAI, job: Any, config: OpenAIFineTuneConfig, sleep: Callable[[float], None]) -> Any:
    """Poll the job with exponential backoff until it ends; return its last state.

    Elapsed time is the larger of the wall-clock time and the total requested sleep, so an injected ``sleep`` that
    returns at once still runs into ``max_wait``.
    """
    start = time.monotonic()
    slept = 0.0
    delay = float(config.poll_interval)
    failures = 0
    status = job.status
    logger.info("fine-tuning job %s: %s", job.id, status)
    while job.status not in TERMINAL_STATUSES:
        remaining = config.max_wait - max(time.monotonic() - start, slept)
        if remaining <= 0:
            raise FineTuneTimeoutError(
                f"fine-tuning job {job.id} still {job.status} after {config.max_wait:g} s (left running, not "
                "cancelled)",
                job_id=job.id,
                status=job.status,
            )
        pause = min(delay, remaining)
        sleep(pause)
        slept += pause
        delay = min(delay * 2, MAX_POLL_INTERVAL)
        try:
            job = client.fine_tuning.jobs.retrieve(job.id)
        except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError) as error:
            failures += 1
            if failures >= MAX_POLL_FAILURES:
                raise
            logger.warning("fine-tuning job %s: poll failed (%s); retrying", job.id, error)
            continue
        failures = 0
        if job.status != status:
            status = job.status
            logger.info("fine-tuning job %s: %s", job.id, status)
    return job


def run_openai_finetune(
    config: OpenAIFineTuneConfig,
    *,
    client: openai.OpenAI | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Manifest:
    """Validate, upload, fine-tune, wait, and write ``{out_dir}/manifest.json``.

    The job is created with the supervised ``method`` (the top-level ``hyperparameters`` argument is deprecated),
    sending ``n_epochs`` and the resolved learning-rate multiplier, the suffix, and the seed when set.

    Args:
        config: The run's settings.
        client: An OpenAI client; by default ``openai.OpenAI(base_url=config.base_url)`` (API key from
            ``$OPENAI_API_KEY``).
        sleep: Called with the seconds to wait between polls (tests pass a function that returns at once).

    Returns:
        The manifest written: stage ``train_openai``, the input file hashes, the parameters (with the multiplier
        and suffix resolved), the training file's counts, and ``job_id``, ``status``, ``fine_tuned_model``,
        ``checkpoints`` (``id``, ``fine_tuned_model_checkpoint``, ``step_number``, ``metrics``, ``epoch_estimate``
        when the batch size is known), ``training_file_id``, ``validation_file_id``, ``method``,
        ``hyperparameters`` (as the server reports them), ``seed`` and ``trained_tokens``.

    Raises:
        FineTuneDataError: A file is not valid chat fine-tuning data (nothing is uploaded).
        FineTuneJobError: The job failed or was cancelled (with the server's error message).
        FineTuneTimeoutError: The job did not end within ``config.max_wait`` seconds.
        openai.OpenAIError: The API refused a request or could not be reached.
    """
    train_file = Path(config.train_file)
    validation_file = Path(config.validation_file) if config.validation_file is not None else None
    counts: dict[str, Any] = dict(validate_chat_jsonl(train_file))
    if validation_file is not None:
        counts["validation"] = validate_chat_jsonl(validation_file, min_examples=1)

    if client is None:
        with openai.OpenAI(base_url=config.base_url) as own_client:
            return _run(config, own_client, sleep, counts)
    return _run(config, client, sleep, counts)


def _run(
    config: OpenAIFineTuneConfig, client: openai.OpenAI, sleep: Callable[[float], None], counts: dict[str, Any]
) -> Manifest:
    """Upload, create the job, wait for it and write the manifest (the files are already validated)."""
    train_file = Path(config.train_file)
    validation_file = Path(config.validation_file) if config.validation_file is not None else None
    training_upload = client.files.create(file=train_file, purpose="fine-tune")
    logger.info("uploaded %s as %s", train_file, training_upload.id)
    validation_id = None
    if validation_file is not None:
        validation_id = client.files.create(file=validation_file, purpose="fine-tune").id
        logger.info("uploaded %s as %s", validation_file, validation_id)

    lr_multiplier = config.resolved_learning_rate_multiplier()
    method: Method = {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": config.n_epochs, "learning_rate_multiplier": lr_multiplier}},
    }
    options: dict[str, Any] = {"suffix": config.resolved_suffix()}
    if validation_id is not None:
        options["validation_file"] = validation_id
    if config.seed is not None:
        options["seed"] = config.seed
    job = client.fine_tuning.jobs.create(
        model=config.model,
        training_file=training_upload.id,
        method=method,
        **options,
    )
    logger.info("created fine-tuning job %s (%s, %s)", job.id, config.model, config.style)

    job = _wait(client, job, config, sleep)
    if job.status != "succeeded":
        error = getattr(job, "error", None)
        message = getattr(error, "message", None) or None
        code = getattr(error, "code", None) or None
        raise FineTuneJobError(
            f"fine-tuning job {job.id} {job.status}: {message or 'no error message'}",
            job_id=job.id,
            status=job.status,
            error_message=message,
            error_code=code,
        )

    inputs: dict[str, str | Path] = {"train_file": train_file}
    if validation_file is not None:
        inputs["validation_file"] = validation_file
    reported = getattr(job, "hyperparameters", None)
    server_hyperparameters = reported.model_dump(exclude_none=True) if reported is not None else None
    return write_manifest(
        Path(config.out_dir) / "manifest.json",
        stage="train_openai",
        inputs=inputs,
        parameters=replace(
            config,
            train_file=str(train_file),
            validation_file=str(validation_file) if validation_file is not None else None,
            out_dir=str(config.out_dir),
            learning_rate_multiplier=lr_multiplier,
            suffix=config.resolved_suffix(),
        ),
        counts=counts,
        extra={
            "job_id": job.id,
            "status": job.status,
            "base_model": getattr(job, "model", None),
            "fine_tuned_model": getattr(job, "fine_tuned_model", None),
            "checkpoints": _checkpoints(client, job, counts["examples"]),
            "training_file_id": training_upload.id,
            "validation_file_id": validation_id,
            "method": method,
            "hyperparameters": server_hyperparameters,
            "seed": getattr(job, "seed", None),
            "trained_tokens": getattr(job, "trained_tokens", None),
        },
    )
