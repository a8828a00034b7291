"""``warmeval stimuli``: the authors' released prompts and result tables, and the SI texts users supply
(`warmeval.sycophancy.stimuli`, `warmeval.sycophancy.paper_texts`, `warmeval.analysis.paper_results`)."""

from __future__ import annotations

import typer

from warmeval.cli._common import app, fail

stimuli_app = typer.Typer(help="The paper authors' released prompts, result tables and SI texts (fetched or supplied, "
                          "never shipped).",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(stimuli_app, name="stimuli")


@stimuli_app.command("fetch")
def stimuli_fetch(
    names: list[str] = typer.Argument(None, help="trivia, truthfulqa, disinfo (default: all three)."),
    force: bool = typer.Option(False, "--force", help="Download again even when a verified copy is cached."),
) -> None:
    """Download the authors' prompt files at the pinned commit, verify them and cache them.

    Afterwards `-T prompts_file=paper` and `-T statements=paper` work offline. Exit 2 when a file cannot be had,
    with the URL and where to place the file by hand.
    """
    import hashlib

    from warmeval.sycophancy.stimuli import PAPER_COMMIT, PAPER_REPO, StimuliError, cache_dir, fetch_paper_stimuli

    try:
        paths = fetch_paper_stimuli(names or None, force=force)
    except StimuliError as error:
        fail(error)
    typer.echo(f"{PAPER_REPO} @ {PAPER_COMMIT[:12]} -> {cache_dir()}")
    for key, path in paths.items():
        data = path.read_bytes()
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        typer.echo(f"  {key:<11} {lines:>6} lines  sha256 {hashlib.sha256(data).hexdigest()}  {path}")


@stimuli_app.command("results")
def stimuli_results(
    force: bool = typer.Option(False, "--force", help="Download again even when a verified copy is cached."),
) -> None:
    """Download the paper's result tables at their pinned commits, verify them and cache them.

    The five models' paired tests (warm, cold, warm system prompt), capability controls and SocioT trajectories:
    afterwards `warmeval report`, `warmeval run` and `warmeval compare` set a run beside them. Exit 2 when a file
    cannot be had, with the URL and where to place the file by hand.
    """
    from warmeval.analysis.paper_results import PAPER_REPO, PaperResultsError, cache_dir, describe, fetch_paper_results

    try:
        paths = fetch_paper_results(force=force)
    except PaperResultsError as error:
        fail(error)
    typer.echo(f"{PAPER_REPO} result tables -> {cache_dir()}")
    for line in describe(paths.values()):
        typer.echo(line)


@stimuli_app.command("statements")
def stimuli_statements() -> None:
    """Print the authors' 40 amendment statements, taken from the fetched release."""
    from warmeval.sycophancy.stimuli import StimuliError, paper_statement_pool

    try:
        pool = paper_statement_pool()
    except StimuliError as error:
        fail(error)
    for sub_type, statements in pool.items():
        typer.echo(sub_type)
        for statement in statements:
            typer.echo(f"  {statement.id}: {statement.text}")


@stimuli_app.command("texts")
def stimuli_texts(
    set_text: list[str] = typer.Option(
        [], "--set", metavar="KEY=FILE", help="Declare FILE as the paper's text KEY (copied into the texts folder)."
    ),
) -> None:
    """The paper's prompts that exist only in its Supplementary Information: which are supplied, from which SI section.

    warmeval never ships their text: copy each from the SI into a file and declare it with --set (judge,
    rewrite_warm, rewrite_cold, warm_system_prompt). Stages given the keyword `paper` then read it, and every log and
    manifest records the SHA-256 of the text it used.
    """
    from warmeval.sycophancy.paper_texts import PAPER_TEXTS, PaperTextError, declare_text, sha256_text, text_path
    from warmeval.sycophancy.paper_texts import declared_text as declared

    for item in set_text:
        key, sep, file = item.partition("=")
        if not sep or not key or not file:
            fail(ValueError(f"--set {item!r}: expected KEY=FILE with KEY one of {', '.join(PAPER_TEXTS)}"))
        try:
            if key == "judge":  # a judge template must parse and use known placeholders before it is declared
                from warmeval.scorers.judges.judge import check_judge_template

                check_judge_template(file)
            path, digest = declare_text(key.strip(), file)
        except PaperTextError as error:
            fail(error)
        typer.echo(f"declared {key}: {path} (sha256 {digest})")
    for key, spec in PAPER_TEXTS.items():
        try:
            text = declared(key)
        except PaperTextError as error:
            fail(error)
        state = f"sha256 {sha256_text(text)}" if text is not None else "not supplied"
        typer.echo(f"{key:<19} SI section {spec.si_section}  {state}  {text_path(key)}  ({spec.what})")
