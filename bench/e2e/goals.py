"""The issue's goals for few-step sampling, evaluated on a run's rows.

CIFAR-10 recipe, 100 images, 4 steps (ddgan_cifar10_latency): at most 15 ms in bf16 on an H100, and at
least 3x faster than the eager fp32 path of the same code in the same run.
"""

LATENCY_WORKLOAD = "ddgan_cifar10_latency"
GOAL_MS = 15.0
GOAL_SPEEDUP = 3.0
GOAL_DEVICE = "H100"


def _ms(rows, workload, variant, precision):
    for r in rows:
        if (r["workload"], r["variant"], r["precision"]) == (workload, variant, precision) and r.get("status") == "ok":
            return r["ms"]
    return None


def evaluate(rows, device_name):
    """{"latency_bf16_ms", "eager_fp32_ms", "speedup", "meets_ms_goal", "meets_speedup_goal", "note"}; None where not measured."""
    best = _ms(rows, LATENCY_WORKLOAD, "compiled+graphs", "bf16")
    eager = _ms(rows, LATENCY_WORKLOAD, "eager", "fp32")
    speedup = eager / best if best and eager else None
    on_goal_device = GOAL_DEVICE in (device_name or "")
    return {
        "workload": LATENCY_WORKLOAD,
        "latency_bf16_ms": best,
        "eager_fp32_ms": eager,
        "speedup": speedup,
        "goal_ms": GOAL_MS,
        "goal_speedup": GOAL_SPEEDUP,
        "meets_ms_goal": None if best is None or not on_goal_device else best <= GOAL_MS,
        "meets_speedup_goal": None if speedup is None else speedup >= GOAL_SPEEDUP,
        "note": None if on_goal_device else f"the {GOAL_MS:g} ms goal is set for an {GOAL_DEVICE}; this run is on {device_name}",
    }
