"""tdwgym: procedurally generated 3D physics scenes as Gymnasium environments.

``import tdwgym`` registers the ``TDWRoom-*`` environment ids with Gymnasium.
"""

from tdwgym.registration import ENV_IDS, register_envs

__version__ = "0.2.0"
__all__ = ["ENV_IDS", "__version__", "register_envs"]

register_envs()
