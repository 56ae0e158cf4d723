"""bench/e2e without running the suites: skips on a CPU, error rows, the goals and the report (markdown + PNG)."""

import json

import pytest
import torch
from PIL import Image

from bench.e2e import goals, report
from bench.e2e.common import RunSettings, Variant, run_row, skip_reason
from ddx.execution import Precision

CPU = RunSettings(device=torch.device("cpu"), tiny=True)


@pytest.mark.parametrize(
    "variant, expected",
    [(Variant.EAGER, None), (Variant.KERNELS, "needs a CUDA GPU"), (Variant.COMPILED, "--cpu-compile"),
     (Variant.GRAPHS, "needs a CUDA GPU")],
    ids=[v.value for v in Variant],
)
def test_cpu_skips_say_why(variant, expected):
    reason = skip_reason(variant, CPU)
    assert reason is None if expected is None else expected in reason


def test_cpu_compile_flag_runs_compiled_rows():
    assert skip_reason(Variant.COMPILED, RunSettings(device=torch.device("cpu"), tiny=True, cpu_compile=True)) is None


def test_failing_row_is_recorded_not_raised():
    def broken():
        raise RuntimeError("out of memory")

    r = run_row("w", Variant.EAGER, Precision.FP32, CPU, broken, batch=3)
    assert r["status"] == "error: RuntimeError: out of memory" and r["batch"] == 3


def test_skipped_row_is_not_run():
    r = run_row("w", Variant.GRAPHS, Precision.BF16, CPU, lambda: pytest.fail("must not run"), batch=3)
    assert r["status"] == "skipped: needs a CUDA GPU"


def _rows():
    ms = {"eager": 60.0, "eager+kernels": 30.0, "compiled": 20.0, "compiled+graphs": 12.0}
    rows = []
    for precision, scale in (("fp32", 1.0), ("bf16", 0.5)):
        for variant, value in ms.items():
            rows.append({"workload": goals.LATENCY_WORKLOAD, "variant": variant, "precision": precision, "batch": 100,
                         "status": "ok", "ms": value * scale, "images_per_s": 100 / (value * scale * 1e-3),
                         "peak_mem_mb": 900.0})
    rows.append({"workload": "ddgan_celeba256", "variant": "compiled+graphs", "precision": "fp32", "batch": 1,
                 "status": "error: RuntimeError: boom"})
    return rows


def test_goals_on_an_h100():
    result = goals.evaluate(_rows(), "NVIDIA H100 80GB HBM3")
    assert result["latency_bf16_ms"] == 6.0 and result["eager_fp32_ms"] == 60.0
    assert result["speedup"] == pytest.approx(10.0)
    assert result["meets_ms_goal"] and result["meets_speedup_goal"] and result["note"] is None


def test_ms_goal_is_not_judged_off_an_h100():
    result = goals.evaluate(_rows(), "NVIDIA H200")
    assert result["meets_ms_goal"] is None and "H200" in result["note"]


def _document(rows, device="NVIDIA H100 80GB HBM3"):
    return {
        "kind": "e2e", "date": "2026-01-01T00:00:00+00:00", "command": "python -m bench.e2e.run",
        "environment": {"device": device, "torch": "2.11.0", "triton": "3.6.0", "python": "3.12"},
        "settings": {"device": "cuda", "tiny": False}, "rows": rows,
        "checks": {"ddgan_graphs": {"fresh_samples_each_call": True, "same_seed_same_samples": True}},
        "goals": goals.evaluate(rows, device),
    }


def test_report_renders_markdown_and_png(tmp_path):
    document = _document(_rows())
    source = tmp_path / "e2e-h100.json"
    source.write_text(json.dumps(document))
    assert report.main([str(source)]) == 0
    text = (tmp_path / "e2e-h100.md").read_text()
    assert "| ddgan_cifar10_latency | 100 | fp32 | 60.00 | 30.00 | 20.00 | 12.00 | 5.00x (compiled+graphs) |" in text
    assert "| ddgan_cifar10_latency | 100 | bf16 | 30.00 | 15.00 | 10.00 | 6.00 | 10.00x (compiled+graphs) |" in text
    assert "6.00 ms (goal <= 15 ms on an H100: met)" in text
    assert "error: RuntimeError: boom: 1 rows" in text
    with Image.open(tmp_path / "e2e-h100.png") as image:
        assert image.size[0] > 500 and image.size[1] > 100


def test_report_rejects_other_files(tmp_path):
    source = tmp_path / "kernels.json"
    source.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(SystemExit):
        report.main([str(source)])


def test_report_merges_runs_of_one_device(tmp_path):
    rows = _rows()
    first, second = tmp_path / "latency.json", tmp_path / "celeba.json"
    first.write_text(json.dumps(_document(rows[:-1])))
    second.write_text(json.dumps(_document(rows[-1:])))
    assert report.main([str(first), str(second)]) == 0
    text = (tmp_path / "latency.md").read_text()
    assert "6.00 ms (goal <= 15 ms on an H100: met)" in text and "error: RuntimeError: boom: 1 rows" in text


def test_report_refuses_to_merge_devices(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(_document(_rows())))
    second.write_text(json.dumps(_document(_rows(), device="NVIDIA H200")))
    with pytest.raises(SystemExit):
        report.main([str(first), str(second)])
