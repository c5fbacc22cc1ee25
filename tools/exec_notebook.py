"""Runs a notebook's code cells in order in this Python process, without Jupyter.

    python tools/exec_notebook.py notebooks/06_flatten_parameters.ipynb

For machines without a Jupyter kernel (the GPU machine of ``tools/gpu_check.sh``): each code
cell runs in one shared namespace, as a kernel would run them, and its prints go to stdout
under a header naming the cell. IPython magics (lines starting with ``%``) are skipped, so this
suits notebooks that need no widgets. Exits non-zero at the first cell that raises, after
printing its traceback. Stored outputs are neither compared nor changed (nbval does that).
"""

import json
import sys
import traceback


def main(paths) -> int:
    for path in paths:
        with open(path, encoding="utf-8") as f:
            cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
        namespace = {"__name__": "__main__"}
        for number, cell in enumerate(cells, 1):
            source = "".join(cell["source"])
            code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))
            print(f"--- {path}, code cell {number} of {len(cells)}", flush=True)
            try:
                exec(compile(code, f"{path}:cell{number}", "exec"), namespace)
            except Exception:
                traceback.print_exc()
                return 1
        print(f"--- {path}: all {len(cells)} code cells ran", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
