"""The README: its code runs and does what its comments say, its claims hold for nn.LSTM, its
links resolve, and its picture is what tools/readme_figure.py draws today."""

import importlib.util
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _run(block):
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    return scope


def test_the_readme_has_its_two_code_blocks():
    assert len(BLOCKS) >= 2
    assert "load_state_dict" in BLOCKS[0] and "capture(lstm, x)" in BLOCKS[1]


def test_the_no_dependency_answer_gives_every_layer():
    torch.manual_seed(0)
    scope = _run(BLOCKS[0])
    lstm, x, h = scope["lstm"], scope["x"], scope["h"]
    output, (h_n, c_n) = lstm(x)  # autograd on, as in the block
    assert h.shape == (2, 50, 4, 16)
    assert torch.equal(h[-1], output)  # "h[-1] is lstm(x)[0]", bit for bit on the CPU
    assert torch.equal(h[:, -1], h_n)  # and every layer's last step is h_n
    assert not torch.allclose(h[0], output, atol=1e-3)  # layer 0 is something else


def _snippet(lstm, x):
    """The README's package-free block run on this lstm and x (its own two example lines out)."""
    body = "\n".join(line for line in BLOCKS[0].splitlines()
                     if not line.startswith(("lstm = ", "x = ")))
    scope = {"lstm": lstm, "x": x}
    exec(compile(body, "README.md", "exec"), scope)
    return scope["h"]


# what the README says the snippet holds for: every nn.LSTM option, float64, training mode with
# dropout (seeded alike), unbatched input
CONFIGS = [dict(bias=bias, batch_first=bf, bidirectional=bi, proj_size=proj)
           for bias in (True, False) for bf in (False, True) for bi in (False, True)
           for proj in (0, 3)]


@pytest.mark.filterwarnings("ignore:LSTM with projections")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train-dropout"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_the_no_dependency_answer_holds_where_the_readme_says(config, train, dtype):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 6, num_layers=3, dtype=dtype, dropout=0.4 * train, **config).train(train)
    T, B, D, H_out = 7, 4, 1 + config["bidirectional"], config["proj_size"] or 6
    x = torch.randn(B, T, 5, dtype=dtype) if config["batch_first"] else torch.randn(T, B, 5, dtype=dtype)
    torch.manual_seed(1)
    with torch.no_grad():
        output, (h_n, _) = lstm(x)
    torch.manual_seed(1)  # seeded alike: the same dropout masks on the CPU
    with torch.no_grad():
        h = _snippet(lstm, x)
    assert h.shape == (3, *output.shape) and h.dtype == dtype
    assert torch.equal(h[-1], output)  # h[-1] is lstm(x)[0], bit for bit
    h_t = h.transpose(1, 2) if config["batch_first"] else h  # (L, T, B, D*H_out)
    h_last = [h_t[:, -1, :, :H_out], h_t[:, 0, :, H_out:]][:D]  # forward ends at T-1, reverse at 0
    assert torch.equal(torch.stack(h_last, dim=1).flatten(0, 1), h_n)  # every layer's h_n row


def test_the_no_dependency_answer_unbatched_shared_and_refusing_packed_input():
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(0)
    lstm = nn.LSTM(5, 6, num_layers=2).eval()
    x = torch.randn(7, 5)  # unbatched (T, I)
    h = _snippet(lstm, x)
    output, (h_n, _) = lstm(x)
    assert h.shape == (2, 7, 6) and torch.equal(h[-1], output) and torch.equal(h[:, -1], h_n)
    h.sum().backward()  # "shared, not copied: gradients reach them"
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lstm.parameters())
    packed = pack_padded_sequence(torch.randn(7, 2, 5), torch.tensor([7, 4]))
    with pytest.raises(AttributeError):  # "not for packed input": it fails, loudly
        _snippet(lstm, packed)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("config", CONFIGS[::2], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_the_no_dependency_answer_on_a_gpu(config):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 6, num_layers=3, device="cuda", **config).eval()
    x = torch.randn(4, 7, 5, device="cuda")  # (B, T, I) or (T, B, I): both are valid shapes
    with torch.no_grad():
        output, _ = lstm(x)
        h = _snippet(lstm, x)
    assert h.device.type == "cuda"
    torch.testing.assert_close(h[-1], output)  # within float tolerance: cuDNN


def test_the_table_of_what_to_read():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2)
    x, lengths = torch.randn(6, 2, 3), torch.tensor([6, 3])
    output, (h_n, _) = lstm(x)
    torch.testing.assert_close(h_n[-1], output[-1])  # one length, one direction
    out_packed, (h_n_packed, _) = lstm(pack_padded_sequence(x, lengths, enforce_sorted=False))
    padded, _ = pad_packed_sequence(out_packed)
    torch.testing.assert_close(h_n_packed[-1, 1], padded[2, 1])  # sequence 1's own last step
    assert not torch.allclose(output[-1, 1], h_n_packed[-1, 1], atol=1e-3)  # read the padding
    assert not padded[-1, 1].any()  # unpacked packed output: zeros past the end
    bi = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    output, (h_n, _) = bi(x)
    both = torch.cat([h_n[-2], h_n[-1]], dim=-1)
    torch.testing.assert_close(both, torch.cat([output[-1, :, :5], output[0, :, 5:]], dim=-1))
    assert not torch.allclose(both, output[-1], atol=1e-3)  # output[-1] is not it


def test_the_package_answer_returns_what_nn_lstm_returns():
    torch.manual_seed(0)
    scope = _run(BLOCKS[1])
    lstm, x, st = scope["lstm"], scope["x"], scope["st"]
    output, (h_n, c_n) = lstm(x)
    assert torch.equal(scope["output"], output)  # bit for bit, as the README says
    assert torch.equal(scope["h_n"], h_n) and torch.equal(scope["c_n"], c_n)
    assert st.h.shape == (2, 1, 50, 4, 16) and st.c.shape == (2, 1, 50, 4, 16)
    assert st.gates.shape == (2, 1, 4, 50, 4, 16)
    torch.testing.assert_close(st.h[-1, 0], output)


def test_the_short_answer_about_the_reverse_direction():
    # "for the top layer h_n[-1] equals output[0, :, H_out:], time-major"
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    output, (h_n, c_n) = lstm(torch.randn(7, 2, 3))
    torch.testing.assert_close(h_n[-1], output[0, :, 5:])
    torch.testing.assert_close(h_n[-2], output[-1, :, :5])
    assert not torch.allclose(h_n[-1], output[-1, :, 5:], atol=1e-3)


def test_the_readme_links_resolve():
    targets = re.findall(r"\]\(([^)#\s]+)\)", README)
    local = [t for t in targets if not t.startswith("http")]
    assert "docs/DEVELOPING.md" in local and "docs/images/returns_grid.png" in local
    for target in local:
        assert (ROOT / target).exists(), target
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"notebooks/{notebook.name}" in README, notebook.name  # every chapter listed
    developing = (ROOT / "docs" / "DEVELOPING.md").read_text(encoding="utf-8")
    assert "../README.md" in developing and "tools/readme_figure.py" in developing


def _load_tool():
    spec = importlib.util.spec_from_file_location("readme_figure",
                                                  ROOT / "tools" / "readme_figure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_picture_is_current():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    tool = _load_tool()
    try:
        fresh = mpimg.imread(io.BytesIO(tool.png()), format="png")
    finally:
        plt.close("all")
    stored = mpimg.imread(tool.IMAGE)
    assert fresh.shape == stored.shape, "the picture changed size: run tools/readme_figure.py"
    changed = np.abs(fresh - stored).max(axis=-1) > 0.1  # pixels that differ visibly
    assert changed.mean() < 0.001, (
        f"{changed.mean():.2%} of the README picture differs: run tools/readme_figure.py")


def test_the_readme_picture_is_the_notebook_figure():
    # the arguments of notebook 01's bidirectional picture
    nb = (ROOT / "notebooks" / "01_what_nn_lstm_returns.ipynb").read_text(encoding="utf-8")
    assert "plot_output_grid(num_layers=L, bidirectional=True, steps=T, hidden_size=H," in nb
    assert "seen_from=0" in nb
    assert _load_tool().ARGS == dict(num_layers=2, bidirectional=True, steps=6, hidden_size=4,
                                     seen_from=0)
    scope = re.search(r"T, B, I, H = (\d+), (\d+), (\d+), (\d+)", nb)
    assert (int(scope[1]), int(scope[4])) == (6, 4) and "L = 2" in nb


def test_the_edit_example_runs_and_edits():
    import textwrap

    from lstm_states import capture

    block = next(b for b in BLOCKS if "Edit(" in b)

    class Model(nn.Module):  # a model with an nn.LSTM called "lstm", as the example assumes
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 8)
            self.lstm = nn.LSTM(8, 40, num_layers=2)

        def forward(self, tokens):
            return self.lstm(self.embed(tokens))[0]

    torch.manual_seed(0)
    lstm = nn.LSTM(8, 40, num_layers=2)
    scope = {"lstm": lstm, "x": torch.randn(120, 3, 8), "model": Model(),
             "tokens": torch.randint(0, 20, (10, 2))}
    exec(compile("from lstm_states import Edit, capture, record\n" + textwrap.dedent(block),
                 "README.md", "exec"), scope)
    st, rec = scope["st"], scope["rec"]
    assert (st.c[0, 0, 100:, :, 33] == 0).all() and (st.c[0, 0, :100, :, 33] != 0).all()
    assert not torch.allclose(st.output, capture(lstm, scope["x"]).output)
    assert (rec.one("lstm").gate("f")[1, 0, 7] == 0).all()


def test_the_exactness_paragraph():
    from lstm_states import capture
    from lstm_states.core import choose_route

    torch.manual_seed(0)
    lstm = nn.LSTM(8, 256, num_layers=2).eval()
    x = torch.randn(5, 16, 8)  # batch x hidden size = 4096
    assert choose_route(lstm, x) == "autograd"  # autograd on: the kernel, through autograd
    with torch.no_grad():
        # "without autograd, when c or the gates are kept and batch x hidden size is 4096 or
        # more, capture computes each layer step by step"
        assert choose_route(lstm, x) == "stepwise"
        assert choose_route(lstm, x[:, :15]) == "kernel"
        assert choose_route(lstm, x, fields=("h",)) == "kernel"
        output, (h_n, c_n) = lstm(x)
        torch.testing.assert_close(tuple(capture(lstm, x)), (output, (h_n, c_n)))
        kernel = capture(lstm, x, route="kernel")  # "keeps the bit-for-bit way"
        assert torch.equal(kernel.output, output) and torch.equal(kernel.h_n, h_n)
        assert torch.equal(kernel.c_n, c_n)
