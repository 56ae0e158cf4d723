"""config.json files that the code before the typed run configuration (ddx 91586c1) wrote, read by today's reader.

tests/fixtures/run_configs_91586c1/ holds two real files of that code: `train.py ddgan --preset toy25
--max_steps 40` (layout {"model": "ddgan", "args": {flat flags}, ...}) and `train.py iddpm --preset digits
--max_steps 2 --num_threads 1` (layout {"flags": {flat flags}, ...}, enums by name: "amp": "NONE")."""

import pathlib
import shutil
import warnings

from ddx.data.factory import DatasetName
from ddx.diffusion import BetaSchedule
from ddx.execution import Precision
from ddx.train.ddgan_config import read_ddgan_run
from ddx.train.iddpm_config import FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY
from ddx.train.run_file import read_run

OLD = pathlib.Path(__file__).parents[1] / "fixtures" / "run_configs_91586c1"


def _run_dir(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(OLD / f"{name}.json", folder / "config.json")
    return folder


def test_an_old_ddgan_run_reads_as_its_preset(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every old key is known: nothing is dropped with a warning
        run = read_ddgan_run(_run_dir(tmp_path, "ddgan_toy25"))
    config = run.config
    assert config.data.dataset is DatasetName.TOY25 and config.data.data_scale == 0.25
    assert (config.generator.nz, config.discriminator.t_emb_dim, config.toy.toy_hidden) == (2, 64, 256)
    assert (config.train.lr_g, config.train.lr_d, config.train.r1_gamma, config.train.use_ema) == (2e-4, 5e-4, 1e-3, True)
    assert config.loop.max_steps == 40 and config.diffusion.num_timesteps == 4


def test_an_old_iddpm_run_reads_with_its_enums_by_name(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = read_run(_run_dir(tmp_path, "iddpm_digits"), FAMILY, IDDPM_DEFAULTS, IDDPM_LEGACY)
    config = run.config
    assert config.execution.precision is Precision.FP32  # recorded as "amp": "NONE"
    assert config.execution.threads == 1
    assert (config.model.num_channels, config.model.channel_mult, config.model.learn_sigma) == (32, (1, 2, 2), True)
    assert config.diffusion.noise_schedule is BetaSchedule.COSINE and config.diffusion.diffusion_steps == 1000
    assert config.train.ema_rate == (0.999,) and config.run.max_steps == 2
