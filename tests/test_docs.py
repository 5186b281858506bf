"""Every number in README and docs/ against the committed file it comes from, and every
committed result against the record of what it measured.

A doc's text, less its code (spans, blocks and link targets: commands, paths and names), may
hold a digit only inside one of:
- a table that a test below checks in full against its source (`@checked_table`);
- a quote (`QUOTES`): a pattern whose groups must read what committed files give;
- an allowed constant (`ALLOWED`): a pattern, with the reason it needs no source (MNIST's
  28×28 pixels, a paper's year);
- a name (`AVX512`, `x86_64`: digits right after a letter) or a list item's number.
So one changed digit fails a test wherever it is: inside a table or a quote it no longer reads
what its source gives, anywhere else it is a digit that nothing accounts for. The same holds
for a count of stages written as a word ("the seven stages").

Sources are read as committed at HEAD (`conftest.committed`), never from the workspace, which
`make study`, the benchmarks or the user's own runs rewrite; outside a git checkout the tests
skip.
"""

from __future__ import annotations

import copy
import csv
import importlib
import io
import itertools
import json
import math
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pytest
import yaml
from conftest import REPO_ROOT, committed
from test_ci_check import check_module

from mnist_vae.confusions import REPORT_PAIRS, REPORT_PAIRS_BOTH_WAYS
from mnist_vae.idx import DIGITS, IDX_SIZES
from mnist_vae.machine import BIT_FIELDS

BENCHMARKS = "benchmarks/results/cpu-2cores"
TRAIN_RUNS = [f"{BENCHMARKS}/train-run-{k}.json" for k in (1, 2, 3)]
CONTENTION = f"{BENCHMARKS}/contention.json"
PIPELINE, FLOOR = f"{BENCHMARKS}/pipeline.json", f"{BENCHMARKS}/floor.json"
DOCS = ["README.md", *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docs").glob("*.md"))]  # fmt: skip


def doc_text(doc: str) -> str:
    """A doc as it is in the working tree (the docs are what a change edits)."""
    return (REPO_ROOT / doc).read_text()


# --- Committed sources ------------------------------------------------------------------------


@cache
def _show(path: str, commit: str = "HEAD") -> str:
    return committed(path).decode() if commit == "HEAD" else git("show", f"{commit}:{path}")


@cache
def _check():
    return check_module()


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


class Head:
    """The repository as committed at HEAD (files read once) and its history."""

    def text(self, path: str, commit: str = "HEAD") -> str:
        return _show(path, commit)

    def json(self, path: str):
        return json.loads(self.text(path))

    def csv(self, path: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.text(path))))

    def files(self, *folders: str) -> list[str]:
        return git("ls-tree", "-r", "--name-only", "HEAD", *folders).split()

    @property
    def params(self) -> dict:
        return yaml.safe_load(self.text("params.yaml"))

    def dvc_stages(self, commit: str = "HEAD") -> dict[str, dict]:
        return yaml.safe_load(self.text("dvc.yaml", commit))["stages"]

    def stages(self, commit: str = "HEAD") -> list[str]:
        """The stage names of `commit`'s dvc.yaml, in order."""
        return list(self.dvc_stages(commit))

    @property
    def check(self):
        """CI's reproduction check (.ci/check_reproduced.py), loaded when first asked for."""
        return _check()

    def metrics(self, folder: str) -> dict[str, float]:
        """A run's metrics files, their keys as `dvc metrics diff` names them (CI's own flat)."""
        files = ("train.json", "likelihood.json", "eval.json", "classifier.json")
        return {k: v for name in files for k, v in self.check.flat(self.json(f"{folder}/{name}")).items()}  # fmt: skip

    def study_rows(self) -> dict[tuple[str, str], dict[str, str]]:
        """docs/study/summary.md's main table, by (architecture, epochs)."""
        rows = table_rows(self.text("docs/study/summary.md"), ["architecture"])
        return {(r["architecture"], r["epochs"]): r for r in rows}

    def summary(self, architecture: str, epochs: int) -> dict[str, float]:
        """docs/study/summary.csv's row of an architecture ('sigmoid_on_z', 'standard')."""
        for row in self.csv("docs/study/summary.csv"):
            if (row["architecture"], row["epochs"]) == (architecture, str(epochs)):
                return {k: float(v) for k, v in row.items() if k != "architecture" and v}
        raise KeyError((architecture, epochs))

    def runs(self) -> list[dict[str, str]]:
        return self.csv("docs/study/runs.csv")


@pytest.fixture(scope="module")
def head() -> Head:
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=REPO_ROOT,
                            capture_output=True, text=True)  # fmt: skip
    if inside.stdout.strip() != "true":
        pytest.skip("the docs are checked against the committed files: needs a git checkout")
    return Head()


# --- Formatting, as the docs write numbers -----------------------------------------------------


def minus(text: str) -> str:
    """A figure as the docs print it, with a true minus sign."""
    return text.replace("-", "−")


def f(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def pct(share: float, decimals: int = 1) -> str:
    return f"{100 * share:.{decimals}f}"


def spread(values: list[float], scale: float = 1, decimals: int = 1) -> tuple[str, str]:
    """The smallest and the largest of `values`, each times `scale`, as written."""
    return f(min(values) * scale, decimals), f(max(values) * scale, decimals)


def machine_name(machine: dict) -> str:
    """A machine as its record names it: `mnist_vae.machine.label`'s words, less the fields a
    record rebuilt from history lacks."""
    m = machine
    parts = [m["cpu_model"]]
    if "cpu_vendor" in m and "cpu_capability" in m:
        parts[0] += f" ({m['cpu_vendor']}, {m['cpu_capability']})"
    parts.append(f"{m['cores']} cores")
    parts.append(" ".join(m[k] for k in ("os", "architecture") if k in m))
    parts += [f"{name} {m[key]}" for name, key in (("Python", "python"), ("torch", "torch"),
                                                   ("device", "device")) if key in m]  # fmt: skip
    return ", ".join(parts)


WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


# --- Tables -------------------------------------------------------------------------------------


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every table of a markdown text as rows of stripped cells, the header first (the
    `| --- |` line left out)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def table_with(text: str, header: list[str]) -> list[list[str]]:
    """The one table of `text` whose header starts with `header`, header row included."""
    found = [t for t in markdown_tables(text) if t[0][: len(header)] == header]
    assert len(found) == 1, f"{len(found)} tables with the header {header}"
    return found[0]


def table_rows(text: str, header: list[str]) -> list[dict[str, str]]:
    head, *rows = table_with(text, header)
    return [dict(zip(head, row, strict=True)) for row in rows]


def assert_table(doc: str, header: list[str], expected: list[list[str]]) -> None:
    """The doc's table is `expected`, header row included, cell for cell."""
    table = table_with(doc_text(doc), header)
    assert len(table) == len(expected), f"{doc}: {len(table)} rows, {len(expected)} expected"
    for got, want in zip(table, expected, strict=True):
        assert got == want, f"{doc}: row {got} should read {want}"


@dataclass(frozen=True)
class CheckedTable:
    doc: str
    header: list[str]
    sources: tuple[str, ...]  # the committed files its figures come from


# Each table a test checks in full, filled by @checked_table.
CHECKED_TABLES: list[CheckedTable] = []


def checked_table(doc: str, *header: str, sources: tuple[str, ...] = ()):
    def register(test):
        CHECKED_TABLES.append(CheckedTable(doc, list(header), sources))
        return test

    return register


def test_markdown_tables_are_read_row_by_row():
    text = (
        "intro\n\n| a | b |\n| --- | --- |\n| 1 | 2 ± 3 |\n|  | x |\n\ntext\n| c |\n| - |\n| 4 |\n"
    )
    assert markdown_tables(text) == [[["a", "b"], ["1", "2 ± 3"], ["", "x"]], [["c"], ["4"]]]
    assert table_rows(text, ["a"]) == [{"a": "1", "b": "2 ± 3"}, {"a": "", "b": "x"}]


# README's "What came out": the study's columns for its report architecture, by epochs.
README_ROWS = ["test loss (nats)", "read as another digit", "3 → 8", "4 → 9"]
REPORT, STANDARD = (
    "report (sigmoid on z)",
    "standard VAE",
)  # the study's architectures, as its tables name them


@checked_table("README.md", "the report's VAE", sources=("docs/study/summary.md",))
def test_the_readme_table_is_the_generated_study(head):
    study = head.study_rows()
    epochs = sorted({e for a, e in study if a == REPORT}, key=int)
    expected = [["the report's VAE", *(f"{e} epochs" for e in epochs)]]
    for column in README_ROWS:
        expected.append([column, *(minus(study[(REPORT, e)][column]) for e in epochs)])
    assert_table("README.md", ["the report's VAE"], expected)


@checked_table("docs/study.md", "architecture", "epochs", sources=("docs/study/summary.md",))
def test_the_study_table_is_the_generated_one_less_its_seeds_column(head):
    generated = table_with(head.text("docs/study/summary.md"), ["architecture"])
    seeds = generated[0].index("seeds")
    expected = [row[:seeds] + row[seeds + 1 :] for row in generated]
    assert_table("docs/study.md", ["architecture", "epochs"], expected)


@checked_table("docs/study.md", "epochs", "cost (nats)", sources=("docs/study/summary.md",))
def test_the_cost_table_is_the_generated_one(head):
    generated = table_with(head.text("docs/study/summary.md"), ["epochs", "cost (nats)"])
    assert_table("docs/study.md", ["epochs", "cost (nats)"], [row[:2] for row in generated])


@checked_table("docs/study.md", "round", sources=(f"{BENCHMARKS}/study-workers.json",))
def test_the_study_workers_table_is_the_benchmarks_file(head):
    measured = head.json(f"{BENCHMARKS}/study-workers.json")
    configurations = list(measured["rounds"][0]["seconds"])
    expected = [["round", *(f"{c} (s)" for c in configurations), "one worker's time / two workers'"]]  # fmt: skip
    for number, round_ in enumerate(measured["rounds"], 1):
        seconds = [str(round_["seconds"][c]) for c in configurations]
        expected.append([str(number), *seconds, str(round_["ratio"])])
    assert_table("docs/study.md", ["round"], expected)


@checked_table(
    "docs/reproducibility.md", "setting", sources=(f"{BENCHMARKS}/kernel-settings.json",)
)
def test_the_kernel_settings_table_is_the_benchmarks_file(head):
    measured = head.json(f"{BENCHMARKS}/kernel-settings.json")
    by_setting = {row["setting"]: row for row in measured["rows"]}
    rows = table_rows(doc_text("docs/reproducibility.md"), ["setting"])
    header = f"model after {measured['epochs']} epochs"
    assert list(rows[0]) == ["setting", header, "test loss", "time"]
    named = []
    for row in rows:
        # a row may name several settings: "`A`, `B` or `C` (why)"; digits outside the
        # backticks are the settings' own names ("1 thread instead of 2") or names (AVX512)
        names = re.findall(r"`([^`]+)`", row["setting"]) or [row["setting"]]
        named += names
        sources = [by_setting[name] for name in names]
        seconds = sorted(source["fit_seconds"] for source in sources)
        expected_time = f"{seconds[0]} s" if seconds[0] == seconds[-1] else f"{seconds[0]}–{seconds[-1]} s"  # fmt: skip
        assert row["time"] == expected_time, row
        for source in sources:
            assert row["test loss"] == str(source["test_loss"]), row
            expected_bits = (
                "reference"
                if source["setting"] == "default"
                else ("identical bits" if source["same_bits_as_default"] else "different")
            )
            assert row[header] == expected_bits, row
    assert sorted(named) == sorted(by_setting)


@checked_table(
    "docs/reproducibility.md",
    "metric",
    "AMD EPYC",
    "Intel Xeon",
    sources=("docs/results/epochs-10/provenance.json", ".ci/results-machine.json"),
)
def test_the_two_cpus_table_is_the_two_committed_runs(head):
    # The columns name each run's machine by its record: docs/results/epochs-10's provenance
    # and .ci/results-machine.json.
    assert head.json("docs/results/epochs-10/provenance.json")["machine"]["cpu_model"] == "AMD EPYC"  # fmt: skip
    assert "Xeon" in head.json(".ci/results-machine.json")["cpu_model"]
    rows = table_rows(doc_text("docs/reproducibility.md"), ["metric", "AMD EPYC", "Intel Xeon"])
    assert len(rows) >= 5
    for row in rows:
        name, key = re.fullmatch(r"`(\w+\.json)` (\S+)", row["metric"]).groups()
        for column, folder in (("AMD EPYC", "docs/results/epochs-10/metrics"), ("Intel Xeon", "metrics")):  # fmt: skip
            value = head.check.flat(head.json(f"{folder}/{name}"))[key]
            assert row[column] == str(value), (row["metric"], column)


def _written(cell: str, value: float, percent: bool = False) -> bool:
    """Whether `cell` ('−133.37', '+3074.23', '20.1 %') is `value` as the docs round it."""
    number = cell.replace("−", "-").replace("+", "").replace("%", "").strip()
    decimals = len(number.split(".")[1]) if "." in number else 0
    return number == f(100 * value if percent else value, decimals)


@checked_table(
    "docs/experiments.md", "latent size", sources=("docs/results/latent-5/provenance.json",)
)
def test_the_latent_size_table_is_the_committed_runs(head):
    rows = table_rows(doc_text("docs/experiments.md"), ["latent size"])
    default = head.params["model"]["latent_dim"]
    sizes = sorted(int(name.split("-")[1]) for name in _result_folders(head) if name.startswith("latent-"))  # fmt: skip
    assert [row["latent size"] for row in rows] == [f"{default} (default)", *map(str, sizes)]
    assert list(rows[0])[1:] == ["test loss (`train.json`)", "IWAE bound, k = 5000",
                                 "reconstructions read as another digit"]  # fmt: skip
    assert 5000 in head.params["evaluate_likelihood"]["ks"]
    for row in rows:
        size = row["latent size"].split()[0]
        run = head.metrics("metrics" if size == str(default) else f"docs/results/latent-{size}/metrics")  # fmt: skip
        assert _written(row["test loss (`train.json`)"], run["test_loss"]), size
        assert _written(row["IWAE bound, k = 5000"], run["iwae.k5000"]), size
        assert _written(row["reconstructions read as another digit"], run["misread_share"], percent=True), size  # fmt: skip


@checked_table("docs/experiments.md", "", "MNIST", "Fashion-MNIST")
def test_the_fashion_table_is_the_committed_runs(head):
    rows = table_rows(doc_text("docs/experiments.md"), ["", "MNIST", "Fashion-MNIST"])
    assert [row[""] for row in rows] == [
        "test loss (`train.json`)", "IWAE bound, k = 5000",
        "classifier accuracy (the same small MLP)",
        "reconstructions the classifier reads as another class"]  # fmt: skip
    for column, folder in (("MNIST", "metrics"), ("Fashion-MNIST", "docs/results/fashion/metrics")):
        run = head.metrics(folder)
        loss, bound, accuracy, misread = (row[column] for row in rows)
        assert _written(loss, run["test_loss"]), column
        assert _written(bound, run["iwae.k5000"]), column
        assert _written(accuracy, run["accuracy"], percent=True), column
        assert _written(misread, run["misread_share"], percent=True), column


LIKELIHOOD_SETTINGS = {
    "grey levels, Bernoulli (the report)": (
        "metrics", "no: not a density for grey pixels"),
    "dynamic binarization, Bernoulli": (
        "docs/results/binarize-dynamic/metrics", "yes, of the binarized test set"),
    "grey levels, continuous Bernoulli": (
        "docs/results/continuous-bernoulli/metrics", "yes, a density on [0, 1]⁷⁸⁴"),
}  # fmt: skip


@checked_table("docs/likelihood.md", "setting", "test loss (`train.json`)")
def test_the_likelihood_settings_table_is_the_committed_runs(head):
    ks = head.params["evaluate_likelihood"]["ks"]
    rows = table_rows(doc_text("docs/likelihood.md"), ["setting", "test loss (`train.json`)"])
    assert list(rows[0]) == ["setting", "test loss (`train.json`)", *(f"k = {k}" for k in ks), "a likelihood?"]  # fmt: skip
    assert [row["setting"] for row in rows] == list(LIKELIHOOD_SETTINGS)
    for row in rows:
        folder, verdict = LIKELIHOOD_SETTINGS[row["setting"]]
        run = head.metrics(folder)
        assert _written(row["test loss (`train.json`)"], run["test_loss"]), row["setting"]
        for k in ks:
            assert _written(row[f"k = {k}"], run[f"iwae.k{k}"]), (row["setting"], k)
        assert row["a likelihood?"] == verdict


def _misread(folder: str, head: Head, digit: int) -> float:
    shares = {int(r["class"]): float(r["misread_share"]) for r in head.csv(f"{folder}/misread_by_class.csv")}  # fmt: skip
    return shares[digit]


@checked_table(
    "docs/results.md",
    "",
    "10 epochs",
    "100 epochs",
    sources=("docs/results/epochs-10/provenance.json",),
)
def test_the_ten_against_a_hundred_epochs_table_is_the_committed_runs(head):
    runs = {e: f"docs/results/epochs-{e}/metrics" for e in (10, 100)}
    expected = [["", "10 epochs", "100 epochs"], ["train loss (`train.json`)"],
                ["8 → 3 / 8 → 5 (`eval.json`)"],
                ["5s read as 5 (`misread_by_class.csv`: 1 − share)"],
                ["IWAE bound, k = 1 / 50 (`likelihood.json`)"]]  # fmt: skip
    for folder in runs.values():
        m = head.metrics(folder)
        expected[1].append(f(m["train_loss"], 2))
        expected[2].append(f"{pct(m['8->3'])} % / {pct(m['8->5'])} %")
        expected[3].append(f"{pct(1 - _misread(folder, head, 5))} %")
        expected[4].append(minus(f"{f(m['iwae.k1'], 2)} / {f(m['iwae.k50'], 2)}"))
    assert_table("docs/results.md", ["", "10 epochs", "100 epochs"], expected)


@checked_table("docs/explorer.md", "", "median", sources=(f"{BENCHMARKS}/explorer.json",))
def test_the_explorer_speed_table_is_the_benchmarks_file(head):
    measured = head.json(f"{BENCHMARKS}/explorer.json")
    opens = len(measured["first_digit_ms"])
    expected = [
        ["", "median"],
        [f"opening the page → first decoded digit drawn ({opens} opens, each in a fresh browser)",
         f"{measured['first_digit_ms_median']} ms"],
        ["one decode (784 pixels from a point)", f"{measured['decode_ms_median']} ms"],
        ["one pointer update (decode, draw, nearest test images, the plane's overlay)",
         f"{f(measured['pointer_update_ms_median'], 1)} ms"],
    ]  # fmt: skip
    assert_table("docs/explorer.md", ["", "median"], expected)


@checked_table("docs/speed.md", "run", "matmul peak GFLOP/s", sources=tuple(TRAIN_RUNS))
def test_the_training_benchmark_table_is_the_three_runs(head):
    expected = [["run", "matmul peak GFLOP/s", "pytorch/examples", "(b)", "ours",
                 "speed-up: median of rounds (their range)", "ours, share of peak"]]  # fmt: skip
    for number, path in enumerate(TRAIN_RUNS, 1):
        run = head.json(path)
        rows = {row["loop"]: row for row in run["rows"]}
        epochs = [f"{f(rows[loop]['seconds_per_epoch_median'], 2)} ({f(rows[loop]['seconds_per_epoch_min'], 2)})"
                  for loop in ("pytorch-examples", "conventional", "ours")]  # fmt: skip
        ratios = [r["seconds"]["pytorch-examples"] / r["seconds"]["ours"] for r in run["rounds"]]
        low, high = spread(ratios, decimals=2)
        speedup = f"{f(run['speedup_median'], 2)}× ({low}–{high}×)"
        share = f"{pct(rows['ours']['share_of_matmul_peak'], 0)} %"
        expected.append([str(number), f(run["matmul_peak_gflops"], 0), *epochs, speedup, share])
    assert_table("docs/speed.md", ["run", "matmul peak GFLOP/s"], expected)


def _result_folders(head: Head) -> list[str]:
    return sorted({path.split("/")[2] for path in head.files("docs/results")})


# The whole pipeline's timing and its floor: speed.md shows each result's table, or, while the
# committed result timed other stages than today's dvc.yaml, the line that says where it goes.
PIPELINE_PENDING = "The table of its result for the current stages comes here."


@checked_table("docs/speed.md", "step", "seconds", sources=(PIPELINE,))
def test_the_pipeline_timing_table_is_the_benchmarks_file(head):
    if ["step", "seconds"] not in [t[0][:2] for t in markdown_tables(doc_text("docs/speed.md"))]:
        assert PIPELINE_PENDING in doc_text("docs/speed.md")
        return
    measured = head.json(PIPELINE)
    expected = [["step", "seconds", "start-up", "peak RSS (MB)"]]
    for row in measured["medians"]:
        startup = row.get("after_startup_seconds")
        expected.append([f"`{row['step']}`", f(row["after_seconds"], 2),
                         "" if startup is None else f(startup, 2), str(row["after_peak_rss_mb"])])  # fmt: skip
    assert_table("docs/speed.md", ["step", "seconds"], expected)


@checked_table("docs/speed.md", "stage", "measured (s)", sources=(FLOOR,))
def test_the_floor_table_is_the_benchmarks_file(head):
    if ["stage", "measured (s)"] not in [t[0][:2] for t in markdown_tables(doc_text("docs/speed.md"))]:  # fmt: skip
        assert PIPELINE_PENDING in doc_text("docs/speed.md")
        return
    floor = head.json(FLOOR)
    expected = [["stage", "measured (s)", "GFLOP", "products at peak (s)", "Adam at fastest (s)",
                 "floor (s)", "share of peak reached"]]  # fmt: skip
    for row in floor["stages"]:
        if "gflop" in row:
            expected.append([f"`{row['step']}`", f(row["measured_seconds"], 2), str(row["gflop"]),
                             f(row["products_at_peak_seconds"], 2), f(row["adam_at_fastest_seconds"], 2),
                             f(row["floor_seconds"], 2), f"{pct(row['share_of_peak'], 0)} %"])  # fmt: skip
    total = floor["pipeline"]
    expected.append(["whole pipeline", f(total["measured_dvc_repro_seconds"], 2), "", "", "",
                     f(total["floor_seconds"], 1), ""])  # fmt: skip
    assert_table("docs/speed.md", ["stage", "measured (s)"], expected)


# --- Every number in prose ----------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """Figures in a doc's prose: every match of `pattern` in `doc` ("*": in any doc, where it
    occurs) must have `figures(head)` as its groups, or for a set, its one group in the set. A
    space in the pattern matches any run of whitespace (lines wrap)."""

    doc: str
    pattern: str
    sources: tuple[str, ...]  # the committed files the figures come from
    figures: Callable[[Head], tuple[str, ...] | str | frozenset[str]]

    def regex(self) -> re.Pattern:
        return re.compile(self.pattern.replace(" ", r"\s+"), re.S)

    def wrong(self, text: str, head: Head) -> list[str]:
        """What the quote's matches in `text` read where they should read their figures."""
        expected = self.figures(head)
        if isinstance(expected, str):
            expected = (expected,)
        found = [tuple(" ".join(group.split()) for group in m.groups()) for m in self.regex().finditer(text)]  # fmt: skip
        if not found and self.doc != "*":
            return [f"not found: {self.pattern!r}"]
        return [
            f"{read} should read {sorted(expected) if isinstance(expected, frozenset) else expected} ({', '.join(self.sources)})"
            for read in found
            if (read[0] not in expected if isinstance(expected, frozenset) else read != tuple(expected))
        ]  # fmt: skip


@dataclass(frozen=True)
class Allowed:
    """Digits that need no source, and why: a constant of MNIST, of a formula, of a paper."""

    doc: str  # "*": any doc
    pattern: str
    reason: str

    def regex(self) -> re.Pattern:
        return re.compile(self.pattern.replace(" ", r"\s+"))


CONTENDED_LOOPS = {
    "adaptive": "the `train` stage's loop",
    "fixed": "the same loop, fixed threads",
    "conventional": "the conventional `DataLoader` loop",
}


@checked_table("docs/speed.md", "loop", "quiet", "beside busy cores", sources=(CONTENTION,))
def test_the_busy_machine_table_is_the_benchmarks_file(head):
    result = head.json(CONTENTION)
    seconds, slowdown = result["median_seconds_per_epoch"], result["slowdown_busy_over_quiet"]
    expected = [["loop", "quiet", "beside busy cores", "slowdown"]]
    for loop, name in CONTENDED_LOOPS.items():
        expected.append([name, f(seconds["quiet"][loop], 2), f(seconds["busy"][loop], 2),
                         f"{f(slowdown[loop], 2)}×"])  # fmt: skip
    assert_table("docs/speed.md", expected[0][:3], expected)
    # What the section says of them: at most twice the quiet time beside a busy core, all the
    # threads kept on a quiet machine, within 5 % of the fixed loop's speed there.
    assert slowdown["adaptive"] <= 2 < slowdown["fixed"]
    assert result["adaptive_over_fixed_quiet"] <= 1.05
    for measured in result["rounds"]:
        assert set(measured["quiet"]["adaptive"]["threads"]) == {result["machine"]["threads"]}
        assert max(measured["busy"]["adaptive"]["threads"]) < result["machine"]["threads"]


# --- docs/literature.md: Davidson et al. (2018), Table 1, beside our runs -----------------------

LITERATURE = "docs/literature.md"
PAPER = "docs/literature/davidson-2018-table-1.csv"
FOLLOW_UP_EPOCHS = 200  # trdavidson/increasing-expressivity-s-vae, run_models.py's --epochs


def literature_runs(head: Head) -> dict[int, list[str]]:
    """The committed runs of the protocol, latent size -> result folders, by seed."""
    found = []
    for name in _result_folders(head):
        if match := re.fullmatch(r"literature-d(\d+)-s(\d+)", name):
            found.append((int(match[1]), int(match[2]), f"docs/results/{name}"))
    runs: dict[int, list[str]] = {}
    for latent, _, folder in sorted(found):
        runs.setdefault(latent, []).append(folder)
    return runs


def kept_terms(head: Head, folder: str, last_epoch: int | None = None) -> dict[str, float]:
    """A run's test ELBO terms at its kept epoch, or at its best validation epoch after the
    warm-up and no later than `last_epoch`, as metrics/loss.csv gives them."""
    rows = head.csv(f"{folder}/metrics/loss.csv")
    if last_epoch is None:
        epoch = head.json(f"{folder}/metrics/train.json")["best_epoch"]
    else:
        warmup = yaml.safe_load(head.text(f"{folder}/params.yaml"))["train"]["kl_warmup_epochs"]
        counted = [r for r in rows if warmup < int(r["epoch"]) <= last_epoch]
        epoch = int(min(counted, key=lambda r: float(r["validation_loss"]))["epoch"])
    row = next(r for r in rows if int(r["epoch"]) == epoch)
    return {"epoch": epoch, **{k: float(row[f"test_{k}"]) for k in ("loss", "recon", "kl")}}


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return minus(f(values[0], 2))
    return f"{minus(f(statistics.mean(values), 2))} ± {f(statistics.stdev(values), 2)}"


@checked_table(LITERATURE, "latent", "seeds", sources=(PAPER,))
def test_the_literature_table_is_the_paper_beside_the_committed_runs(head):
    paper = {int(r["latent"]): r for r in head.csv(PAPER)}
    expected = [["latent", "seeds", "LL, paper", "LL, ours", "L[q], paper", "L[q], ours",
                 "RE, paper", "RE, ours", "KL, paper", "KL, ours"]]  # fmt: skip
    for latent, folders in sorted(literature_runs(head).items()):
        published = paper[latent]
        ll = minus(published["LL"]) + (f" ± {published['LL_sd']}" if published["LL_sd"] else "")
        terms = [kept_terms(head, folder) for folder in folders]
        ours_ll = [head.json(f"{folder}/metrics/likelihood.json")["iwae"]["k500"] for folder in folders]  # fmt: skip
        expected.append([
            str(latent), str(len(folders)), ll, mean_sd(ours_ll),
            minus(published["Lq"]), mean_sd([-t["loss"] for t in terms]),
            minus(published["RE"]), mean_sd([-t["recon"] for t in terms]),
            published["KL"], mean_sd([t["kl"] for t in terms]),
        ])  # fmt: skip
    assert_table(LITERATURE, expected[0][:2], expected)


@checked_table(LITERATURE, "run", "best epoch", sources=(PAPER,))
def test_the_literature_runs_table_is_where_each_run_stopped(head):
    expected = [["run", "best epoch", "stopped after", "L[q]",
                 f"best epoch ≤ {FOLLOW_UP_EPOCHS}", "L[q] there"]]  # fmt: skip
    for folders in literature_runs(head).values():
        for folder in folders:
            train = head.json(f"{folder}/metrics/train.json")
            kept, capped = kept_terms(head, folder), kept_terms(head, folder, FOLLOW_UP_EPOCHS)
            expected.append([
                f"`{folder.rsplit('/', 1)[1]}`", str(train["best_epoch"]),
                str(train["stopped_epoch"]), minus(f(-kept["loss"], 2)), str(capped["epoch"]),
                minus(f(-capped["loss"], 2)),
            ])  # fmt: skip
    assert_table(LITERATURE, expected[0][:2], expected)


@checked_table(LITERATURE, "samples k", sources=("docs/results/literature-d2-s1-ks/metrics/likelihood.json",))  # fmt: skip
def test_the_bound_against_k_is_the_committed_run(head):
    bounds = head.json("docs/results/literature-d2-s1-ks/metrics/likelihood.json")["iwae"]
    elbo = -kept_terms(head, "docs/results/literature-d2-s1")["loss"]
    expected = [["samples k", "bound (nats)", "above the test ELBO (nats)"]]
    for key in sorted(bounds, key=lambda k: int(k[1:])):
        expected.append([key[1:], minus(f(bounds[key], 2)), f(bounds[key] - elbo, 2)])
    assert_table(LITERATURE, expected[0][:1], expected)
    # The ks run retrained nothing: its k = 500 is seed 1's own.
    k500 = head.json("docs/results/literature-d2-s1/metrics/likelihood.json")["iwae"]["k500"]
    assert bounds["k500"] == k500


RERUN = "docs/results/literature-d2-s1-rerun"


def test_the_documented_line_reproduced_a_row_bit_for_bit(head):
    """Seed 1's 2-D run, run again later with the doc's line: the same metrics and loss table,
    byte for byte, and the same model (its md5 in dvc.lock), from another commit."""
    first, again = "docs/results/literature-d2-s1", RERUN
    for name in ("metrics/train.json", "metrics/likelihood.json", "metrics/loss.csv"):
        assert head.text(f"{first}/{name}") == head.text(f"{again}/{name}"), name

    def model_md5(folder: str) -> str:
        outs = yaml.safe_load(head.text(f"{folder}/dvc.lock"))["stages"]["train"]["outs"]
        return next(out["md5"] for out in outs if out["path"] == "models/vae.pt")

    assert model_md5(first) == model_md5(again)
    commits = [head.json(f"{folder}/provenance.json")["commit"] for folder in (first, again)]
    assert commits[0] != commits[1]
    quoted = re.search(r"again at\s+commit `(\w+)`", doc_text(LITERATURE))[1]
    assert quoted == commits[1]


def test_the_documented_literature_lines_are_the_runs_params(head):
    """The doc's `dvc exp run` line, applied to the committed params.yaml as DVC applies `-S`,
    gives the params each run recorded (less its latent size and seed) and validates."""
    from mnist_vae.params import validate

    line = re.search(r"```bash\n(OMP_NUM_THREADS=1 dvc exp run [^\n]+)\n```", doc_text(LITERATURE))[1]  # fmt: skip
    params = copy.deepcopy(head.params)
    for setting in re.findall(r"-S '?([^' ]+)'?", line):
        key, value = setting.split("=", 1)
        section, leaf = key.split(".")
        params[section][leaf] = yaml.safe_load(value)
    validate(params)
    for folders in literature_runs(head).values():
        for folder in folders:
            ran = yaml.safe_load(head.text(f"{folder}/params.yaml"))
            for section in ("data", "model", "train", "evaluate_likelihood"):
                mine = {k: v for k, v in params[section].items() if k not in ("latent_dim", "seed")}
                assert {k: ran[section][k] for k in mine} == mine, (folder, section)
            record = head.json(f"{folder}/provenance.json")["machine"]
            assert record["threads"] == 1 and "OMP_NUM_THREADS=1" in line, folder


# Sources the quotes read besides results: the code's own constants, as committed.
STUDY = ("docs/study/summary.md", "docs/study/summary.csv", "docs/study/runs.csv")
PARAMS = ("params.yaml",)
R10, R100 = "docs/results/epochs-10", "docs/results/epochs-100"
ADAM, DENORMALS, COMPILE = (f"{BENCHMARKS}/{n}.json" for n in ("adam-step", "train-denormals", "train-compile"))  # fmt: skip
WORKERS, KERNELS, EXPLORER = (f"{BENCHMARKS}/{n}.json" for n in ("study-workers", "kernel-settings", "explorer"))  # fmt: skip


def code_figure(head: Head, path: str, pattern: str) -> str:
    """A constant of committed code: the first group of `pattern` in `path`."""
    return re.search(pattern, head.text(path))[1]


def mnist_count(split: str) -> int:
    return IDX_SIZES[f"{split}_labels"] - 8  # the label file's 8 header bytes, then a byte each


def pythons(head: Head) -> list[str]:
    return re.findall(r'"(3\.\d+)"', code_figure(head, "tools/lock.py", r"PYTHONS = \(([^)]*)\)"))


def cell(head: Head, architecture: str, epochs: int, column: str) -> str:
    return head.study_rows()[(architecture, str(epochs))][column]


def one(values, what: str) -> str:
    """The one value all of `values` share: a doc that names them once must name them all."""
    assert len(set(values)) == 1, f"{what} differ: {sorted(set(values))}"
    return values[0]


def claim(holds: bool, figures: tuple[str, ...], what: str) -> tuple[str, ...]:
    """`figures`, when the sentence around them still says what the sources show."""
    assert holds, f"the sources no longer show that {what}"
    return figures


def study_epochs(head: Head) -> list[int]:
    return sorted({int(r["epochs"]) for r in head.runs()})


def lo(head: Head) -> int:
    """The study's shorter training: the default's epochs."""
    return study_epochs(head)[0]


def hi(head: Head) -> int:
    return study_epochs(head)[-1]


def seeds(head: Head) -> list[int]:
    return sorted({int(r["seed"]) for r in head.runs()})


def report_epochs(head: Head) -> frozenset[str]:
    """The epochs the docs write of the report's model: the default and the study's."""
    return frozenset(map(str, {head.params["train"]["epochs"], *study_epochs(head)}))


def three_largest_misreads(head: Head, digit: int) -> tuple[str, ...]:
    rows = head.csv(f"{R100}/metrics/reconstruction_confusion.csv")
    read = [int(r["predicted"]) for r in rows if int(r["actual"]) == digit]
    counts = sorted(((read.count(d), d) for d in set(read) if d != digit), reverse=True)[:3]
    return tuple(x for count, d in counts for x in (str(d), pct(count / len(read))))


def share_read_as(head: Head, actual: int, predicted: int) -> str:
    rows = head.csv(f"{R100}/metrics/reconstruction_confusion.csv")
    read = [int(r["predicted"]) for r in rows if int(r["actual"]) == actual]
    return pct(read.count(predicted) / len(read))


def base64_mb(floats: int) -> str:
    return f(4 * math.ceil(4 * floats / 3) / 1e6, 1)  # float32 bytes, in base64


def layers(sizes: list[int]) -> int:
    """Weights and biases of fully connected layers of these sizes."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def train_speed_module():
    """benchmarks/train_speed.py, which imports its neighbours as `python benchmarks/...` does."""
    path = str(REPO_ROOT / "benchmarks")
    sys.path.insert(0, path)
    try:
        return importlib.import_module("train_speed")
    finally:
        sys.path.remove(path)


def runs_of(head: Head) -> list[dict]:
    return [head.json(path) for path in TRAIN_RUNS]


def loops(run: dict) -> dict[str, dict]:
    return {row["loop"]: row for row in run["rows"]}


def ratios(run: dict, over: str, loop: str) -> list[float]:
    return [r["seconds"][over] / r["seconds"][loop] for r in run["rounds"]]


def report_pair(head: Head) -> tuple[str, str]:
    """The report's first pair (3 → 8), as `mnist_vae.confusions` names it."""
    return tuple(map(str, REPORT_PAIRS[0]))


def machine_of(head: Head, *paths: str) -> str:
    return one([machine_name(head.json(p)["machine"]) for p in paths], f"the machines of {paths}")


RESULTS_MACHINE = ".ci/results-machine.json"


def intel_runs(head: Head, folders: list[str]) -> str:
    names = [machine_name(head.json(f"docs/results/{n}/provenance.json")["machine"]) for n in folders]  # fmt: skip
    return one([*names, machine_name(head.json(RESULTS_MACHINE))], "the runs' machines")


def loss(head: Head, metrics: str, key: str = "test_loss") -> float:
    """A loss of the run whose metrics are in the folder `metrics`."""
    return head.json(f"{metrics}/train.json")[key]


Q = Quote
QUOTES: list[Quote] = [
    # Everywhere: the latent's size, MNIST's images, the seed and the number of seeds.
    Q("*", r"\b(\d+)-D\b", PARAMS, lambda h: str(h.params["model"]["latent_dim"])),
    Q(
        "*",
        r"\b(\d+)×(\d+) images?\b",
        ("src/mnist_vae/idx.py",),
        lambda h: re.search(
            r"IMAGE_PIXELS = (\d+) \* (\d+)", h.text("src/mnist_vae/idx.py")
        ).groups(),
    ),
    Q("*", r"\bseed[- ](\d+)\b", PARAMS, lambda h: str(h.params["train"]["seed"])),
    Q("*", r"\b(\d+) (?:training )?seeds\b", STUDY, lambda h: str(len(seeds(h)))),
    Q(
        "*",
        r"\b(\d → \d)\b",
        ("src/mnist_vae/confusions.py",),
        lambda h: frozenset(f"{a} → {b}" for a, b in REPORT_PAIRS_BOTH_WAYS),
    ),
    # README.md
    Q(
        "README.md",
        r"Python (\d\.\d+)–(\d\.\d+)",
        ("tools/lock.py",),
        lambda h: (pythons(h)[0], pythons(h)[-1]),
    ),
    Q("README.md", r"\b(\d+)[- ]epochs?\b", STUDY + PARAMS, report_epochs),
    Q(
        "README.md",
        r'"(\d) → (\d)" is the share of test (\d)s whose reconstruction it reads as an (\d)',
        ("src/mnist_vae/confusions.py",),
        lambda h: report_pair(h) * 2,
    ),
    Q(
        "README.md",
        r"(\d+) epochs lower the loss by (\S+ ± \S+ %)",
        STUDY,
        lambda h: (
            str(hi(h)),
            cell(h, REPORT, hi(h), "gain 10 → 100 epochs"),
        ),
    ),
    Q(
        "README.md",
        r"the loss at (\d+) epochs is (\S+ ± \S+) nats lower",
        STUDY,
        lambda h: (str(lo(h)), _cost(h, lo(h))),
    ),
    Q("README.md", r"(\d+) and (\d+) epochs", STUDY, lambda h: tuple(map(str, study_epochs(h)))),
    Q(
        "README.md",
        r"4 → 9 is at least (\S+) % in every run, while 3 → 8 swings",
        STUDY,
        lambda h: pct(
            min(float(r["4->9"]) for r in h.runs() if r["architecture"] == "sigmoid_on_z")
        ),
    ),
    # docs/install.md
    Q(
        "docs/install.md",
        r"macOS (\d+)\+ on Apple Silicon",
        ("tools/lock.py",),
        lambda h: code_figure(h, "tools/lock.py", r'"macOS (\d+)\+ arm64"'),
    ),
    Q(
        "docs/install.md",
        r"Python (\d\.\d+) to (\d\.\d+)\.",
        ("tools/lock.py",),
        lambda h: (pythons(h)[0], pythons(h)[-1]),
    ),
    # docs/testing.md
    Q(
        "docs/testing.md",
        r"at most (\d+) \(pytest-xdist",
        ("Makefile",),
        lambda h: code_figure(h, "Makefile", r"--maxprocesses (\d+)"),
    ),
    # docs/study.md
    Q(
        "docs/study.md",
        r"each for (\d+) and for (\d+) epochs, over training seeds (\d+) to (\d+) \(`train.seed`\): (\d+) DVC experiments",
        STUDY,
        lambda h: (
            *map(str, study_epochs(h)),
            str(seeds(h)[0]),
            str(seeds(h)[-1]),
            str(len(h.runs())),
        ),
    ),
    Q("docs/study.md", r"\b(\d+)[- ]epochs?\b(?!, seed)", STUDY + PARAMS, report_epochs),
    Q(
        "docs/study.md",
        r"both architectures, (\d+) epoch, seed (\d+)\)",
        (WORKERS,),
        lambda h: (
            str(one(h.json(WORKERS)["study"]["epochs"], "epochs")),
            str(one(h.json(WORKERS)["study"]["seeds"], "seeds")),
        ),
    ),
    Q(
        "docs/study.md",
        r"Two workers on the (\d+)-core machine",
        (WORKERS,),
        lambda h: str(h.json(WORKERS)["machine"]["cores"]),
    ),
    Q(
        "docs/study.md",
        r"records, nothing else running: (.+?)\.\n",
        (WORKERS,),
        lambda h: machine_of(h, WORKERS),
    ),
    Q(
        "docs/study.md",
        r"The study ran on the machine its `provenance.json` names: (.+?)\. Mean",
        ("docs/study/provenance.json",),
        lambda h: machine_of(h, "docs/study/provenance.json"),
    ),
    Q(
        "docs/study.md",
        r"(\S+) times as fast \(the median ratio\)",
        (WORKERS,),
        lambda h: f(h.json(WORKERS)["speedup_two_workers_median"], 2),
    ),
    Q(
        "docs/study.md",
        r"holds for the report's architecture: (\S+ ± \S+ %)",
        STUDY,
        lambda h: cell(h, REPORT, hi(h), "gain 10 → 100 epochs"),
    ),
    Q(
        "docs/study.md",
        r"in the first (\d+) epochs and gains (\S+ ± \S+ %)",
        STUDY,
        lambda h: (str(lo(h)), cell(h, STANDARD, hi(h), "gain 10 → 100 epochs")),
    ),
    Q(
        "docs/study.md",
        r"costs\*\* (\S+ ± \S+) nats per image at (\d+) epochs and (\S+ ± \S+) at (\d+):",
        STUDY,
        lambda h: (_cost(h, lo(h)), str(lo(h)), _cost(h, hi(h)), str(hi(h))),
    ),
    Q(
        "docs/study.md",
        r"The standard VAE after (\d+) epochs comes within (\S+) nats of the report's after (\d+)\.",
        STUDY,
        lambda h: (
            str(lo(h)),
            f(
                h.summary("standard", lo(h))["test_loss_mean"]
                - h.summary("sigmoid_on_z", hi(h))["test_loss_mean"],
                1,
            ),
            str(hi(h)),
        ),
    ),
    Q(
        "docs/study.md",
        r"4 → 9 is robust, at least (\S+) % in every run of both architectures",
        STUDY,
        lambda h: pct(min(float(r["4->9"]) for r in h.runs())),
    ),
    Q(
        "docs/study.md",
        r"(\S+ ± \S+ %) of the report's reconstructions after (\d+) epochs, against (\S+ ± \S+ %) for the standard VAE",
        STUDY,
        lambda h: (
            cell(h, REPORT, lo(h), "read as another digit"),
            str(lo(h)),
            cell(h, STANDARD, lo(h), "read as another digit"),
        ),
    ),
    Q(
        "docs/study.md",
        r"both architectures \((\S+ ± \S+ %) and (\S+ ± \S+ %) at (\d+) epochs\)",
        STUDY,
        lambda h: (cell(h, REPORT, lo(h), "4 → 9"), cell(h, STANDARD, lo(h), "4 → 9"), str(lo(h))),
    ),
    Q(
        "docs/study.md",
        r"3 → 8 is (\S+ ± \S+ %) there \(from (\d+) % to (\d+) % across seeds\) and (\S+ ± \S+ %) in the standard VAE",
        STUDY,
        lambda h: (
            cell(h, REPORT, lo(h), "3 → 8"),
            *spread(
                [
                    float(r["3->8"])
                    for r in h.runs()
                    if (r["architecture"], r["epochs"]) == ("sigmoid_on_z", str(lo(h)))
                ],
                100,
                0,
            ),
            cell(h, STANDARD, lo(h), "3 → 8"),
        ),
    ),
    Q(
        "docs/study.md",
        r"In the report's architecture at (\d+) epochs, 3s become 8s far more often than 8s become 3s \(8 → 3: (\S+) %\)",
        STUDY,
        lambda h: claim(
            h.summary("sigmoid_on_z", lo(h))["3->8_mean"]
            > 5 * h.summary("sigmoid_on_z", lo(h))["8->3_mean"],
            (str(lo(h)), pct(h.summary("sigmoid_on_z", lo(h))["8->3_mean"])),
            "3 → 8 is far more common than 8 → 3",
        ),
    ),
    Q(
        "docs/study.md",
        r"At (\d+) epochs the two directions come close \(3 → 8 (\S+) %, 8 → 3 (\S+) %\)",
        STUDY,
        lambda h: (
            str(hi(h)),
            pct(h.summary("sigmoid_on_z", hi(h))["3->8_mean"]),
            pct(h.summary("sigmoid_on_z", hi(h))["8->3_mean"]),
        ),
    ),
    Q(
        "docs/study.md",
        r"8 → 3 is the more common \((\S+) % against (\S+) % at (\d+) epochs, (\S+) % against (\S+) % at (\d+)\)",
        STUDY,
        lambda h: claim(
            all(
                h.summary("standard", e)["8->3_mean"] > h.summary("standard", e)["3->8_mean"]
                for e in study_epochs(h)
            ),
            tuple(
                x
                for e in study_epochs(h)
                for x in (
                    pct(h.summary("standard", e)["8->3_mean"]),
                    pct(h.summary("standard", e)["3->8_mean"]),
                    str(e),
                )
            ),
            "8 → 3 is the more common in the standard VAE",
        ),
    ),
    Q(
        "docs/study.md",
        r"a standard deviation of (\S+) nats at (\d+) epochs for the report's architecture and (\S+) at (\d+), against a gain of (\S+) nats from (\d+) to (\d+) epochs",
        STUDY,
        lambda h: (
            f(h.summary("sigmoid_on_z", lo(h))["test_loss_std"], 2),
            str(lo(h)),
            f(h.summary("sigmoid_on_z", hi(h))["test_loss_std"], 2),
            str(hi(h)),
            f(
                h.summary("sigmoid_on_z", lo(h))["test_loss_mean"]
                - h.summary("sigmoid_on_z", hi(h))["test_loss_mean"],
                1,
            ),
            str(lo(h)),
            str(hi(h)),
        ),
    ),
    Q(
        "docs/study.md",
        r"has a standard deviation of (\S+) to (\S+) points over seeds",
        STUDY,
        lambda h: spread(
            [
                h.summary(a, e)["misread_share_std"]
                for a in ("sigmoid_on_z", "standard")
                for e in study_epochs(h)
            ],
            100,
        ),
    ),
    # docs/speed.md
    Q(
        "docs/speed.md",
        r"floor\.json\) record, nothing else running: (.+?)\.\n",
        (PIPELINE, FLOOR),
        lambda h: machine_of(h, PIPELINE, FLOOR),
    ),
    Q(
        "docs/speed.md",
        r"contention\.json\) records, nothing else running: (.+?)\.\n",
        (CONTENTION,),
        lambda h: machine_of(h, CONTENTION),
    ),
    Q(
        "docs/speed.md",
        r"the machine their files name: (.+?)\. No GPU",
        (ADAM, *TRAIN_RUNS, DENORMALS, COMPILE),
        lambda h: machine_of(h, ADAM, *TRAIN_RUNS, DENORMALS, COMPILE),
    ),
    Q(
        "docs/speed.md",
        r"took (\S+) to (\S+) s within one benchmark run",
        (DENORMALS,),
        lambda h: spread([r["seconds"]["ours"] for r in h.json(DENORMALS)["rounds"]], decimals=2),
    ),
    Q(
        "docs/speed.md",
        r"\(k = (\d+), (\d+) and (\d+) importance samples on (\S+) test images\)",
        PARAMS,
        lambda h: (
            *map(str, h.params["evaluate_likelihood"]["ks"]),
            f"{h.params['evaluate_likelihood']['test_images']:,}",
        ),
    ),
    Q(
        "docs/speed.md",
        r"(\d+) \+ \(the switching units\) inputs instead of (\d+)\.",
        PARAMS,
        lambda h: (
            str(h.params["model"]["latent_dim"]),
            str(one(h.params["model"]["hidden_dims"], "the hidden layers")),
        ),
    ),
    Q(
        "docs/speed.md",
        r"takes (\S+) s with `torch.optim.Adam` and (\S+) ms with `FusedAdam`",
        (ADAM,),
        lambda h: (
            f(
                h.json(ADAM)["building"]["torch.optim.Adam(fused=True)"]["milliseconds_median"]
                / 1000,
                2,
            ),
            f(h.json(ADAM)["building"]["FusedAdam"]["milliseconds_median"], 2),
        ),
    ),
    Q(
        "docs/speed.md",
        r"VAE takes (\d+) µs against (\d+) µs, of the classifier's (\d+) µs against (\d+) µs",
        (ADAM,),
        lambda h: tuple(
            str(h.json(ADAM)["stepping"][stage]["step_microseconds_median"][o])
            for stage in ("train", "classifier")
            for o in ("torch.optim.Adam(fused=True)", "FusedAdam")
        ),
    ),
    Q(
        "docs/speed.md",
        r"the two stages take (\S+) and (\S+) steps",
        PARAMS,
        lambda h: tuple(
            f"{h.params[s]['epochs'] * math.ceil(mnist_count('train') / h.params[s]['batch_size']):,}"
            for s in ("train", "classifier")
        ),
    ),
    Q(
        "docs/speed.md",
        r"the (\w+) training stages",
        ("dvc.yaml",),
        lambda h: WORDS[
            sum(
                any(
                    str(next(iter(o)) if isinstance(o, dict) else o).startswith("models/")
                    for o in s.get("outs", [])
                )
                for s in h.dvc_stages().values()
            )
        ],
    ),
    Q(
        "docs/speed.md",
        r"small batches of (\d+)",
        PARAMS,
        lambda h: one(
            [str(h.params[s]["batch_size"]) for s in ("train", "classifier")], "the batch sizes"
        ),
    ),
    Q("docs/speed.md", r"\b(\d+)-epoch results", STUDY, lambda h: str(hi(h))),
    Q(
        "docs/speed.md",
        r"\((\d+)-(\d+)-(\d+)\) from the same initial weights, batch (\d+),",
        ("benchmarks/train_speed.py", *TRAIN_RUNS),
        lambda h: (
            str(mnist_pixels(h)),
            *re.search(
                r'MODEL = \{"hidden_dims": \[(\d+)\], "latent_dim": (\d+)',
                h.text("benchmarks/train_speed.py"),
            ).groups(),
            one(
                [str(row["batch_size"]) for run in runs_of(h) for row in run["rows"]],
                "the batch sizes",
            ),
        ),
    ),
    Q(
        "docs/speed.md",
        r"ours is (\S+)× faster than pytorch/examples by the median run\*\* \((\S+)–(\S+)× by median of rounds\)",
        tuple(TRAIN_RUNS),
        lambda h: (
            f(statistics.median(r["speedup_median"] for r in runs_of(h)), 2),
            *spread([r["speedup_median"] for r in runs_of(h)], decimals=2),
        ),
    ),
    Q(
        "docs/speed.md",
        r"single rounds range from (\S+)× to (\S+)×",
        tuple(TRAIN_RUNS),
        lambda h: spread(
            [x for r in runs_of(h) for x in ratios(r, "pytorch-examples", "ours")], decimals=2
        ),
    ),
    Q(
        "docs/speed.md",
        r"\(run (\d): (\S+) to (\S+) s\)",
        tuple(TRAIN_RUNS),
        lambda h: (
            "1",
            *spread([r["seconds"]["ours"] for r in runs_of(h)[0]["rounds"]], decimals=2),
        ),
    ),
    Q(
        "docs/speed.md",
        r"stays at (\d+)–(\d+) GFLOP/s in every round",
        tuple(TRAIN_RUNS),
        lambda h: spread(
            [r["matmul_peak_gflops"] for run in runs_of(h) for r in run["rounds"]], decimals=0
        ),
    ),
    Q(
        "docs/speed.md",
        r"Peak RSS is (\d+) and (\d+) MB for the two DataLoader loops and (\d+) MB for ours",
        tuple(TRAIN_RUNS),
        lambda h: tuple(
            one([str(loops(run)[loop]["peak_rss_mb"]) for run in runs_of(h)], loop)
            for loop in ("pytorch-examples", "conventional", "ours")
        ),
    ),
    Q(
        "docs/speed.md",
        r"agrees within (\S+) nats \(different shuffles\)",
        tuple(TRAIN_RUNS),
        lambda h: f(max(abs(r["first_epoch_loss_difference"]) for r in runs_of(h)), 1),
    ),
    Q(
        "docs/speed.md",
        r"an epoch is (\S+) × 10¹¹ floating-point operations \(`epoch_flops`\), about (\S+) s at the median of the runs' peaks; ours reaches (\d+)–(\d+) %",
        tuple(TRAIN_RUNS),
        lambda h: (
            f(train_speed_module().epoch_flops(mnist_count("train")) / 1e11, 1),
            f(
                train_speed_module().epoch_flops(mnist_count("train"))
                / (statistics.median(r["matmul_peak_gflops"] for r in runs_of(h)) * 1e9),
                1,
            ),
            *spread([loops(r)["ours"]["share_of_matmul_peak"] for r in runs_of(h)], 100, 0),
        ),
    ),
    Q(
        "docs/speed.md",
        r"at batch (\d+) cost as much",
        tuple(TRAIN_RUNS),
        lambda h: one(
            [str(row["batch_size"]) for run in runs_of(h) for row in run["rows"]], "the batch sizes"
        ),
    ),
    Q(
        "docs/speed.md",
        r"ten rounds: (\S+)× our loop's speed by median of the rounds' ratios \((\S+)–(\S+)× per round",
        (DENORMALS,),
        lambda h: (
            f(h.json(DENORMALS)["flushed_over_eager_median"], 1),
            *spread(ratios(h.json(DENORMALS), "ours", "flushed"), decimals=2),
        ),
    ),
    Q(
        "docs/speed.md",
        r"\((\S+)× by median of rounds, (\S+)–(\S+)× per round\)",
        (COMPILE,),
        lambda h: (
            f(h.json(COMPILE)["compiled_over_eager_median"], 2),
            *spread(ratios(h.json(COMPILE), "ours", "compiled"), decimals=2),
        ),
    ),
    # docs/results.md
    Q("docs/results.md", r"\b(\d+)[- ]epochs?\b", STUDY + PARAMS, report_epochs),
    Q(
        "docs/results.md",
        r"(\d+) (?:and|vs) (\d+) epochs",
        STUDY,
        lambda h: tuple(map(str, study_epochs(h))),
    ),
    Q(
        "docs/results.md",
        r"names the machine: (.+?)\. README",
        (f"{R10}/provenance.json", f"{R100}/provenance.json"),
        lambda h: machine_of(h, f"{R10}/provenance.json", f"{R100}/provenance.json"),
    ),
    Q(
        "docs/results.md",
        r"The test loss falls by (\S+) %: the report's \"only ~6–7 %\" holds for the test loss \(the train loss falls by (\S+) %\)",
        (R10, R100),
        lambda h: tuple(
            pct(1 - loss(h, f"{R100}/metrics", key) / loss(h, f"{R10}/metrics", key))
            for key in ("test_loss", "train_loss")
        ),
    ),
    Q(
        "docs/results.md",
        r"the 5s, which now spread over (\d) \((\S+) %\), (\d) \((\S+) %\) and (\d) \((\S+) %\); and the 7s become 9s \((\S+) %\) about as often as the 4s do \((\S+) %\)",
        (R100,),
        lambda h: (*three_largest_misreads(h, 5), share_read_as(h, 7, 9), share_read_as(h, 4, 9)),
    ),
    Q(
        "docs/results.md",
        r"a standard deviation of up to (\d+) points",
        STUDY,
        lambda h: f(
            100
            * max(
                v
                for a in ("sigmoid_on_z", "standard")
                for e in study_epochs(h)
                for k, v in h.summary(a, e).items()
                if k.endswith("_std") and "->" in k
            ),
            0,
        ),
    ),
    Q(
        "docs/results.md",
        r"reads 4 → 9 as (\S+) % against (\S+) % in",
        ("metrics/eval.json", f"{R10}/metrics/eval.json"),
        lambda h: (
            pct(h.json("metrics/eval.json")["4->9"]),
            pct(h.json(f"{R10}/metrics/eval.json")["4->9"]),
        ),
    ),
    # docs/likelihood.md
    Q(
        "docs/likelihood.md",
        r"\(default (\d+), (\d+), (\d+); k = 1 is the ELBO\)",
        PARAMS,
        lambda h: tuple(map(str, h.params["evaluate_likelihood"]["ks"])),
    ),
    Q(
        "docs/likelihood.md",
        r"the first (\S+) test images \(`test_images`\)",
        PARAMS,
        lambda h: f"{h.params['evaluate_likelihood']['test_images']:,}",
    ),
    Q(
        "docs/likelihood.md",
        r"\((\d+) epochs, \d+-D latent with the sigmoid on z, first (\S+) test images, seed \d+\)",
        PARAMS,
        lambda h: (
            str(h.params["train"]["epochs"]),
            f"{h.params['evaluate_likelihood']['test_images']:,}",
        ),
    ),
    Q(
        "docs/likelihood.md",
        r"for `metrics/`\): (.+?)\.\n",
        (
            "docs/results/binarize-dynamic/provenance.json",
            "docs/results/continuous-bernoulli/provenance.json",
            RESULTS_MACHINE,
        ),
        lambda h: intel_runs(h, ["binarize-dynamic", "continuous-bernoulli"]),
    ),
    Q(
        "docs/likelihood.md",
        r"by about a nat from k = (\d+) to (\d+)",
        PARAMS,
        lambda h: (
            str(h.params["evaluate_likelihood"]["ks"][0]),
            str(h.params["evaluate_likelihood"]["ks"][-1]),
        ),
    ),
    Q(
        "docs/likelihood.md",
        r"\(k = (\d+) on these (\S+) images is above the test loss on all (\S+): the first thousand are easier\.\)",
        (*PARAMS, "metrics/likelihood.json", "metrics/train.json"),
        lambda h: claim(
            h.json("metrics/likelihood.json")["iwae"][
                f"k{h.params['evaluate_likelihood']['ks'][0]}"
            ]
            > -h.json("metrics/train.json")["test_loss"],
            (
                str(h.params["evaluate_likelihood"]["ks"][0]),
                f"{h.params['evaluate_likelihood']['test_images']:,}",
                f"{mnist_count('test'):,}",
            ),
            "the k = 1 bound on the first images is above the test loss",
        ),
    ),
    # docs/experiments.md
    Q(
        "docs/experiments.md",
        r"(\d+) epochs, everything else default",
        PARAMS,
        lambda h: str(h.params["train"]["epochs"]),
    ),
    Q(
        "docs/experiments.md",
        r"for `metrics/`\): (.+?)\.\n",
        ("docs/results/latent-5/provenance.json", RESULTS_MACHINE),
        lambda h: intel_runs(h, ["latent-5", "latent-10", "latent-20", "fashion"]),
    ),
    Q(
        "docs/experiments.md",
        r"costs about (\d+) nats per image against (\d+) dimensions",
        ("metrics/train.json", "docs/results/latent-20/metrics/train.json"),
        lambda h: (
            f(loss(h, "metrics") - loss(h, f"docs/results/latent-{_largest_latent(h)}/metrics"), 0),
            str(_largest_latent(h)),
        ),
    ),
    Q(
        "docs/experiments.md",
        r"the (\d+)×(\d+) grid varies z1 and z2",
        PARAMS,
        lambda h: (str(h.params["interpolate"]["grid_size"]),) * 2,
    ),
    # docs/reproducibility.md
    Q(
        "docs/reproducibility.md",
        r"so a (\d+)-epoch run ends elsewhere",
        PARAMS,
        lambda h: str(h.params["train"]["epochs"]),
    ),
    Q(
        "docs/reproducibility.md",
        r"the default model for (\d+) epochs under each setting",
        (KERNELS,),
        lambda h: str(h.json(KERNELS)["epochs"]),
    ),
    Q(
        "docs/reproducibility.md",
        r"on the machine the file names \((.+?)\)\. The seconds",
        (KERNELS,),
        lambda h: machine_of(h, KERNELS),
    ),
    Q(
        "docs/reproducibility.md",
        r"study's (\d+)-epoch seed-\d run",
        (R10,),
        lambda h: str(h.params["train"]["epochs"]),
    ),
    Q(
        "docs/reproducibility.md",
        r"the train and test loss within (\S+) nats, every likelihood bound `iwae.k\*` within (\S+) nats, the classifier's accuracy within (\S+)\.",
        (".ci/check_reproduced.py",),
        lambda h: (
            one(
                [str(v) for v in h.check.TOLERANCES["metrics/train.json"].values()],
                "the loss tolerances",
            ),
            str(h.check.TOLERANCES["metrics/likelihood.json"]["iwae.k*"]),
            str(h.check.TOLERANCES["metrics/classifier.json"]["accuracy"]),
        ),
    ),
    # docs/explorer.md
    Q(
        "docs/explorer.md",
        r"two clicks at the first test (\d) and (\d)",
        PARAMS,
        lambda h: (
            str(h.params["interpolate"]["start_digit"]),
            str(h.params["interpolate"]["end_digit"]),
        ),
    ),
    Q(
        "docs/explorer.md",
        r"a (\d+) % margin",
        ("src/mnist_vae/explorer.py",),
        lambda h: pct(
            float(
                code_figure(h, "src/mnist_vae/explorer.py", r"margin = ([\d.]+) \* \(high - low\)")
            ),
            0,
        ),
    ),
    Q(
        "docs/explorer.md",
        r"the arrow keys: (\d+)/(\d+) of the plane a press, (\d+)/(\d+) with Shift",
        ("src/mnist_vae/explorer.js",),
        lambda h: _arrow_steps(h),
    ),
    Q(
        "docs/explorer.md",
        r"\((\d+) → (\d+) → (\d+) → (\d+), (\S+) million floats\) would add (\S+) MB of base64 to a page whose decoder is (\S+) MB",
        PARAMS,
        lambda h: _explorer_sizes(h),
    ),
    Q(
        "docs/explorer.md",
        r"is (\S+) MB \(`page_bytes`\)",
        (EXPLORER,),
        lambda h: f(h.json(EXPLORER)["page_bytes"] / 1e6, 1),
    ),
    Q(
        "docs/explorer.md",
        r"the (\S+) test images as one lossless PNG sheet",
        ("src/mnist_vae/idx.py",),
        lambda h: f"{mnist_count('test'):,}",
    ),
    Q(
        "docs/explorer.md",
        r"\(Chromium (\d+), Debian's",
        (EXPLORER,),
        lambda h: re.search(r"chromium (\d+)\.", h.json(EXPLORER)["browser"])[1],
    ),
    Q(
        "docs/explorer.md",
        r"names, nothing else running: (.+?)\.\n",
        (EXPLORER,),
        lambda h: machine_of(h, EXPLORER),
    ),
    Q(
        "docs/explorer.md",
        r"The five opens took (\S+) to (\S+) ms",
        (EXPLORER,),
        lambda h: spread(h.json(EXPLORER)["first_digit_ms"]),
    ),
    Q(
        "docs/explorer.md",
        r"the page's floats within (\S+)\. It also checks",
        ("tests/test_explorer.py",),
        lambda h: one(
            re.findall(r"\.max\(\) < (\S+)\n", h.text("tests/test_explorer.py")), "the tolerances"
        ),
    ),
    Q(
        "docs/explorer.md",
        r"a decoder whose weights are (\d+) % off",
        ("tests/test_explorer.py",),
        lambda h: pct(
            float(
                code_figure(
                    h, "tests/test_explorer.py", r"perturbed\.\w+\.weight\.mul_\(([\d.]+)\)"
                )
            )
            - 1,
            0,
        ),
    ),
    # docs/failures.md: the stages a change to `train` reruns
    Q(
        "docs/failures.md",
        r"every stage that reads `models/vae.pt` \(([^)]*)\)",
        ("dvc.yaml",),
        lambda h: ", ".join(
            f"`{name}`"
            for name, s in h.dvc_stages().items()
            if "models/vae.pt" in s.get("deps", [])
        ),
    ),
]


RUN_PARAMS = ("docs/results/literature-d2-s1/params.yaml",)


def run_params(head: Head) -> dict:
    return yaml.safe_load(head.text(RUN_PARAMS[0]))


def _widths(head: Head) -> tuple[str, ...]:
    hidden = run_params(head)["model"]["hidden_dims"]
    encoder = [mnist_pixels(head), *hidden]
    return tuple(map(str, [*encoder, *reversed(encoder)]))


QUOTES += [
    Q(
        LITERATURE,
        r"an encoder (\d+)-(\d+)-(\d+) with ReLU, a decoder (\d+)-(\d+)-(\d+)",
        RUN_PARAMS,
        _widths,
    ),
    Q(
        LITERATURE,
        r"learning rate (\S+), batches of (\d+)",
        RUN_PARAMS,
        lambda h: (str(run_params(h)["train"]["lr"]), str(run_params(h)["train"]["batch_size"])),
    ),
    Q(
        LITERATURE,
        r"full weight after (\d+) epochs",
        RUN_PARAMS,
        lambda h: str(run_params(h)["train"]["kl_warmup_epochs"]),
    ),
    Q(
        LITERATURE,
        r"a stop (\d+) epochs after it",
        RUN_PARAMS,
        lambda h: str(run_params(h)["train"]["patience"]),
    ),
    Q(
        LITERATURE,
        r"bound with (\d+) samples on all ([\d,]+) test images",
        RUN_PARAMS,
        lambda h: (
            str(run_params(h)["evaluate_likelihood"]["ks"][0]),
            f"{run_params(h)['evaluate_likelihood']['test_images']:,}",
        ),
    ),
    Q(
        LITERATURE,
        r"hold out the last ([\d,]+) of the ([\d,]+) training images",
        RUN_PARAMS,
        lambda h: (f"{run_params(h)['data']['validation_images']:,}", f"{mnist_count('train'):,}"),
    ),
    Q(
        LITERATURE,
        r"Either leaves ([\d,]+) images to train on",
        RUN_PARAMS,
        lambda h: f"{mnist_count('train') - run_params(h)['data']['validation_images']:,}",
    ),
    Q(
        LITERATURE,
        r"ours takes any lower validation loss and stops at (\d+)",
        RUN_PARAMS,
        lambda h: str(run_params(h)["train"]["epochs"]),
    ),
    Q(
        LITERATURE,
        r"The paper's LL lies (\S+) nats above its ELBO",
        (PAPER,),
        lambda h: f(float(h.csv(PAPER)[0]["LL"]) - float(h.csv(PAPER)[0]["Lq"]), 2),
    ),
    Q(
        LITERATURE,
        r"(?:stopped after|at most|a later epoch than) (\d+)",
        (),
        lambda h: str(FOLLOW_UP_EPOCHS),
    ),
]

ALLOWED: list[Allowed] = [
    Allowed(
        LITERATURE,
        r"\(20\d\d\), Table 1|\(UAI 20\d\d\), Table 1|\((?:UAI )?20\d\d\)|et al\., 20\d\d\)",
        "citations",
    ),
    Allowed(
        LITERATURE,
        r"draws 10,000 at random",
        "the follow-up repository's split (utils/load_data.py)",
    ),
    Allowed(
        LITERATURE, r"better only by 0\.01 nats", "the follow-up repository's --min_improv default"
    ),
    Allowed("*", r"~6–7 %", "the report's claim, in its words"),
    Allowed("*", r"\[0, 1\]", "the unit interval of grey levels"),
    Allowed("*", r"cpu-2cores", "the benchmark results' folder, by name"),
    Allowed("README.md", r"\(3↔8, 5↔8, 9↔4\)", "the report's pairs, in its words"),
    Allowed("docs/results.md", r"the 4/9 pair", "a pair of digits, by name"),
    Allowed("docs/testing.md", r"127\.0\.0\.1", "the loopback address"),
    Allowed(
        "docs/speed.md", r"σ\(\|l\|\) ∈ \[0\.5, 1\]", "the range of the sigmoid of a number ≥ 0"
    ),
    Allowed("docs/likelihood.md", r"are not 0 or 1", "a binary pixel's two values"),
    Allowed("docs/likelihood.md", r"log \(1/k\) Σᵢ", "the bound's formula"),
    Allowed(
        "docs/likelihood.md", r"log\(l / tanh\(l/2\)\)", "the continuous Bernoulli's normaliser"
    ),
    Allowed("docs/likelihood.md", r"near λ = 0\.5", "where that normaliser is 0/0"),
    Allowed(
        "docs/likelihood.md",
        r"NeurIPS 2019|Burda et al\. \(2015\)|Kingma & Welling \(2013\)|Davidson et al\. \(2018\)",
        "a paper's year",
    ),
    Allowed("docs/study.md", r"± 1 sd", "the figure's band: one standard deviation (study.py)"),
    Allowed(
        "docs/experiments.md", r"with the others at 0", "the grid's other coordinates (latents.py)"
    ),
    Allowed(
        "docs/explorer.md", r"near a logit of 0", "where the continuous Bernoulli's mean is 0/0"
    ),
    Allowed("docs/explorer.md", r"another size than 2 ", "a plane has two dimensions"),
    Allowed("docs/explorer.md", r"\(1/255\)", "one grey level of an 8-bit pixel"),
]


def _cost(head: Head, epochs: int) -> str:
    costs = {r["epochs"]: r for r in table_rows(head.text("docs/study/summary.md"), ["epochs", "cost (nats)"])}  # fmt: skip
    return costs[str(epochs)]["cost (nats)"]


def _arrow_steps(head: Head) -> tuple[str, ...]:
    shifted, plain, side = re.search(r"event\.shiftKey \? (\d+) : (\d+)\) / (\d+)", head.text("src/mnist_vae/explorer.js")).groups()  # fmt: skip
    return plain, side, "1", str(int(side) // int(shifted))


def _explorer_sizes(head: Head) -> tuple[str, ...]:
    p = head.params
    judge = [mnist_pixels(head), p["classifier"]["hidden_dim"], p["classifier"]["hidden_dim"], len(DIGITS)]  # fmt: skip
    decoder = layers(
        [p["model"]["latent_dim"], *reversed(p["model"]["hidden_dims"]), mnist_pixels(head)]
    )
    floats = layers(judge)
    return (*map(str, judge), f(floats / 1e6, 2), base64_mb(floats), base64_mb(decoder))


def _largest_latent(head: Head) -> int:
    return max(int(name.split("-")[1]) for name in _result_folders(head) if name.startswith("latent-"))  # fmt: skip


def mnist_pixels(head: Head) -> int:
    return math.prod(map(int, re.search(r"IMAGE_PIXELS = (\d+) \* (\d+)", head.text("src/mnist_vae/idx.py")).groups()))  # fmt: skip


# Code (spans, fenced blocks, link targets, comments) is commands, paths and names.
CODE = re.compile(r"```.*?```|`[^`]*`|\]\([^)]*\)|<!--.*?-->", re.S)
NAME_DIGITS = re.compile(r"(?<=[A-Za-z_])\d+")  # AVX512, x86_64, k5000, float32
LIST_ITEM = re.compile(r"^ *\d+\. ", re.M)
STAGE_COUNT = re.compile(
    rf"\b(?:{'|'.join(WORDS[2:])})\b(?=(?:\s+[\w-]+){{0,2}}?\s+stages?\b)", re.I
)


def table_span(text: str, header: list[str]) -> tuple[int, int] | None:
    """Where in `text` the table whose header starts with `header` is, if it is there."""
    lines = text.splitlines(keepends=True)
    offset, start = 0, None
    for line in [*lines, ""]:
        if line.startswith("|") and start is None:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            start = offset if cells[: len(header)] == header else -1
        elif not line.startswith("|") and start is not None:
            if start >= 0:
                return start, offset
            start = None
        offset += len(line)
    return None


def unaccounted(doc: str, text: str) -> list[str]:
    """The digits (and counts of stages in words) of `text` that nothing accounts for."""
    covered = bytearray(len(text))
    spans = [m.span() for pattern in (CODE, NAME_DIGITS, LIST_ITEM) for m in pattern.finditer(text)]
    spans += [table_span(text, t.header) for t in CHECKED_TABLES if t.doc == doc]
    for entry in [*QUOTES, *ALLOWED]:
        if entry.doc in (doc, "*"):
            spans += [m.span() for m in entry.regex().finditer(text)]
    for start, end in filter(None, spans):
        covered[start:end] = b"\1" * (end - start)
    loose = [*re.finditer(r"\d+", text), *STAGE_COUNT.finditer(text)]
    return [
        f"{doc}:{text.count(chr(10), 0, m.start()) + 1}: {m[0]!r} in "
        f"{' '.join(text[max(0, m.start() - 40) : m.end() + 40].split())!r}"
        for m in sorted(loose, key=lambda m: m.start())
        if not all(covered[m.start() : m.end()])
    ]


@pytest.mark.parametrize("doc", DOCS)
def test_every_number_in_the_doc_is_checked_or_allowed(doc):
    loose = unaccounted(doc, doc_text(doc))
    assert not loose, "digits that no table, quote or allowed constant accounts for:\n" + "\n".join(loose)  # fmt: skip


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_quotes_read_what_their_sources_give(doc, head):
    text = doc_text(doc)
    wrong = [w for quote in QUOTES if quote.doc in (doc, "*") for w in quote.wrong(text, head)]
    assert not wrong, f"{doc}:\n" + "\n".join(wrong)


def test_the_unaccounted_digits_are_found():
    # No table of this doc is checked, no quote or constant is allowed: only code and names go.
    text = "| n |\n| - |\n| 7 |\n\n1. `dvc repro -f` of 12 stages on x86_64, not the eight stages.\n"  # fmt: skip
    found = [re.search(r": ('\w+') in", line)[1] for line in unaccounted("docs/x.md", text)]
    assert found == ["'7'", "'12'", "'eight'"]


def test_every_allowed_constant_is_in_its_doc():
    # An allowance that matches nothing no longer says why a digit is there: it goes.
    for allowed in ALLOWED:
        docs = DOCS if allowed.doc == "*" else [allowed.doc]
        assert any(allowed.regex().search(doc_text(d)) for d in docs), allowed


# --- What each committed result measured -------------------------------------------------------


def committed_results(head: Head) -> dict[str, dict]:
    """Every committed benchmark result, and every record of committed runs, by path."""
    paths = [p for p in head.files("benchmarks/results") if p.endswith(".json")]
    paths += [p for p in head.files("docs/results", "docs/study") if p.endswith("/provenance.json")]  # fmt: skip
    return {path: head.json(path) for path in paths}


def test_every_committed_result_records_its_commit_stages_and_machine(head):
    results = committed_results(head)
    folders = {p.split("/")[2] for p in head.files("docs/results")}
    assert folders and {f"docs/results/{name}/provenance.json" for name in folders} <= set(results)
    assert "docs/study/provenance.json" in results
    for path, record in results.items():
        assert {"commit", "pipeline_stages", "machine"} <= set(record), path
        # A record rebuilt from history says what it could not establish, and where the rest
        # comes from.
        lacking = [field for field in BIT_FIELDS if field not in record["machine"]]
        if lacking or record["commit"] is None:
            note = record.get("note", "")
            assert all(field in note for field in lacking), (path, lacking)
            assert record["commit"] is not None or "Commit not established" in note, path
        if record["commit"] is not None:
            if git_quiet("cat-file", "-e", f"{record['commit']}^{{commit}}") != 0:
                pytest.skip(f"{record['commit']} is not in this clone (a shallow one?)")
            assert record["pipeline_stages"] == head.stages(record["commit"]), path


def git_quiet(*args: str) -> int:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True).returncode


def quoted_sources(docs: list[str] = DOCS) -> set[str]:
    """The committed files whose figures the docs show: the sources of each checked table that
    is there and of each quote that matches."""
    texts = {doc: doc_text(doc) for doc in docs}
    sources = {s for t in CHECKED_TABLES if t.doc in texts and table_span(texts[t.doc], t.header) for s in t.sources}  # fmt: skip
    for quote in QUOTES:
        if any(quote.regex().search(text) for doc, text in texts.items() if quote.doc in (doc, "*")):  # fmt: skip
            sources.update(quote.sources)
    return sources


def test_a_quoted_whole_pipeline_result_timed_the_stages_of_todays_dvc_yaml(head):
    results, stages = committed_results(head), head.stages()
    whole = [p for p in quoted_sources() if results.get(p, {}).get("whole_pipeline")]
    assert whole, "no quoted whole-pipeline result: is study-workers.json no longer quoted?"
    for path in whole:
        record = results[path]
        for ran in (record, record.get("pipeline", {})):
            if "pipeline_stages" in ran:
                assert ran["pipeline_stages"] == stages, (
                    f"{path} ({ran.get('commit')}) ran the stages {ran['pipeline_stages']}, "
                    f"not today's {stages}: rerun it before a doc quotes it"
                )


def test_the_readme_stage_table_is_dvc_yaml(head):
    rows = table_rows(doc_text("README.md"), ["stage", "what it does"])
    assert [row["stage"] for row in rows] == [f"`{name}`" for name in head.stages()]


@pytest.mark.e2e
def test_readme_quotes_the_last_lines_dvc_repro_prints(reproduced_repo):
    """README's two lines: after a `dvc repro` that ran a stage (here `train`, its model gone,
    as in a fresh clone), and after one with nothing to do."""
    readme = doc_text("README.md")
    ran = re.search(r"its last line is DVC's ``(.+?)``", readme, re.S)[1]
    again = re.search(r"Run it again and DVC says `([^`]+)`", readme)[1]
    (reproduced_repo.root / "models" / "vae.pt").unlink()
    assert reproduced_repo.run("dvc", "repro").stdout.splitlines()[-1] == " ".join(ran.split())
    assert reproduced_repo.run("dvc", "repro").stdout.splitlines()[-1] == again


def test_the_readme_stays_short():
    # A newcomer reads it in two minutes; the depth is in docs/.
    assert len((REPO_ROOT / "README.md").read_bytes()) <= 5000
