"""``warmeval serve``: one vLLM server with the base model and every adapter (`warmeval.serve`)."""

from __future__ import annotations

from warmeval.cli._common import app, fail
from warmeval.cli.options import config_options
from warmeval.serve import ServeConfig


@app.command("serve")
@config_options(ServeConfig, flags={"adapters": "--adapter", "extra_args": "--extra-arg"})
def serve(config: ServeConfig) -> None:
    """Serve the base model and every adapter from ONE vLLM server; Ctrl-C or SIGTERM stops its process group."""
    from warmeval.serve import ServeError, serve_forever

    try:
        serve_forever(config)
    except ServeError as error:
        fail(error)
