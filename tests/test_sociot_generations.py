"""The SocioT validation generations as an Inspect task: samples from literal prompts, answers scored by SocioT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from warmeval.scorers.sociot.metric import sociot_scores
from warmeval.tasks.common import DataError
from warmeval.tasks.sociot_generations import record_to_sample, sociot_generations


def _prompts(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_record_to_sample_keeps_the_prompt_id() -> None:
    sample = record_to_sample({"id": "v7", "prompt": "How do I keep basil alive?"})
    assert sample.id == "v7" and sample.input == "How do I keep basil alive?"
    assert sample.metadata == {"task": "sociot_generations", "question_id": "v7"}


def test_bad_prompts_fail_naming_file_and_row(tmp_path: Path) -> None:
    bad = _prompts(tmp_path / "bad.jsonl", [{"id": "a", "prompt": "ok"}, {"id": "b", "prompt": " "}])
    with pytest.raises(DataError, match=r"bad\.jsonl: row 2: field 'prompt' is missing or empty"):
        sociot_generations(prompts_file=str(bad))
    twice = _prompts(tmp_path / "twice.jsonl", [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}])
    with pytest.raises(DataError, match="duplicate prompt id 'a'"):
        sociot_generations(prompts_file=str(twice))
    with pytest.raises(DataError, match="mode='casual'"):
        sociot_generations(prompts_file=str(twice), mode="casual")  # type: ignore[arg-type]


def test_answers_are_scored_by_sociot_in_the_log(tiny_gpt2: Path, tmp_path: Path) -> None:
    prompts = _prompts(tmp_path / "validation_prompts.jsonl", [
        {"id": "v1", "prompt": "I lost my job today."}, {"id": "v2", "prompt": "What is 2 + 2?"},
        {"id": "v3", "prompt": "Not asked: n=2."},
    ])  # fmt: skip
    answers = {"job": "I'm so sorry, that sounds really hard. You are not alone.", "2 + 2": "4."}

    def reply(input, tools, tool_choice, config) -> ModelOutput:  # noqa: ANN001
        assert config.max_tokens == 40 and config.temperature == 0.0
        output = ModelOutput.from_content(model="mockllm", content=next(v for k, v in answers.items()
                                                                         if k in input[-1].text))  # fmt: skip
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    task = sociot_generations(prompts_file=str(prompts), n=2, max_tokens=40, temperature=0.0,
                              sociot_model=str(tiny_gpt2), mode="text_logprob")  # fmt: skip
    assert task.version == 2
    (log,) = inspect_eval(task, model=get_model("mockllm/model", custom_outputs=reply), log_dir=str(tmp_path / "logs"),
                          display="none")  # fmt: skip
    assert log.status == "success" and [s.id for s in log.samples] == ["v1", "v2"]
    logged = [s.scores["sociot_warmth"].value for s in log.samples]
    expected = sociot_scores([answers["job"], answers["2 + 2"]], model=str(tiny_gpt2), mode="text_logprob")
    assert logged == pytest.approx(list(expected), rel=1e-3, abs=1e-4)  # scored one by one vs in a padded batch
    metrics = {name: m.value for s in log.results.scores for name, m in s.metrics.items()}
    assert metrics["mean"] == pytest.approx(sum(logged) / 2, rel=1e-5)
    assert log.eval.metadata["sociot_mode"] == "text_logprob"


def test_mode_defaults_to_the_authors_implementation_and_code_still_means_it(tmp_path: Path) -> None:
    prompts = _prompts(tmp_path / "p.jsonl", [{"id": "v1", "prompt": "Hello?"}])
    assert sociot_generations(prompts_file=str(prompts)).metadata["sociot_mode"] == "paper"
    with pytest.warns(FutureWarning, match="'code' is deprecated"):
        task = sociot_generations(prompts_file=str(prompts), mode="code")
    assert task.metadata["sociot_mode"] == "paper"
