"""What train_ddgan.py writes at the end of each epoch (rank 0 only, after the LR schedulers' step).

- samples/xpos_epoch_<e>.png every 10 epochs: the G step's last posterior samples;
- samples/sample_discrete_epoch_<e>.png every epoch: the reverse chain of the raw G from randn_like(last batch);
- content.pth (official layout, 'epoch' = e + 1) when save_content and e % save_content_every == 0;
- netG_<e>.pth (EMA weights when use_ema) when e % save_ckpt_every == 0.
2-D data are drawn as scatter plots, in data units (x * data_scale).
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from ddx.checkpoints.ddgan_official import CONTENT_FILE, generator_file, save_official_generator
from ddx.train.ddgan_official_state import save_official_content
from ddx.train.rundir import RunDir
from ddx.utils.images import scatter_image

XPOS_EVERY = 10


@dataclasses.dataclass
class EpochOutputs:
    """Callable as DDGANTrainer's on_epoch hook. `args` is stored as content.pth's 'args'."""

    run_dir: RunDir
    args: argparse.Namespace
    save_content: bool = False
    save_content_every: int = 50
    save_ckpt_every: int = 25
    data_scale: float = 1.0
    means: torch.Tensor | None = None  # the 2-D mixture's means (2-D data only)

    def _save_samples(self, name: str, samples: torch.Tensor) -> None:
        if samples.dim() == 2:
            canvas = scatter_image(samples * self.data_scale, self.means)
            image = torch.from_numpy(canvas.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
            self.run_dir.save_images(name, image, nrow=1)
        else:
            # save_image(normalize=True) in the official code: min-max over the batch.
            low, high = samples.min(), samples.max()
            self.run_dir.save_images(name, (samples - low) / (high - low).clamp(min=1e-5) * 2 - 1)

    def __call__(self, trainer, epoch: int) -> None:
        if not self.run_dir.is_main or trainer.last_real is None:
            return
        if epoch % XPOS_EVERY == 0 and trainer.last_x_pos is not None:
            self._save_samples(f"xpos_epoch_{epoch}", trainer.last_x_pos)
        fake = trainer.sample(torch.randn_like(trainer.last_real))
        self._save_samples(f"sample_discrete_epoch_{epoch}", fake)
        if self.save_content and epoch % self.save_content_every == 0:
            save_official_content(self.run_dir.root / CONTENT_FILE, trainer.state_dict(), trainer.G, epoch + 1,
                                  self.args)
        if epoch % self.save_ckpt_every == 0:
            save_official_generator(self.run_dir.root / generator_file(epoch), trainer.generator_state_dict())
