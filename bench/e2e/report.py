"""Render end-to-end results: `python -m bench.e2e.report bench/results/e2e-<device>-<date>.json [more.json ...]`.

Several files (suites run one by one on one device) render as one table, named after the first file.

Writes <file>.md (the environment, the goals, one table row per workload x batch x precision with the
four variants' milliseconds side by side, speedups over eager fp32, peak memory, the CUDA-graph checks,
and why rows did not run) and <file>.png (horizontal bars, log-scaled time, drawn with PIL: matplotlib is
not a dependency). --out-dir puts both elsewhere.
"""

import argparse
import json
import math
import pathlib
import sys

from PIL import Image, ImageDraw, ImageFont

from bench.e2e import goals

VARIANTS = ("eager", "eager+kernels", "compiled", "compiled+graphs")
COLORS = {"eager": (150, 150, 150), "eager+kernels": (78, 121, 167), "compiled": (242, 142, 43),
          "compiled+graphs": (89, 161, 79)}


def load(path):
    document = json.loads(pathlib.Path(path).read_text())
    if document.get("kind") != "e2e" or "rows" not in document:
        raise ValueError(f"{path} is not a bench.e2e.run result (no kind 'e2e' with rows)")
    return document


def merge(documents):
    """One document of several runs' rows (e.g. the suites run one by one); they must share a device."""
    first = documents[0]
    devices = {d["environment"]["device"] for d in documents}
    if len(devices) > 1:
        raise ValueError(f"the result files come from different devices: {sorted(devices)}")
    if len(documents) == 1:
        return first
    rows = [r for d in documents for r in d["rows"]]
    checks = {k: v for d in documents for k, v in (d.get("checks") or {}).items()}
    settings = dict(first["settings"], tiny=any(d["settings"]["tiny"] for d in documents))
    return dict(first, rows=rows, checks=checks, settings=settings,
                command="; ".join(d["command"] for d in documents),
                goals=goals.evaluate(rows, first["environment"]["device"]))


def groups(rows):
    """{(workload, batch, precision): {variant: row}} in the order the rows were run."""
    table = {}
    for r in rows:
        table.setdefault((r["workload"], r.get("batch"), r["precision"]), {})[r["variant"]] = r
    return table


def _ok_ms(r):
    return r["ms"] if r is not None and r.get("status") == "ok" else None


def _baselines(table):
    """{(workload, batch): eager fp32 ms}: the denominator of every speedup."""
    return {(w, b): _ok_ms(v.get("eager")) for (w, b, p), v in table.items() if p == "fp32"}


def _cell(r):
    if r is None:
        return "—"
    if r.get("status") != "ok":
        return "skipped" if r["status"].startswith("skipped") else "error"
    return f"{r['ms']:.2f}"


def _best(variants):
    done = [r for r in variants.values() if _ok_ms(r) is not None]
    return min(done, key=lambda r: r["ms"]) if done else None


def results_table(table):
    baselines = _baselines(table)
    lines = ["| workload | batch | precision | " + " | ".join(f"{v} (ms)" for v in VARIANTS)
             + " | best vs eager fp32 | images/s (best) | peak MiB (best) |",
             "|" + "---|" * (len(VARIANTS) + 6)]
    for (workload, batch, precision), variants in table.items():
        best = _best(variants)
        base = baselines.get((workload, batch))
        speedup = f"{base / best['ms']:.2f}x ({best['variant']})" if best and base else "—"
        rate = f"{best['images_per_s']:.3g}" if best and best.get("images_per_s") else "—"
        peak = f"{best['peak_mem_mb']:.0f}" if best and best.get("peak_mem_mb") is not None else "—"
        cells = " | ".join(_cell(variants.get(v)) for v in VARIANTS)
        batch_cell = batch if batch is not None else "—"
        lines.append(f"| {workload} | {batch_cell} | {precision} | {cells} | {speedup} | {rate} | {peak} |")
    return lines


def _goal_lines(goals):
    if not goals:
        return []
    def fmt(value, unit=""):
        return "not measured" if value is None else f"{value:.2f}{unit}"
    verdict = {True: "met", False: "missed", None: "not evaluated"}
    lines = ["## Goal: CIFAR-10 recipe, 100 images, 4 steps", "",
             f"- compiled+graphs bf16: {fmt(goals['latency_bf16_ms'], ' ms')} (goal <= {goals['goal_ms']:g} ms on an H100: "
             f"{verdict[goals['meets_ms_goal']]})",
             f"- eager fp32: {fmt(goals['eager_fp32_ms'], ' ms')}; speedup {fmt(goals['speedup'], 'x')} "
             f"(goal >= {goals['goal_speedup']:g}x: {verdict[goals['meets_speedup_goal']]})"]
    if goals.get("note"):
        lines.append(f"- {goals['note']}")
    return lines + [""]


def _status_lines(rows):
    reasons = {}
    for r in rows:
        if r.get("status") != "ok":
            reasons.setdefault(r["status"], []).append(f"{r['workload']} {r['precision']} {r['variant']}")
    lines = []
    for status, where in reasons.items():
        lines.append(f"- {status}: {len(where)} rows (e.g. {where[0]})")
    return ["## Rows that did not run", "", *lines, ""] if lines else []


def markdown(document):
    env = document["environment"]
    cuda = document["settings"]["device"].startswith("cuda")
    versions = ", ".join(f"{k} {env[k]}" for k in ("torch", "triton", "cuda", "python") if env.get(k))
    lines = [f"# End-to-end benchmarks on {env['device']}", "",
             f"{versions}; run {document['date']}; `{document['command']}`"
             + ("; tiny models" if document["settings"]["tiny"] else "") + ("" if cuda else " (no GPU)"), "",
             f"Milliseconds per call (median of {'CUDA-event' if cuda else 'wall-clock'} "
             "timings after warm-up): a sampling call draws the whole batch through every step; a training call "
             "is one iteration.", ""]
    lines += _goal_lines(document.get("goals"))
    lines += ["## Results", "", *results_table(groups(document["rows"])), ""]
    checks = document.get("checks") or {}
    if checks:
        lines += ["## CUDA-graph checks", ""]
        for name, values in checks.items():
            lines += [f"- {name}: " + ", ".join(f"{k} = {v}" for k, v in values.items())]
        lines.append("")
    lines += _status_lines(document["rows"])
    return "\n".join(lines)


def _font():
    return ImageFont.load_default()


def plot(document, path):
    """Horizontal bars: one group per workload x batch x precision, one bar per variant, log-scaled ms."""
    table = [(key, v) for key, v in groups(document["rows"]).items() if any(_ok_ms(r) for r in v.values())]
    font = _font()
    bar_h, gap, label_w, width, top = 12, 14, 330, 1100, 60
    height = top + len(table) * (len(VARIANTS) * bar_h + gap) + 40
    image = Image.new("RGB", (width, max(height, 140)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), f"ddx end-to-end, {document['environment']['device']} (ms per call, log scale)", fill="black", font=font)
    for i, variant in enumerate(VARIANTS):
        x = 10 + i * 200
        draw.rectangle([x, 30, x + 14, 42], fill=COLORS[variant])
        draw.text((x + 20, 30), variant, fill="black", font=font)
    times = [_ok_ms(r) for _, v in table for r in v.values() if _ok_ms(r)]
    if not times:
        draw.text((10, top), "no measured rows", fill="black", font=font)
        image.save(path)
        return
    low, high = math.log10(min(times)) - 0.1, math.log10(max(times)) + 0.1
    span = width - label_w - 90
    y = top
    for (workload, batch, precision), variants in table:
        draw.text((10, y + bar_h), f"{workload} b{batch} {precision}", fill="black", font=font)
        for i, variant in enumerate(VARIANTS):
            ms = _ok_ms(variants.get(variant))
            y0 = y + i * bar_h
            if ms is None:
                draw.text((label_w, y0), "not run", fill=(160, 160, 160), font=font)
                continue
            length = max(2, int(span * (math.log10(ms) - low) / (high - low)))
            draw.rectangle([label_w, y0, label_w + length, y0 + bar_h - 2], fill=COLORS[variant])
            draw.text((label_w + length + 4, y0), f"{ms:.2f}", fill="black", font=font)
        y += len(VARIANTS) * bar_h + gap
    image.save(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="JSON files written by python -m bench.e2e.run (one device)")
    parser.add_argument("--out-dir", default=None, help="where to write the .md and .png (default: beside the first JSON)")
    args = parser.parse_args(argv)
    source = pathlib.Path(args.results[0])
    try:
        document = merge([load(path) for path in args.results])
    except (OSError, ValueError) as err:
        parser.error(str(err))
    out_dir = pathlib.Path(args.out_dir) if args.out_dir else source.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png = out_dir / f"{source.stem}.md", out_dir / f"{source.stem}.png"
    md.write_text(markdown(document) + "\n")
    plot(document, png)
    print(f"wrote {md}\nwrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
