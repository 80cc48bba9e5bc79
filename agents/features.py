"""A stable-baselines3 features extractor for the envs' Dict observations (``obs_mode`` ``"rgbd"``, ``"rgb_seg"``,
``"rgbd_seg"``) that gives each key the input a network should see:

- ``rgb`` (uint8 0..255) -> floats in [0, 1];
- ``depth`` (metres) -> ``depth / depth_range`` clipped to [0, 1] (``depth_range`` 12 m: the diagonal of the
  largest room, so nearly every pixel keeps its own value);
- ``segmentation`` (object ids 0..1023) -> a learned embedding of each id (``segmentation_dim`` channels): an id is a
  name, not a magnitude, so id 40 is no "more" than id 20.

The channels are stacked and read by one NatureCNN-shaped network (the three keys are pixel-aligned renders of the
same view). SB3's own ``normalize_images=True`` divides every uint8 image by 255 and leaves depth and ids as they
are; ``normalize_images=False`` leaves RGB at 0..255 too. Neither is right for a mix, so the extractor does the
scaling itself and SB3's must be off: :func:`multi_input_policy_kwargs` gives both::

    env = gym.make("TDWRoom-Occlusion-v0", obs_mode="rgbd_seg")
    model = PPO("MultiInputPolicy", env, policy_kwargs=multi_input_policy_kwargs())
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from tdwgym.envs.base import MAX_SEGMENTATION_ID

__all__ = ["DEPTH_RANGE", "ObservationExtractor", "multi_input_policy_kwargs"]

DEPTH_RANGE = 12.0
"""Metres that map to 1.0 in the network's depth channel (farther is clipped): about the largest room's diagonal."""

KEYS: tuple[str, ...] = ("rgb", "depth", "segmentation")
"""The observation keys the extractor reads, in the order of its input channels."""


def _channels_first(space: spaces.Box, channels: int) -> bool:
    """Whether an image space is ``(C, H, W)`` (SB3's ``VecTransposeImage`` transposes uint8 RGB) or ``(H, W, C)``."""
    shape = space.shape
    if len(shape) != 3:
        raise ValueError(f"expected an image space of 3 dimensions, got shape {shape}")
    if shape[-1] == channels and shape[0] != channels:
        return False
    if shape[0] == channels:
        return True
    raise ValueError(f"expected {channels} channel(s) first or last, got shape {shape}")


class ObservationExtractor(BaseFeaturesExtractor):
    """RGB in [0, 1], depth scaled, segmentation embedded, then a NatureCNN over the stacked channels.

    Args:
        observation_space: A Dict with ``rgb`` and any of ``depth``, ``segmentation`` (as the envs give them, or
            channels-first as SB3's ``VecTransposeImage`` or :class:`~tdwgym.envs.wrappers.ChannelsFirst` leave
            them).
        features_dim: Size of the output features.
        segmentation_dim: Channels of the learned embedding of each segmentation id.
        depth_range: Metres that map to 1.0 (farther is clipped to 1.0).
        max_segmentation_id: The largest id (ids above it share its embedding).

    Raises:
        ValueError: The space is not such a Dict.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 256,
        segmentation_dim: int = 8,
        depth_range: float = DEPTH_RANGE,
        max_segmentation_id: int = MAX_SEGMENTATION_ID,
    ) -> None:
        if not isinstance(observation_space, spaces.Dict) or "rgb" not in observation_space.spaces:
            raise ValueError(
                f"ObservationExtractor reads Dict observations with an 'rgb' key (obs_mode rgbd, rgb_seg or "
                f"rgbd_seg), got {observation_space}; for obs_mode 'rgb' use SB3's CnnPolicy"
            )
        super().__init__(observation_space, features_dim)
        subspaces = observation_space.spaces
        self.keys = tuple(k for k in KEYS if k in subspaces)
        self.first = {k: _channels_first(subspaces[k], 3 if k == "rgb" else 1) for k in self.keys}
        self.depth_range = float(depth_range)
        self.max_segmentation_id = int(max_segmentation_id)
        self.embedding = (
            nn.Embedding(self.max_segmentation_id + 1, segmentation_dim) if "segmentation" in self.keys else None
        )
        channels = 3 + ("depth" in self.keys) + (segmentation_dim if self.embedding is not None else 0)
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            sample = {k: torch.as_tensor(subspaces[k].sample()[None]).float() for k in self.keys}
            n_flatten = self.cnn(self.network_input(sample)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def _nchw(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x if self.first[key] else x.permute(0, 3, 1, 2)

    def network_input(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """The ``(N, C, H, W)`` tensor the CNN reads: RGB / 255, depth / ``depth_range`` (clipped to [0, 1]), then
        the segmentation embedding's channels."""
        parts = [self._nchw("rgb", observations["rgb"].float()) / 255.0]
        if "depth" in self.keys:
            depth = self._nchw("depth", observations["depth"].float())
            parts.append((depth / self.depth_range).clamp(0.0, 1.0))
        if self.embedding is not None:
            ids = self._nchw("segmentation", observations["segmentation"])[:, 0]
            ids = ids.round().long().clamp(0, self.max_segmentation_id)
            parts.append(self.embedding(ids).permute(0, 3, 1, 2))
        return torch.cat(parts, dim=1)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:  # noqa: D102
        return self.linear(self.cnn(self.network_input(observations)))


def multi_input_policy_kwargs(features_dim: int = 256, segmentation_dim: int = 8, **kwargs: Any) -> dict[str, Any]:
    """``policy_kwargs`` for SB3's ``"MultiInputPolicy"`` on the envs' Dict observations: the
    :class:`ObservationExtractor`, and SB3's own image scaling off (the extractor scales each key itself).

    Args:
        features_dim: Size of the extractor's output.
        segmentation_dim: Channels of the segmentation embedding.
        **kwargs: Other ``policy_kwargs`` (``net_arch``, ...).
    """
    return {
        **kwargs,
        "features_extractor_class": ObservationExtractor,
        "features_extractor_kwargs": {"features_dim": features_dim, "segmentation_dim": segmentation_dim},
        "normalize_images": False,
    }
