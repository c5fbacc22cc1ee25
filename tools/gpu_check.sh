#!/usr/bin/env bash
# Every check that needs a GPU, as one run on a machine with CUDA, PyTorch, Triton, pytest,
# hypothesis, matplotlib and tqdm installed (the lent GPU machines' image has them all; nothing
# is installed here, the package is used from the checkout):
#
#     bash tools/gpu_check.sh            # logs in $OUT if set, else in ./gpu-check/
#
# 1. the CUDA tests (TF32 off in tests/conftest.py) with the core, Triton, record and property
#    tests (the widget, notebook and browser tests need Jupyter, which is not installed there),
# 2. python -m lstm_states.bench --device cuda (nn.LSTM, capture, h only, LSTMCell loop, same
#    run; then --edits),
# 3. notebook 06's code cells (its GPU cells run only where there is a GPU),
# 4. a profile of one capture call per configuration: where the GPU time goes.
# At most 470 s in all (each step has its own timeout). CI never has a GPU; there these skip.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 CI=true
py=${PYTHON:-python3}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$py" -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} 2>&1 | tee "$out/gpu.txt"

# addopts cleared: nbval and the notebooks are not needed here (and not installed)
timeout 200 "$py" -m pytest -o addopts="-ra" -p no:cacheprovider -q \
  tests/test_core.py tests/test_triton.py tests/test_graphs.py tests/test_record.py \
  tests/test_properties.py tests/test_bench.py tests/test_gru_rnn.py tests/test_edits.py tests/test_dropin.py \
  2>&1 | tee "$out/tests.txt"
tests=${PIPESTATUS[0]}

timeout 150 "$py" -m lstm_states.bench --device cuda --cell lstm gru rnn --repeat 20 2>&1 | tee "$out/bench.txt"
bench=${PIPESTATUS[0]}
timeout 60 "$py" -m lstm_states.bench --device cuda --edits --repeat 10 2>&1 | tee -a "$out/bench.txt"
[ "${PIPESTATUS[0]}" = 0 ] || bench=1

# notebook 06's GPU cells (flatten_parameters on cuDNN), without Jupyter (none is installed there)
MPLBACKEND=Agg timeout 60 "$py" tools/exec_notebook.py notebooks/06_flatten_parameters.ipynb \
  2>&1 | tee "$out/notebook06.txt"
nb06=${PIPESTATUS[0]}

timeout 60 "$py" - <<'EOF' 2>&1 | tee "$out/profile.txt"
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from lstm_states import capture
from lstm_states.bench import CONFIGS

torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
for T, B, I, H, L in CONFIGS:
    lstm = nn.LSTM(I, H, num_layers=L).cuda().eval()
    x = torch.randn(T, B, I, device="cuda")
    with torch.inference_mode():
        for _ in range(3):
            capture(lstm, x)
            lstm(x)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            capture(lstm, x)
            torch.cuda.synchronize()
            lstm(x)
            torch.cuda.synchronize()
    print(f"== (T, B, I, H, L) = {(T, B, I, H, L)}: one capture call, then one nn.LSTM call")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))
EOF

echo "tests exit $tests, bench exit $bench, notebook 06 exit $nb06" | tee -a "$out/gpu.txt"
[ "$tests" = 0 ] && [ "$bench" = 0 ] && [ "$nb06" = 0 ]
