"""Inspect solvers used by the warmeval tasks: the warm system-prompt control and TriviaQA distractors."""

from warmeval.solvers.distractor import DISTRACTOR_ROLE, DistractorError, insert_distractor
from warmeval.solvers.system_prompt import resolve_system_prompt, system_prompt_record, system_prompt_solver

__all__ = [
    "DISTRACTOR_ROLE",
    "DistractorError",
    "insert_distractor",
    "resolve_system_prompt",
    "system_prompt_record",
    "system_prompt_solver",
]
