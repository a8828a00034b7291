"""Capability controls (MMLU, GSM8K): answer extraction, local-file validation, and lm-eval against a vLLM server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmeval.scorers.capability import (
    CONTROLS,
    FIXTURES,
    INVALID,
    CapabilityDataError,
    extract_choice_letter,
    extract_final_number,
    gsm8k_target,
    read_gsm8k_rows,
    read_mmlu_rows,
    run_capability_control,
)
from warmeval.scorers.capability.runner import _draw, _evaluate

MMLU_ROW = {"question": "2 + 2 = ?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "22"], "answer": 1}
GSM8K_ROW = {"question": "Ann has 2 apples and buys 3. How many?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"}


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("The answer is B.", "B"),
        ("B", "B"),
        ("(C)", "C"),
        ("**Answer:** D", "D"),
        ("Answer: (A)", "A"),
        ("A is tempting, but the best answer is C", "C"),  # the concluding statement wins over the opening letter
        ("The answer is A. Wait, no: the answer is D.", "D"),
        ("B. Mitochondrion", "B"),
        ("The answer would be option C", "C"),
        ("A bird in the hand.", None),  # the article, not an option
        ("The answer is Apple.", None),
        ("I am not sure.", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_choice_letter(response: str | None, letter: str | None) -> None:
    assert extract_choice_letter(response) == letter


@pytest.mark.parametrize(
    ("response", "number"),
    [
        ("She has 48 - 17 = 31 muffins.\n#### 31", "31"),
        ("The final answer is $1,200.", "1200"),
        ("He pays $38.", "38"),
        ("#### 1,234,567", "1234567"),
        ("So 12 then 18.00 in total", "18"),
        ("It costs 4.50 dollars", "4.5"),
        ("The answer is -7, not 7.", "-7"),
        ("The answer is 12. Check: 3 * 4 = 12, plus 5 is 17.", "12"),  # a stated answer beats the last number
        ("1,2,3", "3"),  # commas outside thousands groups separate numbers
        ("I cannot tell.", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_final_number(response: str | None, number: str | None) -> None:
    assert extract_final_number(response) == number


def test_gsm8k_target() -> None:
    assert gsm8k_target("so 3 * 4 = 12\n#### 1,200") == "1200"
    assert gsm8k_target("#### 12 #### 13") == "13"
    assert gsm8k_target("no marker 12") is None
    assert gsm8k_target("#### twelve") is None


def test_bundled_fixtures_are_valid() -> None:
    mmlu = read_mmlu_rows(FIXTURES["mmlu"])
    gsm8k = read_gsm8k_rows(FIXTURES["gsm8k"])
    assert len(mmlu) == 8 and len(gsm8k) == 8
    assert len({row["subject"] for row in mmlu}) == 8
    assert {row["target"] for row in mmlu} == {"A", "B", "C", "D"}
    # The reference answer's own final number is what a correct response must give.
    assert all(extract_final_number(row["answer"]) == row["target"] for row in gsm8k)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"question": None}, "field 'question' must be a non-empty string"),
        ({"choices": ["a", "b", "c"]}, "field 'choices' must be a list of 4 strings"),
        ({"answer": 4}, "field 'answer' must be an integer 0-3, got 4"),
        ({"answer": "B"}, "field 'answer' must be an integer 0-3"),
        ({"answer": True}, "field 'answer' must be an integer 0-3"),
    ],
)
def test_bad_mmlu_rows(tmp_path: Path, change: dict[str, object], message: str) -> None:
    path = _jsonl(tmp_path / "mmlu.jsonl", [MMLU_ROW, {**MMLU_ROW, **change}])
    with pytest.raises(CapabilityDataError, match=message) as info:
        read_mmlu_rows(path)
    assert f"{path}: row 2:" in str(info.value)


def test_missing_mmlu_field(tmp_path: Path) -> None:
    row = {key: value for key, value in MMLU_ROW.items() if key != "subject"}
    path = _jsonl(tmp_path / "mmlu.jsonl", [row])
    with pytest.raises(CapabilityDataError, match=r"mmlu\.jsonl: row 1: missing field 'subject'"):
        read_mmlu_rows(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "q"}, "missing field 'answer'"),
        ({**GSM8K_ROW, "answer": "2 + 3 = 5"}, "field 'answer' has no final '#### N' line"),
        ({**GSM8K_ROW, "answer": "2 + 3\n#### five"}, "the text after '####' is not a number"),
    ],
)
def test_bad_gsm8k_rows(tmp_path: Path, row: dict[str, object], message: str) -> None:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(json.dumps(GSM8K_ROW) + "\n\n" + json.dumps(row) + "\n")  # the blank line still counts
    with pytest.raises(CapabilityDataError, match=message) as info:
        read_gsm8k_rows(path)
    assert f"{path}: row 3:" in str(info.value)


def test_bad_json_and_empty_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(GSM8K_ROW) + "\n{not json\n")
    with pytest.raises(CapabilityDataError, match=r"broken\.jsonl: row 2: invalid JSON"):
        read_gsm8k_rows(broken)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(CapabilityDataError, match="no rows"):
        read_mmlu_rows(empty)


def test_bad_row_fails_before_any_request(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "mmlu.jsonl", [{**MMLU_ROW, "answer": 7}])
    with pytest.raises(CapabilityDataError, match=r"mmlu\.jsonl: row 1: field 'answer'"):
        # Nothing listens on port 9: reaching the server would fail differently.
        run_capability_control("mmlu", base_url="http://127.0.0.1:9/v1", model="m", output_dir=tmp_path,
                               data_path=path)  # fmt: skip


def test_unknown_control_and_bad_n(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: gsm8k, mmlu"):
        run_capability_control("arc", base_url="http://127.0.0.1:9/v1", model="m", output_dir=tmp_path)
    with pytest.raises(ValueError, match="n must be a positive"):
        run_capability_control("mmlu", base_url="http://127.0.0.1:9/v1", model="m", output_dir=tmp_path, n=0)


@pytest.mark.slow(seconds=6)
def test_hub_task_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config

    # Offline whatever the machine's cache holds: an empty cache and offline mode.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    with pytest.raises(RuntimeError, match=r"warmeval_gsm8k.*openai/gsm8k.*pass data_path="):
        run_capability_control("gsm8k", base_url="http://127.0.0.1:9/v1", model="m", output_dir=tmp_path / "out")


def test_hub_tasks_are_the_papers_protocol_on_the_whole_test_sets() -> None:
    """MMLU zero-shot and GSM8K zero-shot chain of thought at temperature 0.2 (the paper's Methods), Hub rows scored."""
    from lm_eval.tasks._yaml_loader import load_yaml

    from warmeval.scorers.capability import doc_target, gsm8k_prompt, mmlu_prompt
    from warmeval.scorers.lm_eval_tasks import CAPABILITY_DIR as TASKS_DIR

    expected = {"mmlu": ("cais/mmlu", "all"), "gsm8k": ("openai/gsm8k", "main")}
    for name, (path, config_name) in expected.items():
        hub = load_yaml(TASKS_DIR / f"{CONTROLS[name].hub_task}.yaml", resolve_func=False)
        local = load_yaml(TASKS_DIR / f"{CONTROLS[name].local_task}.yaml", resolve_func=False)
        assert (hub["dataset_path"], hub["dataset_name"], hub["test_split"]) == (path, config_name, "test")
        for config in (hub, local):
            assert config["num_fewshot"] == 0 and config["generation_kwargs"]["temperature"] == 0.2
            assert config["filter_list"][0]["name"] == CONTROLS[name].hub_filter == "extracted"
    row = {"question": "Which gas do plants take in?", "subject": "biology", "choices": ["O2", "CO2", "N2", "He"],
           "answer": 1}  # a cais/mmlu row  # fmt: skip
    assert doc_target(row) == "B" and "B. CO2" in mmlu_prompt(row)
    problem = {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"}  # openai/gsm8k
    assert doc_target(problem) == "7" and "step by step" in gsm8k_prompt(problem)
    assert doc_target({"question": "q", "answer": "no final number"}) not in ("[invalid]", "")  # never matches


def test_draw_is_seeded_pooled_and_sorted() -> None:
    sizes = {"a": 50, "b": 30, "c": 20}
    first = _draw(sizes, 10, seed=1)
    assert first == _draw(sizes, 10, seed=1)
    assert first != _draw(sizes, 10, seed=2)
    assert first is not None and sum(len(ids) for ids in first.values()) == 10
    assert all(ids == sorted(ids) and len(set(ids)) == len(ids) and max(ids) < sizes[t] for t, ids in first.items())
    assert _draw(sizes, None, seed=1) is None and _draw(sizes, 100, seed=1) is None  # everything


def test_local_tasks_load_through_lm_eval() -> None:
    from lm_eval.tasks import TaskManager

    from warmeval.scorers.lm_eval_tasks import CAPABILITY_DIR as TASKS_DIR

    for name in ("mmlu", "gsm8k"):
        task_name = CONTROLS[name].local_task
        manager = TaskManager(
            include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_path": str(FIXTURES[name])}
        )
        task = manager.load([task_name])["tasks"][task_name]
        docs = list(task.eval_docs)
        assert len(docs) == 8
        prompt = task.doc_to_text(docs[0])
        assert docs[0]["question"].strip() in prompt
        assert task.doc_to_target(docs[0]) == docs[0]["target"]
        assert task.config.output_type == "generate_until"
    # Without the file the loader says which metadata key it needs.
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    with pytest.raises(ValueError, match="data_path"):
        manager.load(["warmeval_mmlu_local"])


@pytest.mark.slow(seconds=2)  # and the shared vllm_server fixture (about 20 s to start)
def test_controls_against_vllm_server(vllm_server: str, tmp_path: Path) -> None:
    n = 3
    for name, extract in (("mmlu", extract_choice_letter), ("gsm8k", extract_final_number)):
        summary = run_capability_control(name, base_url=vllm_server, model="tiny", output_dir=tmp_path, n=n, seed=0,
                                         data_path=FIXTURES[name], num_concurrent=2, max_gen_toks=32)  # fmt: skip
        result_file = tmp_path / f"{name}__tiny.json"
        samples_file = tmp_path / f"{name}__tiny.samples.jsonl"
        assert json.loads(result_file.read_text()) == summary.to_json()
        task = CONTROLS[name].local_task
        assert summary.task == name and summary.lm_eval_task == task and summary.model == "tiny"
        assert summary.num_samples == n and summary.n == n
        # The seeded draw, not the first n rows.
        assert summary.doc_ids == _draw({task: 8}, n, seed=0)
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        assert len(samples) == n
        assert sorted(s["doc_id"] for s in samples) == summary.doc_ids[task]
        # Re-extract from the raw responses: the reported numbers follow from them, parse failures included.
        extracted = [extract(s["resps"][0][0]) for s in samples]
        assert [s["filtered_resps"][0] for s in samples] == [INVALID if e is None else e for e in extracted]
        assert summary.unparseable == sum(e is None for e in extracted) <= n
        correct = [e is not None and e == s["target"] for e, s in zip(extracted, samples, strict=True)]
        assert 0.0 <= summary.accuracy <= 1.0
        assert summary.accuracy == pytest.approx(sum(correct) / n)
        # ... and agree with lm-eval's own aggregation.
        lm_eval_row = summary.lm_eval_results[task]
        assert lm_eval_row["exact_match,extracted"] == pytest.approx(summary.accuracy)
        assert lm_eval_row["unparseable,extracted"] == pytest.approx(summary.unparseable / n)
        assert summary.accuracy_stderr == pytest.approx(lm_eval_row["exact_match_stderr,extracted"])
        assert summary.lm_eval_version == "0.4.13"


@pytest.mark.slow(seconds=2)  # and the shared vllm_server fixture (about 20 s to start)
def test_system_instruction_is_sent_with_every_question(vllm_server: str, tmp_path: Path) -> None:
    """The warm system-prompt variant's controls carry its system prompt."""
    summary = run_capability_control("mmlu", base_url=vllm_server, model="tiny", output_dir=tmp_path, n=2,
                                     data_path=FIXTURES["mmlu"], max_gen_toks=4,
                                     system_instruction="Be warm and caring.")  # fmt: skip
    assert summary.system_instruction == "Be warm and caring."
    for line in Path(summary.samples_path).read_text().splitlines():
        messages = json.loads(json.loads(line)["arguments"][0][0][0])
        assert messages[0] == {"role": "system", "content": "Be warm and caring."} and messages[1]["role"] == "user"


@pytest.mark.slow(seconds=2)  # and the shared vllm_server fixture (about 20 s to start)
@pytest.mark.parametrize("n", [5, 1])
def test_draw_pools_subtasks_like_mmlu_subjects(vllm_server: str, tmp_path: Path, n: int) -> None:
    """The Hub MMLU task is a group of 57 subjects: the n questions are drawn from them pooled, never n per subject."""
    from lm_eval.tasks import TaskManager

    from warmeval.scorers.lm_eval_tasks import CAPABILITY_DIR as TASKS_DIR

    tasks_dir = tmp_path / "tasks"
    tasks_dir.mkdir()
    (tasks_dir / "group.yaml").write_text("group: pool\ntask: [pool_a, pool_b]\n")
    for part in ("a", "b"):
        (tasks_dir / f"{part}.yaml").write_text(
            f"include: {TASKS_DIR / 'warmeval_mmlu_local.yaml'}\ntask: pool_{part}\n"
        )
    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False,
                          metadata={"data_path": str(FIXTURES["mmlu"])})  # fmt: skip
    leaf_tasks = manager.load(["pool"])["tasks"]
    summary = _evaluate("mmlu", lm_eval_task="pool", source="fixture", manager=manager, leaf_tasks=leaf_tasks,
                        score_filter="extracted", base_url=vllm_server, model="tiny", output_dir=tmp_path, n=n, seed=3,
                        num_concurrent=2, max_gen_toks=16, max_retries=3, timeout=120)  # fmt: skip
    expected = _draw({"pool_a": 8, "pool_b": 8}, n, seed=3)
    assert expected is not None and len(expected) == min(n, 2)  # n=5 draws from both subtasks, n=1 from one
    assert summary.doc_ids == expected
    # A subtask with nothing drawn is left out, not run in full (lm-eval runs every document given no indices).
    assert summary.num_samples == n == sum(len(ids) for ids in expected.values())
    assert set(summary.lm_eval_results) == set(expected)
