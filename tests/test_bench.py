"""The benchmark script runs end to end (tiny configurations; its timings are not checked)."""

import pytest

from lstm_states import bench


def test_bench_prints_a_row_per_configuration_and_the_geometric_mean(monkeypatch, capsys):
    monkeypatch.setattr(bench, "CONFIGS", [(6, 2, 3, 4, 2), (5, 3, 4, 5, 1)])
    bench.main(["--repeat", "2"])
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("(") and line[1].isdigit()]
    assert [r.split(")")[0] + ")" for r in rows] == ["(6, 2, 3, 4, 2)", "(5, 3, 4, 5, 1)"]
    table = []
    for row in rows:
        values = [float(v) for v in row.split(")")[1].split()]
        assert len(values) == 8 and all(v > 0 for v in values)  # 4 times (ms), 4 ratios
        lstm, full, h_only, cell, *ratios = values
        # the ratios are the printed times' own, to the rounding of times printed to 0.01 ms
        for ratio, time in zip(ratios, (full, h_only, cell), strict=False):
            slack = 0.005 + 0.005 * (1 + time / lstm) / max(lstm - 0.005, 1e-9)
            assert abs(ratio - time / lstm) <= slack, (ratio, time, lstm)
        table.append(ratios)
    assert out[-1].startswith("geometric mean")
    means = [float(v) for v in out[-1].split()[2:]]
    assert len(means) == 4
    for k in range(4):  # each geometric mean lies within its column
        column = [r[k] for r in table]
        assert min(column) - 0.01 <= means[k] <= max(column) + 0.01


def test_timeit_takes_turns():
    order = []
    best = bench.timeit([lambda: order.append("a"), lambda: order.append("b")],
                        bench.torch.device("cpu"), 3)
    assert order == ["a", "b"] * 4  # one warm-up round, then three timed rounds, interleaved
    assert len(best) == 2 and all(t >= 0 for t in best)


def test_cuda_without_a_gpu_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as info:
        bench.main(["--device", "cuda"])
    assert info.value.code == 2  # argparse's usage error, not any exit
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def test_memory_measures_peak_rss_in_fresh_processes():
    m = bench.memory((50, 4, 8, 16, 2))
    assert m["h_bytes"] == 2 * 50 * 4 * 16 * 4  # (L, D, T, B, H) float32
    assert m["lstm_peak"] >= 0 and m["capture_h_peak"] >= 0
    assert m["extra"] == m["capture_h_peak"] - m["lstm_peak"]


def test_edits_bench_prints_its_ratios(monkeypatch, capsys):
    monkeypatch.setattr(bench, "EDITS_CONFIG", (12, 2, 3, 4, 2))
    bench.main(["--edits", "--repeat", "2"])
    out = capsys.readouterr().out
    assert "one edit / capture without edits" in out and "edit at every step / LSTMCell" in out
    assert len([line for line in out.splitlines() if line.strip().endswith("x nn.LSTM")]) == 5
