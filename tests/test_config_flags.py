"""The flags derived from a run configuration (ddx.cli.config_flags) and its JSON layout (ddx.utils.config_io).

A stand-in run configuration shows the one-edit property: a field added to a section is a flag, a
config.json key and a preset key at once, with no list to update."""

import argparse
import dataclasses
import enum

import pytest

from ddx.cli.config_flags import BoolForm, FlagForms, ListForm, add_config_flags, merge_layers, resolve, typed_values
from ddx.utils.config_io import differences, from_plain, replace_flat, to_plain


class Kind(enum.Enum):
    A = "a"
    B = "b-c"


@dataclasses.dataclass(frozen=True)
class Model:
    width: int = 4
    mult: tuple[int, ...] = (1, 2)
    on: bool = True
    kind: Kind = Kind.A
    rate: float | None = None

    def __post_init__(self):
        if self.width < 1:
            raise ValueError("width must be >= 1")


@dataclasses.dataclass(frozen=True)
class Train:
    lr: float = 1e-4
    use_ema: bool = False


@dataclasses.dataclass(frozen=True)
class Run:
    model: Model = Model()
    train: Train = Train()


def parse(argv, bools=BoolForm.OFFICIAL_DDGAN, lists=ListForm.NARGS, config=Run()):
    parser = argparse.ArgumentParser()
    add_config_flags(parser, config, FlagForms(bools, lists))
    return typed_values(parser.parse_args(argv), type(config))


@pytest.mark.parametrize("bools,lists,argv", [
    (BoolForm.OFFICIAL_DDGAN, ListForm.NARGS, ["--on", "--use_ema", "--mult", "1", "2", "4"]),
    (BoolForm.STR2BOOL, ListForm.COMMA, ["--on", "False", "--use_ema", "True", "--mult", "1,2,4"]),
])
def test_flags_in_both_official_forms_give_one_config(bools, lists, argv):
    typed = parse(["--width", "8", "--kind", "B_C", "--lr", "2e-4", *argv], bools, lists)
    config, sources = resolve(Run(), [("from --preset p", {"width": 6, "rate": 0.5}), ("", typed)])
    assert config == Run(Model(8, (1, 2, 4), False, Kind.B, 0.5), Train(2e-4, True))
    assert sources["rate"] == "from --preset p" and sources["width"] == ""


def test_untyped_flags_keep_the_defaults():
    assert parse([]) == {}
    assert resolve(Run(), [("", {})])[0] == Run()


def test_json_layout_round_trips_with_enums_by_value():
    config = replace_flat(Run(), {"kind": "b-c", "mult": [3, 4]})
    plain = to_plain(config)
    assert plain["model"]["kind"] == "b-c" and plain["model"]["mult"] == [3, 4]
    assert from_plain(Run, plain) == config
    assert differences(Run(), config) == [("mult", (1, 2), (3, 4)), ("kind", Kind.A, Kind.B)]


@pytest.mark.parametrize("data,words", [
    ({"model": {"widht": 3}}, "unknown field widht"),
    ({"model": {"width": 0}}, "width must be >= 1"),
    ({"model": {"kind": "zz"}}, "'zz'"),
    ({"model": {"width": "8"}}, "expected int"),
    ({"model": {"mult": 3}}, "expected a list"),
])
def test_from_plain_names_the_bad_field(data, words):
    with pytest.raises(ValueError, match=words):
        from_plain(Run, data)


def test_a_field_added_to_a_section_is_a_flag_and_a_config_key_at_once():
    @dataclasses.dataclass(frozen=True)
    class Wider(Model):
        depth: int = 2  # the one edit

    @dataclasses.dataclass(frozen=True)
    class WiderRun:
        model: Wider = Wider()
        train: Train = Train()

    typed = parse(["--depth", "5"], config=WiderRun())
    config, _ = resolve(WiderRun(), [("from --preset p", {"depth": 3}), ("", typed)])
    assert config.model.depth == 5
    assert from_plain(WiderRun, to_plain(config)).model.depth == 5
    assert differences(WiderRun(), config) == [("depth", 2, 5)]


def test_merge_layers_names_the_layer_of_each_value():
    merged, sources = merge_layers([("from --preset p", {"width": 6, "lr": 1.0}), ("", {"width": 8})])
    assert merged == {"width": 8, "lr": 1.0} and sources == {"width": "", "lr": "from --preset p"}
