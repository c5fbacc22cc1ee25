#!/usr/bin/env python3
"""Set up a virtual environment in .venv and open JupyterLab or run every test.

    python3 dev.py lab     # install what the notebooks need, open JupyterLab on notebooks/
    python3 dev.py test    # install what the tests need, run lint and every test

Only Python 3.10+ is needed. torch is installed as the CPU build (a few hundred MB rather than a
multi-GB CUDA build): from a local wheel directory when pip is configured with one, otherwise
from PyTorch's CPU index. Set LSTM_STATES_TORCH_INDEX to use another index (e.g. a CUDA one).
"""

import os
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"


def _pin(name: str) -> str:
    """``name==version`` as requirements.txt pins it: the one place each version is written."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].strip() == name:
            return line.split("#")[0].strip()
    sys.exit(f"requirements.txt pins no {name}")


TORCH = _pin("torch")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TRITON = "triton==3.6.0"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd, check=True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=check, cwd=ROOT).returncode


def setup(requirements: str) -> Path:
    if sys.version_info < (3, 10):
        sys.exit("lstm-states needs Python 3.10 or newer")
    if not venv_python().exists():
        try:
            import ensurepip  # noqa: F401  (venv needs it to put pip in .venv)
        except ImportError:
            sys.exit("this Python cannot create virtual environments with pip (no ensurepip);"
                     " on Debian/Ubuntu: sudo apt-get install python3-venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    py = venv_python()
    probe = subprocess.run([str(py), "-c", f"import torch, sys; sys.exit(torch.__version__.split('+')[0] != '{TORCH.split('==')[1]}')"],
                           capture_output=True)
    if probe.returncode != 0:
        index = os.environ.get("LSTM_STATES_TORCH_INDEX")
        # a local wheel (pip's find-links) first: no network, no CUDA build; its dependencies
        # then come from the usual index (torch itself is already satisfied)
        local = not index and subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", TORCH],
            capture_output=True, cwd=ROOT).returncode == 0
        if local:
            print(f"{TORCH} from a local wheel", flush=True)
            run(py, "-m", "pip", "install", TORCH)
        else:
            if not index:
                print(f"no local wheel of {TORCH}: taking the CPU build from {CPU_INDEX}", flush=True)
            run(py, "-m", "pip", "install", TORCH, "--index-url", index or CPU_INDEX)
    run(py, "-m", "pip", "install", "-r", requirements, "-e", ".")
    return py


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "lab":
        py = setup("requirements.txt")
        extra = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        os.execv(str(py), [str(py), "-m", "jupyterlab", "notebooks/", *extra, *sys.argv[2:]])
    elif what == "test":
        py = setup("requirements-test.txt")
        # tests/test_triton.py runs capture's GPU kernel on the CPU with Triton's interpreter;
        # CUDA builds of torch bring Triton with them, the CPU build does not
        has_triton = subprocess.run([str(py), "-c", "import triton"], capture_output=True).returncode == 0
        if not has_triton and platform.system() == "Linux" and platform.machine() == "x86_64":
            run(py, "-m", "pip", "install", TRITON, check=False)  # if it fails, those tests skip
        run(py, "-m", "ruff", "check", ".")
        sys.exit(run(py, "-m", "pytest", *sys.argv[2:], check=False))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
