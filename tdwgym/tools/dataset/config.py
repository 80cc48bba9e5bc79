"""What defines a generated dataset: :class:`DatasetConfig`, its validation and fingerprint, the scenario table,
episode seeds and the directory layout (file names, the manifest). Nothing here records or reads an episode."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import re
import zlib
from dataclasses import dataclass, field, fields
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.envs.factors import LEVELS, SPLITS
from tdwgym.sim.backends.base import PASSES
from tdwgym.tools.policies import BUILTIN_POLICIES, policy_env_kwargs

GENERATOR_VERSION = 2
"""Bumped whenever the same config would record different episodes (a scene generator or physics fix), so that
resuming never mixes episodes of two versions: it is part of :meth:`DatasetConfig.fingerprint`."""

COMPRESSIONS: tuple[str | None, ...] = (None, "lzf", "gzip")
"""Valid HDF5 compression filters for the image datasets. ``"gzip"`` (the default) and None write the same bytes
for the same config on every run. ``"lzf"`` does not: h5py's LZF coder leaves its match table uninitialised, so the
compressed bytes (never the decoded frames) depend on what the process compressed before."""

REPRODUCIBLE_COMPRESSIONS: tuple[str | None, ...] = (None, "gzip")
"""The filters of :data:`COMPRESSIONS` whose output bytes are a function of their input only."""

FORMAT_VERSION = 1
"""Version of the HDF5 layout, stored in every file's ``format_version`` attribute."""

MANIFEST_NAME = "dataset.json"
"""Name of the run's metadata record inside the output directory."""

EPISODE_GLOB = "episode_*.hdf5"
_EPISODE_RE = re.compile(r"^episode_(\d{6})\.hdf5$")
_TMP_RE = re.compile(r"^\.episode_\d{6}\.hdf5\.(\d+)\.tmp$")

_LABEL_DEFAULTS: dict[str, Any] = {
    "scenario": None,
    "level": None,
    "split": None,
    "factors": {},
    "ood_factors": [],
    "impossible": None,
    "event_frame": None,
}


def scenarios() -> dict[str, str]:
    """Scenario name -> registered env id, read from :data:`tdwgym.registration.ENV_IDS` at call time.

    ``"TDWRoom-Occlusion-v0"`` gives ``"occlusion"``.
    """
    from tdwgym.registration import ENV_IDS

    out = {}
    for env_id in sorted(ENV_IDS):
        match = re.fullmatch(r"TDWRoom-(.+)-v\d+", env_id)
        if match:
            out[match.group(1).lower()] = env_id
    return out


def _env_class(env_id: str) -> type:
    from tdwgym.registration import ENV_IDS

    module, _, name = ENV_IDS[env_id].partition(":")
    return getattr(import_module(module), name)


def _init_params(cls: type) -> set[str]:
    """Keyword arguments accepted by ``cls.__init__`` and the ``__init__`` of every base it forwards to."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        with contextlib.suppress(TypeError, ValueError):
            names |= {
                p.name
                for p in inspect.signature(init).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
            }
    return names


def impossible_kinds(scenario: str) -> tuple[str, ...]:
    """Impossible-event kinds the scenario's env stages (its ``SUPPORTED_IMPOSSIBLE``; ``()`` for none)."""
    return tuple(getattr(_env_class(scenarios()[scenario]), "SUPPORTED_IMPOSSIBLE", ()))


RUN_FIELDS: tuple[str, ...] = ("out", "episodes", "workers", "overwrite")
"""Fields of :class:`DatasetConfig` that decide how a dataset is produced, not what its files hold."""


@dataclass
class DatasetConfig:
    """Everything that defines a generated dataset (the CLI's arguments).

    Fields marked *generation* below decide the files' contents; the others only how they are produced.
    """

    out: Path
    """Output directory; created if missing. One ``episode_NNNNNN.hdf5`` per episode plus ``dataset.json``."""
    scenario: str = "occlusion"
    """Scenario name (generation): ``TDWRoom-<Name>-v0`` lower-cased, e.g. ``"occlusion"``."""
    split: str = "train"
    """Generation. One of :data:`SPLITS`; passed to the env when it takes ``split`` and mixed into episode seeds."""
    level: int = 0
    """Generation. Difficulty level, one of :data:`LEVELS`; passed to the env when it takes ``level``."""
    impossible: str | None = None
    """Generation. None for possible events, or an impossible-event kind the scenario declares."""
    episodes: int = 10
    """Number of episodes (files). Raising it and running again extends a dataset."""
    frames: int = 32
    """Generation. Frames per episode: the reset observation plus ``frames - 1`` steps."""
    resolution: int = 64
    """Generation. Frame height and width in pixels."""
    policy: str = "random"
    """Generation. ``"random"`` (seeded action sampling), ``"static"`` (no-op), ``"orbit"`` (the camera circles the
    scene centre), ``"seek"`` (a scripted pusher) or a path to a stable-baselines3 PPO ``.zip``."""
    seed: int = 0
    """Generation. Base seed; episode ``i`` uses seeds derived from ``(seed, split, i)``."""
    backend: str | None = None
    """Generation. Simulator backend (``"bullet"``, ``"tdw"``); None for ``$TDWGYM_BACKEND`` or bullet."""
    action_type: str = "discrete"
    """Generation. The env's action type for scripted policies; an SB3 model's own action space wins."""
    compression: str | None = "gzip"
    """Generation. HDF5 filter for RGB and segmentation: ``"gzip"`` (the default; byte-reproducible), ``"lzf"``
    (same decoded frames, but its bytes vary from run to run; see :data:`COMPRESSIONS`) or None. Sizes and costs:
    docs/dataset.md."""
    depth_compression: str | None = None
    """Generation. HDF5 filter (with byte shuffling) for depth: None, ``"gzip"`` or ``"lzf"`` (smaller files at a
    noticeable share of the annotation time, bytes not reproducible; figures in docs/dataset.md)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Generation. Extra keyword arguments for ``gym.make`` (e.g. ``{"num_objects": 2}``)."""
    workers: int = 1
    """Worker processes; the files do not depend on it. 1 runs in this process."""
    overwrite: bool = False
    """Record again episodes that ``out`` holds from other settings (without it such a folder is refused)."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        valid = scenarios()
        if self.scenario not in valid:
            raise ValueError(f"unknown scenario {self.scenario!r}; valid scenarios are {sorted(valid)}")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; valid splits are {list(SPLITS)}")
        if isinstance(self.level, bool) or self.level not in LEVELS:
            raise ValueError(f"unknown level {self.level!r}; valid levels are {list(LEVELS)}")
        if self.impossible is not None:
            cls = _env_class(self.env_id)
            if hasattr(cls, "check_impossible"):
                cls.check_impossible(self.impossible)
            elif "impossible" not in _init_params(cls):
                raise ValueError(f"the {self.scenario} scenario stages no impossible events; valid values are [None]")
        for name, low in (("episodes", 0), ("frames", 1), ("resolution", 1), ("workers", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
            setattr(self, name, int(value))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        for name in ("compression", "depth_compression"):
            if getattr(self, name) not in COMPRESSIONS:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid values are {list(COMPRESSIONS)}")
        if self.policy not in BUILTIN_POLICIES and not Path(self.policy).is_file():
            raise ValueError(
                f"unknown policy {self.policy!r}: valid policies are {list(BUILTIN_POLICIES)} or the "
                "path of a stable-baselines3 PPO .zip file (no such file)"
            )

    @property
    def env_id(self) -> str:
        """The registered id of :attr:`scenario`."""
        return scenarios()[self.scenario]

    def generation_dict(self) -> dict[str, Any]:
        """The fields that decide file contents (all but :data:`RUN_FIELDS`), JSON-ready."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in RUN_FIELDS}
        if data["policy"] not in BUILTIN_POLICIES:
            data["policy_sha256"] = _sha256(Path(data["policy"]))
        return json.loads(json.dumps(data, default=_json_default))

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`generation_dict`, the package and generator versions: equal fingerprints give equal
        files."""
        from tdwgym import __version__

        text = json.dumps(
            {"config": self.generation_dict(), "tdwgym": __version__, "generator": GENERATOR_VERSION}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def episode_seeds(seed: int, split: str, index: int) -> tuple[int, int]:
    """(env seed, policy seed) of episode ``index``: a function of the base seed, the split and the index only.

    Splits drawn with the same base seed never share an episode seed; a possible episode and its impossible twin
    (same seed, split and index) share theirs, so they are matched.
    """
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=(zlib.crc32(split.encode()), int(index)))
    env_seed, policy_seed = sequence.generate_state(2, dtype=np.uint32)
    return int(env_seed), int(policy_seed)


def episode_path(out: Path | str, index: int) -> Path:
    """Final path of episode ``index`` in ``out``."""
    return Path(out) / f"episode_{index:06d}.hdf5"


def _env_kwargs(config: DatasetConfig) -> dict[str, Any]:
    """Keyword arguments for ``gym.make``: resolution, backend, variant kwargs the env takes, extras."""
    accepted = _init_params(_env_class(config.env_id))
    kwargs: dict[str, Any] = {"resolution": config.resolution, "action_type": config.action_type}
    if config.backend is not None:
        kwargs["backend"] = config.backend
    for name, value, default in (
        ("level", config.level, 0),
        ("split", config.split, "train"),
        ("impossible", config.impossible, None),
    ):
        if name in accepted:
            kwargs[name] = value
        elif value != default:
            raise ValueError(f"{config.env_id} does not take {name!r} (yet); it generates {name}={default!r} only")
    if config.policy not in BUILTIN_POLICIES:
        kwargs.update(policy_env_kwargs(config.policy, config.resolution))
    kwargs.update(config.env_kwargs)
    return kwargs


__all__ = [
    "COMPRESSIONS",
    "EPISODE_GLOB",
    "FORMAT_VERSION",
    "GENERATOR_VERSION",
    "LEVELS",
    "MANIFEST_NAME",
    "PASSES",
    "REPRODUCIBLE_COMPRESSIONS",
    "SPLITS",
    "DatasetConfig",
    "episode_path",
    "episode_seeds",
    "impossible_kinds",
    "scenarios",
]
