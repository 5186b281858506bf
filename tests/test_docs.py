"""Tables in README and docs/ against the committed files they come from, cell by cell: a
figure in the wrong row or column fails, with or without a ± in it."""

import json
import re

from conftest import REPO_ROOT, committed
from test_ci_check import check_module

# Sources as committed: `make study` and the benchmarks rewrite their workspace copies.
STUDY = committed("docs/study/summary.md").decode()


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


def table_with(text: str, header: list[str]) -> list[dict[str, str]]:
    """The one table of `text` whose header starts with `header`, as one dict per row."""
    found = [t for t in markdown_tables(text) if t[0][: len(header)] == header]
    assert len(found) == 1, header
    head, *rows = found[0]
    return [dict(zip(head, row, strict=True)) for row in rows]


def _figure(cell: str) -> str:
    return cell.replace("−", "-")


def _study_rows() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["architecture"], r["epochs"]): r for r in table_with(STUDY, ["architecture"])}


def test_markdown_tables_are_read_row_by_row():
    text = (
        "intro\n\n| a | b |\n| --- | --- |\n| 1 | 2 ± 3 |\n|  | x |\n\ntext\n| c |\n| - |\n| 4 |\n"
    )
    assert markdown_tables(text) == [[["a", "b"], ["1", "2 ± 3"], ["", "x"]], [["c"], ["4"]]]
    assert table_with(text, ["a"]) == [{"a": "1", "b": "2 ± 3"}, {"a": "", "b": "x"}]


def test_the_study_tables_in_docs_are_the_generated_ones_cell_by_cell():
    generated = _study_rows()
    doc = (REPO_ROOT / "docs" / "study.md").read_text()
    rows = table_with(doc, ["architecture", "epochs"])
    assert {(r["architecture"], r["epochs"]) for r in rows} == set(generated)
    for row in rows:
        source = generated[(row["architecture"], row["epochs"])]
        for column, cell in row.items():
            assert _figure(cell) == source[column], (row["architecture"], row["epochs"], column)
    costs = {r["epochs"]: r for r in table_with(STUDY, ["epochs", "cost (nats)"])}
    for row in table_with(doc, ["epochs", "cost (nats)"]):
        assert row["cost (nats)"] == costs[row["epochs"]]["cost (nats)"], row


# README's "What came out": its rows are the study's columns, its columns the epoch counts.
README_ROWS = {
    "test loss": ("report (sigmoid on z)", "test loss (nats)"),
    "reconstructions the classifier reads as another digit": (
        "report (sigmoid on z)",
        "read as another digit",
    ),
    "3 → 8": ("report (sigmoid on z)", "3 → 8"),
    "5 → 8": ("report (sigmoid on z)", "5 → 8"),
    "4 → 9": ("report (sigmoid on z)", "4 → 9"),
    "log-likelihood bound, k = 5000": ("report (sigmoid on z)", "IWAE bound, k = 5000"),
    "test loss of the standard VAE (no sigmoid on z)": ("standard VAE", "test loss (nats)"),
}


def test_the_readme_table_is_the_generated_study_cell_by_cell():
    generated = _study_rows()
    rows = table_with((REPO_ROOT / "README.md").read_text(), ["", "the report"])
    assert [row[""] for row in rows] == list(README_ROWS)
    for row in rows:
        architecture, column = README_ROWS[row[""]]
        for epochs in ("10", "100"):
            cell = _figure(row[f"{epochs} epochs"])
            gain = re.fullmatch(
                r"(.+) \((.+) lower\)", cell
            )  # "153.93 ± 1.39 (6.38 ± 0.86 % lower)"
            if gain:
                cell = gain[1]
                assert gain[2] == generated[(architecture, epochs)]["gain 10 → 100 epochs"]
            assert cell == generated[(architecture, epochs)][column], (row[""], epochs)


def test_every_spread_quoted_in_prose_is_in_the_generated_tables():
    """Figures outside tables cannot be placed by row and column; each must at least be one of
    the study's."""
    quoted = 0
    for doc in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "study.md"):
        prose = "\n".join(line for line in doc.read_text().splitlines() if not line.startswith("|"))
        for figure in re.findall(r"[−-]?\d+\.\d+ ± \d+\.\d+(?: %)?", prose):
            assert _figure(figure) in STUDY, f"{doc.name}: {figure}"
            quoted += 1
    assert quoted >= 5


def test_the_pipeline_timing_table_is_the_benchmarks_file():
    measured = json.loads(committed("benchmarks/results/cpu-2cores/pipeline.json"))
    medians = {row["step"]: row for row in measured["medians"]}
    rows = table_with((REPO_ROOT / "docs" / "speed.md").read_text(), ["step", "seconds"])
    assert [row["step"].strip("`") for row in rows] == list(medians)
    for row in rows:
        source = medians[row["step"].strip("`")]
        assert float(row["seconds"]) == source["after_seconds"], row
        assert float(row["peak RSS (MB)"]) == source["after_peak_rss_mb"], row
        startup = source.get("after_startup_seconds")
        assert row["start-up"] == ("" if startup is None else f"{startup:.2f}"), row


def test_the_study_workers_table_and_its_median_are_the_benchmarks_file():
    measured = json.loads(committed("benchmarks/results/cpu-2cores/study-workers.json"))
    doc = (REPO_ROOT / "docs" / "study.md").read_text()
    rows = table_with(doc, ["round"])
    assert [int(row["round"]) for row in rows] == list(range(1, len(measured["rounds"]) + 1))
    for row, source in zip(rows, measured["rounds"], strict=True):
        for configuration, seconds in source["seconds"].items():
            assert float(row[f"{configuration} (s)"]) == seconds, row
        assert float(row["one worker's time / two workers'"]) == source["ratio"], row
    prose = " ".join(doc.split())
    median = measured["speedup_two_workers_median"]
    assert f"{median:.2f} times as fast (the median ratio)" in prose
    assert not measured["identical_bytes_across_configurations"]
    assert "not one output was bit-identical" in prose


def test_the_kernel_settings_table_is_the_benchmarks_file():
    measured = json.loads(committed("benchmarks/results/cpu-2cores/kernel-settings.json"))
    by_setting = {row["setting"]: row for row in measured["rows"]}
    doc = (REPO_ROOT / "docs" / "reproducibility.md").read_text()
    for row in table_with(doc, ["setting", "model after 2 epochs"]):
        # a row may name several settings: "`A`, `B` or `C` (why)"
        names = re.findall(r"`([^`]+)`", row["setting"]) or [row["setting"]]
        sources = [by_setting[name] for name in names]
        seconds = sorted(source["fit_seconds"] for source in sources)
        expected_time = (
            f"{seconds[0]} s" if seconds[0] == seconds[-1] else (f"{seconds[0]}–{seconds[-1]} s")
        )
        assert row["time"] == expected_time, row
        for source in sources:
            assert float(row["test loss"]) == source["test_loss"], row
            expected_bits = (
                "reference"
                if source["setting"] == "default"
                else ("identical bits" if source["same_bits_as_default"] else "different")
            )
            assert row["model after 2 epochs"] == expected_bits, row


# Metrics files' keys as `dvc metrics diff` names them, by CI's own check.
_flat = check_module().flat


def test_the_two_cpus_table_is_the_two_committed_runs():
    doc = (REPO_ROOT / "docs" / "reproducibility.md").read_text()
    rows = table_with(doc, ["metric", "AMD EPYC", "Intel Xeon"])
    assert len(rows) >= 5
    for row in rows:
        name, key = re.fullmatch(r"`(\w+\.json)` (\S+)", row["metric"]).groups()
        for column, folder in (
            ("AMD EPYC", "docs/results/epochs-10/metrics"),
            ("Intel Xeon", "metrics"),
        ):
            value = _flat(json.loads(committed(f"{folder}/{name}")))[key]
            assert float(row[column]) == value, (row["metric"], column)


def test_readme_quotes_the_committed_classifier_accuracy():
    quoted = re.search(r"([\d.]+) % accuracy \(`metrics/classifier.json`\)", (REPO_ROOT / "README.md").read_text())  # fmt: skip
    accuracy = json.loads(committed("metrics/classifier.json"))["accuracy"]
    assert float(quoted.group(1)) == round(100 * accuracy, 2)


def _number(cell: str) -> float:
    """'−133.37', '+3074.23', '20.3 %' → the number (a percentage as written)."""
    return float(cell.replace("−", "-").replace("+", "").replace("%", "").strip())


def _metrics(folder: str) -> dict:
    files = ("train.json", "likelihood.json", "eval.json", "classifier.json")
    return {k: v for name in files for k, v in _flat(json.loads(committed(f"{folder}/{name}"))).items()}  # fmt: skip


def _agrees(cell: str, value: float, percent: bool = False) -> bool:
    written = _number(cell)
    decimals = len(cell.split(".")[1].split()[0]) if "." in cell else 0
    return written == round(100 * value if percent else value, decimals)


def test_the_latent_size_table_is_the_committed_runs():
    doc = (REPO_ROOT / "docs" / "experiments.md").read_text()
    rows = table_with(doc, ["latent size"])
    assert [row["latent size"] for row in rows] == ["2 (default)", "5", "10", "20"]
    for row in rows:
        size = row["latent size"].split()[0]
        run = _metrics("metrics" if size == "2" else f"docs/results/latent-{size}/metrics")
        assert _agrees(row["test loss (`train.json`)"], run["test_loss"]), size
        assert _agrees(row["IWAE bound, k = 5000"], run["iwae.k5000"]), size
        assert _agrees(row["reconstructions read as another digit"], run["misread_share"], percent=True), size  # fmt: skip
    losses = {
        row["latent size"].split()[0]: _number(row["test loss (`train.json`)"]) for row in rows
    }
    cost = re.search(r"costs about (\d+) nats per image against 20 dimensions", doc).group(1)
    assert int(cost) == round(losses["2"] - losses["20"])


def test_the_fashion_table_is_the_committed_runs():
    doc = (REPO_ROOT / "docs" / "experiments.md").read_text()
    rows = {row[""]: row for row in table_with(doc, ["", "MNIST", "Fashion-MNIST"])}
    for column, folder in (("MNIST", "metrics"), ("Fashion-MNIST", "docs/results/fashion/metrics")):
        run = _metrics(folder)
        assert _agrees(rows["test loss (`train.json`)"][column], run["test_loss"]), column
        assert _agrees(rows["IWAE bound, k = 5000"][column], run["iwae.k5000"]), column
        accuracy = rows["classifier accuracy (the same small MLP)"][column]
        assert _agrees(accuracy, run["accuracy"], percent=True), column
        misread = rows["reconstructions the classifier reads as another class"][column]
        assert _agrees(misread, run["misread_share"], percent=True), column


def test_the_likelihood_settings_table_is_the_committed_runs():
    doc = (REPO_ROOT / "docs" / "likelihood.md").read_text()
    folders = {
        "grey levels, Bernoulli (the report)": "metrics",
        "dynamic binarization, Bernoulli": "docs/results/binarize-dynamic/metrics",
        "grey levels, continuous Bernoulli": "docs/results/continuous-bernoulli/metrics",
    }
    rows = table_with(doc, ["setting", "test loss (`train.json`)"])
    assert [row["setting"] for row in rows] == list(folders)
    for row in rows:
        run = _metrics(folders[row["setting"]])
        assert _agrees(row["test loss (`train.json`)"], run["test_loss"]), row["setting"]
        for k in ("1", "50", "5000"):
            assert _agrees(row[f"k = {k}"], run[f"iwae.k{k}"]), (row["setting"], k)
