"""Retries of the rewrite stage's API calls: exponential backoff with jitter, ``Retry-After`` honoured, and the
failures that end a turn (retries exhausted, or a request the server rejects). Nothing failed is cached."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from warmeval.training.rewrite_checks import API_ERROR, REQUEST_REJECTED

if TYPE_CHECKING:
    from warmeval.training.rewrite import Meter, RewriteConfig

RETRYABLE_STATUS = frozenset({408, 409, 429})
REJECTED_STATUS = frozenset({400, 413, 422})

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]


def backoff_delay(
    retry: int, *, base: float, cap: float, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): exponential with "equal jitter".

    The ceiling is ``min(cap, base * 2**retry)``; the delay is drawn uniformly from [ceiling / 2, ceiling], so delays
    grow with each retry while concurrent clients spread out. A server's ``Retry-After`` (capped to ``cap``) is a
    lower bound.
    """
    ceiling = min(cap, base * 2**retry)
    delay = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date), None when absent or bad."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


def is_retryable(error: BaseException) -> tuple[bool, float | None]:
    """Whether an API error is worth retrying, and the server's Retry-After."""
    import openai

    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        return status in RETRYABLE_STATUS or status >= 500, retry_after(error.response.headers)
    if isinstance(error, openai.APIConnectionError | TimeoutError):  # APITimeoutError is an APIConnectionError
        return True, None
    return False, None


class ApiFailure(Exception):
    """A request that failed for good (retries exhausted, or rejected); the turn fails, nothing is cached."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Retrier:
    """Runs API calls with retries, exponential backoff and jitter (sleep injectable)."""

    def __init__(self, config: RewriteConfig, meter: Meter, sleep: Sleep) -> None:
        self.config = config
        self.meter = meter
        self.sleep = sleep
        self.rng = random.Random(config.seed)

    async def __call__(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        import openai

        retry = 0
        while True:
            try:
                return await call()
            except Exception as error:
                self.meter.api_errors += 1
                retryable, retry_after = is_retryable(error)
                if isinstance(error, openai.APIStatusError) and error.status_code in REJECTED_STATUS:
                    raise ApiFailure(REQUEST_REJECTED, f"{what}: {describe(error)}") from error
                if not retryable:
                    raise
                if retry >= self.config.max_api_retries:
                    raise ApiFailure(API_ERROR, f"{what}: {describe(error)} (after {retry} retries)") from error
                delay = backoff_delay(
                    retry,
                    base=self.config.backoff_base,
                    cap=self.config.backoff_max,
                    retry_after=retry_after,
                    rng=self.rng,
                )
                self.meter.retries += 1
                self.meter.retry_delays.append(delay)
                await self.sleep(delay)
                retry += 1


def not_an_openai_reply(reply: Any, url: str, *fields: str) -> str | None:
    """Why ``reply`` (what the SDK returned for ``url``) is not a reply of an OpenAI-compatible API, else None.

    The SDK hands back a 200 response that is not JSON (a proxy's or a login page's HTML) as its text, and JSON of
    another shape as an object without the expected ``fields``; either would fail later as an attribute error.
    """
    if isinstance(reply, str | bytes):
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        head = " ".join(text.split())[:80]
        return (f"{url}: the reply was not JSON from an OpenAI-compatible API (it begins {head!r}); check base_url "
                "(it should end in /v1) and any proxy between")  # fmt: skip
    missing = [name for name in fields if getattr(reply, name, None) is None]
    if missing:
        shown = " ".join(str(getattr(reply, "model_extra", None) or reply).split())[:80]
        return (f"{url}: the reply was JSON without {', '.join(repr(name) for name in missing)}, not a reply of an "
                f"OpenAI-compatible API ({shown!r}); check base_url")  # fmt: skip
    return None


def describe(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    text = f"{type(error).__name__}{f' {status}' if status else ''}: {error}"
    return text[:500]
