"""Inspect entry point: `inspect eval warmeval/<task>` and the `warmeval-scripted` judge provider."""

from warmeval.scorers.judges.scripted import ScriptedGrader
from warmeval.tasks.advbench import advbench
from warmeval.tasks.disinfo import disinfo
from warmeval.tasks.medqa_conv import medqa_conv
from warmeval.tasks.sociot_generations import sociot_generations
from warmeval.tasks.triviaqa import triviaqa
from warmeval.tasks.truthfulqa import truthfulqa

__all__ = ["ScriptedGrader", "advbench", "disinfo", "medqa_conv", "sociot_generations", "triviaqa", "truthfulqa"]
