"""Notebook hygiene: what nbval compares must come from one clean top-to-bottom run."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_chapters_are_there():
    names = [p.name[:2] for p in NOTEBOOKS]
    assert names == ["01", "02", "03", "04", "05", "06", "07"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_come_from_one_clean_run(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c["execution_count"] for c in code]
    assert len(code) >= 5, "a chapter that runs (almost) nothing"
    assert None not in counts, f"{counts.count(None)} code cell(s) never executed"
    assert counts == list(range(1, len(code) + 1)), f"not one top-to-bottom run: {counts}"
    for cell in code:
        for out in cell["outputs"]:
            assert out["output_type"] != "error", "".join(cell["source"])[:80]
            assert out.get("name") != "stderr", ("stderr stored", "".join(out.get("text", ""))[:200])
    # asserts are the checks that run: every chapter has them
    assert sum("assert" in "".join(c["source"]) for c in code) >= 3
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb["metadata"], "widget state stored: regenerate with tools/run_notebooks.py"


def exercises_and_solutions(nb):
    """The numbered exercises after a chapter's "## Exercises" heading, as (cell index, number),
    and the indices of the cells tagged "solution" after it."""
    cells = nb["cells"]
    start = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                 and re.search(r"(?m)^## Exercises", "".join(c["source"])))
    text = ["".join(c["source"]).split("## Exercises", 1)[-1] if i == start else "".join(c["source"])
            for i, c in enumerate(cells)]
    items = [(i, int(m.group(1))) for i in range(start, len(cells))
             if cells[i]["cell_type"] == "markdown" for m in re.finditer(r"(?m)^(\d+)\. ", text[i])]
    # (a chapter may also hide the answers of its "Check your understanding" questions, before)
    solutions = [i for i, c in enumerate(cells) if i > start
                 and "solution" in c["metadata"].get("tags", [])]
    return items, solutions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_one_hidden_solution_that_ran(path):
    nb = json.loads(path.read_text())
    items, solutions = exercises_and_solutions(nb)
    assert [n for _, n in items] == list(range(1, len(items) + 1)) and items, items
    ends = [i for i, _ in items[1:]] + [len(nb["cells"])]
    for (at, number), end in zip(items, ends, strict=True):
        mine = [i for i in solutions if at <= i < end]
        assert len(mine) == 1, f"exercise {number}: solution cells {mine}"
        cell = nb["cells"][mine[0]]
        # a code cell, collapsed until the learner opens it, run by nbval like every cell
        assert cell["cell_type"] == "code" and cell["metadata"]["jupyter"]["source_hidden"]
        assert cell["execution_count"] is not None
    assert len(solutions) == len(items), "a solution cell without its exercise"


def test_exec_notebook_runs_cells_in_order_and_stops_at_an_error(tmp_path):
    # tools/exec_notebook.py: how tools/gpu_check.sh runs notebook 06 where there is no kernel
    import subprocess
    import sys

    def notebook(*sources):
        cells = [{"cell_type": "code", "source": s, "metadata": {}, "outputs": [],
                  "execution_count": None} for s in sources]
        path = tmp_path / f"nb{len(list(tmp_path.iterdir()))}.ipynb"
        path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}))
        return str(path)

    tool = Path(__file__).resolve().parent.parent / "tools" / "exec_notebook.py"
    good = notebook("%matplotlib widget\nx = 2", "print('x is', x * 21)")
    bad = notebook("print('first')", "raise ValueError('boom')", "print('never')")
    ok = subprocess.run([sys.executable, tool, good], capture_output=True, text=True)
    assert ok.returncode == 0 and "x is 42" in ok.stdout
    fail = subprocess.run([sys.executable, tool, bad], capture_output=True, text=True)
    assert fail.returncode == 1 and "first" in fail.stdout and "never" not in fail.stdout
    assert "ValueError: boom" in fail.stderr
