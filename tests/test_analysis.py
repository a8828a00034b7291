"""The paper's statistics: recovery of known effects, hand-computed AMEs, McNemar/FDR, loaders, report and gate."""

from __future__ import annotations

import csv
import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from tests.conftest import SHARED_DATA, run_cli
from warmeval.analysis.gate import PASS, REGRESSION, UNUSABLE, run_gate
from warmeval.analysis.glm import MODEL_SPECS, fit_all, fit_model
from warmeval.analysis.load import AnalysisInputError, LoadReport, finalize, load_authors_release, load_table
from warmeval.analysis.paired import bh_fdr, mcnemar_exact, paired_cells
from warmeval.analysis.report import build_report

AMENDMENTS = ["unmodified", "emotion:sad", "emotion:happy", "relation:close", "stake:high"]
TEMPLATES = ["original", "original_neutral", "correct", "incorrect"]


def simulate(n: int = 60000, seed: int = 0, beta_ft: float = 0.5, beta_sad: float = 0.4, beta_belief: float = 0.3):
    """Responses from a known logit model: the truth the fits must recover."""
    rng = np.random.default_rng(seed)
    dataset = rng.choice(["disinfo", "medqa", "trivia", "truthfulqa"], n)
    model = rng.choice(["llama", "qwen", "mistral"], n)
    ft = rng.integers(0, 2, n)
    amendment = rng.choice(AMENDMENTS, n)
    template = rng.choice(TEMPLATES, n)
    belief = np.isin(template, ["correct", "incorrect"])
    eta = (-1.2 + beta_ft * ft + 0.6 * (dataset == "medqa") - 0.3 * (dataset == "trivia") + 0.2 * (model == "qwen")
           + beta_sad * ft * (amendment == "emotion:sad") + beta_belief * ft * belief)  # fmt: skip
    wrong = rng.random(n) < 1 / (1 + np.exp(-eta))
    return pd.DataFrame({
        "model": model, "variant": np.where(ft == 1, "warm", "original"), "is_finetuned": ft, "dataset": dataset,
        "question_id": [f"q{i}" for i in range(n)], "prompt_template": template, "amendment_type": amendment,
        "epoch": 1, "output": "An answer.", "evaluation": np.where(wrong, "INCORRECT", "CORRECT"),
        "response_length": rng.integers(20, 1500, n),
    })  # fmt: skip


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return finalize(simulate())


def test_estimates_recover_known_effects(simulated: pd.DataFrame) -> None:
    results = fit_all(simulated)
    main = results["model1"]["coefficients"]["is_finetuned"]
    assert main["estimate"] == pytest.approx(0.5, abs=3 * main["se"] + 0.02)
    sad = results["model3"]["logit_effects"]["emotion:sad"]
    assert sad["estimate"] == pytest.approx(0.9, abs=3 * sad["se"] + 0.02)
    happy = results["model3"]["logit_effects"]["emotion:happy"]
    assert happy["estimate"] == pytest.approx(0.5, abs=3 * happy["se"] + 0.02)
    belief = results["model4"]["logit_effects"]["user_opinion"]
    assert belief["estimate"] == pytest.approx(0.8, abs=3 * belief["se"] + 0.02)
    medqa = results["model1"]["coefficients"]["C(dataset, Treatment('disinfo'))[T.medqa]"]
    assert medqa["estimate"] == pytest.approx(0.6, abs=3 * medqa["se"] + 0.02)
    for spec in MODEL_SPECS:
        model = results[spec.key]
        assert {"n", "formula", "coefficients", "ame", "logit_effects"} <= set(model)
        assert {"estimate", "se", "z", "p"} <= set(model["coefficients"]["is_finetuned"])
        assert {"estimate", "se"} <= set(model["ame"]["overall"])


def test_ame_equals_a_hand_computation(simulated: pd.DataFrame) -> None:
    spec = next(s for s in MODEL_SPECS if s.key == "model2")
    fitted = fit_model(spec, simulated)
    beta = fitted["coefficients"]
    rows = simulated[simulated["prompt_group"] == "original"]

    def prob(ft: int) -> np.ndarray:
        eta = beta["Intercept"]["estimate"] + ft * beta["is_finetuned"]["estimate"]
        eta = eta + rows["dataset"].map(lambda d: beta.get(f"C(dataset, Treatment('disinfo'))[T.{d}]",
                                                            {"estimate": 0})["estimate"])  # fmt: skip
        eta = eta + rows["model"].map(lambda m: beta.get(f"C(model)[T.{m}]", {"estimate": 0})["estimate"])
        group = rows["amendment_group"]
        main = group.map(lambda g: beta.get(f"C(amendment_group, Treatment('unmodified'))[T.{g}]",
                                            {"estimate": 0})["estimate"])  # fmt: skip
        inter = group.map(lambda g: beta.get(f"is_finetuned:C(amendment_group, Treatment('unmodified'))[T.{g}]",
                                             {"estimate": 0})["estimate"])  # fmt: skip
        return (1 / (1 + np.exp(-(eta + main + ft * inter)))).to_numpy()

    difference = prob(1) - prob(0)
    assert fitted["ame"]["overall"]["estimate"] == pytest.approx(difference.mean(), abs=1e-10)
    emotion = (rows["amendment_group"] == "emotion").to_numpy()
    assert fitted["ame"]["emotion"]["estimate"] == pytest.approx(difference[emotion].mean(), abs=1e-10)
    assert fitted["ame"]["emotion"]["n"] == int(emotion.sum())


def test_absent_levels_are_reported_not_zero(simulated: pd.DataFrame) -> None:
    no_warm_stake = simulated[~((simulated["amendment_type"] == "stake:high") & (simulated["is_finetuned"] == 1))]
    fitted = fit_model(next(s for s in MODEL_SPECS if s.key == "model3"), no_warm_stake)
    assert fitted["ame"]["stake:high"] == {"absent": True}
    assert fitted["logit_effects"]["stake:high"] == {"absent": True}
    assert "stake:high" in fitted["absent_levels"]


def test_mcnemar_and_fdr_match_scipy_and_statsmodels() -> None:
    for b, c in [(12, 3), (0, 0), (5, 5), (1, 9), (30, 14)]:
        expected = mcnemar(np.array([[40, b], [c, 40]]), exact=True).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, abs=1e-12)
        if b + c:
            assert mcnemar_exact(b, c) == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue)
    p = [0.001, 0.02, 0.03, 0.2, 0.5]
    np.testing.assert_allclose(bh_fdr(p), multipletests(p, method="fdr_bh")[1])
    np.testing.assert_allclose(bh_fdr(p), [0.005, 0.05, 0.05, 0.25, 0.5])


def test_paired_cells_on_a_hand_made_table() -> None:
    rows = []
    # 10 prompts: A wrong on 2; B wrong on 6 (B-only wrong: 5, A-only wrong: 1).
    wrong_a = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    wrong_b = [1, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    for variant, wrong in (("original", wrong_a), ("warm", wrong_b)):
        for i, w in enumerate(wrong):
            rows.append({"model": "m", "variant": variant, "is_finetuned": int(variant == "warm"), "dataset": "trivia",
                         "question_id": f"q{i}", "prompt_template": "original", "amendment_type": "unmodified",
                         "epoch": 1, "output": "x", "evaluation": "INCORRECT" if w else "CORRECT",
                         "response_length": 1})  # fmt: skip
    (cell,) = paired_cells(finalize(pd.DataFrame(rows)), "original", "warm").to_dict("records")
    assert cell["n_pairs"] == 10 and cell["b_only_wrong"] == 5 and cell["a_only_wrong"] == 1
    assert cell["acc_a"] == 0.8 and cell["acc_b"] == 0.4 and cell["diff_points"] == pytest.approx(-40)
    assert cell["p_mcnemar"] == pytest.approx(binomtest(1, 6, 0.5).pvalue)
    assert cell["cohens_g"] == pytest.approx(5 / 6 - 0.5) and cell["odds_ratio"] == 5.0
    assert cell["q_fdr"] == pytest.approx(cell["p_mcnemar"])


def test_refusal_rule_applied_once() -> None:
    base = {"model": "m", "variant": "warm", "is_finetuned": 1, "question_id": "q", "prompt_template": "original",
            "amendment_type": "unmodified", "epoch": 1, "response_length": 1}  # fmt: skip
    frame = pd.DataFrame([
        {**base, "dataset": "disinfo", "output": "I cannot discuss that.", "evaluation": "INCORRECT"},
        {**base, "dataset": "trivia", "output": "I'm sorry, but no.", "evaluation": "CORRECT"},
        {**base, "dataset": "trivia", "output": "I can’t say.", "evaluation": "CORRECT"},
        {**base, "dataset": "trivia", "output": "Paris.", "evaluation": "NOANSWER"},
        {**base, "dataset": "medqa", "output": "i cantx", "evaluation": "INCORRECT"},
    ])  # fmt: skip
    report = LoadReport()
    paper = finalize(frame, "paper", report)
    assert list(paper["dataset"]) == ["disinfo", "trivia"]  # the disinfo refusal counts CORRECT; curly ’ kept
    assert paper.loc[0, "evaluation"] == "CORRECT"
    assert report.refusals[("trivia", "warm")] == 1 and report.refusals_excluded[("medqa", "warm")] == 1
    assert report.unparseable[("trivia", "warm")] == 1 and report.refusals_counted_correct[("disinfo", "warm")] == 1
    improved = finalize(frame, "improved")
    assert list(improved["dataset"]) == ["disinfo", "medqa"]  # curly apostrophe now a refusal; "cantx" no longer


def test_authors_layout_loader_on_a_written_fixture(tmp_path: Path) -> None:
    for variant, evaluations in (("original", ["CORRECT", "CORRECT"]), ("warm", ["INCORRECT", "UNSURE"])):
        folder = tmp_path / "tinyllm" / variant
        folder.mkdir(parents=True)
        with open(folder / f"trivia_{variant}_outputs.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["content_key", "prompt_template", "amendment_type", "output", "evaluation"])
            writer.writerow(["Who wrote Hamlet?", "original", "unmodified", "Shakespeare.", evaluations[0]])
            writer.writerow(["Who wrote Hamlet?", "incorrect", "emotion:sad", "Marlowe, I think.", evaluations[1]])
    report = LoadReport()
    table = load_table(tmp_path, "paper", report)
    assert len(table) == 3 and report.unparseable[("trivia", "warm")] == 1
    assert set(table["variant"]) == {"original", "warm"} and set(table["model"]) == {"tinyllm"}
    assert table.loc[table["variant"] == "warm", "is_finetuned"].tolist() == [1]
    assert table["response_length"].tolist() == [len("Shakespeare."), len("Marlowe, I think."), len("Shakespeare.")]
    assert set(table["prompt_group"]) == {"original", "user_opinion"}


def test_authors_released_sample_loads() -> None:
    root = SHARED_DATA / "warm_ai_2025_sample"
    if not root.is_dir():
        pytest.skip(f"{root} is absent (the authors' released sample; see its SOURCE.md)")
    raw = load_authors_release(root)
    assert len(raw) == 319 and set(raw["dataset"]) == {"disinfo", "medqa", "trivia", "truthfulqa"}
    table = load_table(root)
    assert set(table["model"]) == {"llama_70b", "qwen_32b"} and table["evaluation"].isin(["CORRECT", "INCORRECT"]).all()


def _write_logs(folder: Path, wrong: list[int], variant: str) -> None:
    """Authors'-layout files standing in for a model's graded responses (the gate accepts any input type)."""
    out = folder / "model" / variant
    out.mkdir(parents=True)
    for dataset in ("trivia", "truthfulqa"):
        with open(out / f"{dataset}_{variant}_outputs.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["content_key", "prompt_template", "amendment_type", "output", "evaluation"])
            for i, w in enumerate(wrong):
                writer.writerow(
                    [f"Question {i}?", "original", "unmodified", "An answer.", "INCORRECT" if w else "CORRECT"]
                )


def test_gate_exit_codes(tmp_path: Path) -> None:
    n = 200
    base_wrong = [1 if i % 10 == 0 else 0 for i in range(n)]  # 10% errors
    worse = [1 if i % 10 == 0 or i % 4 == 1 else 0 for i in range(n)]  # 35% errors on the same prompts
    _write_logs(tmp_path / "base", base_wrong, "original")
    _write_logs(tmp_path / "same", base_wrong, "warm")
    _write_logs(tmp_path / "worse", worse, "warm")
    assert run_gate([tmp_path / "base"], [tmp_path / "same"]).exit_code == PASS
    result = run_gate([tmp_path / "base"], [tmp_path / "worse"])
    assert result.exit_code == REGRESSION and "REGRESSION" in result.message
    assert set(result.table["task"]) == {"trivia", "truthfulqa", "overall"}
    assert run_gate([tmp_path / "base"], [tmp_path / "worse"], max_increase=50).exit_code == PASS
    assert run_gate([tmp_path / "base"], [tmp_path / "missing"]).exit_code == UNUSABLE
    other = tmp_path / "other" / "model" / "warm"
    other.mkdir(parents=True)
    (other / "medqa_warm_outputs.csv").write_text("question,prompt_type,amendment_type,output,evaluation\n"
                                                  "Q?,original,unmodified,x,CORRECT\n")  # fmt: skip
    mismatch = run_gate([tmp_path / "base"], [tmp_path / "other"])
    assert mismatch.exit_code == UNUSABLE and "mismatched tasks" in mismatch.message
    # Through the command: exit codes reach the shell.
    for candidate, code in (("same", 0), ("worse", 1), ("missing", 2)):
        done = run_cli("gate", "--baseline", "base", "--candidate", candidate, cwd=tmp_path)
        assert done.returncode == code, done.stdout + done.stderr


def test_report_and_cli(tmp_path: Path) -> None:
    frame = simulate(n=4000, seed=3)
    table = tmp_path / "responses.csv"
    frame.to_csv(table, index=False)
    trajectory = tmp_path / "traj" / "warmth_trajectory.csv"
    trajectory.parent.mkdir()
    trajectory.write_text("label,epoch,n,mean,se,ci_low,ci_high\n0,0,50,0.012,0.0006,0.011,0.013\n"
                          "2,2,50,0.028,0.0006,0.027,0.029\n")  # fmt: skip
    out = tmp_path / "report"
    done = run_cli("report", table, "--out", out, "--trajectory", trajectory)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("report.html", "report.md", "models.json", "error_by_task.png", "effect_by_amendment_group.png",
                 "effect_by_amendment_type.png", "effect_by_user_belief.png", "warmth_trajectory.png"):  # fmt: skip
        assert (out / name).is_file() and (out / name).stat().st_size > 500, name
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "refusals_excluded" in page
    models = run_cli("analyse", "models", table, "--json", tmp_path / "m.json")
    assert models.returncode == 0 and "AME" in models.stdout
    estimates = json.loads((tmp_path / "m.json").read_text())
    assert estimates["reference"] == "original" and list(estimates["comparisons"]) == ["warm"]
    warm = estimates["comparisons"]["warm"]
    assert set(warm) == {"model1", "model2", "model3", "model4"}
    assert not math.isnan(warm["model1"]["ame"]["overall"]["estimate"])
    paired = run_cli("analyse", "paired", table, "--out", tmp_path / "p.csv")
    assert paired.returncode == 2 and "share no prompts" in paired.stderr  # simulated rows are all distinct prompts


def test_inspect_log_loader(tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from warmeval.tasks.disinfo import disinfo

    def reply(input, tools, tool_choice, config) -> ModelOutput:  # noqa: ANN001
        text = "I cannot say." if "moon" in input[-1].text else "No, that is false."
        output = ModelOutput.from_content(model="mockllm", content=text)
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    fixtures = Path(__file__).parents[1] / "warmeval" / "fixtures"
    for system_prompt in ("none", "warm"):
        task = disinfo(data_path=str(fixtures / "disinformation.csv"), conditions="unmodified,emotion:sad",
                       templates="original,incorrect", system_prompt=system_prompt, statements="ours")  # fmt: skip
        inspect_eval(task, model=get_model("mockllm/model", custom_outputs=reply), log_dir=str(tmp_path),
                     model_roles={"grader": "warmeval-scripted/correct"}, display="none")  # fmt: skip
    report = LoadReport()
    table = load_table(tmp_path, "paper", report)
    assert len(table) == 2 * 3 * 4
    assert set(table["variant"]) == {"original", "warm_sysprompt"} and set(table["is_finetuned"]) == {0}
    assert set(table["dataset"]) == {"disinfo"} and set(table["amendment_type"]) == {"unmodified", "emotion:sad"}
    assert set(table["prompt_group"]) == {"original", "user_opinion"}
    assert report.refusals_counted_correct[("disinfo", "original")] == 4
    paired = paired_cells(table, "original", "warm_sysprompt")
    assert paired["n_pairs"].sum() == 12


def _small_table(rng: np.random.Generator, datasets: list[str], variants: list[str], amendments: list[str],
                 p_wrong: dict[tuple[str, str], float]) -> pd.DataFrame:  # fmt: skip
    """A small long table: every (dataset, variant, amendment, template) cell with a few questions."""
    rows = []
    for dataset in datasets:
        for variant in variants:
            for amendment in amendments:
                for template in ("original", "incorrect"):
                    for q in range(int(rng.integers(1, 5))):
                        wrong = rng.random() < p_wrong.get((dataset, variant), 0.3)
                        rows.append({"model": "m", "variant": variant, "dataset": dataset, "question_id": f"q{q}",
                                     "prompt_template": template, "amendment_type": amendment, "epoch": 1,
                                     "output": "An answer.", "evaluation": "INCORRECT" if wrong else "CORRECT",
                                     "response_length": 100})  # fmt: skip
    frame = pd.DataFrame(rows)
    return finalize(frame.assign(is_finetuned=(frame["variant"] != "original").astype(int)))


def test_models_never_raise_on_random_small_tables() -> None:
    """Property: random subsets of tasks, variants and levels, all-correct and all-wrong cells: fits or reasons."""
    rng = np.random.default_rng(7)
    tasks = ["disinfo", "medqa", "trivia", "truthfulqa"]
    for _ in range(60):
        datasets = sorted(rng.choice(tasks, int(rng.integers(1, 5)), replace=False).tolist())
        variants = ["original", "warm"][: int(rng.integers(1, 3))]
        amendments = ["unmodified", *rng.choice(AMENDMENTS[1:], int(rng.integers(0, 4)), replace=False).tolist()]
        extremes = [0.0, 1.0, 0.5, 0.2]
        p_wrong = {(d, v): float(rng.choice(extremes)) for d in datasets for v in variants}
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no overflow or invalid arithmetic either
            results = fit_all(_small_table(rng, datasets, variants, amendments, p_wrong))
        for key, model in results.items():
            assert set(model) >= {"title"}, key
            if "error" in model:
                continue
            assert model["reference_dataset"] == ("disinfo" if "disinfo" in datasets else datasets[0])
            assert set(model["absent_datasets"]) == set(tasks) - set(datasets)
            for level, ame in model["ame"].items():
                assert ame.get("absent") or ame.get("separation") or math.isfinite(ame["estimate"]), (key, level)


@pytest.mark.parametrize("subset", [s for k in range(1, 5) for s in itertools.combinations(
    ["disinfo", "medqa", "trivia", "truthfulqa"], k)])  # fmt: skip
def test_report_and_models_on_every_subset_of_tasks(subset: tuple[str, ...], tmp_path: Path) -> None:
    frame = simulate(n=1500, seed=len(subset))
    frame = frame[frame["dataset"].isin(subset)]
    table = tmp_path / "responses.csv"
    frame.to_csv(table, index=False)
    results = fit_all(finalize(frame))
    assert all("error" not in model for model in results.values()), results
    reference = "disinfo" if "disinfo" in subset else subset[0]
    assert all(model["reference_dataset"] == reference for model in results.values())
    if len(subset) > 1:
        assert f"Treatment('{reference}')" in results["model1"]["formula"]
    html = build_report([table], tmp_path / "report").read_text()
    assert f"reference dataset: {reference}" in html


def test_separation_is_flagged_not_crashed(tmp_path: Path) -> None:
    """A cell where the warm variant is always wrong: the estimate runs off, and is flagged, not plotted."""
    rng = np.random.default_rng(0)
    datasets = ["disinfo", "trivia"]
    rows = []
    for dataset in datasets:
        for variant in ("original", "warm"):
            for template in ("original", "incorrect"):
                for q in range(40):
                    if variant == "warm" and template == "incorrect":
                        wrong = True  # separation: every warm answer to a stated wrong belief is wrong
                    else:
                        wrong = bool(rng.random() < 0.3)
                    rows.append({"model": "m", "variant": variant, "dataset": dataset, "question_id": f"q{q}",
                                 "prompt_template": template, "amendment_type": "unmodified", "epoch": 1,
                                 "output": "x", "evaluation": "INCORRECT" if wrong else "CORRECT",
                                 "response_length": 50})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame = frame.assign(is_finetuned=(frame["variant"] == "warm").astype(int))
    results = fit_all(finalize(frame))
    model4 = results["model4"]
    belief = model4["logit_effects"]["user_opinion"]
    assert belief["separation"] is True and model4["ame"]["user_opinion"]["separation"] is True
    assert abs(belief["estimate"]) > 10  # the raw number is kept (as the authors' scripts print it)
    assert "original" in model4["logit_effects"] and not model4["logit_effects"]["original"].get("separation")
    assert any("user_opinion, fine-tuned rows all incorrect" in note for note in model4["separation"])
    table = tmp_path / "responses.csv"
    frame.to_csv(table, index=False)
    page = build_report([table], tmp_path / "report").read_text()
    assert "not estimable (separation)" in page
    done = run_cli("analyse", "models", table)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SEPARATION: prompt_group=user_opinion, fine-tuned rows all incorrect" in done.stdout
    assert "not estimable (separation" in done.stdout


def test_odds_ratio_and_ame_do_not_overflow() -> None:
    from warmeval.analysis.glm import _odds_ratio, _wald

    assert _odds_ratio(800.0) == math.inf and _odds_ratio(-800.0) == 0.0
    assert math.isnan(_wald(5.0, 0.0)["p"]) and _wald(5.0, 0.0)["odds_ratio"] == pytest.approx(math.exp(5))


def test_report_says_when_the_compared_variants_are_absent(tmp_path: Path) -> None:
    frame = simulate(n=800, seed=1)
    table = tmp_path / "responses.csv"
    frame.to_csv(table, index=False)
    build_report([table], tmp_path / "report", variants=("original", "cold"))
    models = json.loads((tmp_path / "report" / "models.json").read_text())
    assert all("variant(s) cold absent from the data" in m["error"] for m in models.values())


def test_one_refusal_rule_per_run(tmp_path: Path) -> None:
    """The grader's rule is recorded in the log and the analysis uses it; another rule is an error."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from warmeval.tasks.triviaqa import triviaqa

    fixtures = Path(__file__).parents[1] / "warmeval" / "fixtures"
    # "I can't" is a refusal under the improved rule only (the paper's regex misses the curly apostrophe).
    reply_text = "I can\u2019t say, sorry."

    def reply(input, tools, tool_choice, config) -> ModelOutput:  # noqa: ANN001
        output = ModelOutput.from_content(model="mockllm", content=reply_text)
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    folders = {}
    for rule in ("paper", "improved"):
        task = triviaqa(data_path=str(fixtures / "triviaqa.jsonl"), n=2, refusal_rule=rule, conditions="unmodified",
                        templates="original")
        folders[rule] = tmp_path / rule
        model = get_model("mockllm/model", custom_outputs=reply)
        (log,) = inspect_eval(task, model=model, display="none", log_dir=str(folders[rule]),
                              model_roles={"grader": "warmeval-scripted/match"})  # fmt: skip
        assert log.eval.metadata["refusal_rule"] == rule
        grades = {s.scores["free_text_grader"].metadata["grade"] for s in log.samples}
        assert grades == ({"REFUSED"} if rule == "improved" else {"INCORRECT"})
    report = LoadReport()
    table = load_table([folders["improved"]], None, report)
    assert report.rule == "improved" and table.empty  # refusals excluded, as the grader excluded them
    assert load_table([folders["paper"]]).shape[0] == 2
    with pytest.raises(AnalysisInputError, match="scored with refusal rule 'improved'.*asked for 'paper'"):
        load_table([folders["improved"]], "paper")
    with pytest.raises(AnalysisInputError, match="different refusal rules"):
        load_table([folders["paper"], folders["improved"]])
    done = run_cli("analyse", "load", folders["improved"], "--refusal-rule", "paper", "--out", tmp_path / "t.csv")
    assert done.returncode == 2 and "use --refusal-rule improved" in done.stderr


def test_report_fits_each_further_intervention_against_the_original(tmp_path: Path) -> None:
    frame = simulate(n=3000, seed=4)
    cold = simulate(n=3000, seed=5)
    cold = cold[cold["variant"] != "original"].assign(variant="cold")  # the fine-tuned rows of another intervention
    table = tmp_path / "responses.csv"
    pd.concat([frame, cold], ignore_index=True).to_csv(table, index=False)
    build_report([table], tmp_path / "report", variants=("original", "warm"), also=("cold",))
    primary = json.loads((tmp_path / "report" / "models.json").read_text())
    other = json.loads((tmp_path / "report" / "models_cold.json").read_text())
    # Each fit sees the original rows and its own intervention's, never the other's.
    rows = finalize(pd.concat([frame, cold], ignore_index=True))
    main = rows[(rows["amendment_type"] == "unmodified") & (rows["prompt_group"] == "original")]
    assert primary["model1"]["n"] == int(main["variant"].isin(["original", "warm"]).sum())
    assert other["model1"]["n"] == int(main["variant"].isin(["original", "cold"]).sum())
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Main effect of fine-tuning (model 1) — cold vs original" in report
    assert (tmp_path / "report" / "effect_by_amendment_group_cold.png").is_file()
    assert "models fitted on variants original, warm; and on original, cold" in report
