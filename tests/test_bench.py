"""The benchmark script runs end to end (tiny configurations; its timings are not checked)."""

import pytest

from lstm_states import bench


def test_bench_prints_a_row_per_configuration_and_the_geometric_mean(monkeypatch, capsys):
    monkeypatch.setattr(bench, "CONFIGS", [(6, 2, 3, 4, 2), (5, 3, 4, 5, 1)])
    bench.main(["--repeat", "2"])
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("(") and line[1].isdigit()]
    assert [r.split(")")[0] + ")" for r in rows] == ["(6, 2, 3, 4, 2)", "(5, 3, 4, 5, 1)"]
    for row in rows:
        values = [float(v) for v in row.split(")")[1].split()]
        assert len(values) == 5 and all(v > 0 for v in values)  # 3 times (ms), 2 ratios
    ratios = [float(line.split()[-2]) for line in rows]
    mean = float(out[-1].split()[-2])
    assert out[-1].startswith("geometric mean")
    assert min(ratios) <= mean <= max(ratios)


def test_timeit_takes_turns():
    order = []
    best = bench.timeit([lambda: order.append("a"), lambda: order.append("b")],
                        bench.torch.device("cpu"), 3)
    assert order == ["a", "b"] * 4  # one warm-up round, then three timed rounds, interleaved
    assert len(best) == 2 and all(t >= 0 for t in best)


def test_cuda_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        bench.main(["--device", "cuda"])
