import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparse_rnn_jax.analysis import figures
from sparse_rnn_jax.analysis.report import AnalysisInputError, AnalysisOptions, analyze
from sparse_rnn_jax.engine.workdir import write_parquet_atomic
from tests.analysis.synthetic import synthetic_results, write_workdir
from tests.conftest import REPO  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _image_links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


def test_report_references_pngs_that_exist(analysed):
    out, result, _ = analysed
    text = (out / "report.md").read_text()
    links = _image_links(text)
    assert len(links) >= 12
    for link in links:
        assert (out / link).read_bytes()[:8] == PNG_MAGIC, link
    assert {Path(p).name for p in links} >= {
        "rad_curves_by_config.png",
        "rad_curves_by_hidden_proportion.png",
        "rad_weight_space.png",
        "rad_min_loss_vs_metrics.png",
        "rad_predicted_vs_actual.png",
        "rad_feature_importance.png",
        "AdroitHandHammer-v1_scores_vs_hidden_proportion.png",
    }
    assert result.html is not None and "<table>" in result.html.read_text()
    assert (out / "keep.txt").read_text() == "not the report's"


def test_several_runs_are_compared_in_one_table_and_figure(analysed):
    out, _, _ = analysed
    text = (out / "report.md").read_text()
    assert "## Runs compared" in text and "figures/comparison.png" in _image_links(text)
    table = pd.read_csv(out / "tables" / "comparison.csv")
    assert set(table["run"]) == {"rad", "ah"} and {"balanced", "normal_size", "normal"} <= set(table["config"])
    balanced = table[(table["config"] == "balanced") & (table["run"] == "rad")].iloc[0]
    assert balanced["models"] == 2 and balanced["lo"] <= balanced["mean"] <= balanced["hi"]
    assert text.index("## Runs compared") < text.index("## `rad`")


def test_report_sections(analysed):
    out, result, _ = analysed
    text = (out / "report.md").read_text()
    assert "## `rad`" in text and "## `AdroitHandHammer-v1`" in text  # named by environment where there is one
    assert "Task `ah`, environment `AdroitHandHammer-v1`, 46 -> 26" in text
    assert "paper, Table IV | 1.791" in text  # RAD 2500 -> 10 at ~50k from normal_size
    assert "paper, Table III | 0.071" in text  # AdroitHandHammer-v1 46 -> 26 from normal
    assert "This is the paper's experiment" in text and "No published counterpart" not in text
    assert "Model density (paper: model sparsity)" in text
    assert "unstable convergence" in text and "|   at chance |" in text and "|   failed to learn |" in text
    assert "### Environment scores" in text and "d4rl_score" in text
    assert "R2" in text and "without hidden proportion" in text
    assert "permutation importance" in text
    assert "Reading importance against the ablation" in text and "95 % CI over folds" in text
    assert "| lstm | 2 |" in text  # any config name gets a row and a colour
    assert re.search(r"\| normal_size \| 60 \| \d+ \| [\d.]+ \| \[[\d.]+, [\d.]+\] \|", text)  # mean and CI
    for name in ("rad", "AdroitHandHammer-v1"):
        csv = pd.read_csv(out / "tables" / f"{name}_min_val_loss_buckets.csv")
        assert {"n", "mean", "ci95_low", "ci95_high", "at_chance_fraction", "exploded_fraction", "uc"} <= set(csv)
        meta = json.loads((out / "predictor" / name / "predictor.json").read_text())
        assert meta["experiment"] == name
    assert set(result.predictors) == {"rad", "AdroitHandHammer-v1"}


def test_second_results_set_is_noted_not_silent(workdirs, tmp_path):
    options = AnalysisOptions(trees=5, folds=2, mlp=False)
    log: list[str] = []
    analyze([workdirs["rad"]], tmp_path, options, log=log.append)
    assert not any(line.startswith("note:") for line in log)
    analyze([workdirs["ah"]], tmp_path, options, log=log.append)
    assert any(line.startswith("note:") and "overwriting" in line for line in log)
    assert "## `AdroitHandHammer-v1`" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "predictor" / "rad").is_dir()  # earlier files are not deleted


def test_bad_inputs_fail_before_writing(workdirs, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(AnalysisInputError, match="does not exist"):
        analyze([tmp_path / "missing"], out)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(AnalysisInputError, match="no results.parquet"):
        analyze([tmp_path / "empty_dir"], out)
    empty = synthetic_results("rad", 3, 2).iloc[:0]
    write_workdir(tmp_path / "empty_table", empty)
    with pytest.raises(AnalysisInputError, match="empty"):
        analyze([tmp_path / "empty_table"], out)
    partial = tmp_path / "partial"
    partial.mkdir()
    write_parquet_atomic(pd.DataFrame({"model_id": [0], "epoch": [1]}), partial / "results.parquet")
    with pytest.raises(AnalysisInputError, match="lacks columns"):
        analyze([partial], out)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(AnalysisInputError, match="not a folder"):
        analyze([workdirs["rad"]], a_file)
    with pytest.raises(AnalysisInputError, match="cannot create"):
        analyze([workdirs["rad"]], a_file / "sub")
    assert not out.exists()


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_analyze_cli_end_to_end(workdirs, tmp_path):
    out = tmp_path / "cli"
    proc = _run(
        "experiments.analyze", f"--results={workdirs['rad']}", f"--out={out}", "--trees=5", "--folds=2", "--nomlp"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out / "report.md")
    links = _image_links((out / "report.md").read_text())
    assert links and all((out / link).is_file() for link in links)


def test_analyze_cli_bad_input_is_one_line_exit_2(tmp_path):
    proc = _run("experiments.analyze", f"--results={tmp_path / 'missing'}", f"--out={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: results folder")
    assert not (tmp_path / "out").exists()


def test_weight_space_shares_and_dominant_block():
    shares = figures.drawn_shares([2500, 29, 10], figures.MIN_COLUMN_SHARE)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[1] == pytest.approx(figures.MIN_COLUMN_SHARE) and shares[2] == pytest.approx(figures.MIN_COLUMN_SHARE)
    assert figures.drawn_shares([46, 900, 26], 0.14)[1] > 0.7
    assert figures.dominant_block(2500, 185, 10) == "hx"
    assert figures.dominant_block(46, 900, 26) == "hh"
    colours = figures.config_colours(["balanced", "lstm", "gru", "my_config", "other_config"])
    assert colours["balanced"] == figures.CONFIG_COLOURS["balanced"]
    assert len(set(colours.values())) == 5


def test_palette_is_distinct_for_every_named_config_and_sampler():
    from sparse_rnn_jax.core.cell_spec import CELLS
    from sparse_rnn_jax.core.configs import NAMED_CONFIGS

    names = list(NAMED_CONFIGS) + ["normal_size", "uniform_size"] + list(CELLS)
    colours = figures.config_colours(names)
    assert len(set(colours.values())) == len(names)  # eqn7 and normal_size no longer look alike
    assert colours["eqn7"] == "#CC79A7" and colours["normal_size"] == "#000000"
    assert len(set(figures.config_markers(names).values())) == len(names)


def test_chance_levels_and_t_band():
    rows = pd.DataFrame({"chance_loss": [np.log(10)] * 2, "output_dim": [10, 10]})
    assert figures.chance_levels(rows) == pytest.approx({"val_loss": np.log(10), "val_accuracy": 0.1})
    assert figures.chance_levels(rows.assign(chance_loss=0.516)) == {"val_loss": 0.516}  # not ln|y|: no accuracy
    assert figures.chance_levels(rows.assign(chance_loss=np.nan)) == {}
    values = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 4.0]])
    mean, low, high = figures.t_band(values)
    np.testing.assert_allclose(mean, [2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    np.testing.assert_allclose([low[0], high[0]], [2.0 - half, 2.0 + half])
    half = stats.t.ppf(0.975, 1) * np.std([2.0, 4.0], ddof=1) / np.sqrt(2)
    np.testing.assert_allclose([low[1], high[1]], [3.0 - half, 3.0 + half])


def test_experiments_of_different_dims_or_environments_are_apart(tmp_path):
    small = write_workdir(tmp_path / "rad784", synthetic_results("rad", 20, 2, seed=3, dims=(784, 10)))
    big = write_workdir(tmp_path / "rad2500", synthetic_results("rad", 20, 2, seed=4))
    door = write_workdir(
        tmp_path / "door", synthetic_results("ah", 20, 2, seed=5, dims=(39, 28)), env_id="AdroitHandDoor-v1"
    )
    result = analyze([small, big, door], tmp_path / "out", AnalysisOptions(trees=5, folds=2, mlp=False))
    text = result.report.read_text()
    assert set(result.predictors) == {"rad_784x10", "rad_2500x10", "AdroitHandDoor-v1"}
    assert "## `rad_784x10`" in text and "## `rad_2500x10`" in text and "## `AdroitHandDoor-v1`" in text
    assert (tmp_path / "out" / "figures" / "AdroitHandDoor-v1_curves_by_config.png").is_file()
    sections = text.split("\n## ")
    small_section = next(sec for sec in sections if sec.startswith("`rad_784x10`"))
    assert "No published counterpart" in small_section and "dims 784 -> 10, not 2500 -> 10" in small_section
    assert "paper, Table IV (a different experiment) | 1.791" in small_section  # shown, labelled as another one
    assert "paper, Table IV" in next(sec for sec in sections if sec.startswith("`rad_2500x10`"))
    door_section = next(sec for sec in sections if sec.startswith("`AdroitHandDoor-v1`"))
    assert "environment AdroitHandDoor-v1, not AdroitHandHammer-v1" in door_section
    assert "20 models (" in small_section  # the two RAD runs are not pooled


def test_sweep_summary_uses_the_same_rule():
    from sparse_rnn_jax.analysis.summary import summary_table
    from sparse_rnn_jax.engine.results import final_per_model

    rows = synthetic_results("rad", 30, 2, seed=6, failed_fraction=0.6)  # many models at chance, none exploded
    text = summary_table(final_per_model(rows))
    assert " uc " not in text and "(n=" in text
    assert " at chance" in text and " exploded/diverged" in text
    exploded = rows.assign(diverged=True)
    assert " uc (n=" in summary_table(final_per_model(exploded))


def test_sweep_summary_labels_the_time_of_a_run_trained_in_several_sessions():
    from sparse_rnn_jax.analysis.summary import sweep_summary

    rows = synthetic_results("rad", 6, 2, seed=6)
    record = {"wall_time_s": 131.0, "platform": "cpu", "devices": ["cpu:0"], "chance_loss": 2.3026}
    assert "in 131 s (cpu" in sweep_summary(rows, record)
    extended = dict(record, sessions=2, session_wall_time_s=40.0)
    assert "in 131 s in all over 2 sessions, the last 40 s, (cpu" in sweep_summary(rows, extended)


def test_pooled_runs_of_different_lengths(tmp_path):
    from sparse_rnn_jax.analysis.convergence import classify
    from sparse_rnn_jax.analysis.predictor import regression_data
    from sparse_rnn_jax.engine.results import final_per_model, read_results

    short = write_workdir(tmp_path / "short", synthetic_results("rad", 12, 2, seed=7))
    long = write_workdir(tmp_path / "long", synthetic_results("rad", 12, 3, seed=8, diverged_fraction=0.5))
    rows = read_results([short, long])
    models, rules = classify(final_per_model(rows))
    table = figures._curves(rows, "val_loss", rules["rad"])
    values = table.to_numpy()
    is_short = table.index.get_level_values("run") == str(short)
    assert np.isnan(values[is_short, 2]).all()  # never trained: not drawn, not capped
    assert np.isfinite(values[~is_short]).all()  # diverged epochs drawn at the cap
    assert (values[~is_short] <= rules["rad"].cap).all()
    assert regression_data(models, rules["rad"]).curves is None
