#!/usr/bin/env bash
# The library's tests against other torch releases, each in its own venv outside the checkout
# (the claimed range in pyproject.toml is the range this has passed; docs/DEVELOPING.md has the
# results):
#
#     bash tools/torch_versions.sh 2.4.1 2.14.1        # one venv per release, one at a time
#     bash tools/torch_versions.sh 2.4.1 -- -x -k pack # pytest arguments after --
#
# Per release X.Y.Z: a venv $TORCH_VENVS/torch-X.Y.Z (default ~/venvs; reused when its torch is
# X.Y.Z) with torch==X.Y.Z from the package index (the Linux wheel and its CUDA libraries, about
# 5 GB; they load without a GPU), numpy (<2 before torch 2.3, whose wheels are built against
# numpy 1), hypothesis, pytest, pytest-timeout, matplotlib and tqdm; then the library tests
# (not the notebooks, widgets or browser) with PYTHONPATH=<checkout>, CI's derandomized
# hypothesis profile, addopts cleared (no nbval) and an hour per test, not CI's 600 s (torch 2.1
# takes twice 2.13's CPU time for the bit-identity sweep). The log is
# $TORCH_VENVS/torch-X.Y.Z/pytest.log; the last lines printed are one summary line per release.
# Slow (minutes to install, 20-40 minutes to test) and downloads GBs: not part of CI's normal
# run. PYTHON picks the interpreter for new venvs (default python3; torch 2.1 has wheels up to
# Python 3.11). Exit status 0 only if every release installed and passed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venvs=${TORCH_VENVS:-$HOME/venvs}
py=${PYTHON:-python3}
tests=(tests/test_core.py tests/test_dropin.py tests/test_record.py tests/test_edits.py
       tests/test_properties.py tests/test_bit_identity.py tests/test_gru_rnn.py)

versions=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do versions+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
extra=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  echo "usage: bash tools/torch_versions.sh X.Y.Z [X.Y.Z ...] [-- pytest args]" >&2
  exit 2
fi

summary=()
status=0
for v in "${versions[@]}"; do
  env="$venvs/torch-$v"
  start=$SECONDS
  have=$("$env/bin/python" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null)
  if [ "$have" != "$v" ]; then
    echo "== torch $v: new venv $env"
    mkdir -p "$venvs"
    "$py" -m venv --clear "$env" || { summary+=("torch $v: venv failed"); status=1; continue; }
    "$env/bin/pip" install -q --upgrade pip 2>&1 | grep -v "is ignored"
    # numpy 2 support (and its ABI) came with torch 2.3
    numpy="numpy"
    case "$v" in 2.0.*|2.1.*|2.2.*) numpy="numpy<2" ;; esac
    # (grep: this machine's pip config names local indexes that lack most packages)
    "$env/bin/pip" install -q "torch==$v" "$numpy" hypothesis pytest pytest-timeout \
      matplotlib tqdm 2>&1 | grep -v "is ignored"
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
      summary+=("torch $v: install failed")
      status=1
      continue
    fi
  else
    echo "== torch $v: reusing $env"
  fi
  installed=$(( SECONDS - start ))
  "$env/bin/python" -c "import sys, torch, numpy; print('python', sys.version.split()[0], \
'torch', torch.__version__, 'numpy', numpy.__version__, 'cpu', torch.backends.cpu.get_cpu_capability())"
  # the checkout's package, not an installed one
  ( cd "$repo" && PYTHONPATH="$repo" "$env/bin/python" -c \
      "import lstm_states, sys; assert lstm_states.__file__.startswith(sys.argv[1]), lstm_states.__file__" \
      "$repo" ) || { summary+=("torch $v: lstm_states does not import"); status=1; continue; }
  start=$SECONDS
  ( cd "$repo" && PYTHONPATH="$repo" HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} PYTHONDONTWRITEBYTECODE=1 \
      "$env/bin/python" -m pytest -o addopts="-ra" -p no:cacheprovider -q --timeout 3600 "${tests[@]}" \
      ${extra[@]+"${extra[@]}"} ) 2>&1 | tee "$env/pytest.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && status=1
  line=$(grep -E '(passed|failed|error|skipped).* in [0-9.]+s' "$env/pytest.log" | tail -1 | tr -d '=')
  summary+=("torch $v: ${line:-no pytest summary (rc $rc)} (install/reuse ${installed}s, tests $(( SECONDS - start ))s, log $env/pytest.log)")
done

echo
printf '%s\n' "${summary[@]}"
exit $status
