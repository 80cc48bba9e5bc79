"""Factors of variation, their training ranges and held-out bands, and split sampling shared by every scenario.

A scenario declares a :class:`FactorSpace`: the factors its generator draws (speed, size, colour, shape, mass, ...)
and the combinations of categorical values held out of training. Each continuous factor has a training range, a
low and a high extrapolation band and an interpolation gap cut out of the training range (Kang et al. 2024 trained
on speeds 1.0 to 4.0 and held out 0 to 0.8 and 4.5 to 6.0). A categorical factor has values the curriculum level
unlocks in order and values held out of training.

At every reset the env draws a :class:`FactorPlan` for its split:

* ``"train"`` and ``"test_id"`` draw every factor from the training distribution (values in the training range
  outside the gap; no held-out value or combination). The two never produce the same scene: the env derives their
  random streams with different salts and, on top, assigns every scene to one of them by a hash of its content
  (see :func:`tdwgym.envs.sampling.scene_key`).
* ``"test_ood"`` picks one factor and one of its held-out bands (or one held-out combination) and draws that
  factor's values from it; every other factor comes from training. The labels record which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS: tuple[str, ...] = ("train", "test_id", "test_ood")
"""Valid values of the ``split`` argument."""

LEVELS: tuple[int, ...] = (0, 1, 2, 3)
"""Valid curriculum levels."""


PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "blue": (0.12, 0.28, 0.85),
    "green": (0.12, 0.68, 0.22),
    "yellow": (0.95, 0.85, 0.12),
    "orange": (0.95, 0.50, 0.08),
    "purple": (0.55, 0.18, 0.75),
    "cyan": (0.12, 0.78, 0.85),
    "white": (0.93, 0.93, 0.93),
    "magenta": (0.92, 0.12, 0.85),
    "black": (0.08, 0.08, 0.08),
}
"""Plain named colours (RGB in [0, 1]) used by the colour factor."""


@dataclass(frozen=True)
class Factor:
    """One factor of variation.

    A factor is continuous (``train`` is set) or categorical (``values`` is set).

    Attributes:
        name: Key in the labels' ``factors`` dict.
        unit: Unit of a continuous factor ("m/s", "m", "kg", ...), or "" for categorical ones.
        train: Inclusive (min, max) training range of a continuous factor.
        low: Low extrapolation band (held out of training), or None.
        high: High extrapolation band (held out of training), or None.
        gap: Interpolation gap inside ``train`` (held out of training), or None.
        integer: Whether a continuous factor takes integer values (bands are then inclusive integer ranges).
        values: Categorical values in the order the curriculum unlocks them.
        level_counts: For a categorical factor, how many of ``values`` each level 0..3 uses.
        held_out: Categorical values only test_ood draws.
        min_level: The factor is fixed at ``default`` below this level (and then never held out).
        default: The value used below ``min_level``.
        per_object: Whether every object draws its own value (labels hold a list in object-id order) or the scene
            draws one.
        doc: What the factor is.
    """

    name: str
    unit: str = ""
    train: tuple[float, float] | None = None
    low: tuple[float, float] | None = None
    high: tuple[float, float] | None = None
    gap: tuple[float, float] | None = None
    integer: bool = False
    values: tuple[str, ...] = ()
    level_counts: tuple[int, int, int, int] | None = None
    held_out: tuple[str, ...] = ()
    min_level: int = 0
    default: Any = None
    per_object: bool = True
    doc: str = ""

    def __post_init__(self) -> None:
        if (self.train is None) == (not self.values):
            raise ValueError(f"factor {self.name!r} must be either continuous (train) or categorical (values)")
        if self.train is not None:
            lo, hi = self.train
            if not lo <= hi:
                raise ValueError(f"factor {self.name!r}: bad train range {self.train}")
            if self.gap is not None and not lo < self.gap[0] <= self.gap[1] < hi:
                raise ValueError(f"factor {self.name!r}: the gap {self.gap} must lie inside train {self.train}")
            for band in (self.low, self.high):
                if band is not None and not (band[1] < lo or band[0] > hi):
                    raise ValueError(f"factor {self.name!r}: band {band} overlaps train {self.train}")
        if set(self.values) & set(self.held_out):
            raise ValueError(f"factor {self.name!r}: held-out values also appear in values")

    @property
    def categorical(self) -> bool:
        """Whether the factor takes named values."""
        return self.train is None

    def active(self, level: int) -> bool:
        """Whether the factor varies at ``level``."""
        return level >= self.min_level

    def train_values(self, level: int) -> tuple[str, ...]:
        """Categorical values drawn in training at ``level``."""
        if self.level_counts is None:
            return self.values
        return self.values[: self.level_counts[level]]

    def ood_bands(self, level: int) -> list[str]:
        """Held-out bands available at ``level`` (none below ``min_level``)."""
        if not self.active(level):
            return []
        if self.categorical:
            return ["held_out"] if self.held_out else []
        return [b for b in ("low", "high", "gap") if getattr(self, b) is not None]

    def sample(self, rng: np.random.Generator, band: str, level: int) -> Any:
        """One value from ``band`` ("train" or a held-out band) at ``level``."""
        if not self.active(level):
            return self.default
        if self.categorical:
            pool = self.train_values(level) if band == "train" else self.held_out
            return pool[int(rng.integers(len(pool)))]
        if band == "train":
            lo, hi = self.train  # type: ignore[misc]
            if self.gap is None:
                return self._uniform(rng, lo, hi)
            if self.integer:
                pool = [v for v in range(int(lo), int(hi) + 1) if not self.gap[0] <= v <= self.gap[1]]
                return pool[int(rng.integers(len(pool)))]
            left, right = self.gap[0] - lo, hi - self.gap[1]
            u = float(rng.uniform(0.0, left + right))
            return lo + u if u < left else self.gap[1] + (u - left)
        lo, hi = getattr(self, band)
        return self._uniform(rng, lo, hi)

    def _uniform(self, rng: np.random.Generator, lo: float, hi: float) -> float | int:
        if self.integer:
            return int(rng.integers(int(lo), int(hi) + 1))
        return float(rng.uniform(lo, hi))

    def band_of(self, value: Any, level: int) -> str | None:
        """Which band ``value`` lies in ("train", a held-out band), or None if in none of them."""
        if not self.active(level):
            return "train" if value == self.default else None
        if self.categorical:
            if value in self.train_values(level):
                return "train"
            return "held_out" if value in self.held_out else None
        for band in ("gap", "low", "high"):
            b = getattr(self, band)
            if b is not None and b[0] <= value <= b[1]:
                return band
        lo, hi = self.train  # type: ignore[misc]
        return "train" if lo <= value <= hi else None

    def describe(self) -> str:
        """One line for documentation tables."""
        if self.categorical:
            counts = "" if self.level_counts is None else f" (levels 0-3 use the first {list(self.level_counts)})"
            held = f"; held out: {', '.join(self.held_out)}" if self.held_out else ""
            return f"{', '.join(self.values)}{counts}{held}"
        parts = [f"train {self.train[0]:g}-{self.train[1]:g} {self.unit}".strip()]  # type: ignore[index]
        for band in ("gap", "low", "high"):
            b = getattr(self, band)
            if b is not None:
                parts.append(f"{band} {b[0]:g}-{b[1]:g}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Combination:
    """A pair of categorical values never drawn together in training (e.g. a blue cube)."""

    a: str
    a_value: str
    b: str
    b_value: str

    def as_dict(self) -> dict[str, str]:
        """``{a: a_value, b: b_value}``."""
        return {self.a: self.a_value, self.b: self.b_value}


@dataclass(frozen=True)
class FactorSpace:
    """A scenario's factors and held-out combinations."""

    factors: tuple[Factor, ...]
    combinations: tuple[Combination, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.factors]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate factor names in {names}")

    def __getitem__(self, name: str) -> Factor:
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(f"no factor {name!r}; factors are {[f.name for f in self.factors]}")

    def names(self) -> list[str]:
        """Factor names in declaration order."""
        return [f.name for f in self.factors]

    def combinations_at(self, level: int) -> list[Combination]:
        """Held-out combinations whose values are both drawn at ``level``."""
        out = []
        for c in self.combinations:
            fa, fb = self[c.a], self[c.b]
            if (
                fa.active(level)
                and fb.active(level)
                and c.a_value in fa.train_values(level)
                and c.b_value in fb.train_values(level)
            ):
                out.append(c)
        return out

    def plan(self, rng: np.random.Generator, split: str, level: int) -> FactorPlan:
        """Decide, for one scene, which band every factor draws from."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid values are {list(SPLITS)}")
        bands = {f.name: "train" for f in self.factors}
        combination = None
        if split == "test_ood":
            options: list[tuple[str, str] | Combination] = [
                (f.name, b) for f in self.factors for b in f.ood_bands(level)
            ]
            options += self.combinations_at(level)
            if not options:
                raise ValueError(f"no held-out band or combination exists at level {level}")
            choice = options[int(rng.integers(len(options)))]
            if isinstance(choice, Combination):
                combination = choice
                bands[choice.a] = bands[choice.b] = "combination"
            else:
                bands[choice[0]] = choice[1]
        return FactorPlan(space=self, split=split, level=level, bands=bands, combination=combination)


@dataclass
class FactorPlan:
    """One scene's factor bands; the generator draws every factor value through it, and it records them.

    Attributes:
        space: The scenario's factors.
        split: The split.
        level: The curriculum level.
        bands: Factor name -> "train" or the held-out band it draws from.
        combination: The held-out combination a test_ood scene shows (its first object pair draws it), or None.
        values: What was drawn: name -> value (scene factors) or list of values (per-object factors).
    """

    space: FactorSpace
    split: str
    level: int
    bands: dict[str, str]
    combination: Combination | None = None
    values: dict[str, Any] = field(default_factory=dict)
    _combination_used: bool = False

    def draw(self, name: str, rng: np.random.Generator) -> Any:
        """Draw (and record) one value of factor ``name`` from its band."""
        factor = self.space[name]
        band = self.bands[name]
        value = factor.sample(rng, "train" if band == "combination" else band, self.level)
        self._record(factor, value)
        return value

    def draw_pair(self, a: str, b: str, rng: np.random.Generator, attempts: int = 100) -> tuple[Any, Any]:
        """Draw (and record) one object's values of two categorical factors, honouring held-out combinations.

        The first pair drawn in a test_ood scene whose held-out combination is ``(a, b)`` takes that combination;
        every other pair avoids all held-out combinations.
        """
        fa, fb = self.space[a], self.space[b]
        c = self.combination
        if c is not None and not self._combination_used and {c.a, c.b} == {a, b}:
            self._combination_used = True
            pair = c.as_dict()
            va, vb = pair[a], pair[b]
        else:
            banned = {(c.as_dict()[a], c.as_dict()[b]) for c in self.space.combinations if {c.a, c.b} == {a, b}}
            for _ in range(attempts):
                va = fa.sample(rng, self._band(a), self.level)
                vb = fb.sample(rng, self._band(b), self.level)
                if (va, vb) not in banned:
                    break
            else:
                raise RuntimeError(f"could not draw a ({a}, {b}) pair outside the held-out combinations")
        self._record(fa, va)
        self._record(fb, vb)
        return va, vb

    def training_value(self, name: str, rng: np.random.Generator) -> Any:
        """A value of factor ``name`` from its training band, not recorded (for distractors and background)."""
        return self.space[name].sample(rng, "train", self.level)

    def training_pair(self, a: str, b: str, rng: np.random.Generator, attempts: int = 100) -> tuple[Any, Any]:
        """Training values of two categorical factors outside every held-out combination, not recorded."""
        banned = {(c.as_dict()[a], c.as_dict()[b]) for c in self.space.combinations if {c.a, c.b} == {a, b}}
        for _ in range(attempts):
            pair = (self.training_value(a, rng), self.training_value(b, rng))
            if pair not in banned:
                return pair
        raise RuntimeError(f"could not draw a ({a}, {b}) pair outside the held-out combinations")

    def _band(self, name: str) -> str:
        band = self.bands[name]
        return "train" if band == "combination" else band

    def _record(self, factor: Factor, value: Any) -> None:
        if factor.per_object:
            self.values.setdefault(factor.name, []).append(value)
        else:
            self.values[factor.name] = value

    @property
    def ood_factors(self) -> list[str]:
        """Names of the factors drawn from a held-out band or combination."""
        return [name for name, band in self.bands.items() if band != "train"]

    def labels(self) -> dict[str, Any]:
        """The label entries every scene carries: split, level, factors, ood_factors, factor_bands, ..."""
        return {
            "split": self.split,
            "level": self.level,
            "factors": {k: (list(v) if isinstance(v, list) else v) for k, v in self.values.items()},
            "ood_factors": self.ood_factors,
            "factor_bands": {k: v for k, v in self.bands.items() if k in self.values},
            "ood_combination": None if self.combination is None else self.combination.as_dict(),
        }


def shape_color_combinations() -> tuple[Combination, ...]:
    """The (shape, colour) pairs every scenario holds out of training."""
    pairs = (
        ("cube", "blue"),
        ("sphere", "yellow"),
        ("cylinder", "red"),
        ("cone", "green"),
        ("capsule", "purple"),
        ("l_block", "orange"),
        ("dumbbell", "cyan"),
    )
    return tuple(Combination("shape", s, "color", c) for s, c in pairs)


def mass_factor(**overrides: Any) -> Factor:
    """The shared per-object mass factor: 1 kg below level 2, then 0.3 to 2 kg with held-out bands."""
    kwargs: dict[str, Any] = dict(
        name="mass",
        unit="kg",
        train=(0.3, 2.0),
        gap=(1.0, 1.2),
        low=(0.08, 0.2),
        high=(2.5, 4.0),
        min_level=2,
        default=1.0,
        doc="mass",
    )
    kwargs.update(overrides)
    return Factor(**kwargs)


def color_factor(**overrides: Any) -> Factor:
    """The shared colour factor: four plain colours at level 0, eight from level 1; magenta and black held out."""
    kwargs: dict[str, Any] = dict(
        name="color",
        values=("red", "blue", "green", "yellow", "orange", "purple", "cyan", "white"),
        level_counts=(4, 8, 8, 8),
        held_out=("magenta", "black"),
        doc="named plain colour of an object",
    )
    kwargs.update(overrides)
    return Factor(**kwargs)


def shape_factor(**overrides: Any) -> Factor:
    """The shared shape factor: cube and sphere at level 0, all primitives from 1, compound shapes at 3."""
    kwargs: dict[str, Any] = dict(
        name="shape",
        values=("cube", "sphere", "cylinder", "cone", "capsule", "l_block", "dumbbell"),
        level_counts=(2, 5, 5, 7),
        doc="object shape (l_block and dumbbell are compound, non-convex bodies)",
    )
    kwargs.update(overrides)
    return Factor(**kwargs)


def check_in_band(space: FactorSpace, labels: dict[str, Any]) -> list[str]:
    """Problems with a scene's factor labels (values outside their recorded bands); empty when consistent."""
    problems = []
    level, bands = labels["level"], labels["factor_bands"]
    combo = labels.get("ood_combination")
    for name, value in labels["factors"].items():
        factor = space[name]
        values: Sequence[Any] = value if isinstance(value, list) else [value]
        band = bands[name]
        for i, v in enumerate(values):
            if v is None:
                continue
            got = factor.band_of(v, level)
            if band == "combination":
                ok = got == "train"
            elif band == "train":
                ok = got == "train"
            else:
                ok = got == band
            if not ok:
                problems.append(f"{name}[{i}]={v!r} is in band {got!r}, expected {band!r}")
    if combo is not None:
        shapes, colors = labels["factors"].get("shape", []), labels["factors"].get("color", [])
        if not any(s == combo.get("shape") and c == combo.get("color") for s, c in zip(shapes, colors, strict=False)):
            problems.append(f"held-out combination {combo} not shown")
    return problems
