"""tdwgym.envs: the Gymnasium environments, one scenario per module on one base class."""

from tdwgym.envs.base import DISCRETE_ACTIONS, OBS_MODES, SceneGenerationError, TDWRoomEnv
from tdwgym.envs.occlusion import OcclusionEnv

__all__ = ["DISCRETE_ACTIONS", "OBS_MODES", "OcclusionEnv", "SceneGenerationError", "TDWRoomEnv"]
