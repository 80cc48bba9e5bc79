"""The smallest `tdwgym train` settings that still exercise every part, shared by the training, fault, demo and
sample-efficiency tests (``tests/`` is on ``sys.path``: its conftest lives there)."""

TINY_PPO: dict = {
    "n_envs": 2,
    "vec_env": "dummy",
    "n_steps": 32,
    "batch_size": 32,
    "n_epochs": 1,
    "features_dim": 32,
    "wm_width": 4,
    "wm_capacity": 64,
    "wm_batch_size": 8,
}
"""Sizes of the envs, PPO and the world model."""

TINY: dict = {
    "env_kwargs": {"resolution": 36},
    **TINY_PPO,
    "progress_bar": False,
    "video_steps": 0,
    "device": "cpu",
}
