"""One experiment file: the base model, its variants, the tasks and the judges; `run_experiment` runs all of it.

Map: `warmeval.experiment.schema` (the YAML's schema, the ``warmeval init`` example, `load_experiment`) and
`warmeval.experiment.runner` (`run_experiment`: one vLLM server, variants x tasks through Inspect's ``eval_set``, the
controls, the SocioT trajectories, the report). Tasks say what a run must do for them
(`warmeval.tasks.catalog.declared`: their own run-time arguments, the figure a control reports); the runner matches no
task by name.
"""

from __future__ import annotations

from warmeval.experiment.runner import (
    ControlResult,
    ExperimentResult,
    build_tasks,
    check_tasks,
    control_results,
    controls_table,
    default_max_tasks,
    run_experiment,
    sociot_tasks,
    sociot_trajectories,
)
from warmeval.experiment.schema import (
    EXAMPLE,
    PAPER_BASE_MODEL,
    SET_BY_EXPERIMENT,
    Experiment,
    ExperimentError,
    ExperimentFile,
    SocioTSpec,
    Variant,
    load_experiment,
)

__all__ = [
    "EXAMPLE", "PAPER_BASE_MODEL", "SET_BY_EXPERIMENT", "ControlResult", "Experiment", "ExperimentError",
    "ExperimentFile", "ExperimentResult", "SocioTSpec", "Variant", "build_tasks", "check_tasks", "control_results",
    "controls_table", "default_max_tasks", "load_experiment", "run_experiment", "sociot_tasks", "sociot_trajectories",
]  # fmt: skip
