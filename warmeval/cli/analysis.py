"""``warmeval analyse``, ``report``, ``compare`` and ``gate``: the paper's statistics, the report, the run beside the
paper, and the release gate (`warmeval.analysis`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from warmeval.cli._common import EXIT_FAILED, INPUTS_HELP, PAPER_RESULTS_HELP, RULE_HELP, app, fail

analyse_app = typer.Typer(help="The paper's statistics on graded responses.", no_args_is_help=True)
app.add_typer(analyse_app, name="analyse")


def _load(inputs: list[Path], rule: str | None):  # noqa: ANN202
    from warmeval.analysis.load import AnalysisInputError, LoadReport, load_table

    report = LoadReport()
    try:
        frame = load_table(list(inputs), rule, report)  # type: ignore[arg-type]
    except AnalysisInputError as error:
        fail(error)
    say_notes(report.notes)
    return frame, report


def say_notes(notes: list[str]) -> None:
    """What loading did that the reader should know (duplicate responses passed over), one ``note:`` line each."""
    for note in notes:
        typer.echo(f"note: {note}")


@analyse_app.command("load")
def analyse_load(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    out: Path = typer.Option(Path("responses.csv"), help="Where to write the long table (CSV)."),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
) -> None:
    """Build the long table (one row per graded response) and report refusals and exclusions."""
    frame, report = _load(inputs, refusal_rule)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(report.table().to_string(index=False))
    typer.echo(f"{len(frame)} rows of {report.rows_read} kept -> {out}")
    say_verdict(report)


def say_verdict(report: Any) -> None:
    """The comparability verdict of what was loaded, on one line (`warmeval.analysis.comparability`)."""
    from warmeval.analysis.comparability import verdict

    typer.echo(verdict(report).line())


def _print_models(results: dict[str, Any]) -> None:
    for key, model in results.items():
        typer.echo(f"\n{key}: {model['title']}")
        if "error" in model:
            typer.echo(f"  not fitted: {model['error']}")
            continue
        typer.echo(
            f"  n={model['n']}  {model['formula']}  (reference dataset: {model['reference_dataset']}; "
            f"absent: {', '.join(model['absent_datasets']) or 'none'})"
        )
        for note in model.get("separation", []):
            typer.echo(f"  SEPARATION: {note}")
        for level, ame in model["ame"].items():
            if ame.get("absent"):
                typer.echo(f"  {level:<28} absent from the data")
                continue
            if ame.get("separation"):
                typer.echo(f"  {level:<28} not estimable (separation; raw estimates in --json)")
                continue
            line = f"  {level:<28} AME {100 * ame['estimate']:+6.2f} pts (SE {100 * ame['se']:.2f}, n={ame['n']})"
            logit = model["logit_effects"].get(level)
            if logit:
                line += f"   log-odds {logit['estimate']:+.3f} (p={logit['p']:.3g})"
            typer.echo(line)


@analyse_app.command("models")
def analyse_models(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    json_path: Path | None = typer.Option(None, "--json", help="Write every estimate as JSON (stable keys)."),
    with_length: bool = typer.Option(False, "--with-length", help="Add response length as a covariate."),
    variants: str | None = typer.Option(
        None, help="REFERENCE,OTHER[,...]: the comparisons to fit (default: original against every other variant)."
    ),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
    include_mcq: bool = typer.Option(
        False, "--include-mcq", help="Fit with the released mcq prompts too (not among the paper's 28 conditions)."
    ),
) -> None:
    """Fit the paper's four logistic models for each intervention against the original model, never pooled.

    Each comparison (original vs warm, original vs cold, original vs warm_sysprompt) is fitted on its own, as the
    paper does, and printed and written (``--json``: ``{"reference", "comparisons": {name: models}}``) under its name.
    Input without an original variant is refused (exit 2) unless ``--variants`` names the pair.
    """
    import json

    from warmeval.analysis.glm import ModelError, fit_comparisons

    frame, report = _load(inputs, refusal_rule)
    chosen = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
    if chosen is not None and len(chosen) < 2:
        fail(ValueError(f"--variants {variants!r}: name a reference and at least one variant to compare with it"))
    try:
        fitted = fit_comparisons(frame, chosen, with_length=with_length, include_mcq=include_mcq)
    except ModelError as error:
        fail(error)
    say_verdict(report)
    for name, results in fitted["comparisons"].items():
        typer.echo(f"\n=== {fitted['reference']} vs {name} ===")
        _print_models(results)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(fitted, indent=1, default=float))
        typer.echo(f"\nestimates: {json_path}")
    failed = [name for name, results in fitted["comparisons"].items()
              if all("error" in model for model in results.values())]  # fmt: skip
    if failed:
        fail(f"none of the four models could be fitted for {', '.join(failed)} (reasons above)", EXIT_FAILED)


@analyse_app.command("paired")
def analyse_paired(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    a: str = typer.Option("original", help="Variant A (the reference)."),
    b: str = typer.Option("warm", help="Variant B (with --layout paper: warm, cold or warm_sysprompt)."),
    layout: str = typer.Option(
        "cells",
        help="cells (warmeval's per-cell table) or paper (the authors' table, row for row: their families, "
        "FDR grouping, statistics, rounding and the header of their released results_*.csv).",
    ),
    out: Path | None = typer.Option(
        None,
        help="Where to write the table (CSV). Default: paired_cells.csv, or with --layout paper the released "
        "file's name (results_warm_ft.csv, results_cold_ft.csv, results_warm_sysprompt.csv).",
    ),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
) -> None:
    """McNemar exact tests on identical prompts: per model x dataset x amendment x prompt group with BH-FDR across
    cells (--layout cells), or the authors' table (--layout paper)."""
    from warmeval.analysis.paired import PairingError, paired_cells

    if layout not in ("cells", "paper"):
        fail(ValueError(f"--layout {layout!r}: use cells or paper"))
    if layout == "paper":
        _paired_paper_layout(inputs, a, b, out, refusal_rule)
        return
    frame, report = _load(inputs, refusal_rule)
    try:
        table = paired_cells(frame, a, b)
    except PairingError as error:
        fail(error)
    say_verdict(report)
    out = out or Path("paired_cells.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    typer.echo(f"{len(table)} cells, {int((table['q_fdr'] < 0.05).sum())} with q < 0.05 -> {out}")


def _paired_paper_layout(inputs: list[Path], a: str, b: str, out: Path | None, rule: str | None) -> None:
    from warmeval.analysis.load import AnalysisInputError, LoadReport, finalize, load_rows
    from warmeval.analysis.paired import PairingError, paper_layout, write_paper_layout
    from warmeval.analysis.paper_results import FILES, INTERVENTIONS

    report = LoadReport()
    try:
        rows, chosen = load_rows(list(inputs), rule, report)  # type: ignore[arg-type]
        table, notes = paper_layout(rows, a, b, chosen)
    except (AnalysisInputError, PairingError) as error:
        fail(error)
    say_notes(report.notes)
    finalize(rows, chosen, report)  # the exclusion counts the verdict reads
    say_verdict(report)
    target = out or Path(FILES[b].name if b in INTERVENTIONS else f"results_{b}.csv")
    write_paper_layout(table, target)
    families = table["Test_Type"].value_counts()
    typer.echo(f"the authors' layout, {b} vs {a}: {len(table)} rows ({families.get('Sycophancy', 0)} Sycophancy, "
               f"{families.get('Normal', 0)} Normal) for {', '.join(notes.models)}; "
               f"{int((table['Significant (FDR)'] == 'Yes').sum())} significant after FDR -> {target}")  # fmt: skip
    if notes.unreadable_counted_incorrect:
        typer.echo(f"note: {notes.unreadable_counted_incorrect} responses without a CORRECT/INCORRECT verdict are "
                   "counted incorrect, as the authors' script counts them (warmeval's own tables exclude "
                   "them)")  # fmt: skip
    if notes.duplicate_pairs:
        typer.echo(f"note: {notes.duplicate_pairs} extra pairs from prompts present more than once in a file, paired "
                   "every copy with every copy as the authors' merge does (warmeval's own tables refuse "
                   "them)")  # fmt: skip


@app.command()
def report(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    out: Path = typer.Option(Path("warmeval-report"), help="Output folder."),
    trajectory: list[Path] = typer.Option([], help="SocioT warmth_trajectory.csv files to plot (repeatable)."),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
    paper_results: Path | None = typer.Option(None, help=PAPER_RESULTS_HELP),
) -> None:
    """Write report.html (self-contained), report.md, PNG figures and models.json; with the paper's result tables at
    hand, a section "Beside the paper"."""
    from warmeval.analysis.load import AnalysisInputError, collecting_notes
    from warmeval.analysis.paper_results import PaperResultsError
    from warmeval.analysis.report import build_report
    from warmeval.util.lock import OutputBusy, output_lock

    try:
        # One report per folder at a time; the lock lies beside the folder, which is replaced as a whole.
        with output_lock(out, f"warmeval report --out {out}", beside=True), collecting_notes() as notes:
            page = build_report(list(inputs), out, trajectories=list(trajectory), rule=refusal_rule,  # type: ignore[arg-type]
                                paper_results=paper_results)  # fmt: skip
    except (AnalysisInputError, PaperResultsError, OutputBusy) as error:
        fail(error)
    say_notes(notes)
    beside = json.loads((page.parent / "beside_paper.json").read_text(encoding="utf-8"))
    if not beside["available"]:
        typer.echo(f"note: {beside['how_to_get']}")
    typer.echo(f"report: {page}")


@app.command()
def compare(
    inputs: list[Path] = typer.Argument(..., help=INPUTS_HELP),
    paper_results: Path | None = typer.Option(None, help=PAPER_RESULTS_HELP),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
) -> None:
    """Print the run beside the paper's five models: per intervention and dataset, accuracy on unmodified prompts
    and the differences to the original model (the report's "Beside the paper" tables). Exit 2 without the tables."""
    from warmeval.analysis.beside import beside_paper
    from warmeval.analysis.load import AnalysisInputError, LoadReport, finalize, load_rows
    from warmeval.analysis.paper_results import PaperResultsError, load_paper_results

    report = LoadReport()
    try:
        results = load_paper_results(paper_results)
        rows, chosen = load_rows(list(inputs), refusal_rule, report)  # type: ignore[arg-type]
    except (AnalysisInputError, PaperResultsError) as error:
        fail(error)
    say_notes(report.notes)
    finalize(rows, chosen, report)
    say_verdict(report)
    beside = beside_paper(rows, results, chosen)
    for note in beside.notes:
        typer.echo(f"note: {note}")
    tables = beside.tables()
    if not tables:
        fail(ValueError("nothing to compare: the inputs hold no original variant paired with warm, cold or "
                         "warm_sysprompt"))  # fmt: skip
    typer.echo(f"Beside the paper ({', '.join(results.models())}; tables in {results.folder}); Δ = intervention "
               "minus original accuracy, percentage points:")  # fmt: skip
    for title, table in tables:
        typer.echo(f"\n{title}")
        typer.echo(table.to_string(index=False))


@app.command()
def gate(
    baseline: list[Path] = typer.Option(..., help="Baseline logs (repeatable)."),
    candidate: list[Path] = typer.Option(..., help="Candidate logs (repeatable)."),
    max_increase: float = typer.Option(
        2.0, help="Largest tolerated rise in error rate, in percentage points (at least 0, below 100)."
    ),
    alpha: float = typer.Option(0.05, help="FDR level of the paired tests (between 0 and 1, exclusive)."),
    refusal_rule: str | None = typer.Option(None, help=RULE_HELP),
    require_full_pairing: bool = typer.Option(
        False,
        "--require-full-pairing",
        help="Refuse (exit 2) when some prompt is on one side only; without it the gate warns and judges the "
        "paired prompts.",
    ),
) -> None:
    """Exit 1 if the candidate's error rate rises more than the bound with an FDR-significant paired test.

    Prompts present on one side only are counted in a warning (paired, in the baseline only, in the candidate only);
    ``--require-full-pairing`` makes them an error."""
    from warmeval.analysis.gate import format_table, option_problems, run_gate

    problems = option_problems(max_increase, alpha)
    if problems:
        name, reason = problems[0]
        fail(f"--{name.replace('_', '-')} {reason}")
    result = run_gate(list(baseline), list(candidate), max_increase=max_increase, alpha=alpha,
                      rule=refusal_rule, require_full_pairing=require_full_pairing)  # type: ignore[arg-type]  # fmt: skip
    say_notes(result.notes)
    for warning in result.warnings:
        typer.echo(f"WARNING: {warning}", err=True)
    if not result.table.empty:
        typer.echo(format_table(result.table))
    typer.echo(result.message, err=result.exit_code == 2)
    raise typer.Exit(result.exit_code)
