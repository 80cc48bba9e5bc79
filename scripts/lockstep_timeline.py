"""Where a ``LockstepVecEnv`` step's time goes: the envs' own steps against the round trip to the worker.

    python scripts/lockstep_timeline.py                        # 1,500 vector steps, blocking, then polling 2 ms
    python scripts/lockstep_timeline.py --steps 3000 --spin 0 --info-level light

Two envs of ``tdwgym bench``'s scene (Occlusion, 64x64), one in this process and one in a forked worker (the default
split on 2 cores), seeded random actions. Each env is wrapped so that its ``info`` carries ``time.perf_counter()``
before and after its ``step`` (the clock is the same in every process on Linux), and this process stamps the start
and end of each vector step. Per vector step, in milliseconds:

* ``send``: ``step_async`` (writing the actions into the worker's shared channel and releasing its semaphore; the
  pipe, pickled, before the channel, or for actions the channel cannot hold);
* ``worker starts``: from the start of ``step_async`` until the worker's env starts stepping (the send included,
  and the kernel waking a worker that sleeps on its semaphore);
* ``env step here`` and ``env step in the worker``: each env's own step;
* ``reply``: from both envs done until this process has the worker's reply and the observations;
* ``above the slower env``: the vector step's time less the slower env's step, all that lockstepping costs.

Mean, median and 90th percentile over the steps after 50 of warm-up, per ``--spin`` value, printed as a table.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

ENV_ID = "TDWRoom-Occlusion-v0"
RESOLUTION = 64
WARMUP = 50
COLUMNS = ("send", "worker starts", "env step here", "env step in the worker", "reply", "above the slower env")


class Stamped(gym.Wrapper):
    """Puts ``perf_counter()`` before and after the wrapped env's step into its ``info`` (``t_start``, ``t_end``)."""

    def step(self, action):
        start = time.perf_counter()
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["t_start"], info["t_end"] = start, time.perf_counter()
        return obs, reward, terminated, truncated, info


def _make(info_level: str):
    def make() -> gym.Env:
        import tdwgym  # noqa: F401 - registers the ids

        return Stamped(gym.make(ENV_ID, resolution=RESOLUTION, info_level=info_level))

    return make


def timeline(steps: int, spin: float, info_level: str = "full", seed: int = 0) -> np.ndarray:
    """``(steps, len(COLUMNS))`` milliseconds per vector step (after the warm-up) of a 2-env ``LockstepVecEnv``."""
    from tdwgym.tools.vector import LockstepVecEnv

    venv = LockstepVecEnv([_make(info_level)] * 2, workers=1, in_process=1, start_method="fork", spin=spin)
    rng = np.random.default_rng(seed)
    rows = []
    try:
        venv.seed(seed)
        venv.reset()
        for i in range(WARMUP + steps):
            actions = rng.integers(0, venv.action_space.n, size=2)
            t0 = time.perf_counter()
            venv.step_async(actions)
            t1 = time.perf_counter()
            _, _, _, infos = venv.step_wait()
            t2 = time.perf_counter()
            here, worker = infos
            slower = max(here["t_end"] - here["t_start"], worker["t_end"] - worker["t_start"])
            if i >= WARMUP:
                rows.append(
                    (
                        t1 - t0,
                        worker["t_start"] - t0,
                        here["t_end"] - here["t_start"],
                        worker["t_end"] - worker["t_start"],
                        t2 - max(here["t_end"], worker["t_end"]),
                        t2 - t0 - slower,
                    )
                )
    finally:
        venv.close()
    return np.array(rows) * 1e3


def table(results: dict[float, np.ndarray]) -> str:
    """Markdown: one row per spin value and column, mean / median / 90th percentile."""
    lines = ["| spin | what | mean ms | median ms | p90 ms |", "|---:|---|---:|---:|---:|"]
    for spin, ms in results.items():
        for j, name in enumerate(COLUMNS):
            col = ms[:, j]
            stats = f"{col.mean():.3f} | {np.median(col):.3f} | {np.percentile(col, 90):.3f}"
            lines.append(f"| {spin * 1e3:g} ms | {name} | {stats} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="timed vector steps per spin value (after 50)")
    parser.add_argument("--spin", type=float, nargs="+", default=[0.0, 0.002], help="LockstepVecEnv spin, seconds")
    parser.add_argument("--info-level", choices=["full", "light"], default="full")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    from tdwgym.tools.vector import check_spin

    for spin in args.spin:
        try:
            check_spin(spin, "--spin")
        except ValueError as exc:
            parser.error(str(exc))
    results = {spin: timeline(args.steps, spin, args.info_level) for spin in args.spin}
    print(
        f"{ENV_ID} {RESOLUTION}x{RESOLUTION}, 2 envs (one here, one in a worker), info_level={args.info_level}, "
        f"{args.steps} vector steps"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
