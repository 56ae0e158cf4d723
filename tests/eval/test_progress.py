"""The progress line: throttled updates, a final line, silence when not verbose."""

import io

from ddx.eval import Progress


def test_prints_throttled_and_final_lines():
    stream = io.StringIO()
    progress = Progress("work", total=4, min_interval_s=0.0, stream=stream)
    progress.update(1)
    progress.update(3, extra=" loss 0.5")
    progress.close(extra=" done")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("work: 1/4 (25%)") and lines[1].endswith("loss 0.5")
    assert lines[2].startswith("work: 4/4 (100%)") and lines[2].endswith("done")


def test_throttle_and_quiet():
    stream = io.StringIO()
    progress = Progress("work", total=10, min_interval_s=3600.0, stream=stream)
    for _ in range(10):
        progress.update()
    progress.close()
    assert stream.getvalue().count("\n") == 1
    quiet = io.StringIO()
    silent = Progress("work", total=2, verbose=False, min_interval_s=0.0, stream=quiet)
    silent.update(2)
    silent.close()
    assert quiet.getvalue() == ""
