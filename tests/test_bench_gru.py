"""The bench's nn.GRU and nn.RNN tables (tiny configurations; timings not checked) and
memory_bytes for GRU and RNN captures, against the tensors capture really returns."""

import pytest
import torch
from torch import nn

from lstm_states import (
    GRUStates,
    LayerwiseLSTM,
    LSTMStates,
    RNNStates,
    bench,
    capture,
    memory_bytes,
)


def tables(out: str):
    """{header line: [(config, 8 values)], ...} and the geometric-mean lines, in order."""
    found, means = {}, []
    rows = None
    for line in out.splitlines():
        if line.startswith("(T, B, I, H, L)"):
            rows = found[line] = []
        elif line.startswith("(") and line[1].isdigit():
            cfg, values = line.split(")")
            rows.append((cfg + ")", [float(v) for v in values.split()]))
        elif line.startswith("geometric mean"):
            means.append([float(v) for v in line.split()[2:]])
    return found, means


@pytest.fixture
def threads():
    """torch's thread count restored after a test that sets it (through --threads)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_one_table_per_kind_against_its_own_module_and_cell(monkeypatch, capsys, threads):
    monkeypatch.setattr(bench, "CONFIGS", [(6, 2, 3, 4, 2), (5, 3, 4, 5, 1)])
    bench.main(["--cell", "gru", "rnn", "lstm", "--repeat", "2", "--threads", "1"])
    assert torch.get_num_threads() == 1
    found, means = tables(capsys.readouterr().out)
    headers = list(found)
    assert len(headers) == 3 and len(means) == 3
    for header, module, cell in zip(headers, ("nn.GRU", "nn.RNN", "nn.LSTM"),
                                    ("GRUCell", "RNNCell", "LSTMCell"), strict=True):
        assert f"{module} ms" in header and f"{cell} ms" in header and f"capture/{cell}" in header
        others = {"nn.GRU", "nn.RNN", "nn.LSTM"} - {module}
        assert not any(o in header for o in others)
    for (header, rows), mean in zip(found.items(), means, strict=True):
        assert [cfg for cfg, _ in rows] == ["(6, 2, 3, 4, 2)", "(5, 3, 4, 5, 1)"]
        ratios = []
        for _, values in rows:
            assert len(values) == 8
            module, full, h_only, cell, *r = values
            assert min(module, full, h_only, cell) > 0 and min(r) >= 0
            for ratio, time in zip(r, (full, h_only, cell), strict=False):
                slack = 0.005 + 0.005 * (1 + time / module) / max(module - 0.005, 1e-9)
                assert abs(ratio - time / module) <= slack, (header, ratio, time, module)
            ratios.append(r)
        for k in range(4):  # each geometric mean lies within its column
            column = [r[k] for r in ratios]
            assert min(column) - 0.01 <= mean[k] <= max(column) + 0.01


def test_tiny_times_the_tiny_configurations(monkeypatch, capsys, threads):
    monkeypatch.setattr(bench, "CONFIGS", [(7, 2, 3, 4, 1)])
    monkeypatch.setattr(bench, "TINY_CONFIGS", [(4, 2, 3, 4, 1), (3, 1, 2, 3, 2)])
    bench.main(["--tiny", "--cell", "gru", "--repeat", "1", "--threads", "1"])
    found, _ = tables(capsys.readouterr().out)
    [(header, rows)] = found.items()
    assert "nn.GRU" in header and [c for c, _ in rows] == ["(4, 2, 3, 4, 1)", "(3, 1, 2, 3, 2)"]


@pytest.mark.parametrize("kind", ["gru", "rnn"])
def test_the_cell_loop_is_the_module(kind):
    """The loop timed against capture computes what the module does (its own weights)."""
    module, cells = bench.module_and_cells(3, 5, 2, torch.device("cpu"), kind)
    assert type(cells[0]) is bench.KINDS[kind][1]
    x = torch.randn(7, 2, 3)
    with torch.no_grad():
        h, c = bench.cell_loop(cells, x)
        out, h_n = module(x)
    assert c is None and h.shape == (2, 7, 2, 5)
    torch.testing.assert_close(h[-1], out)
    torch.testing.assert_close(h[:, -1], h_n)


@pytest.mark.parametrize("kind, result", [("gru", GRUStates), ("rnn", RNNStates),
                                          ("lstm", LSTMStates)])
def test_bench_times_the_kind_it_names(kind, result, monkeypatch):
    """What bench() times, called once each: the module, capture (everything, h only), the loop."""
    monkeypatch.setattr(bench, "timeit", lambda fns, device, repeat: [fn() for fn in fns])
    module_out, st, st_h, (h, c) = bench.bench(5, 2, 3, 4, 2, torch.device("cpu"), 1, kind)
    assert type(st) is result and type(st_h) is result and len(module_out) == 2
    assert torch.equal(module_out[0], st.output)  # the module's own output, same input
    assert (c is None) == (kind != "lstm")
    if kind == "gru":
        assert st.gates.shape == (2, 1, 3, 5, 2, 4) and st_h.gates is None
    torch.testing.assert_close(h, st.h[:, 0])


def test_a_wrong_cell_loop_fails_the_bench(monkeypatch):
    """bench() checks capture against the loop before timing: a loop off by a step is caught."""
    right = bench.cell_loop
    monkeypatch.setattr(bench, "cell_loop",
                        lambda cells, x: (right(cells, x)[0].roll(1, 1), None))
    with pytest.raises(AssertionError):
        bench.bench(5, 2, 3, 4, 2, torch.device("cpu"), 1, "gru")


@pytest.mark.parametrize("flag", ["--edits", "--memory"])
def test_edits_and_memory_are_the_lstms_only(flag, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main([flag, "--cell", "gru"])
    assert info.value.code == 2 and "nn.LSTM only" in capsys.readouterr().err


# --------------------------------------------------------------------------- memory_bytes


def kept_bytes(st) -> int:
    """The bytes of every per-step state a capture result keeps (None: not kept)."""
    kept = [getattr(st, f) for f in ("h", "c", "gates") if getattr(st, f, None) is not None]
    return sum(t.numel() * t.element_size() for t in kept)


CONFIGS = [  # kind, num_layers, bidirectional, kept layers, fields, dtype, (T, B, I, H)
    ("GRU", 1, False, None, None, torch.float32, (6, 3, 4, 7)),
    ("GRU", 3, True, [0, 2], None, torch.float64, (5, 2, 3, 4)),
    ("GRU", 2, True, None, ("h",), torch.float32, (4, 5, 2, 6)),
    ("GRU", 2, False, [1], ("gates",), torch.float16, (3, 2, 5, 8)),
    ("GRU", 2, True, [1, 0], ("h", "gates"), torch.bfloat16, (7, 1, 3, 5)),
    ("RNN", 1, False, None, None, torch.float32, (6, 3, 4, 7)),
    ("RNN", 3, True, [1], ("h",), torch.float64, (5, 4, 2, 3)),
    ("RNN_relu", 2, True, None, None, torch.float32, (4, 2, 3, 9)),
]


@pytest.mark.parametrize("kind, L, bidirectional, layers, fields, dtype, sizes", CONFIGS)
def test_memory_bytes_of_a_gru_or_rnn_capture(kind, L, bidirectional, layers, fields, dtype,
                                              sizes):
    T, B, I, H = sizes
    torch.manual_seed(0)
    if kind == "GRU":
        module = nn.GRU(I, H, num_layers=L, bidirectional=bidirectional)
    else:
        module = nn.RNN(I, H, num_layers=L, bidirectional=bidirectional,
                        nonlinearity="relu" if kind.endswith("relu") else "tanh")
    module = module.to(dtype)
    with torch.no_grad():
        st = capture(module, torch.randn(T, B, I, dtype=dtype), fields=fields, layers=layers)
    used = kept_bytes(st)
    assert used > 0
    D, kept = 1 + bidirectional, L if layers is None else len(layers)
    cell = "GRU" if kind == "GRU" else "RNN"
    assert memory_bytes(kept, D, T, B, H, dtype=dtype, fields=fields, cell=cell) == used
    # the module itself names the kind just as well, and the name in any case
    assert memory_bytes(kept, D, T, B, H, 0, dtype, fields=fields, cell=module) == used
    assert memory_bytes(kept, D, T, B, H, dtype=dtype, fields=fields, cell=cell.lower()) == used


@pytest.mark.parametrize("fields", [None, ("h",), ("c",), ("gates",), ("h", "c", "gates")])
def test_memory_bytes_is_unchanged_for_an_lstm(fields):
    """The LSTM's call as it was (positional, no cell=) and with cell= agree with capture."""
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 7, num_layers=3, bidirectional=True, proj_size=3)
    with torch.no_grad():
        st = capture(lstm, torch.randn(6, 2, 4), fields=fields, layers=[0, 2])
    used = kept_bytes(st)
    args = (2, 2, 6, 2, 7, 3, torch.float32)
    if fields is None:
        assert memory_bytes(*args) == used
    for cell in ("LSTM", lstm, LayerwiseLSTM(4, 7, num_layers=3, proj_size=3)):
        assert memory_bytes(*args, fields=fields, cell=cell) == used


def test_memory_bytes_refuses_what_the_cell_has_not():
    with pytest.raises(ValueError, match="no cell state 'c'"):
        memory_bytes(1, 1, 5, 2, 4, fields=("h", "c"), cell="GRU")
    with pytest.raises(ValueError, match="no gates"):
        memory_bytes(1, 1, 5, 2, 4, fields=("gates",), cell="RNN")
    with pytest.raises(ValueError, match="proj_size is an nn.LSTM's"):
        memory_bytes(1, 1, 5, 2, 4, proj_size=2, cell="GRU")
    with pytest.raises(ValueError, match="cell must be"):
        memory_bytes(1, 1, 5, 2, 4, cell="LSTMCell")
    with pytest.raises(TypeError, match="got GRUCell"):
        memory_bytes(1, 1, 5, 2, 4, cell=nn.GRUCell(3, 4))


def test_the_readmes_counts():
    """README and DEVELOPING: a GRU keeps L*D*T*B*4*H numbers, an RNN L*D*T*B*H."""
    L, D, T, B, H = 2, 2, 1000, 64, 256
    assert memory_bytes(L, D, T, B, H, cell="GRU") == L * D * T * B * 4 * H * 4
    assert memory_bytes(L, D, T, B, H, dtype=torch.float64, cell="RNN") == L * D * T * B * H * 8
    assert memory_bytes(L, D, T, B, H) == L * D * T * B * (H + 5 * H) * 4
