"""config.json in the one layout of both families (ddx.train.run_file), and the older layouts still loading."""

import dataclasses
import enum
import json

import pytest

from ddx.train.run_file import RUN_FORMAT, LegacyLayout, read_run, run_record
from ddx.utils.errors import CheckpointError


class Kind(enum.Enum):
    SMALL = "small"
    LARGE = "large"


@dataclasses.dataclass(frozen=True)
class Net:
    width: int = 4
    mult: tuple[int, ...] = (1, 2)
    kind: Kind = Kind.SMALL
    rate: float | None = None


@dataclasses.dataclass(frozen=True)
class Loop:
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Run:
    net: Net = Net()
    loop: Loop = Loop()


LEGACY = LegacyLayout("args", dropped=frozenset({"outdir", "preset"}), renamed={"old_width": "width"})


def write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_a_record_round_trips_with_enums_by_value(tmp_path):
    config = Run(Net(8, (1, 2, 4), Kind.LARGE, 0.5), Loop(3))
    record = run_record("ddgan", config, ["--width", "8"], world_size=2)
    assert record["format"] == RUN_FORMAT and record["config"]["net"]["kind"] == "large"
    write(tmp_path / "config.json", record)
    run = read_run(tmp_path, "ddgan", Run())  # the run directory or the file
    assert (run.config, run.command, dict(run.extras), run.legacy) == (config, ("--width", "8"), {"world_size": 2},
                                                                       False)


def test_an_older_file_of_flat_flags_loads(tmp_path):
    path = write(tmp_path / "config.json", {"model": "ddgan", "args": {
        "old_width": 6, "mult": [3], "kind": "LARGE", "rate": None, "seed": 5, "outdir": "x", "preset": None}})
    run = read_run(path, "ddgan", Run(), LEGACY)
    assert run.legacy and run.config == Run(Net(6, (3,), Kind.LARGE, None), Loop(5))


def test_an_older_file_names_flags_it_does_not_know(tmp_path):
    path = write(tmp_path / "config.json", {"args": {"width": 6, "mult": None, "gone": 1}})
    with pytest.warns(UserWarning, match="ignored: gone"):
        run = read_run(path, "ddgan", Run(), LEGACY)
    assert run.config.net == Net(width=6)  # a None for a field that cannot be None: "not given"


@pytest.mark.parametrize("data, words", [
    ({"format": RUN_FORMAT, "family": "iddpm", "config": {}}, "records an IDDPM run, not a DDGAN one"),
    # IDDPM's layout before ddx-run/2: the flags under "flags", the UNet's config under "model"
    ({"flags": {}, "model": {"num_channels": 32}}, "records an IDDPM run, not a DDGAN one: use train.py / sample.py iddpm"),
    ({"format": "ddx-run/9", "family": "ddgan"}, "not a ddx run configuration of the layout"),
    ({"format": RUN_FORMAT, "family": "ddgan", "config": {"net": {"width": "8"}}}, "config.net.width: expected int"),
    ({"args": {"width": "wide"}}, "width: expected int"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, data, words):  # read as a DDGAN run
    path = write(tmp_path / "config.json", data)
    with pytest.raises(CheckpointError, match=words) as err:
        read_run(path, "ddgan", Run(), LEGACY)
    assert str(path) in str(err.value)


def test_resume_lists_each_defining_field_that_differs(tmp_path):
    from ddx.train.run_file import RunFile, check_resume
    from ddx.utils.errors import UsageError

    recorded = RunFile(tmp_path / "config.json", "ddgan", Run(Net(4, (1, 2)), Loop(0)))
    check_resume(recorded, Run(Net(4, (1, 2)), Loop(7)), ["net"])  # loop fields may change
    with pytest.raises(UsageError, match=r"--width: recorded 4, this command 8; --mult: recorded \[1, 2\], this "
                                         r"command \[3\]\): these define the model"):
        check_resume(recorded, Run(Net(8, (3,)), Loop(0)), ["net"])
    check_resume(recorded, Run(Net(8, (1, 2))), ["net"], exempt=["width"])


def test_an_older_ddgan_file_read_as_iddpm_names_its_family(tmp_path):
    path = write(tmp_path / "config.json", {"model": "ddgan", "args": {}})
    with pytest.raises(CheckpointError, match="records a DDGAN run, not an IDDPM one: use train.py / sample.py ddgan"):
        read_run(path, "iddpm", Run(), LEGACY)
