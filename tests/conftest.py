import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# CI: derandomized, so every CI run draws the same 300 examples per property test and fails
# only when the code changes, never because a new draw found an old bug; no example database
# (a fresh clone has none anyway). Locally: new random examples on every run ("dev", 50 each;
# "search", 2,000 each, to hunt for counterexamples). A counterexample found becomes an
# @example on its test (docs/DEVELOPING.md).
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True,
                          database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("search", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _no_tf32():
    # exact float32 on CUDA: TF32 off for every test (matters only on a GPU), then restored
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
