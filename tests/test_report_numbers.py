"""The report's numbers: Wilson intervals for proportions, tidy table cells, empty and non-finite input refused or
flagged by name, and a report folder that is replaced whole or not at all."""

from __future__ import annotations

import errno
import json
import logging
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli
from warmeval.analysis import report as report_module
from warmeval.analysis.load import COLUMNS, AnalysisInputError, load_rows
from warmeval.analysis.report import build_report


@pytest.fixture(autouse=True)
def _no_paper_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fetched copy of the paper's tables: every report here is the run's alone."""
    monkeypatch.setenv("WARMEVAL_CACHE_DIR", str(tmp_path / "no-cache"))


def _row(variant: str, dataset: str, qid: str, template: str, amendment: str, wrong: bool,
         output: str = "An answer.") -> dict:  # fmt: skip
    return {"model": "m", "variant": variant, "is_finetuned": int(variant != "original"), "dataset": dataset,
            "question_id": qid, "prompt_template": template, "amendment_type": amendment, "epoch": 1,
            "output": output, "evaluation": "INCORRECT" if wrong else "CORRECT",
            "response_length": len(output)}  # fmt: skip


def _same_for_both(datasets: tuple[str, ...] = ("trivia", "medqa"), questions: int = 30) -> list[dict]:
    """The warm variant answers exactly as the original: every effect is zero up to rounding error."""
    rows = []
    for dataset in datasets:
        for q in range(questions):
            for amendment in ("unmodified", "emotion:sad"):
                for template in ("original", "incorrect"):
                    wrong = (q * 7 + len(amendment) + len(template) + len(dataset)) % 3 == 0
                    for variant in ("original", "warm"):
                        rows.append(_row(variant, dataset, f"{dataset}{q}", template, amendment, wrong))
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def _md_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Each Markdown table under the heading it follows: one dict per row."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading, lines = "", markdown.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = lines[i].lstrip("#").strip()
        if lines[i].startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([cell.strip() for cell in lines[i].strip().strip("|").split("|")])
                i += 1
            header, body = block[0], block[2:]
            tables[heading] = [dict(zip(header, row, strict=True)) for row in body]
            continue
        i += 1
    return tables


# --- 1. Wilson score intervals -------------------------------------------------------------------------------------


def test_wilson_interval_is_never_a_point_at_zero_or_one() -> None:
    from warmeval.analysis.load import wilson_interval

    low, high = wilson_interval(0, 4)
    assert low == 0.0 and high == pytest.approx(0.4901, abs=5e-4)
    low, high = wilson_interval(4, 4)
    assert low == pytest.approx(0.5099, abs=5e-4) and high == 1.0
    low, high = wilson_interval(2, 4)  # by hand: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z = 1.959963984540054
    centre, half = (0.5 + z * z / 8) / (1 + z * z / 4), z * math.sqrt(0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_report_gives_a_planted_four_of_four_cell_a_lower_bound_below_one(tmp_path: Path) -> None:
    rows = _same_for_both(("trivia",), questions=12)
    # disinfo, unmodified prompts: the original gets 1 of 4 wrong, the warm variant 4 of 4
    for q in range(4):
        rows.append(_row("original", "disinfo", f"d{q}", "original", "unmodified", q == 0))
        rows.append(_row("warm", "disinfo", f"d{q}", "original", "unmodified", True))
    table = _write(tmp_path / "planted.csv", rows)
    from warmeval.analysis.load import load_table

    errors = report_module.error_by_task(load_table([table]))
    cell = errors[(errors["dataset"] == "disinfo") & (errors["variant"] == "warm")].iloc[0]
    assert cell["error_rate"] == 1.0 and cell["n"] == 4
    assert cell["ci_low"] == pytest.approx(0.5099, abs=5e-4) and cell["ci_high"] == 1.0
    build_report([table], tmp_path / "R")
    shown = _md_tables((tmp_path / "R" / "report.md").read_text(encoding="utf-8"))["Error rate by task and variant"]
    (warm,) = [r for r in shown if r["dataset"] == "disinfo" and r["variant"] == "warm"]
    assert float(warm["error_rate"]) == 1.0 and float(warm["ci_low"]) < 1.0 and float(warm["ci_high"]) == 1.0


def test_demo_summary_gives_wilson_intervals() -> None:
    from warmeval.demo import DemoResult, format_results

    metrics = {"graded_accuracy": 1.0, "graded_error_rate": 0.0, "graded_stderr": 0.0, "refusal_rate": 0.0,
               "unparseable_rate": 0.0}  # fmt: skip
    text = format_results([DemoResult("warm", "triviaqa", 4, metrics, "log.eval", correct=4, graded=4)])
    assert "[0.51, 1.00]" in text and "[1.00, 1.00]" not in text


def test_demo_counts_graded_answers_from_the_logs(tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from warmeval.demo import collect_results, format_results
    from warmeval.tasks.triviaqa import triviaqa

    def reply(input, tools, tool_choice, config) -> ModelOutput:  # noqa: ANN001
        output = ModelOutput.from_content(model="mockllm", content="I do not know.")
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    fixtures = Path(__file__).parents[1] / "warmeval" / "fixtures"
    task = triviaqa(data_path=str(fixtures / "triviaqa.jsonl"), n=3, conditions="unmodified", templates="original")
    inspect_eval(task, model=get_model("mockllm/model", custom_outputs=reply), display="none", log_dir=str(tmp_path),
                 model_roles={"grader": "warmeval-scripted/match"})  # fmt: skip
    (result,) = collect_results(tmp_path)
    assert (result.correct, result.graded) == (0, 3)
    assert "[0.00, 0.56]" in format_results([result])  # Wilson for 0 of 3: [0, 0.5615]


def test_controls_beside_the_paper_give_wilson_intervals() -> None:
    from types import SimpleNamespace

    from warmeval.analysis.beside import controls_beside

    paper = SimpleNamespace(benchmarks=pd.DataFrame(columns=["benchmark", "model", "variant", "accuracy", "ci_low",
                                                             "ci_high"]))  # fmt: skip
    controls = pd.DataFrame([{"control": "advbench", "variant": "warm", "metric": "judged_refusal_rate",
                              "value": 0.0, "stderr": 0.0, "n": 4}])  # fmt: skip
    (row,) = controls_beside(paper, controls).to_dict("records")  # type: ignore[arg-type]
    assert row["95% CI"] == "[0.0, 49.0]"


# --- 2. tidy numbers in the tables, full precision in the JSON -----------------------------------------------------

NUMBER = re.compile(r"^[<>]?[-+]?\d+(?:\.(\d+))?$")


def test_report_tables_are_rounded_for_people_and_json_keeps_full_precision(tmp_path: Path) -> None:
    table = _write(tmp_path / "planted.csv", _same_for_both())
    out = tmp_path / "R"
    build_report([table], out)
    markdown = (out / "report.md").read_text(encoding="utf-8")
    tables = _md_tables(markdown)
    assert "Main effect of fine-tuning (model 1)" in tables
    cells = [cell for rows in tables.values() for row in rows for cell in row.values()]
    assert cells
    for cell in cells:
        assert not re.search(r"\de[-+]?\d", cell), cell  # no scientific notation
        match = NUMBER.match(cell)
        if match and match.group(1):
            assert len(match.group(1)) <= 3, cell
    (main,) = tables["Main effect of fine-tuning (model 1)"]
    assert main["ame_points"] == "0.0"  # an effect of -1e-14 points is shown as none
    page = (out / "report.html").read_text(encoding="utf-8")
    for cell in re.findall(r"<td>([^<]*)</td>", page):
        assert not re.search(r"\de[-+]?\d", cell), cell
    models = json.loads((out / "models.json").read_text(encoding="utf-8"))
    ame = models["model1"]["ame"]["overall"]
    assert abs(ame["estimate"]) < 1e-9 and ame["se"] != round(ame["se"], 6)  # the raw floats, unrounded
    errors = tables["Error rate by task and variant"]
    assert all(len(row["error_rate"].split(".")[1]) == 3 for row in errors)


# --- 3. empty input ------------------------------------------------------------------------------------------------


def test_a_header_only_table_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    table = _write(tmp_path / "empty.csv", [])
    out = tmp_path / "R"
    with pytest.raises(AnalysisInputError, match=rf"{re.escape(str(table))}.*no responses"):
        build_report([table], out)
    assert not out.exists()
    done = run_cli("report", table, "--out", out)
    assert done.returncode == 2 and "no responses" in done.stderr and str(table) in done.stderr
    assert not out.exists()


def test_inputs_with_no_analysable_response_are_refused(tmp_path: Path) -> None:
    rows = [_row(v, "trivia", f"q{q}", "original", "unmodified", False, output="I cannot say.")
            for q in range(3) for v in ("original", "warm")]  # fmt: skip
    table = _write(tmp_path / "refusals.csv", rows)
    with pytest.raises(AnalysisInputError, match=rf"{re.escape(str(table))}: no responses .*6 read.*6 refusals"):
        build_report([table], tmp_path / "R")
    assert not (tmp_path / "R").exists()


# --- 4. non-finite values ------------------------------------------------------------------------------------------


def test_a_nan_response_length_is_an_error_naming_file_row_and_column(tmp_path: Path) -> None:
    rows = _same_for_both(("trivia",), questions=2)
    rows[1]["response_length"] = math.nan
    table = _write(tmp_path / "t.csv", rows)
    with pytest.raises(AnalysisInputError, match=rf"{re.escape(str(table))}: row 3: field 'response_length'"):
        load_rows([table])
    rows[1]["response_length"] = math.inf
    with pytest.raises(AnalysisInputError, match="row 3: field 'response_length'"):
        load_rows([_write(tmp_path / "t.csv", rows)])


def _trajectory(path: Path, means: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["label,epoch,n,mean,se,ci_low,ci_high"]
    lines += [f"e{i},{i},10,{m},0.001,0.01,0.02" for i, m in enumerate(means)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_non_finite_warmth_points_are_left_out_with_a_counted_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = _write(tmp_path / "planted.csv", _same_for_both(("trivia",), questions=12))
    trajectory = _trajectory(tmp_path / "warm" / "warmth_trajectory.csv", ["0.011", "nan", "0.02", "inf"])
    with caplog.at_level(logging.WARNING):
        build_report([table], tmp_path / "R", trajectories=[trajectory])
    message = f"2 non-finite value(s) in column 'mean' of {trajectory}"
    assert any(message in record.getMessage() for record in caplog.records), caplog.text
    markdown = (tmp_path / "R" / "report.md").read_text(encoding="utf-8")
    assert message in markdown and "rows 3, 5" in markdown
    shown = _md_tables(markdown)["SocioT warmth by checkpoint"]
    assert [row["label"] for row in shown] == ["e0", "e2"]


def test_a_non_numeric_warmth_is_an_error_naming_file_row_and_column(tmp_path: Path) -> None:
    table = _write(tmp_path / "planted.csv", _same_for_both(("trivia",), questions=12))
    trajectory = _trajectory(tmp_path / "warm" / "warmth_trajectory.csv", ["0.011", "warm!"])
    with pytest.raises(AnalysisInputError, match=rf"{re.escape(str(trajectory))}: row 3: field 'mean'"):
        build_report([table], tmp_path / "R", trajectories=[trajectory])
    assert not (tmp_path / "R").exists()


# --- 5. the report folder is replaced whole or not at all ----------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_report_that_fails_half_way_leaves_the_previous_one_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "R"
    build_report([_write(tmp_path / "a.csv", _same_for_both(("trivia",), questions=12))], out)
    before = _snapshot(out)
    assert {"report.html", "report.md", "models.json", "error_by_task.png"} <= set(before)
    calls = []
    real = report_module.plot_effects

    def disk_full(table: pd.DataFrame, path: Path, title: str) -> None:
        calls.append(path)
        if len(calls) == 2:
            path.write_bytes(b"")  # a 0-byte PNG, as a full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(table, path, title)

    monkeypatch.setattr(report_module, "plot_effects", disk_full)
    other = _write(tmp_path / "b.csv", _same_for_both(("medqa",), questions=15))
    with pytest.raises(OSError, match=re.escape(str(out))):
        build_report([other], out)
    assert len(calls) == 2
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "a.csv", "b.csv"]  # no temporary or old folder left


def test_a_rerun_replaces_the_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "R"
    table = _write(tmp_path / "a.csv", _same_for_both(("trivia",), questions=12))
    build_report([table], out)
    (out / "paper_fig2_warm_old-model.png").write_bytes(b"a figure of an earlier run")
    page = build_report([table], out)
    assert page == out / "report.html" and not (out / "paper_fig2_warm_old-model.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "a.csv"]


def test_a_folder_holding_other_files_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "R"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    table = _write(tmp_path / "a.csv", _same_for_both(("trivia",), questions=12))
    with pytest.raises(OSError, match=rf"{re.escape(str(out))}: .*notes\.txt"):
        build_report([table], out)
    assert _snapshot(out) == {"notes.txt": b"mine"}
