"""Can these numbers stand beside the paper's? One line, ``Paper-comparable: yes`` or ``no`` and every deviation.

The verdict is read from what the inputs record (`warmeval.analysis.load.LogProtocol`: each log's task metadata,
model roles, generation settings and the judges seen in its scores), from the controls a run reports, and from the
training records of the adapters a run evaluated. It compares them with the paper's protocol (Methods, and the
authors' released code and stimuli):

* stimuli: the authors' released prompts at the pinned commit for TriviaQA, TruthfulQA and Disinfo; for MedQA (no
  released file) the paper-style rebuild with the authors' statements;
* design: the 28 conditions on the paper's questions (500 each; Disinfo: every released question), the released
  ``mcq`` prompts left out;
* judge: ``openai/gpt-4o-2024-08-06`` with the paper's prompt (the user's declared copy of SI section 3.1), never the
  model under test, its verdicts readable (at most 5% NOANSWER per dataset and variant); the refusal rule ``paper``;
* generation: temperature 0.8, at most 300 tokens, one answer per prompt;
* controls: AdvBench's 520 prompts, the full MMLU (14,042) and GSM8K (1,319) test sets, SocioT on 1,500 answers
  scored with GPT-2 in the authors' implementation (``paper`` mode);
* variants: an original model and a warm one; adapters trained with the paper's LoRA recipe (r 8, alpha 16, dropout
  0.1, learning rate 1e-5, effective batch 16, sequence length 1,024, 10 epochs) and evaluated at epoch 2; the
  system-prompt control with the paper's warm system prompt.

A model under test that is not one of the paper's five is no deviation (that is what warmeval is for), but
warmeval's embedded demo model is named as the stand-in it is. Inputs that record no protocol (a saved table) give
``no`` for that reason; the authors' own released outputs give ``yes``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from warmeval.analysis.load import LoadReport, LogProtocol
from warmeval.scorers.judges.judge import PAPER_JUDGE
from warmeval.scorers.sociot.metric import is_gpt2
from warmeval.sycophancy.conditions import TEMPLATES, conditions_for, parse_conditions, parse_templates
from warmeval.sycophancy.stimuli import PAPER_COMMIT

RELIABILITY = ("triviaqa", "truthfulqa", "disinfo", "medqa_conv")
RELEASED = ("triviaqa", "truthfulqa", "disinfo")
PAPER_QUESTIONS = {"triviaqa": 500, "truthfulqa": 500, "medqa_conv": 500}  # Disinfo: all of them
PAPER_CONDITIONS = 28
PAPER_TEMPERATURE, PAPER_MAX_TOKENS = 0.8, 300
PAPER_CONTROLS = {"advbench": 520, "mmlu": 14_042, "gsm8k": 1_319}
PAPER_SOCIOT = 1_500
PAPER_LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "learning_rate": 1e-5, "max_seq_length": 1024, "epochs": 10.0}
PAPER_EFFECTIVE_BATCH = 16
PAPER_EPOCH_EVALUATED = 2.0
# More unreadable verdicts (NOANSWER) than this share: the judge is not doing the paper's job (another answer format).
UNPARSEABLE_TOLERATED = 0.05
EMBEDDED_MARKER = "warmeval-model.json"  # written by `warmeval models prepare` beside the embedded model
PREFIX = "Paper-comparable:"


@dataclass
class Verdict:
    """The comparability verdict: every deviation found, and what could not be checked.

    Attributes:
        deviations: Each deviation from the paper's protocol, named plainly.
        unchecked: What the inputs do not let the verdict check (said after a ``yes``).
    """

    deviations: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return not self.deviations

    def line(self) -> str:
        """``Paper-comparable: yes`` or ``Paper-comparable: no: deviation; deviation; ...`` on one line."""
        if self.deviations:
            return f"{PREFIX} no: " + "; ".join(self.deviations)
        return f"{PREFIX} yes" + (f" ({'; '.join(self.unchecked)})" if self.unchecked else "")

    def to_json(self) -> dict[str, Any]:
        return {"comparable": self.comparable, "deviations": self.deviations, "unchecked": self.unchecked,
                "line": self.line()}  # fmt: skip


def _tasks(logs: Iterable[LogProtocol]) -> str:
    names = sorted({log.task for log in logs})
    return ", ".join(names)


def _group(found: dict[str, list[LogProtocol]]) -> list[str]:
    """``{deviation: logs}`` as deviations naming their tasks."""
    return [f"{text} ({_tasks(logs)})" if logs else text for text, logs in found.items()]


def _conditions(meta: dict[str, Any]) -> int:
    conditions, templates = meta.get("conditions"), meta.get("templates")
    try:
        chosen = [t for t in parse_templates(str(templates)) if t in TEMPLATES]
        return len(conditions_for(parse_conditions(str(conditions)), chosen))
    except ValueError:
        return 0


def _stimuli(log: LogProtocol) -> str | None:
    meta = log.metadata
    if log.task in RELEASED:
        if meta.get("stimuli") == "paper":
            commit = meta.get("stimuli_commit")
            return None if commit == PAPER_COMMIT else f"stimuli: the authors' release at another commit ({commit})"
        if meta.get("stimuli") == "file":
            return "stimuli: a prompts file, not the authors' released prompts"
        return "stimuli: prompts built by warmeval from a dataset, not the authors' released prompts"
    if meta.get("stimuli") == "file":
        return "stimuli: MedQA prompts from a prompts file, not rebuilt by the paper's rules"
    if meta.get("prompt_style") != "paper":
        return f"stimuli: MedQA prompts in the {meta.get('prompt_style')} style, not the paper's rules"
    if meta.get("statements") != "paper":
        return f"stimuli: MedQA amendment statements {meta.get('statements')!r}, not the authors'"
    return None


def _questions(log: LogProtocol) -> str | None:
    meta = log.metadata
    loaded, available = meta.get("questions_loaded"), meta.get("questions_in_file")
    if not isinstance(loaded, int):
        return None
    paper = PAPER_QUESTIONS.get(log.task)
    if meta.get("stimuli") == "paper" or paper is None:  # the release, or Disinfo: every question
        if isinstance(available, int) and loaded < available:
            return f"questions: {log.task} {loaded} of {available}"
        return None
    if loaded < paper:
        return f"questions: {log.task} {loaded} (the paper: {paper})"
    return None


def _reliability(logs: list[LogProtocol]) -> list[str]:
    found: dict[str, list[LogProtocol]] = {}

    def add(text: str | None, log: LogProtocol) -> None:
        if text:
            found.setdefault(text, []).append(log)

    for log in logs:
        meta = log.metadata
        add(_stimuli(log), log)
        if log.task == "medqa_conv" and not str(meta.get("source", "")).startswith("GBaker/"):
            add(f"questions: MedQA from a local file ({Path(str(meta.get('source'))).name}), which warmeval cannot "
                "check against the Hub dataset the paper sampled", log)  # fmt: skip
        count = _conditions(meta)
        if count != PAPER_CONDITIONS:
            add(f"conditions: {count} of the paper's {PAPER_CONDITIONS}", log)
        if "mcq" in str(meta.get("templates", "")).split(","):
            add("the released mcq prompts included (not among the paper's conditions)", log)
        add(_questions(log), log)
        if meta.get("refusal_rule", "paper") != "paper":
            add(f"refusal rule {meta.get('refusal_rule')!r}, not the paper's", log)
    return _group(found)


def _judging(logs: list[LogProtocol]) -> list[str]:
    found: dict[str, list[LogProtocol]] = {}
    for log in logs:
        judges = log.judges or {log.roles.get("grader", PAPER_JUDGE)}
        for judge in sorted(judges - {PAPER_JUDGE}):
            alias = " (a floating alias)" if judge == "openai/gpt-4o" else ""
            found.setdefault(f"judge: {judge}{alias}, not the paper's {PAPER_JUDGE}", []).append(log)
        if log.self_graded:
            found.setdefault("self-graded: the model under test judged its own answers", []).append(log)
        template = (log.metadata.get("judge") or {}).get("template") or {}
        if not template.get("paper"):
            source = template.get("source")
            what = "warmeval's own" if source in (None, "warmeval") else f"{source}, not the declared paper text"
            found.setdefault(f"judge prompt: {what} (the paper's is SI section 3.1: declare it with "
                             "`warmeval stimuli texts --set judge=FILE`)", []).append(log)  # fmt: skip
    return _group(found)


def _unparseable(report: LoadReport) -> list[str]:
    """Verdicts the judge gave in no readable form: a judge prompt that asks for another answer format shows here."""
    out = []
    for (dataset, variant), count in sorted(report.unparseable.items()):
        judged = count + report.kept[(dataset, variant)]
        if judged and count / judged > UNPARSEABLE_TOLERATED:
            out.append(f"judge: {count} of {judged} verdicts unreadable ({dataset}, {variant})")
    return out


def _generation(logs: list[LogProtocol]) -> list[str]:
    found: list[str] = []
    for log in logs:
        temperature = PAPER_TEMPERATURE if log.temperature is None else log.temperature
        max_tokens = PAPER_MAX_TOKENS if log.max_tokens is None else log.max_tokens
        if temperature != PAPER_TEMPERATURE:
            found.append(f"generation: temperature {temperature:g} (the paper: {PAPER_TEMPERATURE:g})")
        if max_tokens != PAPER_MAX_TOKENS:
            found.append(f"generation: at most {max_tokens} tokens (the paper: {PAPER_MAX_TOKENS})")
        if log.epochs != 1:
            found.append(f"generation: {log.epochs} answers per prompt (epochs; the paper: 1)")
    return list(dict.fromkeys(found))  # the same settings serve every task of a run: no task list


def _training(record: dict[str, Any], variant: str, adapter: Path) -> list[str]:
    options = record.get("options") or {}
    differences = [f"{name} {options[name]:g} (the paper: {value:g})" for name, value in PAPER_LORA.items()
                   if isinstance(options.get(name), int | float) and float(options[name]) != float(value)]  # fmt: skip
    micro, accumulation = options.get("micro_batch_size"), options.get("gradient_accumulation")
    if isinstance(micro, int) and isinstance(accumulation, int) and micro * accumulation != PAPER_EFFECTIVE_BATCH:
        differences.append(f"effective batch {micro * accumulation} (the paper: {PAPER_EFFECTIVE_BATCH})")
    out = [f"training: {variant} adapter " + ", ".join(differences)] if differences else []
    try:
        epoch = float(adapter.name.removeprefix("epoch-"))
    except ValueError:
        epoch = None
    if epoch is not None and epoch != PAPER_EPOCH_EVALUATED:
        out.append(f"training: {variant} evaluated at epoch {epoch:g} (the paper: {PAPER_EPOCH_EVALUATED:g})")
    return out


def _variants(logs: list[LogProtocol]) -> list[str]:
    out: list[str] = []
    variants = {log.variant for log in logs}
    if "original" not in variants:
        out.append("variants: no original model to compare with")
    if not variants & {"warm", "warm_sysprompt"}:
        out.append("variants: no warm model")
    seen: set[str] = set()
    for log in logs:
        meta = log.metadata
        adapter = meta.get("adapter")
        if adapter and log.variant not in seen:
            seen.add(log.variant)
            folder = Path(str(adapter))
            record = folder.parent / "warmeval_run.json"
            if record.is_file():
                out += _training(json.loads(record.read_text(encoding="utf-8")), log.variant, folder)
        prompt = meta.get("system_prompt_text") or {}
        if meta.get("system_prompt") not in (None, "none") and not prompt.get("paper"):
            source = prompt.get("source", meta.get("system_prompt"))
            what = "warmeval's own" if source == "warm" else f"{source}, not the declared paper text"
            out.append(f"system prompt of {log.variant}: {what} (the paper's warmth instructions: SI section 1.2)")
        base = meta.get("base_model")
        if base and (Path(str(base)) / EMBEDDED_MARKER).is_file():
            out.append(f"models: warmeval's embedded demo model {Path(str(base)).name}, a stand-in far smaller than "
                       "the paper's")  # fmt: skip
    return list(dict.fromkeys(out))


def _controls(logs: list[LogProtocol], controls: pd.DataFrame | None) -> tuple[list[str], list[str]]:
    out: list[str] = []
    unchecked: list[str] = []
    advbench = [log for log in logs if log.task == "advbench"]
    for log in advbench:
        if log.samples < PAPER_CONTROLS["advbench"]:
            out.append(f"controls: AdvBench {log.samples} of {PAPER_CONTROLS['advbench']} prompts")
            break
    sociot = [log for log in logs if log.task == "sociot_generations"]
    if sociot and min(log.samples for log in sociot) < PAPER_SOCIOT:
        out.append(f"controls: SocioT on {min(log.samples for log in sociot)} answers (the paper: {PAPER_SOCIOT:,})")
    for log in sociot:
        mode = log.metadata.get("sociot_mode")
        if mode is not None and log.task_version < 2:  # version 1 called paper "code", and text_logprob "paper"
            mode = {"code": "paper", "paper": "text_logprob"}.get(str(mode), mode)
        if mode not in (None, "paper"):
            out.append(f"controls: SocioT in {mode} mode (the paper: the authors' implementation, paper mode)")
        model = log.metadata.get("sociot_model")
        gpt2 = log.metadata.get("sociot_model_is_gpt2", None if model is None else is_gpt2(str(model)))
        if gpt2 is False:
            out.append(f"controls: SocioT scored with {model} (the paper: GPT-2)")
    if controls is None:
        unchecked.append("MMLU and GSM8K controls not in the input" if advbench else "controls not in the input")
        return out, unchecked
    ran = set(controls["control"]) if not controls.empty else set()
    for name in ("mmlu", "gsm8k"):
        if name not in ran:
            out.append(f"controls: {name.upper()} not run")
            continue
        smallest = int(controls[controls["control"] == name]["n"].min())
        if smallest < PAPER_CONTROLS[name]:
            out.append(f"controls: {name.upper()} {smallest:,} of {PAPER_CONTROLS[name]:,} questions")
    if not advbench and "advbench" not in ran:
        out.append("controls: AdvBench not run")
    return list(dict.fromkeys(out)), unchecked


def verdict(report: LoadReport, *, controls: pd.DataFrame | None = None) -> Verdict:
    """The comparability verdict of what `warmeval.analysis.load.load_table` read into ``report``.

    Args:
        report: The load report (its ``protocols`` and ``kinds``).
        controls: The run's controls, one row per control and variant with ``control`` and ``n`` (as `warmeval run`
            reports them); None when the input does not say which controls ran (they are then named unchecked).
    """
    result = Verdict()
    if "table" in report.kinds:
        result.deviations.append("a saved table records no protocol (analyse the logs it came from)")
    logs = report.protocols
    reliability = [log for log in logs if log.task in RELIABILITY]
    if not reliability:
        if report.kinds == {"release"}:
            return result  # the authors' own released outputs
        if not result.deviations:
            result.deviations.append("no reliability task logs in the input")
        return result
    result.deviations += _reliability(reliability)
    result.deviations += _judging(reliability)
    result.deviations += _generation(reliability)
    result.deviations += _variants(reliability)
    if {log.task for log in reliability} != set(RELIABILITY):
        missing = sorted(set(RELIABILITY) - {log.task for log in reliability})
        result.deviations.append(f"tasks: {', '.join(missing)} not run")
    result.deviations += _unparseable(report)
    found, unchecked = _controls(logs, controls)
    result.deviations += found
    result.unchecked += unchecked
    return result


__all__ = ["PREFIX", "Verdict", "verdict"]
