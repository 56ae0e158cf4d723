"""ddx.utils.progress.Progress: step-based lines (training), time-throttled lines (evaluation),
a redrawn line on a TTY, the final line, silence."""

import io

import pytest

from ddx.utils.progress import Progress, format_duration


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_step_based_lines_when_not_a_tty():
    stream = io.StringIO()
    progress = Progress(total=6, desc="step", log_every=3, stream=stream)
    for step in range(1, 7):
        progress.update_to(step, {"loss": 0.25}, epoch=0)
    progress.close()  # the final count is already shown: no extra line
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("step 3/6 | epoch 0 | ") and "it/s | ETA " in lines[0] and lines[0].endswith("loss 0.25")
    assert lines[1].startswith("step 6/6 | epoch 0 | ")


def test_resumed_run_counts_from_its_start():
    stream = io.StringIO()
    progress = Progress(total=10, desc="step", log_every=5, start=5, stream=stream)
    progress.update_to(7, {"loss": 1.0})  # not a multiple of log_every: no line yet
    assert stream.getvalue() == ""
    progress.close()  # the final count
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("step 7/10 | ") and lines[0].endswith("loss 1")


def test_time_throttled_lines_and_final_line_with_extra():
    stream = io.StringIO()
    progress = Progress(total=4, desc="work", unit="img", throttle_s=0.0, stream=stream)
    progress.update(1)
    progress.update(3, extra="loss 0.5")
    progress.close(extra="done")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("work 1/4 | ") and " img/s | ETA " in lines[0]
    assert lines[1].startswith("work 4/4 | ") and lines[1].endswith("loss 0.5")
    assert lines[2].startswith("work 4/4 | ") and lines[2].endswith("done")


def test_throttle_holds_lines_back_until_close():
    stream = io.StringIO()
    progress = Progress(total=10, desc="work", throttle_s=3600.0, stream=stream)
    for _ in range(10):
        progress.update()
    progress.close()
    assert stream.getvalue().count("\n") == 1 and stream.getvalue().startswith("work 10/10 | ")


def test_tty_redraws_one_line():
    stream = _Tty()
    progress = Progress(total=None, desc="step", log_every=100, throttle_s=0.0, stream=stream)
    progress.update_to(1, {"d_loss": 1.0})
    progress.write("resumed")
    progress.update_to(2)
    progress.close()
    text = stream.getvalue()
    assert text.count("\r\033[K") == 3 and "ETA" not in text and text.endswith("\n")
    assert "resumed\n" in text and "d_loss 1" in text


def test_tty_draws_the_total_even_when_throttled():
    stream = _Tty()
    progress = Progress(total=3, desc="sampling step", throttle_s=3600.0, stream=stream)
    for _ in range(3):
        progress.update()
    assert stream.getvalue().count("\r\033[K") == 1 and "sampling step 3/3" in stream.getvalue()
    progress.close()
    assert stream.getvalue().count("\r\033[K") == 1 and stream.getvalue().endswith("\n")


def test_disabled_is_silent():
    stream = io.StringIO()
    progress = Progress(total=2, desc="work", throttle_s=0.0, stream=stream, enabled=False)
    progress.update(2, extra="x")
    progress.write("message")
    progress.close(extra="done")
    assert stream.getvalue() == ""


@pytest.mark.parametrize("kwargs, error, message", [
    ({"total": 0}, ValueError, "Progress total must be a positive int or None, got 0"),
    ({"log_every": 1.5}, TypeError, "Progress log_every must be a positive int or None, got 1.5"),
    ({"throttle_s": -1.0}, ValueError, "throttle_s must be >= 0 seconds"),
], ids=["zero-total", "float-log-every", "negative-throttle"])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Progress(**kwargs)


def test_format_duration():
    assert format_duration(3725.2) == "1:02:05"
    assert format_duration(-1) == "?" and format_duration(float("nan")) == "?"
