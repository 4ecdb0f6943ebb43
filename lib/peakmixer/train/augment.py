"""Training-time augmentation (`train.augment`, `AugmentConfig`): what an instrument and a sample change
between two measurements of one thing, drawn afresh for every batch. Off by default.

Each draw comes from a generator seeded by the run's seed and the optimiser step, so a resumed run draws
what the uninterrupted one would have.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from peakmixer.train.config import AugmentConfig


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of one optimiser step's augmentation."""
    g = torch.Generator(device=device)
    g.manual_seed(seed * 1_000_003 + step)
    return g


def _shift(X: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Each row of (B, 1, L) moved by its own (fractional) number of points, edges held."""
    L = X.shape[-1]
    pos = (torch.arange(L, device=X.device, dtype=X.dtype)[None] - points[:, None]).clamp(0, L - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=L - 1)
    w = (pos - lo)[:, None]
    return X.gather(-1, lo[:, None]) * (1 - w) + X.gather(-1, hi[:, None]) * w


def _broaden(X: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """Each row convolved with a Gaussian of its own sd (points); sd 0 leaves it as it is."""
    half = int(torch.ceil(3 * sd.max()).item()) if len(sd) else 0
    if half == 0:
        return X
    t = torch.arange(-half, half + 1, device=X.device, dtype=X.dtype)
    k = torch.exp(-0.5 * (t[None] / sd.clamp(min=1e-3)[:, None]) ** 2)
    k = k / k.sum(1, keepdim=True)
    B = X.shape[0]
    padded = F.pad(X.reshape(1, B, -1), (half, half), mode="replicate")
    return F.conv1d(padded, k[:, None], groups=B).reshape(X.shape)


def augment_batch(X: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """A (B, 1, L) batch with `cfg`'s augmentations drawn per spectrum; the input is not changed."""
    B, _, L = X.shape
    dev, dt = X.device, X.dtype

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=generator, device=dev, dtype=dt)

    span = (X.amax(-1, keepdim=True) - X.amin(-1, keepdim=True)).clamp(min=1e-6)
    out = X
    if cfg.shift > 0:
        out = _shift(out, uniform(-cfg.shift, cfg.shift, B))
    if cfg.broaden > 0:
        out = _broaden(out, uniform(0, cfg.broaden, B))
    if cfg.scale > 0:
        out = out * uniform(1 - cfg.scale, 1 + cfg.scale, B, 1, 1)
    if cfg.baseline > 0:
        t = torch.linspace(-1, 1, L, device=dev, dtype=dt)
        a, b, c = (uniform(-cfg.baseline, cfg.baseline, B, 1, 1) for _ in range(3))
        out = out + span * (a + b * t + c * t**2) / 3
    if cfg.noise > 0:
        out = out + span * cfg.noise * torch.randn(X.shape, generator=generator, device=dev, dtype=dt)
    if cfg.spikes > 0:
        hit = uniform(0, 1, B) < cfg.spikes
        where = torch.randint(0, L, (B,), generator=generator, device=dev)
        height = uniform(0.5, 2.0, B) * span[:, 0, 0] * hit
        out = out.clone()
        out[torch.arange(B, device=dev), 0, where] += height
    return out
