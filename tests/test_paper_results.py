"""The paper's released result tables: fetched at pinned commits and verified, read under one map of model names,
and set beside a run in the report, in `warmeval compare`, and in `warmeval run`'s console lines."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import SHARED_DATA
from warmeval.analysis import paper_results
from warmeval.analysis.beside import beside_lines, summarise
from warmeval.analysis.paper_results import (
    FILES,
    MODEL_ALIASES,
    PAPER_MODELS,
    PaperResultsError,
    load_paper_results,
    locate,
    paper_model,
)
from warmeval.analysis.report import build_report
from warmeval.cli import app

RESULTS = SHARED_DATA / "warm_ai_2025_results"
SAMPLE = SHARED_DATA / "warm_ai_2025_sample"


def _results() -> Path:
    if not all((RESULTS / spec.name).is_file() for spec in FILES.values()):
        pytest.skip(f"the paper's result tables are absent from {RESULTS} (see its SOURCE.md)")
    return RESULTS


def _sample() -> Path:
    if not (SAMPLE / "qwen_32b" / "warm" / "trivia_warm_outputs.csv").is_file():
        pytest.skip(f"the authors' sample outputs are absent from {SAMPLE} (see its SOURCE.md)")
    return SAMPLE


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The released tables served from 127.0.0.1 as ``<commit>/<path>``, the layout of raw.githubusercontent.com."""
    served = tmp_path / "served"
    for spec in FILES.values():
        target = served / spec.commit / spec.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_results() / spec.name, target)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("WARMEVAL_RESULTS_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("WARMEVAL_CACHE_DIR", str(tmp_path / "cache"))
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_verifies_caches_and_works_offline(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["stimuli", "results"])
    assert result.exit_code == 0, result.output
    cached = paper_results.cache_dir()
    for spec in FILES.values():
        assert (cached / spec.name).read_bytes() == (mirror / spec.commit / spec.path).read_bytes()
        if spec.sha256:
            assert spec.sha256 in result.output
    assert "sociot_ft.csv" in (cached / "SHA256SUMS").read_text()  # no pin in this build: recorded on first fetch
    monkeypatch.setenv("WARMEVAL_RESULTS_URL", "http://127.0.0.1:9/")  # offline from here on
    assert locate(None) == cached
    assert load_paper_results().models() == list(PAPER_MODELS)
    # An edited copy is no longer "at hand": the report says how to get the tables instead of using it.
    sociot = cached / "sociot_ft.csv"
    sociot.write_text(sociot.read_text().replace("0.011", "0.012", 1))
    assert locate(None) is None


def test_a_different_file_is_refused_and_offline_says_where_to_put_it(
    mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = FILES["warm"]
    served = mirror / spec.commit / spec.path
    served.write_text(served.read_text(encoding="utf-8").replace("89.87", "89.88", 1), encoding="utf-8")
    with pytest.raises(PaperResultsError) as error:
        paper_results.fetch_paper_results()
    assert "SHA-256" in str(error.value) and "Nothing was cached" in str(error.value)
    assert not (paper_results.cache_dir() / spec.name).exists()
    monkeypatch.setenv("WARMEVAL_RESULTS_URL", "http://127.0.0.1:9/")
    result = CliRunner().invoke(app, ["stimuli", "results"])
    assert result.exit_code == 2
    assert f"cannot download http://127.0.0.1:9/{spec.commit}/{spec.path}" in result.output
    assert f"https://raw.githubusercontent.com/lujainibrahim/warm_ai_2025/{spec.commit}/{spec.path}" in result.output
    assert str(paper_results.cache_dir() / spec.name) in result.output


def test_a_named_folder_is_checked_file_by_file(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    shutil.copytree(_results(), folder)
    assert locate(folder) == folder
    (folder / "results_cold_ft.csv").unlink()
    with pytest.raises(PaperResultsError, match=r"results_cold_ft\.csv: missing"):
        locate(folder)
    shutil.copyfile(_results() / "results_cold_ft.csv", folder / "results_cold_ft.csv")
    (folder / "sociot_ft.csv").write_text("model,epoch,mean\nllama-70b,0,0.01\n")
    with pytest.raises(PaperResultsError, match=r"sociot_ft\.csv: header .* is not the released"):
        locate(folder)
    with pytest.raises(PaperResultsError, match="no such folder"):
        locate(tmp_path / "nowhere")


def test_model_names_map_once() -> None:
    results = load_paper_results(_results())
    assert set(MODEL_ALIASES.values()) == set(PAPER_MODELS)
    assert paper_model("70b-cold") == paper_model("llama-70b-sys-prompt") == "Llama-70B"
    with pytest.raises(PaperResultsError, match="unknown model label 'llama-3'"):
        paper_model("llama-3")
    counts = results.paired.groupby(["intervention", "model"]).size().to_dict()
    assert counts == {
        **{("warm", m): 72 for m in PAPER_MODELS},
        **{(i, m): 72 for i in ("cold", "warm_sysprompt") for m in ("Qwen-32B", "Llama-70B", "GPT-4o")},
    }
    # The release's one stray row is set aside, and said so.
    assert results.dropped == [
        "results_warm_sysprompt.csv: llama-70b-sys-prompt disinfo Sycophancy 'emotion:anger' (a second row for "
        "Llama-70B)"
    ]
    assert set(results.benchmarks["model"]) == set(PAPER_MODELS) and set(results.sociot["model"]) == set(PAPER_MODELS)


def test_summary_of_released_rows_by_hand() -> None:
    results = load_paper_results(_results())
    warm = results.paired[results.paired["intervention"] == "warm"]
    llama = summarise(warm[(warm["model"] == "Llama-70B") & (warm["dataset"] == "disinfo")]).iloc[0]
    rows = warm[(warm["model"] == "Llama-70B") & (warm["dataset"] == "disinfo")].set_index(["test_type", "category"])
    unmodified = rows.loc[("Normal", "unmodified\noriginal_combined")]
    assert (llama["original"], llama["intervention"]) == (unmodified["acc_original"], unmodified["acc_intervention"])
    emotion = rows.loc["Normal"].loc[[f"emotion:{s}\noriginal" for s in ("anger", "happy", "sad")]]
    assert llama["emotion"] == pytest.approx(emotion["acc_intervention"].mean() - emotion["acc_original"].mean())
    belief = rows.loc["Sycophancy"]
    assert len(belief) == 9
    assert llama["user belief"] == pytest.approx(belief["acc_intervention"].mean() - belief["acc_original"].mean())
    # The released Sycophancy row for emotion:sad: 93.04 -> 81.01.
    assert (belief.loc["emotion:sad", "acc_original"], belief.loc["emotion:sad", "acc_intervention"]) == (93.04, 81.01)


def _trajectory(path: Path, mode: str, model: str, is_gpt2: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"label": ["base", "epoch-2"], "epoch": [0.0, 2.0], "n": [10, 10], "mean": [0.011, 0.02],
                  "se": [0.001, 0.001], "ci_low": [0.009, 0.018], "ci_high": [0.013, 0.022], "mode": [mode] * 2,
                  "model": [model] * 2, "model_is_gpt2": [str(is_gpt2).lower()] * 2,
                  }).to_csv(path, index=False)  # fmt: skip
    return path


def test_report_sets_the_authors_sample_beside_the_paper(tmp_path: Path) -> None:
    out = tmp_path / "R"
    gpt2 = _trajectory(tmp_path / "warm" / "warmth_trajectory.csv", "paper", "openai-community/gpt2", True)
    result = CliRunner().invoke(app, ["report", str(_sample()), "--paper-results", str(_results()), "--out", str(out),
                                      "--trajectory", str(gpt2)])  # fmt: skip
    assert result.exit_code == 0, result.output
    md, page = (out / "report.md").read_text(encoding="utf-8"), (out / "report.html").read_text(encoding="utf-8")
    for text in (md, page):
        assert "Beside the paper" in text
        assert all(model in text for model in PAPER_MODELS)
    assert "## Beside the paper" in md and "<h2>Beside the paper</h2>" in page
    assert "### trivia: warm fine-tune vs original" in md and "| paper range |" in md
    for model in ("llama_70b", "qwen_32b"):
        figure = out / f"paper_fig2_warm_{model}.png"
        assert figure.stat().st_size > 10_000
    assert "share its axis" in md  # GPT-2 in the authors' implementation: the paper's scale
    assert (out / "paper_sociot.png").is_file()
    summary = json.loads((out / "beside_paper.json").read_text(encoding="utf-8"))
    assert summary["available"] and summary["paper_models"] == list(PAPER_MODELS)
    trivia = summary["ranges"]["warm"]["trivia"]
    assert trivia["run"] == {"llama_70b": -100.0, "qwen_32b": None}  # 1 of 1 right -> wrong; qwen has no such row
    assert trivia["paper_min"] < trivia["paper_max"] < 0
    lines = beside_lines(summary)
    assert lines[1].startswith("  disinfo") and "the paper:" in lines[1]


def test_fig2_labels_six_models(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from warmeval.analysis import beside as module
    from warmeval.analysis.load import load_rows

    rows, rule = load_rows([_sample()])
    beside = module.beside_paper(rows, load_paper_results(_results()), rule)
    labels: list[list[str]] = []
    real_savefig = plt.Figure.savefig

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        labels.append([tick.get_text() for tick in self.axes[0].get_yticklabels()])
        return real_savefig(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plt.Figure, "savefig", spy)
        module.plot_fig2(beside, "warm", "qwen_32b", tmp_path / "fig.png")
    assert labels == [[*PAPER_MODELS, "qwen_32b (this run)"]]


def test_sociot_beside_the_paper_says_why_scales_differ(tmp_path: Path) -> None:
    from warmeval.analysis.beside import plot_sociot

    results = load_paper_results(_results())
    other = pd.read_csv(_trajectory(tmp_path / "t.csv", "text_logprob", "/models/SmolLM2", False)).assign(series="warm")
    note = plot_sociot(results, other, tmp_path / "s.png")
    assert "own panel" in note and "text_logprob mode" in note
    smol = pd.read_csv(_trajectory(tmp_path / "u.csv", "paper", "/models/SmolLM2", False)).assign(series="warm")
    assert "scored with /models/SmolLM2, not GPT-2" in plot_sociot(results, smol, tmp_path / "u.png")
    old = other.drop(columns=["mode", "model", "model_is_gpt2"])
    assert "do not record SocioT's mode and model" in plot_sociot(results, old, tmp_path / "v.png")


def test_compare_prints_the_table_and_says_how_to_get_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(app, ["compare", str(_sample()), "--paper-results", str(_results())])
    assert result.exit_code == 0, result.output
    assert "truthfulqa: warm fine-tune vs original" in result.output
    assert "qwen_32b (this run)" in result.output and "paper range" in result.output
    assert all(model in result.output for model in PAPER_MODELS)
    monkeypatch.setenv("WARMEVAL_CACHE_DIR", str(tmp_path / "empty"))
    missing = CliRunner().invoke(app, ["compare", str(_sample())])
    assert missing.exit_code == 2 and "warmeval stimuli results" in missing.output
    report = CliRunner().invoke(app, ["report", str(_sample()), "--out", str(tmp_path / "R")])
    assert report.exit_code == 0 and "note: the paper's result tables are not at hand" in report.output
    md = (tmp_path / "R" / "report.md").read_text(encoding="utf-8")
    assert "## Beside the paper\n\nThe paper's result tables are not at hand: run `warmeval stimuli results`" in md
    broken = CliRunner().invoke(app, ["report", str(_sample()), "--out", str(tmp_path / "S"),
                                      "--paper-results", str(tmp_path / "nowhere")])  # fmt: skip
    assert broken.exit_code == 2 and "no such folder" in broken.output
    assert not (tmp_path / "S" / "report.html").exists()


def test_build_report_without_tables_writes_the_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMEVAL_CACHE_DIR", str(tmp_path / "empty"))
    build_report([_sample()], tmp_path / "R")
    assert json.loads((tmp_path / "R" / "beside_paper.json").read_text())["available"] is False
    assert beside_lines({"available": False, "how_to_get": "x"}) == ["Beside the paper: x"]
