"""Resident memory growth over many resets, per scenario and level: a leak shows as growth that keeps climbing.

    python scripts/reset_memory.py --resets 2000                       # every scenario, levels 0-3
    python scripts/reset_memory.py --resets 2000 --scenarios playroom --levels 2

Each (scenario, level) runs in a fresh process: one env, ``--warmup`` resets (allocator pools, caches, lazy
imports), then ``--resets`` more with seeds 0, 1, ...; the table gives the RSS after the warm-up and its growth to
the end, in MB, with the pattern textures the backend holds at the end. Target: growth < 10 MB per 2,000 resets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SCENARIOS = ("occlusion", "collision", "gravity", "stability", "playroom")
LEVELS = (0, 1, 2, 3)


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(scenario: str, level: int, resets: int, warmup: int, resolution: int) -> dict:
    """RSS after ``warmup`` resets and its growth over ``resets`` more, in this process."""
    import gymnasium as gym

    import tdwgym  # noqa: F401 - registers the ids

    env = gym.make(f"TDWRoom-{scenario.capitalize()}-v0", level=level, resolution=resolution)
    for i in range(warmup):
        env.reset(seed=10**6 + i)
    start = rss_mb()
    peak = start
    for i in range(resets):
        env.reset(seed=i)
        if i % 100 == 0:
            peak = max(peak, rss_mb())
    end = rss_mb()
    textures = getattr(env.unwrapped.backend, "texture_count", None)
    env.close()
    return {
        "scenario": scenario,
        "level": level,
        "resets": resets,
        "rss_mb": round(start, 1),
        "growth_mb": round(end - start, 2),
        "peak_growth_mb": round(max(peak, end) - start, 2),
        "textures": textures,
    }


def main() -> None:
    """Measure each (scenario, level) in its own process and print the table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resets", type=int, default=2000, help="resets measured per scenario and level")
    parser.add_argument("--warmup", type=int, default=50, help="resets before the first measurement")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--levels", nargs="+", type=int, default=list(LEVELS), choices=LEVELS)
    parser.add_argument("--resolution", type=int, default=64, help="observation size (default: 64)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "LEVEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resets < 1 or args.warmup < 0:
        parser.error(f"--resets must be >= 1 and --warmup >= 0, got {args.resets} and {args.warmup}")

    if args.child:
        row = measure(args.child[0], int(args.child[1]), args.resets, args.warmup, args.resolution)
        print(json.dumps(row))
        return

    rows = []
    print(f"{'scenario':<10} {'level':>5} {'resets':>7} {'RSS MB':>8} {'growth MB':>10} {'peak MB':>8} {'textures':>9}")
    for scenario in args.scenarios:
        for level in args.levels:
            cmd = [sys.executable, __file__, "--child", scenario, str(level), "--resets", str(args.resets)]
            cmd += ["--warmup", str(args.warmup), "--resolution", str(args.resolution)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{scenario:<10} {level:>5} {row['resets']:>7} {row['rss_mb']:>8.1f} {row['growth_mb']:>10.2f} "
                f"{row['peak_growth_mb']:>8.2f} {row['textures']!s:>9}",
                flush=True,
            )
    worst = max(rows, key=lambda r: r["growth_mb"])
    print(f"largest growth: {worst['growth_mb']:.2f} MB ({worst['scenario']} level {worst['level']})")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
