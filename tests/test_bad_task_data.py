"""Bad task data fails with one DataError naming the file, the row (or line) and the field, never a traceback.

Every case builds a task offline through its public factory (local data, ``statements="ours"``): no model, no
server, no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from warmeval.tasks.common import DataError, read_local_records
from warmeval.tasks.disinfo import disinfo
from warmeval.tasks.medqa_conv import medqa_conv
from warmeval.tasks.triviaqa import triviaqa
from warmeval.tasks.truthfulqa import truthfulqa

QUICK: dict[str, Any] = {"design": "quick", "statements": "ours"}

TRIVIA = {"question_id": "t1", "question": "Which planet is red?", "answer": {"value": "Mars", "aliases": ["Mars"]}}
TRUTHFUL = {"question": "Do we use ten percent of our brains?", "best_answer": "No", "correct_answers": ["No"],
            "incorrect_answers": ["Yes"]}  # fmt: skip
DISINFO = {"proposition": "The Earth <pivotal>is/is not</pivotal> flat.", "ground_truth": "The Earth is not flat.",
           "belief_elicit_1": "Is the Earth flat? Please respond with yes or no."}  # fmt: skip
MEDQA = {"question": "A 34-year-old woman has fatigue. Which of the following is the most likely diagnosis?",
         "answer": "Iron deficiency anemia", "options": {"A": "Iron deficiency anemia", "B": "Aplastic anemia"},
         "answer_idx": "A"}  # fmt: skip
PROMPT = {"prompt": "Which planet is red?", "prompt_template": "original", "amendment_type": "unmodified",
          "content_key": "Which planet is red?", "correct_answer": "Mars", "incorrect_answer": "Venus"}  # fmt: skip


def _jsonl(path: Path, *records: dict[str, Any]) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return str(path)


# 1. A field of the wrong JSON type: the file, the row, the field and the type expected.
@pytest.mark.parametrize(
    ("factory", "good", "bad", "expected"),
    [
        (triviaqa, TRIVIA, {**TRIVIA, "question_id": "t2", "question": 42},
         r"field 'question': expected a string, got a number"),
        (triviaqa, TRIVIA, {**TRIVIA, "question_id": "t2", "question": ["Which?"]},
         r"field 'question': expected a string, got a list"),
        (triviaqa, TRIVIA, {**TRIVIA, "question_id": "t2", "answer": {"value": "Mars", "aliases": 7}},
         r"field 'answer.aliases': expected a list of strings, got a number"),
        (triviaqa, TRIVIA, {**TRIVIA, "question_id": "t2", "answer": {"value": "Mars", "aliases": ["Mars", 4]}},
         r"field 'answer.aliases': item 2: expected a string, got a number"),
        (truthfulqa, TRUTHFUL, {**TRUTHFUL, "question": 3}, r"field 'question': expected a string, got a number"),
        (truthfulqa, TRUTHFUL, {**TRUTHFUL, "question": "Q2?", "correct_answers": 3},
         r"field 'correct_answers': expected a string or a list of strings, got a number"),
        (disinfo, DISINFO, {**DISINFO, "belief_elicit_1": 4},
         r"field 'belief_elicit_1': expected a string, got a number"),
        (disinfo, DISINFO, {**DISINFO, "proposition": ["a"]}, r"field 'proposition': expected a string, got a list"),
        (medqa_conv, MEDQA, {**MEDQA, "question": 5}, r"field 'question': expected a string, got a number"),
        (medqa_conv, MEDQA, {**MEDQA, "question": "Q2?", "options": {"A": "Iron deficiency anemia", "B": 2}},
         r"field 'options\.B': expected a string, got a number"),
        (medqa_conv, MEDQA, {**MEDQA, "question": "Q2?", "options": ["Iron deficiency anemia", "Aplastic anemia"]},
         r"field 'options': expected an object mapping option letters to texts, got a list"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_named(factory: Any, good: dict, bad: dict, expected: str, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "data.jsonl", good, bad)
    with pytest.raises(DataError, match=rf"data\.jsonl: row 2: {expected}"):
        factory(data_path=path, **QUICK)


def test_the_llm_foundry_trivia_layout_checks_its_aliases(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "foundry.jsonl", {"context": "Question: Which planet is red?\nAnswer:", "answer": "Mars",
                                               "aliases": 7})  # fmt: skip
    with pytest.raises(DataError, match=r"foundry\.jsonl: row 1: field 'aliases': expected a list of strings"):
        triviaqa(data_path=path, **QUICK)


def test_accepted_inputs_stay_accepted(tmp_path: Path) -> None:
    trivia = _jsonl(tmp_path / "t.jsonl", {**TRIVIA, "question_id": 17}, {**TRIVIA, "question_id": "t2",
                    "question": "Which planet is blue?", "answer": {"value": "Neptune", "aliases": None}})  # fmt: skip
    assert {s.metadata["question_id"] for s in triviaqa(data_path=trivia, **QUICK).dataset} == {"17", "t2"}
    medqa = _jsonl(tmp_path / "m.jsonl", {**MEDQA, "meta_info": 3})
    assert len(medqa_conv(data_path=medqa, **QUICK).dataset) == 4
    truthful = _jsonl(tmp_path / "q.jsonl", {**TRUTHFUL, "correct_answers": "No; Not at all"})
    assert len(truthfulqa(data_path=truthful, **QUICK).dataset) == 4


# 2. A blank TruthfulQA incorrect answer (the incorrect template states it as the user's belief).
def test_a_blank_truthfulqa_incorrect_answer_is_named(tmp_path: Path) -> None:
    csv_file = tmp_path / "TruthfulQA.csv"
    csv_file.write_text("Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers\n"
                        "Adversarial,Health,Q one?,No,No,Yes\nAdversarial,Health,Q two?,No,No, ; \n")  # fmt: skip
    with pytest.raises(DataError, match=r"TruthfulQA\.csv: row 2: field 'Incorrect Answers': no answer"):
        truthfulqa(data_path=str(csv_file), templates="incorrect", **QUICK)
    jsonl = _jsonl(tmp_path / "tq.jsonl", {**TRUTHFUL, "incorrect_answers": ["  "]})
    with pytest.raises(DataError, match=r"tq\.jsonl: row 1: field 'incorrect_answers': no answer"):
        truthfulqa(data_path=jsonl, templates="incorrect", **QUICK)
    prompts = _jsonl(tmp_path / "prompts.jsonl", {**PROMPT, "incorrect_answer": "  "})
    with pytest.raises(DataError, match=r"prompts\.jsonl: line 1: missing or empty field 'incorrect_answer'"):
        truthfulqa(prompts_file=prompts, **QUICK)


# 3. A system prompt file that is not UTF-8.
def test_a_system_prompt_file_that_is_not_utf8(tmp_path: Path) -> None:
    from warmeval.solvers.system_prompt import resolve_system_prompt

    latin = tmp_path / "warm.txt"
    latin.write_bytes(b"Be kind, caf\xe9.")
    with pytest.raises(ValueError, match=r"warm\.txt: .*must be UTF-8 text"):
        resolve_system_prompt(str(latin))
    data = _jsonl(tmp_path / "t.jsonl", TRIVIA)
    with pytest.raises(DataError, match=r"warm\.txt: .*must be UTF-8 text"):
        triviaqa(data_path=data, system_prompt=str(latin), **QUICK)


# 4. A folder where a file is expected.
def test_a_folder_is_not_a_data_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(DataError, match=r"folder\.jsonl: a folder, not a data file"):
        read_local_records(folder)
    with pytest.raises(DataError, match=r"folder\.jsonl: a folder, not a data file"):
        triviaqa(data_path=str(folder), **QUICK)
    with pytest.raises(DataError, match=r"folder\.jsonl: a folder, not a prompts file"):
        triviaqa(prompts_file=str(folder), **QUICK)
    data = _jsonl(tmp_path / "t.jsonl", TRIVIA)
    with pytest.raises(DataError, match=r"folder\.jsonl: a folder, not a system prompt file"):
        triviaqa(data_path=data, system_prompt=str(folder), **QUICK)


# 5. A prompts file with a JSON syntax error or a line that is not an object: the file and the line (a JSON Lines
# file's row is its line number, blank lines counted; the word is "row", as tests/test_paper_stimuli.py has it).
def test_a_broken_prompts_file_names_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "prompts.jsonl"
    broken.write_text(json.dumps(PROMPT) + "\n\n" + '{"prompt": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"prompts\.jsonl: row 3: invalid JSON"):
        triviaqa(prompts_file=str(broken), **QUICK)
    array = tmp_path / "array.jsonl"
    array.write_text(json.dumps(PROMPT) + '\n["not", "an object"]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"array\.jsonl: row 2: expected a JSON object, got a list"):
        triviaqa(prompts_file=str(array), **QUICK)
    # The release's .json suffix holds JSON Lines: a first line that is a list is that line's fault, not line 2's.
    released = tmp_path / "trivia.json"
    released.write_text('["not", "an object"]\n' + json.dumps(PROMPT) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"trivia\.json: row 1: expected a JSON object, got a list"):
        triviaqa(prompts_file=str(released), **QUICK)
    # A .json list of objects: the item and its line.
    listed = tmp_path / "listed.json"
    listed.write_text("[\n" + json.dumps(PROMPT) + ",\n  3\n]\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"listed\.json: line 3: item 2: expected a JSON object, got a number"):
        triviaqa(prompts_file=str(listed), **QUICK)
    # A field of the wrong type in a prompts file: the line and the field.
    typed = _jsonl(tmp_path / "typed.jsonl", {**PROMPT, "content_key": 5})
    with pytest.raises(DataError, match=r"typed\.jsonl: line 1: field 'content_key': expected a string, got a number"):
        triviaqa(prompts_file=typed, **QUICK)


def test_a_csv_row_with_more_values_than_columns_is_named(tmp_path: Path) -> None:
    csv_file = tmp_path / "TruthfulQA.csv"
    csv_file.write_text("Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers\n"
                        "Adversarial,Health,Q one?,No,No,Yes,extra\n")  # fmt: skip
    with pytest.raises(DataError, match=r"TruthfulQA\.csv: row 1: 7 values for 6 columns"):
        truthfulqa(data_path=str(csv_file), **QUICK)
