"""kernels/_checks.py: the interpreter switch is read the way Triton reads it."""

import types

import pytest

import kernels._checks as checks

TRUTHY = ["1", "true", "ON", "Yes", "y"]
FALSY = ["0", "false", "off", "no", "", "2"]


@pytest.mark.parametrize("value, expected", [(v, True) for v in TRUTHY] + [(v, False) for v in FALSY], ids=repr)
def test_triton_interprets_agrees_with_triton(monkeypatch, value, expected):
    monkeypatch.setenv("TRITON_INTERPRET", value)
    assert checks.triton_interprets() is expected


@pytest.mark.parametrize("value, expected", [(v, True) for v in TRUTHY] + [(v, False) for v in FALSY], ids=repr)
def test_triton_interprets_without_knobs_reads_the_same_values(monkeypatch, value, expected):
    """A Triton without `triton.knobs`: the environment variable, with Triton's truthy values."""
    monkeypatch.setattr(checks, "triton", types.SimpleNamespace())
    monkeypatch.setenv("TRITON_INTERPRET", value)
    assert checks.triton_interprets() is expected
