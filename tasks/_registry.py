"""Inspect entry point: `inspect eval warmeval/<task>` and the `warmeval-scripted` judge provider."""

from collections.abc import Callable
from typing import Any

from warmeval.scorers.scripted import ScriptedGrader
from warmeval.tasks.advbench import advbench
from warmeval.tasks.disinfo import disinfo
from warmeval.tasks.medqa_conv import medqa_conv
from warmeval.tasks.triviaqa import triviaqa
from warmeval.tasks.truthfulqa import truthfulqa

TASKS: dict[str, Callable[..., Any]] = {
    "triviaqa": triviaqa,
    "truthfulqa": truthfulqa,
    "disinfo": disinfo,
    "medqa_conv": medqa_conv,
}

# The safety control; not one of the four reliability tasks.
CONTROL_TASKS: dict[str, Callable[..., Any]] = {"advbench": advbench}

__all__ = ["CONTROL_TASKS", "TASKS", "ScriptedGrader", "advbench", "disinfo", "medqa_conv", "triviaqa", "truthfulqa"]
