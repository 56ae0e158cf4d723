"""ddx.train.execution_support: the trainers' checks of ExecutionOptions, and old config.json "train" sections
(fused, amp among the hyperparameters) mapped onto the execution options."""

import pytest

from ddx.execution import ExecutionOptions, Precision
from ddx.train.ddgan import DDGANTrainConfig
from ddx.train.execution_support import split_legacy_train_fields, trainer_execution
from ddx.train.iddpm import IddpmTrainConfig
from ddx.utils.config_io import from_plain

# As ddx.train.rundir.to_jsonable wrote them before issue #12 (enums by name).
OLD_IDDPM_TRAIN = {"lr": 0.0002, "weight_decay": 0.0, "lr_anneal_steps": 0, "batch_size": 64, "microbatch": -1,
                   "ema_rates": [0.9999], "schedule_sampler": "UNIFORM", "amp": "BF16", "fp16_scale_growth": 0.001}
OLD_DDGAN_TRAIN = {"lr_g": 0.00016, "lr_d": 0.000125, "beta1": 0.5, "beta2": 0.9, "no_lr_decay": False,
                   "use_ema": True, "ema_decay": 0.9999, "r1_gamma": 0.02, "lazy_reg": 15, "num_epoch": 1800,
                   "fused": False}


def test_old_iddpm_train_section_loads_with_amp_as_the_precision():
    kept, execution = split_legacy_train_fields(OLD_IDDPM_TRAIN)
    config = from_plain(IddpmTrainConfig, kept)
    assert config.batch_size == 64 and config.ema_rates == (0.9999,)
    assert ExecutionOptions.from_dict(execution).precision is Precision.BF16
    for amp in ("none", "NONE", "fp32"):
        assert split_legacy_train_fields({"amp": amp})[1] == {"precision": "fp32"}


def test_old_ddgan_train_section_loads_with_fused_as_an_execution_option():
    kept, execution = split_legacy_train_fields(OLD_DDGAN_TRAIN)
    assert from_plain(DDGANTrainConfig, kept).lazy_reg == 15
    assert ExecutionOptions.from_dict(execution) == ExecutionOptions(fused=False)


def test_a_new_section_passes_unchanged():
    section = {"lr": 1e-4, "batch_size": 2}
    assert split_legacy_train_fields(section) == (section, {})


def test_trainer_execution_defaults_and_refusals():
    assert trainer_execution(None, "X") == ExecutionOptions()
    with pytest.raises(TypeError, match="ExecutionOptions"):
        trainer_execution({"fused": False}, "X")
    with pytest.raises(ValueError, match="the X trainer runs in fp32, not precision fp16: use precision fp32"):
        trainer_execution(ExecutionOptions(precision="fp16"), "X")
    assert trainer_execution(ExecutionOptions(precision="fp16"), "X", tuple(Precision)).precision is Precision.FP16
