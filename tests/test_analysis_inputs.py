"""Inputs the analysis must not misread: duplicated logs, a gate on partly paired prompts, out-of-range gate options,
an input folder with nothing to read, and a corrupt ``.eval`` file."""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli
from warmeval.analysis.gate import PASS, UNUSABLE, run_gate
from warmeval.analysis.load import COLUMNS, LoadReport, load_rows, load_table

FIXTURES = Path(__file__).parents[1] / "warmeval" / "fixtures"
DISTINCT = 8  # triviaqa, design quick, n=2: 2 questions x 4 conditions


def _answering(text: str):  # noqa: ANN202
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def reply(input, tools, tool_choice, config) -> ModelOutput:  # noqa: ANN001
        output = ModelOutput.from_content(model="mockllm", content=text)
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    return get_model("mockllm/model", custom_outputs=reply)


def _trivia_log(folder: Path, data_path: Path, answer: str) -> Path:
    """One finished triviaqa log (8 samples) of the original model, graded offline."""
    from inspect_ai import eval as inspect_eval

    from warmeval.tasks.triviaqa import triviaqa

    task = triviaqa(data_path=str(data_path), design="quick", statements="ours", n=2,
                    distractors=str(FIXTURES / "triviaqa_distractors.json"))  # fmt: skip
    (log,) = inspect_eval(task, model=_answering(answer), model_roles={"grader": "warmeval-scripted/match"},
                          log_dir=str(folder), display="none")  # fmt: skip
    assert log.status == "success" and len(log.samples) == DISTINCT
    return Path(log.location)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``one``: a folder with one log; ``twice``: the same evaluation run twice into one folder, the second time
    from a copy of the dataset (so the logs' task arguments differ while task, model and samples are the same)."""
    root = tmp_path_factory.mktemp("logs")
    copy = root / "data" / "triviaqa.jsonl"
    copy.parent.mkdir()
    shutil.copy(FIXTURES / "triviaqa.jsonl", copy)
    old = _trivia_log(root / "twice", FIXTURES / "triviaqa.jsonl", "an older answer")
    _trivia_log(root / "twice", copy, "a newer answer")
    (root / "one").mkdir()
    shutil.copy(old, root / "one" / old.name)
    return {"one": root / "one", "twice": root / "twice"}


# --- 1. duplicated evaluations are counted once ----------------------------------------------------------------


def test_duplicate_logs_in_one_folder_count_once_and_keep_the_newest(logs: dict[str, Path]) -> None:
    report = LoadReport()
    table = load_table(logs["twice"], None, report)
    assert len(table) == DISTINCT and report.rows_read == DISTINCT
    assert set(table["output"]) == {"a newer answer"}  # the newest log's rows
    assert sum(report.duplicates.values()) == DISTINCT
    (note,) = report.notes
    assert "8 duplicate" in note and "newest" in note, note
    exclusions = report.table()
    assert exclusions["duplicates_excluded"].sum() == DISTINCT


def test_a_copied_log_folder_given_twice_counts_once(logs: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(logs["one"], tmp_path / "copy")
    report = LoadReport()
    table = load_table([logs["one"], tmp_path / "copy"], None, report)
    assert len(table) == DISTINCT and len(report.protocols) == 1
    assert any("8 duplicate" in note for note in report.notes), report.notes


def test_report_and_analyse_say_how_many_duplicates(logs: dict[str, Path], tmp_path: Path) -> None:
    done = run_cli("analyse", "load", logs["twice"], "--out", tmp_path / "rows.csv")
    assert done.returncode == 0, done.stderr
    assert f"{DISTINCT} rows of {DISTINCT} kept" in done.stdout and "note: 8 duplicate" in done.stdout, done.stdout
    done = run_cli("report", logs["twice"], "--out", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    assert "note: 8 duplicate" in done.stdout, done.stdout
    page = (tmp_path / "report" / "report.md").read_text()
    assert f"Responses analysed: {DISTINCT} of {DISTINCT} read" in page
    assert "duplicates_excluded" in page
    assert "Note: 8 duplicate responses" in page  # the note itself, in the report


# --- 2. the gate on partly paired prompts -----------------------------------------------------------------------


def _table(path: Path, questions: range, wrong_every: int = 10) -> Path:
    rows = [{"model": "m", "variant": "original", "is_finetuned": 0, "dataset": "trivia", "question_id": f"q{i}",
             "prompt_template": "original", "amendment_type": "unmodified", "epoch": 1, "output": "An answer.",
             "evaluation": "INCORRECT" if i % wrong_every == 0 else "CORRECT", "response_length": 10}
            for i in questions]  # fmt: skip
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def test_gate_warns_about_unpaired_prompts(tmp_path: Path) -> None:
    base, cand = _table(tmp_path / "base.csv", range(196)), _table(tmp_path / "cand.csv", range(84))
    result = run_gate([base], [cand])
    assert result.exit_code == PASS
    assert any("84 paired" in w and "112 in the baseline only" in w and "0 in the candidate only" in w
               for w in result.warnings), result.warnings  # fmt: skip
    done = run_cli("gate", "--baseline", base, "--candidate", cand)
    assert done.returncode == 0
    assert "WARNING" in done.stderr and "112 in the baseline only" in done.stderr, done.stderr
    assert "84 of the baseline's 196" in done.stdout, done.stdout
    # Fully paired: no warning.
    same = run_cli("gate", "--baseline", base, "--candidate", base, "--require-full-pairing")
    assert same.returncode == 0 and "WARNING" not in same.stderr, same.stderr


def test_gate_require_full_pairing_refuses_unpaired_prompts(tmp_path: Path) -> None:
    base, cand = _table(tmp_path / "base.csv", range(196)), _table(tmp_path / "cand.csv", range(40, 130))
    result = run_gate([base], [cand], require_full_pairing=True)
    assert result.exit_code == UNUSABLE and result.table.empty
    assert "90 paired" in result.message and "106 in the baseline only" in result.message, result.message
    done = run_cli("gate", "--baseline", base, "--candidate", cand, "--require-full-pairing")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert "--require-full-pairing" in line and "106 in the baseline only" in line, done.stderr


# --- 3. gate options out of range -------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [("--alpha", "5"), ("--alpha", "0"), ("--alpha", "1"),
                                               ("--alpha", "-0.1"), ("--alpha", "nan"), ("--max-increase", "-1"),
                                               ("--max-increase", "100"), ("--max-increase", "inf")])  # fmt: skip
def test_gate_rejects_out_of_range_options(tmp_path: Path, option: str, value: str) -> None:
    base = _table(tmp_path / "base.csv", range(20))
    done = run_cli("gate", "--baseline", base, "--candidate", base, option, value)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{option} {value}" in done.stderr and "Traceback" not in done.stderr, done.stderr
    result = run_gate([base], [base], **{option.removeprefix("--").replace("-", "_"): float(value)})
    assert result.exit_code == UNUSABLE and option.removeprefix("--").replace("-", "_") in result.message


# --- 4. a folder with nothing to read ---------------------------------------------------------------------------


def test_an_empty_folder_names_both_layouts(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    for args in (["analyse", "load", empty, "--out", tmp_path / "r.csv"], ["report", empty, "--out", tmp_path / "o"],
                 ["gate", "--baseline", empty, "--candidate", empty]):  # fmt: skip
        done = run_cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        line = done.stderr.strip().splitlines()[-1]
        assert f"{empty}: no Inspect logs (*.eval) and no authors' outputs" in line, line
        assert "<model>/<variant>/<dataset>_<variant>_outputs.csv" in line and "pass " in line, line


# --- 5. a corrupt .eval file ------------------------------------------------------------------------------------


def _corrupt_a_sample(path: Path) -> None:
    """Flip bytes inside one sample's compressed data: the header still reads, the samples do not."""
    with zipfile.ZipFile(path) as archive:
        entry = next(i for i in archive.infolist() if i.filename.startswith("samples/"))
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[entry.header_offset + 26 : entry.header_offset + 30])
    start = entry.header_offset + 30 + name_length + extra_length
    for k in range(entry.compress_size // 4, entry.compress_size // 4 + 16):
        data[start + k] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["sample", "random", "truncated"])
def test_a_corrupt_eval_file_is_named(logs: dict[str, Path], tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "logs"
    shutil.copytree(logs["one"], folder)
    good = next(folder.glob("*.eval"))
    bad = folder / "bad.eval"
    if damage == "sample":
        shutil.copy(good, bad)
        _corrupt_a_sample(bad)
    elif damage == "random":
        bad.write_bytes(bytes(range(256)) * 8)
    else:
        bad.write_bytes(good.read_bytes()[:3000])
    for args in (["analyse", "load", folder, "--out", tmp_path / "r.csv"], ["report", folder, "--out", tmp_path / "o"],
                 ["gate", "--baseline", folder, "--candidate", logs["one"]], ["analyse", "load", bad]):  # fmt: skip
        done = run_cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"{bad}: not a readable Inspect log" in lines[0], lines[0]
    with pytest.raises(Exception, match="bad.eval: not a readable Inspect log"):
        load_rows([folder])
