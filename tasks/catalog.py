"""The tasks by name: the four reliability tasks and the safety control, for the CLI and the experiment runner."""

from collections.abc import Callable
from typing import Any

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
