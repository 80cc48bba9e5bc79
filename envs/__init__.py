"""tdwgym.envs: the Gymnasium environments, one scenario per module on one base class."""

from tdwgym.envs.base import DISCRETE_ACTIONS, OBS_MODES, TDWRoomEnv
from tdwgym.envs.collision import CollisionEnv
from tdwgym.envs.factors import LEVELS, SPLITS, Factor, FactorSpace
from tdwgym.envs.gravity import GravityEnv
from tdwgym.envs.impossible import IMPOSSIBLE_KINDS
from tdwgym.envs.occlusion import OcclusionEnv
from tdwgym.envs.playroom import PlayroomEnv
from tdwgym.envs.sampling import SceneGenerationError, scene_key, split_bucket
from tdwgym.envs.stability import StabilityEnv

__all__ = [
    "DISCRETE_ACTIONS",
    "IMPOSSIBLE_KINDS",
    "LEVELS",
    "OBS_MODES",
    "SPLITS",
    "CollisionEnv",
    "Factor",
    "FactorSpace",
    "GravityEnv",
    "OcclusionEnv",
    "PlayroomEnv",
    "SceneGenerationError",
    "StabilityEnv",
    "TDWRoomEnv",
    "scene_key",
    "split_bucket",
]
