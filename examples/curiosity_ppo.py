"""PPO with a curiosity reward, in one file that reads top to bottom: stable-baselines3's PPO, tdwgym's
``CuriosityVecEnv`` (the world model's surprise added to the reward per step) and ``CuriosityCallback`` (its
statistics in TensorBoard under ``curiosity/`` and ``world_model/``). With its defaults it trains the same agent as
``tdwgym train`` with its defaults: the same settings, the same seed, the same rewards, the same weights.

    python examples/curiosity_ppo.py --total-steps 20000 --out runs/curiosity_ppo
    tensorboard --logdir runs/curiosity_ppo

Change the algorithm here; every setting of the reward is a ``CuriosityConfig`` field (``--curiosity '{"int_coef":
0.5}'``). ``tdwgym train`` adds checkpoints, resuming, a rollout video and a plot around the same recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

import tdwgym  # noqa: F401 - registers the TDWRoom-* ids
from tdwgym.agents import CuriosityCallback, CuriosityVecEnv


@dataclass
class Args:
    """The run's settings; the defaults are ``tdwgym train``'s."""

    env_id: str = "TDWRoom-Playroom-v0"
    """The environment."""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"level": 1, "push_cone": 20.0})
    """gym.make arguments: Playroom level 1 (objects at rest within reach), a 20-degree push cone."""
    curiosity: dict[str, Any] = field(default_factory=dict)
    """CuriosityConfig fields over its defaults (tdwgym train's), e.g. {"int_coef": 0.5}."""
    total_steps: int = 20_000
    """Environment steps in all."""
    n_envs: int = 4
    """Parallel environments."""
    vec_env: str = "subproc"
    """subproc (one process per env) or dummy (all in this process); the run is the same with either."""
    seed: int = 0
    """Seed of the envs, PPO and the world model."""
    n_steps: int = 128
    """PPO rollout length per env."""
    batch_size: int = 64
    """PPO minibatch size."""
    n_epochs: int = 10
    """PPO epochs per rollout."""
    learning_rate: float = 5e-4
    """PPO learning rate."""
    gamma: float = 0.95
    """Discount of PPO and of the intrinsic return that normalises the reward (keep them equal)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    clip_range: float = 0.2
    """PPO clip range."""
    features_dim: int = 256
    """Output size of the policy's NatureCNN."""
    device: str = "auto"
    """Torch device: auto (CUDA when available), cpu, cuda."""
    out: str = "runs/curiosity_ppo"
    """Folder for TensorBoard logs, progress.csv, the agent and the world model."""


def parse_args(argv: list[str] | None = None) -> Args:
    """An :class:`Args` from the command line: one option per field (dict fields as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(Args):
        default = getattr(Args(), f.name)
        kind = json.loads if isinstance(default, dict) else type(default)
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=default, help=f"(default: {default})")
    return Args(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    torch.set_num_threads(min(4, max(1, (os.cpu_count() or 1) // 2)))  # leave cores to the env workers
    torch.manual_seed(args.seed)

    # 1. The envs: n copies, seeded, with episode statistics of the env's own reward.
    def make_env() -> gym.Env:
        import tdwgym  # noqa: F401, F811 - registers the ids in a worker process

        return gym.make(args.env_id, **args.env_kwargs)

    vec_cls = SubprocVecEnv if args.vec_env == "subproc" else DummyVecEnv
    venv = vec_cls([make_env] * args.n_envs)
    venv.seed(args.seed)
    venv = VecMonitor(venv)

    # 2. The curiosity reward: a world model learns online from every transition; its surprise, normalised by the
    #    running std of the intrinsic return, is added to each step's reward (so it reaches PPO's advantages).
    venv = CuriosityVecEnv(venv, device=args.device, seed=args.seed, gamma=args.gamma, **args.curiosity)

    # 3. PPO on the images, with the curiosity statistics logged beside PPO's own.
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        ent_coef=args.ent_coef,
        clip_range=args.clip_range,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": args.features_dim}},
        seed=args.seed,
        device=args.device,
    )
    model.set_logger(configure(str(out), ["stdout", "csv", "tensorboard"]))
    model.learn(total_timesteps=args.total_steps, callback=CuriosityCallback())

    # 4. Keep the agent and the world model (tdwgym record --policy out/agent.zip --world-model out/world_model.pt).
    model.save(out / "agent.zip")
    venv.save_world_model(out / "world_model.pt")
    venv.close()
    print(f"trained {model.num_timesteps} steps -> {out}")


if __name__ == "__main__":
    main()
