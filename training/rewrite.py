"""Stage 2 of persona training: rewrite every assistant turn of a chat JSONL in a warm or a cold style.

Input: the chat JSONL of the data-build stage (``id``, ``query_type``, ``messages`` with user/assistant/system
roles). Output: the same conversations in the same order, each assistant turn rewritten by a chat model through the
OpenAI client (any OpenAI-compatible server via ``base_url``), user and system turns unchanged.

The prompt (``template``): the paper's rewrite prompt of the style (SI section 1.2), as the user declared it
(`warmeval.sycophancy.paper_texts`), the default when declared; warmeval's own (``prompts/rewrite_{style}.j2``)
otherwise or on request (``warmeval``); or a jinja2 file. The paper sent its rewrite prompts as system prompts: the
paper's text goes as the system message with the reply to rewrite as the user message (``role: system``, the default
for the paper's text); warmeval's own templates hold the reply themselves and go as one user message (``role:
user``). The manifest records the template's source, SHA-256, whether it is the declared paper text, and the role.

Every rewrite passes fidelity checks (`check_rewrite`): not empty, not truncated (``finish_reason`` must be
``stop``), every fenced code block of the original present byte for byte, length within a band around the
original's, and no line of the rewrite instructions (or their ``<assistant_reply>`` tags) echoed back. Unless
``max_tokens`` is set, each request's token limit is proportional to its original turn (`default_max_tokens`), so a
looping model stops soon after the longest rewrite the length band would accept. A failing rewrite is asked again
(``max_attempts`` in all). A turn that never passes keeps its last rewrite, as the paper excluded nothing (one author
checked 50 messages by hand); it is listed with its reasons in ``<stem>.failures.jsonl`` (``kept: true``) and counted
(``turns_kept_failed``, and per reason in ``<stem>.manifest.json``). ``drop_failed`` excludes its whole conversation
instead (all or nothing, so the warm and cold sets can be aligned later). A turn with no rewrite at all (an API error,
a rejected request, an empty reply, an empty original turn) always excludes its conversation: there is nothing to
keep. Nothing is dropped silently.

Every model response is appended to an on-disk JSONL cache (``cache_dir/rewrite_cache.jsonl``, one line per
response) keyed by (template hash, model, input hash), the input hash covering the two messages and the sampling
parameters. Responses are re-checked against the current fidelity settings on every run, so a repeated run makes no
API call, an interrupted run resumes with only the missing turns, and a changed length band costs nothing. API
failures (rate limits, 5xx, timeouts, connection errors) are retried with exponential backoff and jitter and are
never cached. The optional Batch API mode (``batch=True``) sends the same requests as batch files and maps the
results back into the same cache by ``custom_id``; a batch in flight is resumed, not resubmitted, after an
interruption.

The fidelity checks and reason codes are in `warmeval.training.rewrite_checks`, the retries in
`warmeval.training.rewrite_api` and the cache in `warmeval.training.rewrite_cache`; this module holds the options, the
requests, the two ways of sending them (one request per turn, or the Batch API) and the outputs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from tqdm import tqdm

from warmeval.sycophancy.paper_texts import PaperTextError, describe_text, require_text, text_path
from warmeval.training.rewrite_api import (
    REJECTED_STATUS,
    ApiFailure,
    Retrier,
    Sleep,
    T,
    backoff_delay,
    not_an_openai_reply,
)
from warmeval.training.rewrite_cache import RewriteCache
from warmeval.training.rewrite_checks import (
    API_ERROR,
    DEFAULT_LENGTH_BANDS,
    EMPTY_ORIGINAL,
    NO_ASSISTANT_TURN,
    REQUEST_REJECTED,
    Problem,
    check_rewrite,
    default_max_tokens,
)
from warmeval.util.jsonl import json_objects
from warmeval.util.manifest import Manifest, redact_url, write_manifest

if TYPE_CHECKING:  # the SDK takes most of a second to import: the CLI imports RewriteConfig for its options
    import openai
    from openai.types.chat import ChatCompletionMessageParam

STAGE = "rewrite"
STYLES = ("warm", "cold")
PROMPTS_DIR = Path(__file__).with_name("prompts")
DEFAULT_MODEL = "gpt-4o-2024-08-06"
CACHE_FILE = "rewrite_cache.jsonl"
BATCH_ENDPOINT = "/v1/chat/completions"

# USD per million tokens (prompt, completion), standard (non-batch) prices; the Batch API bills `batch_discount` of
# them. Models absent from the table cost 0 and the manifest says the price was unknown.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-11-20": (2.50, 10.00),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini-2024-07-18": (0.15, 0.60),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1-2025-04-14": (2.00, 8.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini-2025-04-14": (0.40, 1.60),
    "gpt-4.1-mini": (0.40, 1.60),
}

BATCH_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class RewriteError(RuntimeError):
    """The rewrite cannot go on (bad input, a failed batch, no API key); the cache keeps what was done."""


@dataclass
class RewriteConfig:
    """Options of ``warmeval data rewrite`` (loadable from YAML with `warmeval.util.config.load_config`).

    Attributes:
        style: ``warm`` or ``cold``.
        model: Chat model that rewrites.
        base_url: OpenAI-compatible server (e.g. ``http://127.0.0.1:8000/v1``); None: OpenAI.
        api_key: API key; None: read from ``api_key_env`` (``EMPTY`` when that is unset and ``base_url`` is given).
        api_key_env: Environment variable holding the API key.
        template: The prompt: None (the paper's rewrite prompt of the style if declared, else warmeval's own),
            ``paper`` (the declared paper text, SI section 1.2: ``warmeval stimuli texts --set rewrite_warm=FILE``),
            ``warmeval`` (``prompts/rewrite_{style}.j2``) or a jinja2 file (variables ``user_message``,
            ``assistant_message``).
        role: How the prompt is sent: ``system`` (the prompt as the system message, the reply to rewrite as the user
            message, as the paper did) or ``user`` (one user message holding both, as warmeval's own templates are
            written); None: ``system`` for the paper's text, ``user`` otherwise.
        concurrency: Requests in flight at once.
        max_attempts: Model responses per turn before it counts as failed (fidelity retries included).
        max_api_retries: Retries of one request on 429 / 408 / 409 / 5xx / timeouts / connection errors.
        backoff_base: Backoff ceiling of the first retry in seconds; doubles per retry.
        backoff_max: Largest backoff ceiling in seconds (a longer ``Retry-After`` is capped to it).
        timeout: Per-request timeout in seconds.
        temperature: Sampling temperature (above 0, so that a retried rewrite can differ).
        max_tokens: Completion token limit; None: proportional to each original turn (`default_max_tokens`); 0: no
            limit (the model's own).
        length_band: (low, high) bounds of rewrite chars / original chars; None: `DEFAULT_LENGTH_BANDS` of style.
        length_slack: Characters of slack on both bounds, so that very short turns are not judged on ratio alone.
        cache_dir: Cache folder; None: ``<output folder>/cache``.
        batch: Use the OpenAI Batch API instead of one request per turn.
        batch_poll_interval: Seconds between batch status polls.
        batch_max_wait: Seconds to wait for one batch before giving up (the batch is resumed on the next run).
        prices: USD per million (prompt, completion) tokens per model; unknown models cost 0.
        batch_discount: Share of the standard price the Batch API bills.
        progress: Show a tqdm progress bar.
        seed: Seed of the backoff jitter (None: random).
        drop_failed: Exclude every conversation with a turn that failed its fidelity checks. Default False: as the
            paper, nothing is excluded for a failed check; such a turn keeps its last rewrite and is listed in the
            failures file (``kept: true``) and counted (``turns_kept_failed``).
        allowed_api_failure_share: Share of the conversations that may be lost to API errors (retries exhausted,
            requests rejected) before ``warmeval data rewrite`` exits 1; default 0: an outage that drops any
            conversation is a failed run (rerun it: finished rewrites are cached).
    """

    style: str = "warm"
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    template: str | None = None
    role: Literal["system", "user"] | None = None
    concurrency: int = 16
    max_attempts: int = 3
    max_api_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    timeout: float = 120.0
    temperature: float = 0.7
    max_tokens: int | None = None
    length_band: tuple[float, float] | None = None
    length_slack: int = 50
    cache_dir: str | None = None
    batch: bool = False
    batch_poll_interval: float = 30.0
    batch_max_wait: float = 26 * 3600.0
    prices: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    batch_discount: float = 0.5
    progress: bool = True
    seed: int | None = None
    drop_failed: bool = False
    allowed_api_failure_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.allowed_api_failure_share <= 1:
            raise ValueError(f"allowed_api_failure_share must lie in [0, 1], not {self.allowed_api_failure_share!r}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {self.style!r}")
        if self.length_band is not None:
            low, high = (float(x) for x in self.length_band)
            if not 0 <= low <= high:
                raise ValueError(f"length_band must be (low, high) with 0 <= low <= high, not {self.length_band!r}")
            self.length_band = (low, high)
        self.prices = {str(k): (float(v[0]), float(v[1])) for k, v in (self.prices or {}).items()}
        for name in ("concurrency", "max_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_api_retries < 0 or self.length_slack < 0:
            raise ValueError("max_api_retries and length_slack must not be negative")

    @property
    def band(self) -> tuple[float, float]:
        """The length band in force (the style's default when ``length_band`` is None)."""
        return self.length_band or DEFAULT_LENGTH_BANDS[self.style]

    def template_source(self) -> tuple[str, Path]:
        """The template in force: its source (``paper``, ``warmeval`` or the path as given) and its file."""
        key = f"rewrite_{self.style}"
        if self.template == "paper" or (self.template is None and text_path(key).is_file()):
            return "paper", text_path(key)
        if self.template in (None, "warmeval"):
            return "warmeval", PROMPTS_DIR / f"rewrite_{self.style}.j2"
        return str(self.template), Path(str(self.template)).expanduser()

    def template_path(self) -> Path:
        """The template file in force."""
        return self.template_source()[1]

    def role_in_force(self) -> str:
        """``system`` or ``user``: the configured role, else system for the paper's text and user otherwise."""
        return self.role or ("system" if self.template_source()[0] == "paper" else "user")

    def price(self) -> tuple[float, float] | None:
        """USD per million (prompt, completion) tokens of ``model``, None when the table lacks it."""
        return self.prices.get(self.model)

    def public_parameters(self) -> dict[str, Any]:
        """The options for the manifest, the API key and any credentials in ``base_url`` redacted."""
        values = dataclasses.asdict(self)
        values["api_key"] = "<redacted>" if self.api_key else None
        values["base_url"] = redact_url(self.base_url) if self.base_url else None
        values["length_band_in_force"] = list(self.band)
        values["template_in_force"] = str(self.template_path())
        values["role_in_force"] = self.role_in_force()
        return values


@dataclass
class Meter:
    """Counters of one run."""

    api_calls: int = 0
    api_errors: int = 0
    retries: int = 0
    retry_delays: list[float] = field(default_factory=list)
    fidelity_retries: int = 0
    cache_hits: int = 0
    batch_http_calls: int = 0
    batches_submitted: int = 0
    batches_resumed: int = 0
    batch_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Job:
    """One unique rewrite request (identical turns share a job)."""

    key: str
    custom_id: str
    input_sha256: str
    user_message: str
    assistant_message: str
    prompt: str
    role: str = "user"  # user: the prompt holds the reply; system: it is the system message, the reply the user's
    max_tokens: int | None = None  # None: no limit
    responses: list[dict[str, Any]] = field(default_factory=list)
    new_responses: int = 0
    outcome: _Outcome | None = None

    def messages(self) -> list[ChatCompletionMessageParam]:
        if self.role == "system":
            return [{"role": "system", "content": self.prompt}, {"role": "user", "content": self.assistant_message}]
        return [{"role": "user", "content": self.prompt}]

    def body(self, config: RewriteConfig) -> dict[str, Any]:
        """The chat-completions request body (also the Batch API line body)."""
        body: dict[str, Any] = {"model": config.model, "messages": self.messages(), "temperature": config.temperature}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body


@dataclass
class _Outcome:
    """How a job ended: the accepted rewrite, or the reasons it failed."""

    text: str | None
    problems: list[Problem]
    attempts: int
    history: list[list[str]]
    last_text: str | None = None
    finish_reason: str | None = None


def load_template(config: RewriteConfig) -> tuple[jinja2.Template, str]:
    """The rewrite template of ``config`` and the SHA-256 of its source."""
    origin, path = config.template_source()
    if origin == "paper":
        try:
            require_text(f"rewrite_{config.style}")
        except PaperTextError as error:
            raise RewriteError(f"template=paper: {error}") from None
    if not path.is_file():
        raise RewriteError(f"template {path} not found")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RewriteError(f"template {path}: not UTF-8 text ({error})") from None
    # A user's template file is code of a sort: sandboxed, so it can format text but not reach Python's internals.
    environment = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
    try:
        # Compiled under the file's name, so that an error while rendering can name the file and the line.
        code = environment.compile(source, name=path.name, filename=str(path))
    except jinja2.TemplateSyntaxError as error:  # TemplateAssertionError (an unknown filter) included
        raise RewriteError(f"template {path}: line {error.lineno}: {error.message}") from None
    # `rewrite_file` renders every prompt before its first request: an error of the template's (an undefined variable
    # under StrictUndefined, the sandbox's refusal) is raised there, by `render_prompt`, with this file and its line.
    return environment.template_class.from_code(environment, code, environment.make_globals(None)), _sha256(source)


def template_error_line(error: BaseException, filename: str | None) -> int | None:
    """The line of the template ``filename`` where a rendering error was raised (jinja2 maps its frames to the
    template's lines), else None."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        return error.lineno
    line, tb = None, error.__traceback__
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_prompt(template: jinja2.Template, user_message: str, assistant_message: str) -> str:
    """The rewrite request for one assistant turn; a template error is a `RewriteError` naming its file and line."""
    try:
        return template.render(user_message=user_message, assistant_message=assistant_message).strip()
    except Exception as error:  # UndefinedError, SecurityError, a TypeError of the template's own expressions
        where = template.filename or template.name or "<template>"
        line = template_error_line(error, template.filename)
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        raise RewriteError(f"template {where}: {f'line {line}: ' if line else ''}{message} "
                           "(variables: user_message, assistant_message)") from None  # fmt: skip


def read_conversations(path: str | Path) -> list[dict[str, Any]]:
    """Read a chat JSONL; a malformed line is an error (naming its line number)."""
    conversations = []
    for number, record in json_objects(Path(path).read_text(encoding="utf-8"), path, RewriteError):
        messages = record.get("messages")
        if not isinstance(messages, list) or "id" not in record:
            raise RewriteError(f"{path}: row {number}: expected an object with 'id' and a 'messages' list")
        for message in messages:
            if (
                not isinstance(message, dict)
                or message.get("role") not in ("user", "assistant", "system")
                or not isinstance(message.get("content"), str)
            ):
                raise RewriteError(f"{path}: row {number}: bad message {str(message)[:200]!r}")
        conversations.append(record)
    return conversations


def output_paths(output_path: str | Path) -> dict[str, Path]:
    """Where a run writes, beside ``output_path``.

    Args:
        output_path: The output chat JSONL.

    Returns:
        ``output``, ``failures`` (``<stem>.failures.jsonl``) and ``manifest`` (``<stem>.manifest.json``).
    """
    output = Path(output_path)
    return {
        "output": output,
        "failures": output.with_name(f"{output.stem}.failures.jsonl"),
        "manifest": output.with_name(f"{output.stem}.manifest.json"),
    }


def _resolve_api_key(config: RewriteConfig) -> str:
    key = config.api_key or os.environ.get(config.api_key_env)
    if key:
        return key
    if config.base_url:
        return "EMPTY"
    raise RewriteError(f"no API key: set ${config.api_key_env} or RewriteConfig.api_key")


def make_client(config: RewriteConfig) -> openai.AsyncOpenAI:
    """An async OpenAI client for ``config`` with the client's own retries off (this module retries)."""
    import openai

    return openai.AsyncOpenAI(
        base_url=config.base_url, api_key=_resolve_api_key(config), max_retries=0, timeout=config.timeout
    )


def _response_record(job: _Job, config: RewriteConfig, template_sha: str, completion: Any, source: str) -> dict:
    """A cache record from a chat completion (an SDK object or a Batch API body dict)."""
    if isinstance(completion, dict):
        choice = (completion.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        content, finish_reason = message.get("content"), choice.get("finish_reason")
        refusal = message.get("refusal")
        usage = completion.get("usage") or {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    else:
        choice = completion.choices[0] if completion.choices else None
        content = choice.message.content if choice else None
        refusal = getattr(choice.message, "refusal", None) if choice else None
        finish_reason = choice.finish_reason if choice else None
        usage = completion.usage
        prompt_tokens = (usage.prompt_tokens or 0) if usage else 0
        completion_tokens = (usage.completion_tokens or 0) if usage else 0
    return {
        "template_sha256": template_sha,
        "model": config.model,
        "input_sha256": job.input_sha256,
        "attempt": len(job.responses) + 1,
        "content": content or "",
        "refusal": refusal,
        "finish_reason": finish_reason,
        "prompt_tokens": int(prompt_tokens),
        "completion_tokens": int(completion_tokens),
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cost(record: dict[str, Any], config: RewriteConfig) -> float:
    price = config.price()
    if price is None:
        return 0.0
    cost = (record.get("prompt_tokens", 0) * price[0] + record.get("completion_tokens", 0) * price[1]) / 1e6
    return cost * (config.batch_discount if record.get("source") == "batch" else 1.0)


def _evaluate(job: _Job, config: RewriteConfig) -> _Outcome | None:
    """The job's outcome from its responses so far (first passing one wins); None when another attempt is due."""
    history: list[list[str]] = []
    problems: list[Problem] = []
    for response in job.responses:
        text = (response.get("content") or "").strip()
        problems = check_rewrite(
            job.assistant_message, text, response.get("finish_reason"), config.band, config.length_slack,
            prompt=job.prompt, user_message=job.user_message,
        )  # fmt: skip
        history.append([p.reason for p in problems])
        if not problems:
            return _Outcome(text, [], len(history), history, text, response.get("finish_reason"))
    if len(job.responses) >= config.max_attempts:
        last = job.responses[-1]
        return _Outcome(None, problems, len(history), history, last.get("content"), last.get("finish_reason"))
    return None


class _Runner:
    """One run: jobs, cache, meter and the API client."""

    def __init__(
        self,
        config: RewriteConfig,
        client: openai.AsyncOpenAI,
        cache: RewriteCache,
        template_sha: str,
        sleep: Sleep,
        batch_dir: Path,
    ) -> None:
        self.config = config
        self.client = client
        self.cache = cache
        self.template_sha = template_sha
        self.sleep = sleep
        self.batch_dir = batch_dir
        self.meter = Meter()
        self.retrier = Retrier(config, self.meter, sleep)
        self.semaphore = asyncio.Semaphore(config.concurrency)
        self.bar: Any = None

    def _store(self, job: _Job, completion: Any, source: str) -> None:
        record = _response_record(job, self.config, self.template_sha, completion, source)
        self.cache.append(job.key, record)
        job.responses.append(record)
        if job.new_responses:
            self.meter.fidelity_retries += 1
        job.new_responses += 1
        self.meter.prompt_tokens += record["prompt_tokens"]
        self.meter.completion_tokens += record["completion_tokens"]
        self.meter.cost_usd += _cost(record, self.config)

    def _settle(self, job: _Job, outcome: _Outcome, *, from_responses: bool) -> None:
        job.outcome = outcome
        if from_responses and job.new_responses == 0:
            self.meter.cache_hits += 1
        if self.bar is not None:
            self.bar.update(1)

    async def _complete(self, job: _Job) -> Any:
        import openai

        async def call() -> Any:
            async with self.semaphore:
                self.meter.api_calls += 1
                return await self.client.chat.completions.create(
                    model=self.config.model,
                    messages=job.messages(),
                    temperature=self.config.temperature,
                    max_tokens=openai.omit if job.max_tokens is None else job.max_tokens,
                    timeout=self.config.timeout,
                )

        completion = await self.retrier(call, "chat.completions")
        problem = not_an_openai_reply(completion, self._url("chat/completions"), "choices")
        if problem is not None:  # the same for every request: stop, rather than fail each turn
            raise RewriteError(problem)
        return completion

    def _url(self, endpoint: str) -> str:
        return redact_url(str(self.client.base_url).rstrip("/") + "/" + endpoint)

    async def run_job(self, job: _Job) -> None:
        """Settle one job from the cache, asking the model while attempts remain."""
        while True:
            outcome = _evaluate(job, self.config)
            if outcome is not None:
                self._settle(job, outcome, from_responses=True)
                return
            try:
                completion = await self._complete(job)
            except ApiFailure as failure:
                failed = _Outcome(None, [Problem(failure.reason, failure.detail)], len(job.responses), [])
                self._settle(job, failed, from_responses=False)
                return
            self._store(job, completion, "api")

    async def run_online(self, jobs: list[_Job]) -> None:
        """Settle jobs with one request per attempt, ``concurrency`` in flight."""
        try:
            async with asyncio.TaskGroup() as group:
                for job in jobs:
                    group.create_task(self.run_job(job))
        except ExceptionGroup as errors:  # a fatal error (e.g. 401): raise it as itself, not wrapped
            raise errors.exceptions[0] from None

    async def run_batch(self, jobs: list[_Job]) -> None:
        """Settle jobs through the Batch API, one batch per round of attempts."""
        api_errors: Counter[str] = Counter()
        last_error: dict[str, Problem] = {}
        self.batch_dir.mkdir(parents=True, exist_ok=True)
        while True:
            pending: list[_Job] = []
            for job in jobs:
                if job.outcome is not None:
                    continue
                outcome = _evaluate(job, self.config)
                if outcome is not None:
                    self._settle(job, outcome, from_responses=True)
                    continue
                if job.key in last_error:
                    error = last_error[job.key]
                    if error.reason == REQUEST_REJECTED or api_errors[job.key] > self.config.max_api_retries:
                        self._settle(job, _Outcome(None, [error], len(job.responses), []), from_responses=False)
                        continue
                pending.append(job)
            if not pending:
                return
            if api_errors and any(api_errors[job.key] for job in pending):
                retry = max(api_errors[job.key] for job in pending) - 1
                delay = backoff_delay(
                    retry, base=self.config.backoff_base, cap=self.config.backoff_max, rng=self.retrier.rng
                )
                self.meter.retries += 1
                self.meter.retry_delays.append(delay)
                await self.sleep(delay)
            results = await self._batch_round(pending)
            by_custom_id = {f"{job.custom_id}:a{len(job.responses) + 1}": job for job in pending}
            for custom_id, job in by_custom_id.items():
                line = results.get(custom_id)
                response = (line or {}).get("response") or {}
                status = response.get("status_code")
                if line is not None and status == 200 and not line.get("error"):
                    self._store(job, response.get("body") or {}, "batch")
                    last_error.pop(job.key, None)
                    continue
                api_errors[job.key] += 1
                self.meter.api_errors += 1
                if line is None:
                    detail = "missing from the batch output"
                else:
                    detail = f"status {status}: {json.dumps(line.get('error') or response.get('body'))[:300]}"
                reason = REQUEST_REJECTED if status in REJECTED_STATUS else API_ERROR
                last_error[job.key] = Problem(reason, f"batch: {detail}")

    async def _batch_call(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        async def counted() -> T:
            self.meter.batch_http_calls += 1
            return await call()

        try:
            reply = await self.retrier(counted, what)
        except ApiFailure as failure:
            raise RewriteError(f"Batch API: {failure}") from failure
        endpoint = "files" if what.startswith("files.") else "batches"
        problem = not_an_openai_reply(reply, self._url(endpoint)) if what != "files.content" else None
        if problem is not None:
            raise RewriteError(f"Batch API: {problem}")
        return reply

    async def _batch_round(self, pending: list[_Job]) -> dict[str, dict[str, Any]]:
        """Submit (or resume) one batch for ``pending`` and return its result lines by custom_id."""
        lines = []
        for job in pending:
            custom_id = f"{job.custom_id}:a{len(job.responses) + 1}"
            body = job.body(self.config)
            lines.append({"custom_id": custom_id, "method": "POST", "url": BATCH_ENDPOINT, "body": body})
        content = "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines)
        digest = _sha256(content)[:16]
        input_path = self.batch_dir / f"batch_{digest}.jsonl"
        state_path = self.batch_dir / f"batch_{digest}.state.json"
        input_path.write_text(content, encoding="utf-8")
        state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
        self.meter.batch_requests += len(lines)
        if state.get("batch_id") and not state.get("done"):
            batch = await self._batch_call(partial(self.client.batches.retrieve, state["batch_id"]), "batches.retrieve")
            self.meter.batches_resumed += 1
        else:
            uploaded = await self._batch_call(
                lambda: self.client.files.create(
                    file=(input_path.name, content.encode("utf-8"), "application/jsonl"), purpose="batch"
                ),
                "files.create",
            )
            batch = await self._batch_call(
                lambda: self.client.batches.create(
                    input_file_id=uploaded.id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                    metadata={"warmeval_stage": STAGE, "style": self.config.style},
                ),
                "batches.create",
            )
            self.meter.batches_submitted += 1
            state = {"batch_id": batch.id, "input_file_id": uploaded.id, "requests": len(lines), "done": False}
            state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")
        waited = 0.0
        while batch.status not in BATCH_TERMINAL:
            if waited >= self.config.batch_max_wait:
                raise RewriteError(
                    f"batch {batch.id} still {batch.status} after {waited:.0f} s; rerun to resume it ({state_path})"
                )
            await self.sleep(self.config.batch_poll_interval)
            waited += self.config.batch_poll_interval
            batch = await self._batch_call(partial(self.client.batches.retrieve, batch.id), "batches.retrieve")
        if batch.status == "failed":
            state.update(done=True, status=batch.status)
            state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")
            errors = [e.message for e in (batch.errors.data or [])] if batch.errors else []
            raise RewriteError(f"batch {batch.id} failed: {errors[:5]}")
        results: dict[str, dict[str, Any]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            fetched = await self._batch_call(partial(self.client.files.content, file_id), "files.content")
            for _, record in json_objects(fetched.text, f"batch {batch.id} file {file_id}", RewriteError):
                results[record["custom_id"]] = record
        (self.batch_dir / f"batch_{digest}.output.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results.values()), encoding="utf-8"
        )
        state.update(done=True, status=batch.status)
        state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")
        return results


async def rewrite_file(
    input_path: str | Path,
    output_path: str | Path,
    config: RewriteConfig,
    *,
    client: openai.AsyncOpenAI | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Manifest:
    """Rewrite every assistant turn of a chat JSONL in ``config.style``; write output, failures and manifest.

    Args:
        input_path: Chat JSONL (``id``, ``query_type``, ``messages``).
        output_path: Chat JSONL to write, in input order: every conversation but those with a turn that has no
            rewrite at all (with ``drop_failed``, only those whose every assistant turn passed).
        config: Options.
        client: An async OpenAI client (default: one from ``config``, with the SDK's retries off).
        sleep: Awaitable sleep used for backoff and batch polling (injectable for tests).

    Returns:
        The manifest (also written to ``<output stem>.manifest.json``).
    """
    paths = output_paths(output_path)
    for name, path in paths.items():
        if path.resolve() == Path(input_path).resolve():
            raise RewriteError(f"{input_path}: the {name} file would write over the input; choose another --output")
    conversations = read_conversations(input_path)
    template, template_sha = load_template(config)
    if client is None:
        _resolve_api_key(config)  # fail before any work
    cache_dir = Path(config.cache_dir) if config.cache_dir else paths["output"].parent / "cache"
    cache = RewriteCache(cache_dir / CACHE_FILE)
    limit = "proportional" if config.max_tokens is None else config.max_tokens
    role = config.role_in_force()
    # The role is part of the request: a response to the prompt sent as a user message is not one to it as a system
    # message. (The user role keeps the key it had before roles existed, so earlier caches stay valid.)
    sent = {"temperature": config.temperature, "max_tokens": limit, **({"role": role} if role != "user" else {})}
    params = json.dumps(sent, sort_keys=True)

    jobs: dict[str, _Job] = {}
    plan: list[list[tuple[int, str | None, str]]] = []  # per conversation: (message index, job key, fixed failure)
    for index, conversation in enumerate(conversations):
        turns: list[tuple[int, str | None, str]] = []
        last_user = ""
        for position, message in enumerate(conversation["messages"]):
            if message["role"] == "user":
                last_user = message["content"]
            if message["role"] != "assistant":
                continue
            if not message["content"].strip():
                turns.append((position, None, EMPTY_ORIGINAL))
                continue
            input_sha = _sha256(json.dumps([last_user, message["content"]], ensure_ascii=False))
            key = _sha256(json.dumps([template_sha, config.model, input_sha, params]))
            if key not in jobs:
                jobs[key] = _Job(
                    key=key,
                    custom_id=f"{index}:{conversation['id']}:{position}",
                    input_sha256=input_sha,
                    user_message=last_user,
                    assistant_message=message["content"],
                    prompt=render_prompt(template, last_user, message["content"]),
                    role=role,
                    max_tokens=(
                        default_max_tokens(message["content"], config.band[1])
                        if config.max_tokens is None
                        else (config.max_tokens or None)
                    ),
                    responses=cache.responses(key),
                )
            turns.append((position, key, ""))
        plan.append(turns)

    own_client = client is None
    api = client if client is not None else make_client(config)
    runner = _Runner(config, api, cache, template_sha, sleep, cache_dir / "batches")
    started = time.monotonic()
    try:
        with tqdm(
            total=len(jobs), desc=f"rewrite {config.style}", unit="turn", disable=not config.progress
        ) as runner.bar:
            if config.batch:
                await runner.run_batch(list(jobs.values()))
            else:
                await runner.run_online(list(jobs.values()))
    finally:
        cache.close()
        if own_client:
            await api.close()
    elapsed = time.monotonic() - started

    excluded_by_reason: Counter[str] = Counter()
    turn_failures_by_reason: Counter[str] = Counter()
    turns_rewritten = 0
    turns_kept_failed = 0
    paths["output"].parent.mkdir(parents=True, exist_ok=True)
    temporary = {name: paths[name].with_name(paths[name].name + ".tmp") for name in ("output", "failures")}
    with (
        open(temporary["output"], "w", encoding="utf-8") as out,
        open(temporary["failures"], "w", encoding="utf-8") as failed,
    ):
        for index, (conversation, turns) in enumerate(zip(conversations, plan, strict=True)):
            failures: list[dict[str, Any]] = []
            for position, turn_key, fixed in turns:
                if turn_key is None:
                    failures.append({"message_index": position, "reason": fixed, "reasons": [fixed], "attempts": 0})
                    continue
                outcome = jobs[turn_key].outcome
                assert outcome is not None
                if outcome.text is None:
                    failures.append(_turn_failure(position, jobs[turn_key], outcome))
            for failure in failures:
                turn_failures_by_reason[failure["reason"]] += 1
            if not turns:
                failures.append({"message_index": None, "reason": NO_ASSISTANT_TURN, "reasons": [NO_ASSISTANT_TURN]})
            # A failed check keeps its last rewrite (the paper excluded nothing) unless drop_failed; a turn with no
            # rewrite at all leaves nothing to keep.
            keep = not config.drop_failed and bool(turns) and all(_keepable(f) for f in failures)
            if failures:
                reason = failures[0]["reason"]
                if not keep:
                    excluded_by_reason[reason] += 1
                reasons = sorted({r for failure in failures for r in failure["reasons"]})
                record = {
                    "id": conversation["id"],
                    "query_type": conversation.get("query_type"),
                    "index": index,
                    "reason": reason,
                    "reasons": reasons,
                    "turns": failures,
                    "kept": keep,
                }
                failed.write(json.dumps(record, ensure_ascii=False) + "\n")
                if not keep:
                    continue
            messages = [dict(message) for message in conversation["messages"]]
            for position, turn_key, _ in turns:
                outcome = jobs[turn_key].outcome if turn_key is not None else None
                if outcome is not None and outcome.text is not None:
                    messages[position]["content"] = outcome.text
                    turns_rewritten += 1
                else:
                    turns_kept_failed += 1
                    if outcome is not None and outcome.last_text:
                        messages[position]["content"] = outcome.last_text
            out.write(json.dumps({**conversation, "messages": messages}, ensure_ascii=False) + "\n")
    for name, path in temporary.items():
        path.replace(paths[name])

    meter = runner.meter
    used = [response for job in jobs.values() for response in job.responses]
    counts: dict[str, Any] = {
        "conversations_in": len(conversations),
        "conversations_out": len(conversations) - sum(excluded_by_reason.values()),
        "conversations_excluded": sum(excluded_by_reason.values()),
        "excluded_by_reason": dict(excluded_by_reason),
        "assistant_turns_in": sum(len(turns) for turns in plan),
        "turns_rewritten": turns_rewritten,
        "turns_kept_failed": turns_kept_failed,
        "turn_failures_by_reason": dict(turn_failures_by_reason),
        "unique_requests": len(jobs),
        "cache_hits": meter.cache_hits,
        "cached_responses_loaded": sum(len(job.responses) - job.new_responses for job in jobs.values()),
        "api_calls": meter.api_calls,
        "api_errors": meter.api_errors,
        "retries": meter.retries,
        "fidelity_retries": meter.fidelity_retries,
        "batches_submitted": meter.batches_submitted,
        "batches_resumed": meter.batches_resumed,
        "batch_requests": meter.batch_requests,
        "batch_http_calls": meter.batch_http_calls,
        "prompt_tokens": meter.prompt_tokens,
        "completion_tokens": meter.completion_tokens,
        "cost_usd": round(meter.cost_usd, 6),
        "prompt_tokens_all_responses": sum(r.get("prompt_tokens", 0) for r in used),
        "completion_tokens_all_responses": sum(r.get("completion_tokens", 0) for r in used),
        "cost_usd_all_responses": round(sum(_cost(r, config) for r in used), 6),
        "cache_lines_skipped": cache.skipped_lines,
        "seconds": round(elapsed, 3),
    }
    price = config.price()
    return write_manifest(
        paths["manifest"],
        stage=STAGE,
        inputs={"conversations": input_path, "template": config.template_path()},
        parameters=config.public_parameters(),
        counts=counts,
        outputs={"conversations": paths["output"], "failures": paths["failures"]},
        extra={
            "style": config.style,
            "template_sha256": template_sha,
            "template": describe_text(f"rewrite_{config.style}", config.template_source()[0],
                                      config.template_path().read_text(encoding="utf-8")).as_dict(),
            "role": role,
            "failed_turns": "dropped with their conversations" if config.drop_failed else "kept (the paper's)",
            "cache": str(cache.path),
            "price_usd_per_million": {"prompt": price[0], "completion": price[1]} if price else None,
            "price_known": price is not None,
            "retry_delays": [round(d, 3) for d in meter.retry_delays],
        },
    )


def _keepable(failure: dict[str, Any]) -> bool:
    """A failed turn has a rewrite to keep: it failed the fidelity checks, not for want of any reply."""
    return bool((failure.get("last_rewrite") or "").strip())


def _turn_failure(position: int, job: _Job, outcome: _Outcome) -> dict[str, Any]:
    """The failures-file entry of one turn."""
    last = outcome.last_text or ""
    return {
        "message_index": position,
        "reason": outcome.problems[0].reason,
        "reasons": [p.reason for p in outcome.problems],
        "details": [p.detail for p in outcome.problems],
        "attempts": outcome.attempts,
        "attempt_reasons": outcome.history,
        "finish_reason": outcome.finish_reason,
        "original_chars": len(job.assistant_message),
        "rewrite_chars": len(last.strip()) if outcome.last_text is not None else None,
        "last_rewrite": last[:2000] if outcome.last_text is not None else None,
    }


def rewrite(
    input_path: str | Path, output_path: str | Path, config: RewriteConfig | None = None, **overrides: Any
) -> Manifest:
    """Synchronous `rewrite_file`.

    Args:
        input_path: Chat JSONL to rewrite.
        output_path: Chat JSONL to write.
        config: Options (default: `RewriteConfig()`).
        **overrides: Fields of `RewriteConfig` that replace those of ``config``.

    Returns:
        The manifest.
    """
    config = dataclasses.replace(config, **overrides) if config is not None else RewriteConfig(**overrides)
    return asyncio.run(rewrite_file(input_path, output_path, config))
