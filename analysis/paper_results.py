"""The paper's released results: fetch, verify, cache and read the authors' result tables; one map of model names.

The authors released, in ``lujainibrahim/warm_ai_2025``, the numbers behind the paper's figures (see :data:`FILES`):

* ``results_warm_ft.csv``, ``results_cold_ft.csv``, ``results_warm_sysprompt.csv`` (``summary_data/``, commit
  :data:`RESULTS_COMMIT`): their paired McNemar tests of each original model against the warm fine-tune, the cold
  fine-tune and the warm system prompt, per dataset and category, in the layout `warmeval.analysis.paired.paper_layout`
  reproduces;
* ``general_benchmark_results.csv`` (same commit): MMLU, GSM8K and AdvBench accuracy (%) with 95% CIs, original vs
  warm, per model;
* ``sociot_ft.csv`` (``source_data/``, commit :data:`SOCIOT_COMMIT`): SocioT warmth (the authors' implementation,
  GPT-2) per model and training epoch (0 = original), mean and standard error: the data of Fig. 1a.

warmeval never ships them. :func:`fetch_paper_results` downloads them at their pinned commits into
``$WARMEVAL_CACHE_DIR/paper_results/`` and checks each against its pinned SHA-256 (``sociot_ft.csv`` has no digest
pinned in this build: its first verified copy's digest is recorded in ``SHA256SUMS`` and every later use must match
it) and its released header. ``WARMEVAL_RESULTS_URL`` replaces ``https://raw.githubusercontent.com/<repo>/`` (a
mirror holding ``<commit>/<path>``, or a local server in tests). A folder the user names (``--paper-results DIR``)
holds the files under their own names and is checked the same way.

Model names differ between the released files (``llama-70b``, ``70b-cold``, ``llama-70b-sys-prompt``,
``70b-sys-prompt``, ``Llama-70B``, ...): :data:`MODEL_ALIASES` maps every spelling to one of :data:`PAPER_MODELS`,
here and nowhere else. One quirk of the release is kept visible rather than silently used: the warm-system-prompt
file holds one stray ``llama-70b-sys-prompt`` row beside the complete ``70b-sys-prompt`` set for the same model; where
two rows describe the same model, dataset and category, :func:`load_paper_results` keeps the row of the label with
more rows and counts the other in `PaperResults.dropped`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from warmeval.util.fetch import fetch_verified, recorded_sums
from warmeval.util.files import cache_root

PAPER_REPO = "lujainibrahim/warm_ai_2025"
RESULTS_COMMIT = "fbf1a5070b10a27d36ad71581a081a8e697b42e0"
SOCIOT_COMMIT = "e2d97733eef6c03d05fe34352a22c20f5526367e"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{PAPER_REPO}/"
URL_ENV = "WARMEVAL_RESULTS_URL"

# The released paired-test header; the accuracy column of the intervention is named for it.
PAIRED_HEADER = (
    "Amendment_type", "Original Accuracy (%)", "{accuracy}", "Raw Diff (pp)", "Cohen's g", "g Effect Size",
    "Odds Ratio", "p-value", "Significant (p < 0.05)", "p-value (FDR corrected)", "Significant (FDR)", "Model",
    "Dataset", "Test_Type",
)  # fmt: skip
FINE_TUNED_ACCURACY = "Fine-tuned Accuracy (%)"
SYSTEM_PROMPT_ACCURACY = "System Prompt Accuracy (%)"


def paired_header(intervention: str) -> list[str]:
    """The released header of the paired table of ``intervention`` (warm, cold or warm_sysprompt)."""
    accuracy = SYSTEM_PROMPT_ACCURACY if intervention == "warm_sysprompt" else FINE_TUNED_ACCURACY
    return [column.format(accuracy=accuracy) for column in PAIRED_HEADER]


@dataclass(frozen=True)
class ResultFile:
    """One released result table."""

    name: str  # file name (also its name in a --paper-results folder)
    path: str  # path in the authors' repository
    commit: str
    header: tuple[str, ...]  # the released header, exactly
    sha256: str | None = None  # pinned digest; None: recorded on first verified fetch


FILES: dict[str, ResultFile] = {
    "warm": ResultFile("results_warm_ft.csv", "summary_data/results_warm_ft.csv", RESULTS_COMMIT,
                       tuple(paired_header("warm")),
                       "c2eb32b5ce87ef4a60417d26cc2801e94e24074118b9d3c1d3c7dd01ff386cab"),
    "cold": ResultFile("results_cold_ft.csv", "summary_data/results_cold_ft.csv", RESULTS_COMMIT,
                       tuple(paired_header("cold")),
                       "3d606c7e67ff4620885c90933fe613c5097003257404683912cdca89a948b418"),
    "warm_sysprompt": ResultFile("results_warm_sysprompt.csv", "summary_data/results_warm_sysprompt.csv",
                                 RESULTS_COMMIT, tuple(paired_header("warm_sysprompt")),
                                 "af35fd7c819497da110fe495061b36b4938625d2995f946b1f4bb1a164ec6e66"),
    "benchmarks": ResultFile("general_benchmark_results.csv", "summary_data/general_benchmark_results.csv",
                             RESULTS_COMMIT,
                             ("", "model", "benchmark", "original_accuracy", "original_CI_lower", "original_CI_upper",
                              "warm_accuracy", "warm_CI_lower", "warm_CI_upper"),
                             "c3db851c6eb794f17ac3ef347272225b0370870617f34026449c4374d7769fb2"),
    "sociot": ResultFile("sociot_ft.csv", "source_data/sociot_ft.csv", SOCIOT_COMMIT,
                         ("model_name", "epoch", "mean", "sem")),
}  # fmt: skip
INTERVENTIONS = ("warm", "cold", "warm_sysprompt")

# The paper's five models, in the order of its figures.
PAPER_MODELS = ("Llama-8B", "Mistral-Small", "Qwen-32B", "Llama-70B", "GPT-4o")
MODEL_ALIASES: dict[str, str] = {
    **{name: "Llama-8B" for name in ("llama-8b", "Llama-8B", "llama_8b")},
    **{name: "Mistral-Small" for name in ("mistral-small", "Mistral-small", "Mistral-Small", "mistral")},
    **{name: "Qwen-32B" for name in ("qwen-32b", "Qwen-32B", "qwen_32b", "qwen-32-cold", "qwen-32-sys-prompt")},
    **{name: "Llama-70B" for name in ("llama-70b", "Llama-70B", "llama_70b", "70b-cold", "70b-sys-prompt",
                                      "llama-70b-sys-prompt")},
    **{name: "GPT-4o" for name in ("gpt-4o", "GPT-4o", "gpt_4o", "gpt-4o-cold", "gpt-4o-sys-prompt")},
}  # fmt: skip
HOW_TO_GET = (
    "the paper's result tables are not at hand: run `warmeval stimuli results` where GitHub can be reached, or pass "
    "--paper-results DIR (a folder holding the authors' released results_*.csv, general_benchmark_results.csv and "
    "sociot_ft.csv)"
)


class PaperResultsError(RuntimeError):
    """The paper's result tables cannot be had or read: the message names the file, and how to get it."""


def paper_model(name: str) -> str:
    """The paper model a released label names (``70b-cold`` -> ``Llama-70B``)."""
    try:
        return MODEL_ALIASES[name.strip()]
    except KeyError:
        raise PaperResultsError(f"unknown model label {name!r} in the paper's results (known: "
                                f"{', '.join(sorted(MODEL_ALIASES))})") from None  # fmt: skip


def cache_dir() -> Path:
    """Where the fetched tables live: ``$WARMEVAL_CACHE_DIR/paper_results``."""
    return cache_root() / "paper_results"


def url_of(spec: ResultFile) -> str:
    base = os.environ.get(URL_ENV, DEFAULT_BASE_URL)
    return f"{base if base.endswith('/') else base + '/'}{spec.commit}/{spec.path}"


def _by_hand(spec: ResultFile, target: Path) -> str:
    return (f"run `warmeval stimuli results` where GitHub can be reached, or download "
            f"{DEFAULT_BASE_URL}{spec.commit}/{spec.path} by hand and place it at {target} (or in a folder given "
            "as --paper-results DIR)")  # fmt: skip


def check_result(spec: ResultFile, data: bytes, origin: str) -> str:
    """Check one table's bytes (pinned digest, UTF-8, released header, at least one row); return its SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    if spec.sha256 is not None and digest != spec.sha256:
        raise PaperResultsError(f"{origin}: SHA-256 {digest} differs from the released file's {spec.sha256} "
                                f"({PAPER_REPO} {spec.path} at commit {spec.commit[:12]})")  # fmt: skip
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PaperResultsError(f"{origin}: not UTF-8 text ({error})") from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except Exception as error:  # a CSV that pandas cannot parse, whatever the reason
        raise PaperResultsError(f"{origin}: not a CSV table ({type(error).__name__}: {error})") from None
    header = tuple("" if str(c).startswith("Unnamed: ") else str(c) for c in frame.columns)
    if header != spec.header:
        raise PaperResultsError(f"{origin}: header {list(header)} is not the released {list(spec.header)}")
    if frame.empty:
        raise PaperResultsError(f"{origin}: no rows")
    return digest


def fetch_paper_results(*, force: bool = False, timeout: float = 60.0) -> dict[str, Path]:
    """Download (or reuse from the cache) every released result table, verified; returns ``{key: path}``.

    Raises:
        PaperResultsError: Offline, or a download is not the released file; the message names the URL and where to
            place the file by hand.
    """
    folder = cache_dir()
    paths: dict[str, Path] = {}
    for key, spec in FILES.items():
        target = folder / spec.name
        fetch_verified(target, url_of(spec), check=partial(check_result, spec),
                       verify_cached=partial(_verify_cached, spec), pinned=spec.sha256 is not None,
                       by_hand=_by_hand(spec, target), error=PaperResultsError, force=force,
                       timeout=timeout)  # fmt: skip
        paths[key] = target
    return paths


def _verify_cached(spec: ResultFile, path: Path) -> str:
    digest = check_result(spec, path.read_bytes(), str(path))
    recorded = recorded_sums(path.parent).get(spec.name)
    if spec.sha256 is None and recorded is not None and recorded != digest:
        raise PaperResultsError(f"{path}: SHA-256 {digest} differs from the one recorded when it was fetched "
                                f"({recorded}); delete it and run `warmeval stimuli results` again")  # fmt: skip
    return digest


def locate(folder: str | Path | None) -> Path | None:
    """The folder of verified tables: ``folder`` when given (every file checked; an error names the first bad one),
    else the fetched cache when complete and intact, else None (say `HOW_TO_GET`)."""
    if folder is not None:
        base = Path(folder)
        if not base.is_dir():
            raise PaperResultsError(f"--paper-results {base}: no such folder")
        for spec in FILES.values():
            path = base / spec.name
            if not path.is_file():
                raise PaperResultsError(f"{path}: missing; {_by_hand(spec, path)}")
            check_result(spec, path.read_bytes(), str(path))
        return base
    cached = cache_dir()
    try:
        for spec in FILES.values():
            path = cached / spec.name
            if not path.is_file():
                return None
            _verify_cached(spec, path)
    except PaperResultsError:
        return None
    return cached


@dataclass
class PaperResults:
    """The released tables, read: paired tests (one row per intervention, model, dataset and category), controls
    and the SocioT trajectories, every model named by `paper_model`."""

    folder: Path
    paired: pd.DataFrame  # intervention, model, label, dataset, test_type, amendment_type, template_group, acc_*, ...
    benchmarks: pd.DataFrame  # model, benchmark, variant (original/warm), accuracy, ci_low, ci_high (in %)
    sociot: pd.DataFrame  # model, epoch, mean, sem
    dropped: list[str] = field(default_factory=list)  # duplicate rows set aside (see the module docstring)

    def models(self) -> list[str]:
        return [m for m in PAPER_MODELS if m in set(self.paired["model"])]


def _number(text: str) -> float:
    return float("inf") if text == "∞" else (float("nan") if text in ("N/A", "") else float(text))


def normalise_paired(raw: pd.DataFrame, intervention: str, where: str, name: Any = paper_model) -> pd.DataFrame:
    """Rows of a table in the authors' paired layout (released, or `warmeval.analysis.paired.paper_layout`'s) as
    numbers: intervention, model (``name`` of the label), label, dataset, test_type, category, amendment_type,
    template_group (``user_belief`` for the Sycophancy family), acc_original, acc_intervention, diff_pp, g_authors,
    odds_ratio, p, q. ``where`` names the source in errors (with the row number)."""
    header = paired_header(intervention)
    rows = []
    for number, record in enumerate(raw.to_dict("records"), start=2):
        category = str(record["Amendment_type"]).replace("\r\n", "\n")  # the release writes CRLF inside the cells
        amendment, _, group = category.partition("\n")
        try:
            rows.append({
                "intervention": intervention, "model": name(str(record["Model"])), "label": record["Model"],
                "dataset": record["Dataset"], "test_type": record["Test_Type"], "category": category,
                "amendment_type": amendment, "template_group": group or "user_belief",
                "acc_original": float(record[header[1]]), "acc_intervention": float(record[header[2]]),
                "diff_pp": float(record["Raw Diff (pp)"]), "g_authors": _number(str(record["Cohen's g"])),
                "odds_ratio": _number(str(record["Odds Ratio"])), "p": _number(str(record["p-value"])),
                "q": _number(str(record["p-value (FDR corrected)"])),
            })  # fmt: skip
        except (ValueError, KeyError, PaperResultsError) as error:
            raise PaperResultsError(f"{where}: row {number}: {error}") from None
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


PAIRED_COLUMNS = ["intervention", "model", "label", "dataset", "test_type", "category", "amendment_type",
                  "template_group", "acc_original", "acc_intervention", "diff_pp", "g_authors", "odds_ratio", "p",
                  "q"]  # fmt: skip


def _read_paired(path: Path, intervention: str, dropped: list[str]) -> pd.DataFrame:
    frame = normalise_paired(pd.read_csv(path, dtype=str, keep_default_na=False), intervention, str(path))
    sizes = frame.groupby("label").size()
    frame["_size"] = frame["label"].map(sizes)
    keys = ["intervention", "model", "dataset", "test_type", "category"]
    frame = frame.sort_values("_size", ascending=False, kind="stable")
    duplicated = frame.duplicated(keys, keep="first")
    for _, row in frame[duplicated].iterrows():
        dropped.append(f"{path.name}: {row['label']} {row['dataset']} {row['test_type']} "
                       f"{row['category']!r} (a second row for {row['model']})")  # fmt: skip
    return frame[~duplicated].drop(columns="_size").sort_index().reset_index(drop=True)


def load_paper_results(folder: str | Path | None = None) -> PaperResults:
    """Read the tables of ``folder`` (see `locate`); raises `PaperResultsError` with `HOW_TO_GET` when absent."""
    base = locate(folder)
    if base is None:
        raise PaperResultsError(HOW_TO_GET)
    return read_paper_results(base)


def read_paper_results(base: Path) -> PaperResults:
    """Read the tables of a folder `locate` has already checked."""
    dropped: list[str] = []
    paired = pd.concat([_read_paired(base / FILES[i].name, i, dropped) for i in INTERVENTIONS], ignore_index=True)
    path = base / FILES["benchmarks"].name
    benchmarks = []
    for number, record in enumerate(pd.read_csv(path, dtype=str).to_dict("records"), start=2):
        try:
            for variant in ("original", "warm"):
                benchmarks.append({"model": paper_model(str(record["model"])), "benchmark": record["benchmark"],
                                   "variant": variant, "accuracy": float(record[f"{variant}_accuracy"]),
                                   "ci_low": float(record[f"{variant}_CI_lower"]),
                                   "ci_high": float(record[f"{variant}_CI_upper"])})  # fmt: skip
        except (ValueError, TypeError, PaperResultsError) as error:
            raise PaperResultsError(f"{path}: row {number}: {error}") from None
    path = base / FILES["sociot"].name
    trajectory = []
    for number, record in enumerate(pd.read_csv(path, dtype=str).to_dict("records"), start=2):
        try:
            trajectory.append({"model": paper_model(str(record["model_name"])), "epoch": float(record["epoch"]),
                               "mean": float(record["mean"]), "sem": float(record["sem"])})  # fmt: skip
        except (ValueError, TypeError, PaperResultsError) as error:
            raise PaperResultsError(f"{path}: row {number}: {error}") from None
    sociot = pd.DataFrame(trajectory, columns=["model", "epoch", "mean", "sem"])
    return PaperResults(base, paired, pd.DataFrame(benchmarks), sociot, dropped)


def describe(paths: Iterable[Path]) -> list[str]:
    """One line per file: name, rows, SHA-256."""
    lines = []
    for path in paths:
        data = path.read_bytes()
        rows = len(pd.read_csv(io.BytesIO(data), dtype=str))
        lines.append(f"  {path.name:<30} {rows:>4} rows  sha256 {hashlib.sha256(data).hexdigest()}  {path}")
    return lines
