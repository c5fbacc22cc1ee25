"""Regenerate the stored outputs of notebooks: one clean top-to-bottom run each, in a fresh kernel.

    python tools/run_notebooks.py                      # every notebooks/*.ipynb
    python tools/run_notebooks.py notebooks/02_*.ipynb # some of them

No timings, no widget state and no random ids are written, so that strict nbval can compare the
stored outputs with a new run. The package's widgets and ``display.Picture`` store a PNG of each
figure beside the widget view; its bytes are the same on every run (no time or software stamp;
tests/test_display.py runs this tool twice and compares them).
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    start = time.perf_counter()
    NotebookClient(nb, kernel_name="python3", timeout=300, record_timing=False,
                   store_widget_state=False, resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    for path in paths:
        print(f"{path.name}: {run(path):.1f} s", flush=True)


if __name__ == "__main__":
    main()
