"""The run plan: what an experiment will ask of the served models and of the judge, counted before anything starts.

``warmeval run --plan experiment.yaml`` prints it and stops (no server, no key, no network: the tasks are built from
their local or cached data, as `check_tasks` builds them); ``warmeval run`` prints the same summary before it starts.

Per variant and task, and in total:

* **samples** as the task loads them (every condition of every question), and **generations**: samples x epochs;
* **judge calls**: one per graded sample and epoch (the reliability tasks' grader, AdvBench's refusal judge); a
  response that the refusal phrases catch is not sent, so a run makes at most this many;
* **distractor calls**: TriviaQA's generated wrong answers, one per question that needs one and is not cached yet,
  generated during the first variant's run and counted there;
* **tokens**, estimated at `CHARS_PER_TOKEN` characters per token (OpenAI's rule of thumb for English): the prompts
  (system prompt included) in, each response at its ``max_tokens`` limit out; the judge reads its template, the
  question, the answers and that response, and writes a verdict of `JUDGE_VERDICT_TOKENS` tokens;
* **the judge's cost**, online and through the OpenAI Batch API, from the price table `judge_prices.yaml` (one file,
  with its date). A judge not in the table gets no price, and the plan says so.

The capability controls run through lm-eval: they count questions and generations (``n``, a local file's rows, or
the whole test set) but no tokens, and no judge. SocioT's validation generations count per checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from warmeval.experiment.schema import Experiment, ExperimentError

PRICES_FILE = Path(__file__).with_name("judge_prices.yaml")
CHARS_PER_TOKEN = 4
JUDGE_VERDICT_TOKENS = 5  # "CORRECT" / "INCORRECT" / "REFUSED" and a stop token
# The whole test sets the capability controls run without n or a local file (`warmeval.scorers.capability`).
CAPABILITY_SIZES = {"mmlu": 14042, "gsm8k": 1319}
COUNTS = ("samples", "generations", "judge_calls", "distractor_calls", "input_tokens", "output_tokens",
          "judge_input_tokens", "judge_output_tokens")  # fmt: skip


def tokens(text: str) -> int:
    """The plan's token estimate of a text (`CHARS_PER_TOKEN` characters per token, at least 1 for any text)."""
    return -(-len(text) // CHARS_PER_TOKEN) if text else 0


@dataclass
class PlanRow:
    """What one variant's run of one task asks for."""

    variant: str
    task: str
    samples: int = 0
    generations: int = 0
    judge_calls: int = 0
    distractor_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0

    def add(self, other: PlanRow) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Prices:
    """A judge's prices in US dollars per million tokens, and where they come from."""

    model: str
    input: float
    output: float
    batch_input: float
    batch_output: float
    as_of: str
    source: str

    def cost(self, row: PlanRow, *, batch: bool) -> float:
        rate_in, rate_out = (self.batch_input, self.batch_output) if batch else (self.input, self.output)
        return (row.judge_input_tokens * rate_in + row.judge_output_tokens * rate_out) / 1e6


@dataclass
class Plan:
    """The plan of one experiment: a row per variant and task, the judge, its prices and what the figures assume."""

    rows: list[PlanRow]
    judge: str
    prices: Prices | None
    notes: list[str] = field(default_factory=list)
    batched: bool = False  # the run grades through the provider's batch API

    def total(self, variant: str | None = None) -> PlanRow:
        """The sum over every row (or one variant's rows)."""
        total = PlanRow(variant or "all", "all")
        for row in self.rows:
            if variant is None or row.variant == variant:
                total.add(row)
        return total

    def variants(self) -> list[str]:
        return list(dict.fromkeys(row.variant for row in self.rows))

    def to_json(self) -> dict[str, Any]:
        def with_cost(row: PlanRow) -> dict[str, Any]:
            costs = {} if self.prices is None else {"judge_cost_usd": round(self.prices.cost(row, batch=False), 4),
                                                    "judge_cost_batch_usd": round(self.prices.cost(row, batch=True), 4)}
            return {**asdict(row), **costs}  # fmt: skip

        return {
            "judge": self.judge,
            "judge_batched": self.batched,
            "prices": asdict(self.prices) if self.prices else None,
            "rows": [with_cost(row) for row in self.rows],
            "variants": {name: with_cost(self.total(name)) for name in self.variants()},
            "total": with_cost(self.total()),
            "notes": self.notes,
        }

    def table(self) -> str:
        """The plan as a plain-text table, a subtotal per variant, the total, and the assumptions."""
        headers = ["variant", "task", *COUNTS]
        lines: list[list[str]] = []
        for variant in self.variants():
            lines += [[row.variant, row.task, *(f"{getattr(row, n):,}" for n in COUNTS)]
                      for row in self.rows if row.variant == variant]  # fmt: skip
            subtotal = self.total(variant)
            lines.append([variant, "(variant)", *(f"{getattr(subtotal, n):,}" for n in COUNTS)])
        total = self.total()
        lines.append(["all", "(total)", *(f"{getattr(total, n):,}" for n in COUNTS)])
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]

        def line_of(cells: list[str]) -> str:  # names left, figures right
            pairs = enumerate(zip(cells, widths, strict=True))
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs)

        out = [line_of(headers), *(line_of(line) for line in lines)]
        if self.prices is None:
            out.append(f"judge {self.judge}: no price in {PRICES_FILE.name}; cost not estimated")
        else:
            out.append(
                f"judge {self.judge}: about ${self.prices.cost(total, batch=False):,.2f} online, "
                f"${self.prices.cost(total, batch=True):,.2f} through the Batch API (prices of {self.prices.as_of}, "
                f"{PRICES_FILE.name}); this run grades "
                + ("through the Batch API (roles.grader.batch)" if self.batched else "online")
            )
        out += [f"note: {note}" for note in self.notes]
        return "\n".join(out)


def load_prices(judge: str, path: Path = PRICES_FILE) -> Prices | None:
    """The judge's prices from the price table, or None when the table has none for it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry = (data.get("models") or {}).get(judge)
    if entry is None:
        return None
    return Prices(judge, **{f.name: float(entry[f.name]) for f in fields(Prices) if f.name in entry},  # type: ignore[arg-type]
                  as_of=str(data["as_of"]), source=" ".join(str(data["source"]).split()))  # fmt: skip


def _text(value: Any) -> str:
    """The text of a sample's input (a string, or chat messages)."""
    if isinstance(value, str):
        return value
    return "\n".join(str(getattr(message, "text", message)) for message in value)


def _judge_text(sample: Any) -> str:
    """What the judge reads of a sample besides the template and the response: question, gold and false answers."""
    meta = sample.metadata or {}
    targets = sample.target if isinstance(sample.target, list) else [sample.target]
    return " ".join([str(meta.get("question") or _text(sample.input)), *map(str, targets),
                     *map(str, meta.get("false_answers") or [])])  # fmt: skip


def _distractor_calls(task: Any, experiment: Experiment, args: dict[str, Any]) -> int:
    """Questions of a task that need a generated distractor and are not in the run's cache for its distractor."""
    needing = {str(meta.get("question_id")) for meta in (s.metadata or {} for s in task.dataset)
               if meta.get("needs_distractor")}  # fmt: skip
    if not needing:
        return 0
    cache = args.get("distractor_cache")
    model = experiment.roles.get("distractor")
    if cache and model and Path(cache).is_file():
        from warmeval.solvers.distractor import DistractorStore

        needing -= set(DistractorStore(cache_path=cache).cached(model))
    return len(needing)


def plan_experiment(experiment: Experiment, built: dict[str, Any] | None = None) -> Plan:
    """Count what ``experiment`` will run (`Plan`); ``built``: tasks by name already built (unbound) by the caller.

    Raises:
        ExperimentError: a task cannot be built from its arguments and data (the message names it).
    """
    from warmeval.experiment.runner import sociot_tasks, task_arguments
    from warmeval.scorers.judges.judge import PAPER_JUDGE, load_judge_template
    from warmeval.solvers.system_prompt import resolve_system_prompt
    from warmeval.tasks.catalog import CONTROL_TASKS, TASKS, declared

    judge = experiment.roles.get("grader", PAPER_JUDGE)
    generation = experiment.generation.given()
    factories = {**TASKS, **CONTROL_TASKS}
    per_task: dict[str, PlanRow] = {}
    distractors: dict[str, int] = {}
    for name, raw in [*experiment.tasks.items(), *experiment.controls.items()]:
        args = task_arguments(experiment, name, raw)
        try:
            task = (built or {}).get(name) or factories[name](**args)
        except Exception as error:  # as check_tasks: a task that cannot be built names its arguments or data
            raise ExperimentError(f"{experiment.source}: tasks.{name}: {error}") from error
        max_tokens = int(generation.get("max_tokens") or task.config.max_tokens or 0)
        prompt = declared(name, "JUDGE_PROMPT") or load_judge_template(args.get("judge_template")).text
        samples = len(task.dataset)
        row = PlanRow("", name, samples=samples)
        row.input_tokens = sum(tokens(_text(s.input)) for s in task.dataset)
        row.output_tokens = samples * max_tokens
        row.judge_calls = samples
        row.judge_input_tokens = sum(tokens(prompt) + tokens(_judge_text(s)) + max_tokens for s in task.dataset)
        row.judge_output_tokens = samples * JUDGE_VERDICT_TOKENS
        per_task[name] = row
        distractors[name] = _distractor_calls(task, experiment, args)
    rows: list[PlanRow] = []
    epochs = experiment.epochs
    for index, variant in enumerate(experiment.variants):
        system = tokens(resolve_system_prompt(variant.system_prompt) or "") if variant.system_prompt else 0
        for name, base in per_task.items():
            row = PlanRow(variant.name, name, samples=base.samples, generations=base.samples * epochs,
                          judge_calls=base.judge_calls * epochs,
                          distractor_calls=distractors[name] if index == 0 else 0,
                          input_tokens=(base.input_tokens + system * base.samples) * epochs,
                          output_tokens=base.output_tokens * epochs,
                          judge_input_tokens=base.judge_input_tokens * epochs,
                          judge_output_tokens=base.judge_output_tokens * epochs)  # fmt: skip
            rows.append(row)
        for name, spec in experiment.capability.items():
            questions = _capability_questions(name, spec)
            rows.append(PlanRow(variant.name, name, samples=questions, generations=questions))
    try:
        trajectory = sociot_tasks(experiment)
    except Exception as error:  # the validation prompts, named by the task's own error
        raise ExperimentError(f"{experiment.source}: sociot: {error}") from error
    for task in trajectory:
        samples = len(task.dataset)
        max_tokens = int(task.config.max_tokens or 0)
        rows.append(PlanRow(str((task.metadata or {}).get("variant")), "sociot_generations", samples=samples,
                            generations=samples, input_tokens=sum(tokens(_text(s.input)) for s in task.dataset),
                            output_tokens=samples * max_tokens))  # fmt: skip
    notes = [f"tokens are estimates ({CHARS_PER_TOKEN} characters per token); responses are counted at their "
             "max_tokens limit, so output and judge input are upper bounds",
             "judge calls are at most this many: responses the refusal phrases catch are not sent"]  # fmt: skip
    if experiment.capability:
        notes.append(f"{', '.join(experiment.capability)}: run by lm-eval; questions and generations only")
    if any(distractors.values()):
        notes.append("distractor calls: TriviaQA's generated wrong answers, made once, in the first variant's run")
    return Plan(rows, judge, load_prices(judge), notes, batched=experiment.judge_batched())


def _capability_questions(name: str, spec: dict[str, Any]) -> int:
    """Questions a capability control asks: ``n``, else a local file's rows, else the whole test set."""
    total: int | None = None
    if spec.get("data_path"):
        with open(spec["data_path"], encoding="utf-8") as handle:
            total = sum(1 for line in handle if line.strip())
    total = total if total is not None else CAPABILITY_SIZES.get(name, 0)
    n = spec.get("n")
    return min(int(n), total) if n is not None else total


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=1)
