"""End-to-end benchmarks: `python -m bench.e2e.run [--suite NAME ...]` writes one JSON under bench/results/.

On the GPU machine (from the repository root, after `pip install --no-deps -e .`):

    python -m bench.e2e.run
        every suite (ddgan_sampling, iddpm_sampling, training_step) at the official recipes' sizes, each
        workload as eager / eager+kernels / compiled / compiled+graphs in fp32 and bf16; writes
        bench/results/e2e-<device>-<date>.json (device name, versions, date inside). Roughly 30-40 minutes on
        an H100, most of it Inductor compiling NCSN++ and the UNet once per batch size and precision. Where a
        session limits a command's time, run the parts separately (each writes its own file), e.g.
            python -m bench.e2e.run -k ddgan_cifar10_latency       (the issue's goal: 100 images, 4 steps)
            python -m bench.e2e.run -k ddgan_cifar10_throughput
            python -m bench.e2e.run -k ddgan_celeba256
            python -m bench.e2e.run --suite iddpm_sampling
            python -m bench.e2e.run --suite training_step
    python -m bench.e2e.report bench/results/e2e-<device>-<date>.json
        the markdown table (.md) and the PNG plot (.png) beside the JSON; the README's performance section
        comes from these files.

Nsight Systems over the sampling suite, with ddx's NVTX ranges (sample/step_<i>, sample/generator,
sample/posterior, sample/replay):

    nsys profile -t cuda,nvtx -o ddgan_sampling python -m bench.e2e.run --suite ddgan_sampling --nvtx

Without CUDA the suites run at tiny sizes (scaled-down models, batch 2) in the variants a CPU can run, and
every other row says why it did not run ("needs a CUDA GPU"); compiled rows need --cpu-compile there.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import sys

import torch

from bench.e2e import bench_ddgan_sampling, bench_iddpm_sampling, bench_training_step, goals
from bench.e2e.common import RunSettings
from bench.harness import environment_info
from ddx import profiling

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUITES = {
    "ddgan_sampling": bench_ddgan_sampling.run,
    "iddpm_sampling": bench_iddpm_sampling.run,
    "training_step": bench_training_step.run,
}


def device_info():
    """bench.harness.environment_info plus what a reader of GPU numbers needs (memory, capability, cuDNN)."""
    info = environment_info()
    info["cpu_count"] = os.cpu_count()
    info["platform"] = platform.platform()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info.update(gpu_memory_gb=round(props.total_memory / 2**30, 1), capability=f"{props.major}.{props.minor}",
                    sm_count=props.multi_processor_count, cudnn=torch.backends.cudnn.version())
    return info


def result_path(results_dir, device_name):
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-").lower()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path(results_dir) / f"e2e-{slug}-{stamp}.json"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", choices=sorted(SUITES), help="run only these suites (repeatable)")
    parser.add_argument("-k", dest="only", action="append", default=[],
                        help="run only workloads whose name contains this text (repeatable), e.g. -k ddgan_cifar10_latency")
    parser.add_argument("--tiny", action="store_true", help="scaled-down models and batches (the default without CUDA)")
    parser.add_argument("--cpu-compile", action="store_true", help="also run the compiled variants on the CPU (slow)")
    parser.add_argument("--nvtx", action="store_true", help="emit ddx's NVTX ranges (for nsys)")
    parser.add_argument("--results-dir", default=str(ROOT / "results"))
    parser.add_argument("--out", default=None, help="the JSON file to write (default: results-dir/e2e-<device>-<date>.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    settings = RunSettings(device=torch.device("cuda" if cuda else "cpu"), tiny=args.tiny or not cuda,
                           cpu_compile=args.cpu_compile, only=tuple(args.only))
    if not cuda:
        print("no CUDA GPU: tiny models only; eager+kernels and compiled+graphs need a GPU and are reported as skipped")
    profiling.enable(args.nvtx)
    info = device_info()
    suites = args.suite or list(SUITES)
    started = datetime.datetime.now().astimezone()
    rows, checks = [], {}
    for name in suites:
        print(f"{name}:", flush=True)
        rows += SUITES[name](settings)
    if "ddgan_sampling" in suites and settings.selects(bench_ddgan_sampling.CHECKED_WORKLOAD):
        try:
            checks["ddgan_graphs"] = bench_ddgan_sampling.graph_checks(settings)
        except Exception as err:  # recorded: the table still renders
            checks["ddgan_graphs"] = {"error": f"{type(err).__name__}: {str(err)[:500]}"}
    document = {
        "kind": "e2e",
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.e2e.run", *(argv if argv is not None else sys.argv[1:])]),
        "environment": info,
        "settings": {"device": str(settings.device), "tiny": settings.tiny, "cpu_compile": settings.cpu_compile,
                     "suites": suites, "only": list(settings.only)},
        "rows": rows,
        "checks": checks,
        "goals": goals.evaluate(rows, info["device"]),
    }
    out = pathlib.Path(args.out) if args.out else result_path(args.results_dir, info["device"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2))
    print(f"results: {out}\nrender: python -m bench.e2e.report {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
