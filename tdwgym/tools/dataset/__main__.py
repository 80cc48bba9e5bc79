"""``python -m tdwgym.tools.dataset bench``: the dataset benchmark (generate datasets with ``tdwgym dataset``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tdwgym.tools.dataset.config import DatasetConfig
from tdwgym.tools.dataset.speed import benchmark, format_benchmark

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "bench":
        bench_parser = argparse.ArgumentParser(prog="python -m tdwgym.tools.dataset bench")
        bench_parser.add_argument("--compression", default="gzip", type=lambda s: None if s == "none" else s)
        bench_parser.add_argument("--episodes", type=int, default=12)
        bench_parser.add_argument("--rounds", type=int, default=3)
        bench_args = bench_parser.parse_args(sys.argv[2:])
        try:
            DatasetConfig(out=Path("."), episodes=bench_args.episodes, compression=bench_args.compression)
            if bench_args.rounds < 1:
                raise ValueError(f"--rounds must be >= 1, got {bench_args.rounds}")
        except ValueError as error:
            bench_parser.error(str(error))
        print(
            format_benchmark(
                benchmark(episodes=bench_args.episodes, rounds=bench_args.rounds, compression=bench_args.compression)
            )
        )
        raise SystemExit(0)
    raise SystemExit("python -m tdwgym.tools.dataset takes `bench` only; generate datasets with `tdwgym dataset`")
