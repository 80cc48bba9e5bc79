"""The object-centric world model (``"objects"``): per-object slots read from the segmentation, a recurrent state
per slot, interactions between slots, conditioned on the agent's actions; surprise is how much less likely what
is seen was than the model expected.

Input: the slot tables of :mod:`tdwgym.agents.models.slots` (``(S, F)`` per frame), built from the RGB,
segmentation and depth passes by :meth:`ObjectModel.frames_from`. The model reads object identities from the
simulator (as PLATO reads masks and Physion's state-based models read physical state); everything about where
objects go, when they are hidden and what they look like it learns.

State per slot (carried through the episode, reset at its start): a 3D position ``p`` and velocity ``v`` in camera
coordinates, appearance attributes ``a`` (mean colour, fill, width and height times depth: what does not change with
distance), a count of whole sightings, a GRU state ``h``, whether the slot was ever seen, and the time since it was
last seen. One step:

1. **Update** with the new frame (where the slot is visible): the position is corrected toward an *amodal*
   measurement (where an edge of the box borders the image edge or a nearer object, the centre is taken from the
   opposite, exact edge and the remembered size: as an object slides behind an occluder its visible centroid lags,
   its trailing edge does not), by learned gains; the velocity by the innovation; the attributes are a running
   mean over whole sightings; the GRU reads the features and the innovation.
2. **Predict** the next frame under the action: learned friction slows ``v``, messages from the other slots
   (a graph network over pairs) change it (collisions), a learned camera motion per action moves and turns every
   slot alike; the predicted position is projected to the image (pinhole camera), and a learned head gives the
   probability of being seen from where the predicted box falls (inside the image, behind nearer slots' boxes),
   and a mean and standard deviation per feature.

Loss: the negative log-likelihood of the next frame's slots (visibility: Bernoulli; features of visible slots:
Gaussian, standardised errors clipped at 10). Surprise: the same likelihood *in excess of what the model expected
to pay*: ``-log P(seen or not) - H(P)`` plus, for slots seen before, ``0.5 * sum(z^2 - 1)``. A correctly predicted
frame then costs about 0 whether its objects are seen or hidden, and a confident expectation that fails costs
more than a vague one; without the excess, a tracked object costs its feature noise on every frame it is seen and
an object that vanishes would look *less* surprising than one that re-emerges.

The module runs past 600 lines because one step of the model (update, motion, the ego-motion correction, the prior)
and its likelihoods all read and write the same packed slot state; split across modules they would share its private
layout.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tdwgym.agents.models.base import WorldModel, mlp
from tdwgym.agents.models.data import Clips, LossOutput, Transitions
from tdwgym.agents.models.registry import register_world_model
from tdwgym.agents.models.slots import (
    BOX_X,
    BOX_Y,
    CLIP_B,
    CLIP_L,
    CLIP_R,
    CLIP_T,
    CX,
    FILL,
    LOG_AREA,
    MAX_SLOTS,
    NUM_FEATURES,
    VISIBLE,
    B,
    H,
    R,
    W,
    X,
    Z,
    clip_features,
    object_features,
)
from tdwgym.sim.scene import DEFAULT_FOV

PREDICTED = (CX, CX + 1, W, H, LOG_AREA, FILL, R, R + 1, B, X, X + 1, Z)
"""Slot columns with a predicted Gaussian (image centroid, box size, log area, fill, colour, 3D position)."""

NOISE = (0.05, 0.05, 0.05, 0.05, 0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.1, 0.1)
"""Scale of each predicted column's errors (the unit of the learned standard deviations)."""

MAX_FRICTION = 0.02
"""Default of ``max_friction``: the largest share of its speed an object loses per frame. Rolling objects in
tdwgym's scenes lose well under 1 % per frame and sliding ones about 1 % (Coulomb friction of 0.05 at 1-3 m/s); the
cap keeps the learned friction physical, so that it cannot act as a shrinkage of noisy speed estimates toward zero
(which it did, at 5-10 % per frame, when it could: a hidden object then stopped behind the occluder in the model's
mind)."""

EGO_SLACK = (0.003, 0.003, 0.003, 0.005, 0.005, 0.005)
"""Width of the prior on the correction of the camera's own motion beyond each action's learned motion (radians
about x, y, z; metres along x, y, z): what an action that does not move the camera may still have moved it."""

SURPRISE_TERMS = ("all", "whole", "motion", "sightings")
"""What :meth:`ObjectModel._surprise` counts (the ``surprise_terms`` argument)."""

MOTION = tuple(PREDICTED.index(c) for c in (CX, CX + 1, X, X + 1, Z))
"""Positions in :data:`PREDICTED` of where an object is (image centroid, 3D position): what ``surprise_terms``
``"motion"`` counts."""

OUTLIER = 5.0
"""With ``surprise_terms="whole"``: standardised errors are capped at this many standard deviations (a robust
likelihood: one object's badly read frame cannot outweigh every other object's motion)."""

COLOUR = tuple(PREDICTED.index(c) for c in (R, R + 1, B))
"""Positions in :data:`PREDICTED` of the mean colour."""

SIGHTING_AREA = -4.0
"""With ``surprise_terms="sightings"``: a box cut by the image edge or a nearer object counts its colour only where it
shows at least ``exp(-4)`` of the image's pixels (about 75 of 64x64): the mean colour of a sliver is mostly its
shading and its edge."""

EGO_MEASURE = 0.02
"""Standard deviation of a whole object's measured centre per metre of depth, in the ego-motion correction."""
SPEED_SCALE = 1.0 / 30.0
"""Speed unit of the friction's speed input (``speed_friction``): 1 m/s in metres per env step (30 steps per second
at the default 8 physics substeps of 240 Hz; rolling and sliding objects in the scenes move at about 0.5-3 m/s)."""

EGO_SIGMA_SCALE = 100.0
"""``ego_sigma``'s input unit: the size of the camera's motion in hundredths of a radian or a metre. A zero-initialised
map learns at Adam's rate per step whatever its input's scale; in these units a fine-tuning run of a few hundred
steps can widen a turn's spread by the factor of 2-3 its errors ask for (in units of 0.1 it reached 5 %)."""

N_ATTR = 6  # r, g, b, fill, width * depth, height * depth
N_GEO = 4  # fraction inside the image, largest and summed coverage by nearer slots, log depth
MSG = 32


def _optional_number(name: str, value: Any, high: float, unit: str) -> float | None:
    """A setting that is ``None`` or a number in ``(0, high]`` (``unit`` names what it counts), as a float; anything
    else is a ValueError naming the setting and what is valid."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= high:
        raise ValueError(f"{name} must be None or {unit} in (0, {high:g}], got {value!r}")
    return float(value)


def _norm(v: torch.Tensor) -> torch.Tensor:
    """Length of the last axis, kept as a size-1 axis (differentiable at 0)."""
    return torch.sqrt((v * v).sum(-1, keepdim=True) + 1e-10)


def _overlap(c1: torch.Tensor, s1: torch.Tensor, c2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Length of the overlap of intervals ``c +- s / 2``."""
    lo = torch.maximum(c1 - s1 / 2, c2 - s2 / 2)
    hi = torch.minimum(c1 + s1 / 2, c2 + s2 / 2)
    return (hi - lo).clamp(min=0)


@register_world_model
class ObjectModel(WorldModel):
    """Object-centric dynamics over segmentation slots (see the module docstring).

    Args:
        frame_shape: ``(slots, len(FEATURES))``, the slot table of one frame.
        action_dim: Action vector length.
        context_frames: ``k``, the window length of online training (truncated backpropagation through time over
            the buffer's windows); scoring along an episode carries the state through all of it.
        discrete_actions: Whether actions are one-hot.
        hidden: Size of each slot's GRU state.
        fov: The camera's vertical field of view in degrees (the projection of predicted positions).
        resolution: Side in pixels of the frames its slot tables are read from (what envs render for it).
        withhold: In training, the fraction of slots per clip whose input is withheld for a stretch of
            ``gap_frames`` frames (the loss stays on what is seen): the model must carry a hidden object's position
            and speed until it is shown again, as it must behind an occluder. 0 trains on every frame.
        gap_frames: ``(shortest, longest)`` withheld stretch in frames.
        max_friction: The largest share of its speed a slot's learned friction takes per frame
            (:data:`MAX_FRICTION`).
        gap_weight: Weight of the loss of a slot's predictions made while its input is withheld (open-loop
            predictions through the stretch) against 1 for the others.
        ego_correction: Before a frame is scored, correct the learned guess of the camera's own motion by what all
            the objects seen in it did together (:meth:`_ego_correct`), so that a turn of a pitched camera or a step
            into a wall is not paid as the objects' surprise.
        surprise_terms: What the surprise counts (:data:`SURPRISE_TERMS`): ``"all"`` every slot's visibility and
            features (violation of expectation: a vanishing or appearing object counts); ``"whole"`` only the
            features of objects seen before and seen whole now, each standardised error capped at
            :data:`OUTLIER` (the curiosity reward: what known objects did, not what the image border or an
            occluder cut off); ``"motion"`` the same, of where the objects are only (:data:`MOTION`: image centroid
            and 3D position), not their looks (colour, fill, box size), which change with the view as the camera
            moves; ``"sightings"`` (violation of expectation, always floored as ``surprise_floor`` floors ``"all"``):
            every slot's visibility beyond the likelier outcome's cost, the features of whole sightings, and of a box
            cut by the image edge or a nearer object only what the cut leaves exact: its uncut edges against the
            predicted box's, any showing beyond a cut edge, and its colour where it shows a fair area
            (:meth:`_sighting_surprise`). A cut box's centroid, size and fill say where the cut is more than where
            the object is, and counted as features they cost a possible clip's object about as much as an
            impossible twin's (``scripts/voe_settings.py``).
        speed_friction: Whether the learned friction also reads the slot's own speed (:data:`SPEED_SCALE`): it
            can then stop a slot at rest (where shrinking a noisy speed estimate pays) without slowing one that
            moves, which a friction read from the slot's looks and memory alone does not tell apart. False (the
            first versions' model) keeps files made before it loadable as they were.
        whole_velocity: Whether only sightings of the whole object correct a slot's velocity (its position is
            corrected by every sighting): as an object slides behind an occluder its measured centre lags however it
            is taken, and the filter can read the lag as a slowing. A box cut on a side by the image edge or a
            nearer object (``clip_*``) weighs its velocity correction by the share of its worst side that is its own
            edge. Tried once, it gained nothing (docs/results/2026-12-07-objects-model.md). False keeps files made
            before it as they were.
        appearance_memory: How many of the latest whole sightings a slot's looks (colour, fill, width and height
            times depth) average over: each whole sighting moves them ``1 / min(n, appearance_memory)`` of the way
            (``n``: whole sightings so far). ``None`` (the first versions' model) averages over every sighting: for
            an object seen from a camera that moves, its shading and outline change with the view, and a lifetime
            mean then pays that change as surprise on every later frame, a still camera's included.
        velocity_measure: Whether a slot seen whole (no ``clip_*`` edge) in two consecutive frames has its velocity
            measured as the difference of its two measured (amodal) centres, the camera's own motion between them
            taken out (the last measured centre is kept in the state and moved with the camera like the position),
            and its velocity corrected toward that measurement by a learned gain (:attr:`vel_gain`, read from the
            slot's memory and depth). Without it the position correction takes up part of the motion every frame
            and the velocity settles low (about 15 % in the 2026-12-07 traces: error about ``mu * v / gain``), which
            costs nothing while the object is seen and makes it re-emerge late in the model's mind. False keeps files
            made before it as they were (their state has no measured centre).
        vis_spread: Whether the probability of being seen also reads the exposure of the predicted box widened by a
            learned spread of the predicted position, which grows with the time the slot has been hidden (``gap``)
            and with its speed (:meth:`_spread`): the first sliver of a re-emerging object is then expected where the
            predicted box alone is still behind the occluder. False keeps files made before it as they were.
        ego_sigma: Whether each feature's predicted standard deviation also grows with the camera's own motion
            under the action (the size of :attr:`ego`'s learned turn and shift, a zero-initialised linear map to a
            log-scale per feature, :attr:`sigma_ego`). Without it the spread is read from the slot's memory and
            geometry alone, so it cannot tell a turn from a still camera: a model fitted mostly on a still camera
            is then over-confident through every turn, and since the surprise is the error *beyond* the expected,
            a turning camera is paid for the noise of its own ego-motion estimate (docs/agents.md). False keeps
            files made before it as they were; ``tdwgym pretrain --init`` adds it to such a file (the new map
            starts at zero: the file's predictions unchanged).
        ego_tracked: Whether the correction of the camera's own motion (:meth:`_ego_correct`) reads only the slots
            seen in the frame before (tracked), not the ones seen again after a while. A slot out of view while the
            camera turned carries the learned, average turn's error (a turn is learned as a rotation plus a shift
            that fits objects in front of the camera, not beside or behind it); when it comes back into view beside
            tracked ones, its error, metres after a full turn, dragged the fit of every slot (measured on a
            spinning camera: the other slots thrown by metres, paid as surprise, and their velocities spoiled for
            seconds). No weights: a file's setting can be switched at load. False keeps the first versions' fit.
        reacquire: Whether a slot seen again after its predicted box was wholly outside the image restarts from
            what is measured (position, and velocity 0) as at its first sighting, its looks kept: where an object
            beside or behind the camera is after the camera turned is the learned turn's guess, not something seen,
            and correcting it by the usual gains took dozens of frames, each paid as surprise. Its features on the
            frame it comes back count as a new object's (not at all; its visibility does, with ``surprise_terms``
            ``"all"``). No weights; False keeps the first versions' update.
        surprise_floor: Whether the violation-of-expectation surprise (``surprise_terms`` ``"all"``) is the cost
            beyond the likeliest outcome: visibility pays its negative log-likelihood less that of the likelier
            outcome (0 when what happened was the likelier), and a feature pays ``0.5 (z^2 - 1)`` only where it is
            positive (an error larger than the predicted spread), as the analytic observer does. Without it a
            well-predicted sighting of a whole object earns a negative surprise (its spread is looser than its
            error), so an impossible clip in which the object is seen sooner, or longer, looks *less* surprising
            than its possible twin: measured on a teleport quadruplet, about -5 nats per frame of a sighting against
            -0.2 for a frame hidden (``scripts/trace_objects.py``). No weights; the curiosity reward (``"whole"``)
            is unchanged. False keeps the first versions' score.
        hidden_inertia: Whether a slot not seen in a frame keeps its velocity: its learned friction and the
            collision term act only on slots seen in the frame. An object behind an occluder slides as it did when
            last seen (what slows it is not seen, and the twins' objects are not slowed there), where the learned
            friction, fitted on objects in view, slowed a hidden one by a third over 17 frames and put it back in
            view late (``scripts/trace_objects.py``). No weights; False keeps the first versions' dynamics.
        colour_memory: How many of the latest whole sightings a slot's mean colour averages over, apart from its
            fill and size (which keep ``appearance_memory``'s). An object's shading changes as it slides under the
            room's lights, while its outline does not: after it comes out from behind the occluder, a lifetime mean
            colour paid 10-22 nats a frame on a well-tracked object (``scripts/trace_objects.py``), and a short memory
            for every look absorbed a shape change. ``None`` (the first versions'): as ``appearance_memory``. No
            weights.
        contact_range: Metres within which another seen slot's centre must be for the collision term to act on a
            slot (``None``: always, the first versions'). The learned term, free to act on any seen slot, also slowed
            objects that touched nothing: a seen object's velocity ran 15-25 % below its motion even with no
            friction, so it was expected to re-emerge from behind the occluder late (zeroing the term took level 1
            vanish from 0.94 to 0.96 and teleport from 0.90 to 0.98). No weights.
        pixel_spread: The least standard deviation of a seen slot's predicted image centroid, in pixels of the
            frames it is read from; its box's width and height get twice that, its 3D position the centroid's at its
            predicted depth. A small object's outline and centroid move by whole pixels from frame to frame as it
            slides, and the learned spread, fitted on the average object, is tighter than that: a well-tracked object
            then pays 5-17 nats on some frames for a row of pixels (``scripts/trace_objects.py``), so a clip that
            shows an object longer looks more surprising. No weights; 0 (the first versions') sets no floor.
        cover_core: Whether a nearer slot hides another with its filled core (its box scaled by the square root of
            its fill along each side), not its whole box, in the geometry the probability of being seen reads. A
            ball fills pi/4 of its box and the box's corners cover nothing: counted by boxes, a small object passing
            beside a nearer ball was two-thirds hidden (its probability of being seen about 0.5) while it was seen
            whole, so when it did not come out its absence cost nothing (``appear``'s added object). No weights;
            False keeps the first versions' geometry.
        colour_pixels: The least standard deviation of a seen slot's predicted mean colour (each of r, g, b on
            [0, 1]) is ``colour_pixels / sqrt(n)`` for a slot predicted to cover ``n`` pixels: the mean colour of a
            few pixels of a shaded object changes as its edge pixels come and go while it moves (a 10-pixel object
            paid 2-8 nats a frame for it, ``scripts/trace_objects.py``), that of a large one hardly. No weights; 0
            (the first versions') sets no floor.
        depth_pixels: The least standard deviation of a seen slot's predicted depth is ``depth_pixels * w /
            sqrt(n)`` for a slot ``w`` metres wide predicted to cover ``n`` pixels: its measured depth, the mean over
            the pixels it shows, spans a surface about as deep as it is wide, and moves as its edge pixels come and
            go. Depth was the largest feature term of the possible clips' surprise at level 2 (0.15 nats a frame,
            as much as the impossible clips'). No weights; 0 (the first versions') sets no floor.
        gap_motion: Whether each feature's predicted standard deviation also reads how far the camera has moved
            (the summed size of :attr:`ego`'s learned motion under the actions taken, in units of 0.01) since the slot
            was last seen. The spread of a hidden object's predicted place is fitted on withheld stretches and
            re-emergences of still and moving cameras alike; read from its memory, geometry and time hidden alone,
            it cannot tell the two apart, so a still camera's hidden object was expected within about 0.3 m as it
            hid and 0.6 m a few seconds later, and an object coming out early or late cost little. Changes a weight's
            shape (the spread's input): False keeps files made before it as they were.
        whole_loss: Whether the training loss fits the features (centroid, box, area, fill, colour, 3D position) of
            whole sightings only; a box cut by the image edge or a nearer object then counts for its visibility
            alone. A cut box's centroid, size and 3D position (the mean of the pixels it shows) say where the cut is,
            not where the object is, and an object re-emerging from behind an occluder shows as such a sliver first:
            fitted on it, the spread of a hidden object's predicted place is as wide as a sliver is off (the
            ``"sightings"`` surprise already scores a cut box by its exact edges). No weights: it acts on training
            only. False keeps the first versions' loss.
        missed_stop: Negative evidence: a slot seen before, not seen in a frame whose predicted box for it was
            exposed (inside the image and uncovered by nearer seen slots) by more than this share, is taken to have
            stopped where it was still hidden: its position steps back by its last velocity and its velocity becomes
            0. With ``hidden_inertia`` a hidden object slides on at its last speed, so one that stopped behind the
            occluder (against a hidden object, or by friction) was carried on past it and, when it came back into
            view, paid metres of error on every frame the update took to pull it back (25-28 nats a frame in a level
            2 possible clip). Not seeing an object where it should show is evidence of where it is. ``None`` (the
            first versions'): no update from an absence. No weights.
        missed_speed: With ``missed_stop``, metres per second: only a slot slower than this is stopped by an
            absence (``None``: any).
        withheld_flag: Whether the memory's input says which of a slot's frames were withheld in training
            (``withhold``), apart from frames in which the object was not seen. Without it a withheld frame reads
            as an unseen one, and since most training gaps are withheld stretches of objects in plain view, the
            memory learns that not seeing an object says nothing of where it is; scoring never withholds, so the flag
            is 0 there. Changes a weight's shape (the memory's input): False keeps files made before it as they were.
        reacquire_far: Metres: a slot seen (whole or cut, however few its pixels) whose measured amodal centre is
            farther than this from its predicted position restarts from the measurement (position, and velocity 0),
            as at its first sighting, its looks kept. The frame of that sighting pays its full surprise; without it
            the update, which trusts a sliver of a few pixels little and moves a slot at most 0.5 m a frame, took up
            to ten frames to reach an object that had stopped behind the occluder, each paid (15-28 nats a frame in
            level 2 possible clips). A teleported object restarts the same way. ``None`` (the first versions'): no
            restart. No weights.
        reacquire_behind: With ``reacquire_far``, restart only a slot seen behind its predicted place (against its
            velocity): a hidden object may have slowed or stopped for reasons not seen (friction, an object the
            occluder hides), but nothing unseen makes it faster, so one seen ahead of where it could be keeps
            paying. No weights.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """

    name = "objects"
    uses_past_actions = True
    passes = ("rgb", "segmentation", "depth")

    def __init__(
        self,
        frame_shape: tuple[int, ...] = (MAX_SLOTS, NUM_FEATURES),
        action_dim: int = 10,
        context_frames: int = 16,
        discrete_actions: bool = True,
        hidden: int = 64,
        fov: float = DEFAULT_FOV,
        resolution: int = 64,
        withhold: float = 0.5,
        gap_frames: tuple[int, int] = (5, 40),
        gap_weight: float = 1.0,
        max_friction: float = MAX_FRICTION,
        ego_correction: bool = True,
        surprise_terms: str = "all",
        speed_friction: bool = False,
        whole_velocity: bool = False,
        appearance_memory: int | None = None,
        velocity_measure: bool = False,
        vis_spread: bool = False,
        ego_sigma: bool = False,
        ego_tracked: bool = False,
        reacquire: bool = False,
        surprise_floor: bool = False,
        hidden_inertia: bool = False,
        pixel_spread: float = 0.0,
        contact_range: float | None = None,
        colour_memory: int | None = None,
        cover_core: bool = False,
        colour_pixels: float = 0.0,
        depth_pixels: float = 0.0,
        gap_motion: bool = False,
        whole_loss: bool = False,
        missed_stop: float | None = None,
        missed_speed: float | None = None,
        withheld_flag: bool = False,
        reacquire_far: float | None = None,
        reacquire_behind: bool = False,
        device: str | torch.device = "auto",
    ) -> None:
        frame_shape = tuple(int(s) for s in frame_shape)
        if len(frame_shape) != 2 or frame_shape[1] != NUM_FEATURES or frame_shape[0] < 1:
            raise ValueError(
                f"the objects model's frame_shape is (slots, {NUM_FEATURES}) (a slot table), got {frame_shape}; "
                "its frames come from ObjectModel.frames_from"
            )
        if not 0.0 < float(fov) < 180.0:
            raise ValueError(f"fov must be in (0, 180) degrees, got {fov!r}")
        if isinstance(resolution, bool) or not 8 <= int(resolution) <= 1024:
            raise ValueError(f"resolution must be an int in 8..1024 pixels, got {resolution!r}")
        if int(hidden) < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden!r}")
        if not 0.0 <= float(withhold) <= 1.0:
            raise ValueError(f"withhold must be a fraction in [0, 1], got {withhold!r}")
        gap = tuple(int(g) for g in gap_frames)
        if len(gap) != 2 or not 1 <= gap[0] <= gap[1]:
            raise ValueError(f"gap_frames must be (shortest, longest), 1 <= shortest <= longest, got {gap_frames!r}")
        super().__init__(frame_shape, action_dim, context_frames, discrete_actions, device)  # type: ignore[arg-type]
        self.hidden, self.fov, self.render_size = int(hidden), float(fov), int(resolution)
        if not 0.0 <= float(max_friction) <= 1.0:
            raise ValueError(f"max_friction must be a fraction in [0, 1], got {max_friction!r}")
        if not float(gap_weight) > 0:
            raise ValueError(f"gap_weight must be > 0, got {gap_weight!r}")
        self.withhold, self.gap_frames, self.gap_weight = float(withhold), gap, float(gap_weight)
        self.max_friction = float(max_friction)
        self.ego_correction = bool(ego_correction)
        if surprise_terms not in SURPRISE_TERMS:
            raise ValueError(f"surprise_terms must be one of {SURPRISE_TERMS}, got {surprise_terms!r}")
        self.surprise_terms = surprise_terms
        self.speed_friction = bool(speed_friction)
        self.whole_velocity = bool(whole_velocity)
        if appearance_memory is not None and (isinstance(appearance_memory, bool) or int(appearance_memory) < 1):
            raise ValueError(
                f"appearance_memory must be None (every sighting) or an int >= 1, got {appearance_memory!r}"
            )
        self.appearance_memory = None if appearance_memory is None else int(appearance_memory)
        flags = {
            "velocity_measure": velocity_measure,
            "vis_spread": vis_spread,
            "ego_sigma": ego_sigma,
            "ego_tracked": ego_tracked,
            "reacquire": reacquire,
            "surprise_floor": surprise_floor,
            "hidden_inertia": hidden_inertia,
            "gap_motion": gap_motion,
            "whole_loss": whole_loss,
            "withheld_flag": withheld_flag,
            "reacquire_behind": reacquire_behind,
        }
        for flag, value in flags.items():
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{flag} must be true or false, got {value!r}")
        self.velocity_measure, self.vis_spread = bool(velocity_measure), bool(vis_spread)
        self.ego_sigma, self.ego_tracked, self.reacquire = bool(ego_sigma), bool(ego_tracked), bool(reacquire)
        self.surprise_floor, self.hidden_inertia = bool(surprise_floor), bool(hidden_inertia)
        self.gap_motion, self.whole_loss = bool(gap_motion), bool(whole_loss)
        self.withheld_flag, self.reacquire_behind = bool(withheld_flag), bool(reacquire_behind)
        if isinstance(pixel_spread, bool) or not (isinstance(pixel_spread, (int, float)) and 0 <= pixel_spread <= 10):
            raise ValueError(f"pixel_spread must be a number of pixels in [0, 10], got {pixel_spread!r}")
        self.pixel_spread = float(pixel_spread)
        self.contact_range = _optional_number("contact_range", contact_range, 30, "metres")
        if colour_memory is not None and (
            isinstance(colour_memory, bool) or not isinstance(colour_memory, int) or colour_memory < 1
        ):
            raise ValueError(f"colour_memory must be None (as appearance_memory) or an int >= 1, got {colour_memory!r}")
        self.colour_memory = colour_memory
        number = isinstance(colour_pixels, (int, float)) and not isinstance(colour_pixels, bool)
        if not number or not 0 <= colour_pixels <= 1:
            raise ValueError(f"colour_pixels must be a number in [0, 1] (colour units), got {colour_pixels!r}")
        self.cover_core, self.colour_pixels = bool(cover_core), float(colour_pixels)
        number = isinstance(depth_pixels, (int, float)) and not isinstance(depth_pixels, bool)
        if not number or not 0 <= depth_pixels <= 10:
            raise ValueError(f"depth_pixels must be a number in [0, 10] (object widths), got {depth_pixels!r}")
        self.depth_pixels = float(depth_pixels)
        self.missed_stop = _optional_number("missed_stop", missed_stop, 1, "a share of the box")
        self.missed_speed = _optional_number("missed_speed", missed_speed, math.inf, "metres per second")
        self.reacquire_far = _optional_number("reacquire_far", reacquire_far, 30, "metres")
        self.slots = frame_shape[0]
        self.k = 1.0 / math.tan(math.radians(self.fov) / 2)
        self.register_buffer("noise", torch.tensor(NOISE))
        self.register_buffer("predicted", torch.tensor(PREDICTED))
        # pixel_spread's floor per predicted feature: image units (the image is 2 wide), and metres per metre of depth
        px = self.pixel_spread * 2.0 / self.render_size
        image, depth = torch.zeros(len(PREDICTED)), torch.zeros(len(PREDICTED))
        image[[PREDICTED.index(c) for c in (CX, CX + 1)]] = px
        image[[PREDICTED.index(c) for c in (W, H)]] = 2 * px
        depth[[PREDICTED.index(c) for c in (X, X + 1)]] = px / self.k
        self.register_buffer("pixel_image", image, persistent=False)  # not weights: files load as they were
        self.register_buffer("pixel_depth", depth, persistent=False)
        self.act = nn.Linear(self.action_dim, 16)
        self.msg = mlp(10, MSG, MSG)
        n_obs = len(PREDICTED) + 1 + 4 + 3
        self.gru = nn.GRUCell(n_obs + MSG + N_GEO + int(self.withheld_flag), self.hidden)
        self.friction = mlp(N_ATTR + self.hidden + int(self.speed_friction), 32, 1)
        self.collide = mlp(MSG + 6, self.hidden, 3)
        self.ego = nn.Linear(self.action_dim, 5, bias=False)  # yaw, pitch (radians), shift x, y, z per action
        self.vis = mlp(N_GEO + 2 + int(self.vis_spread), 32, 1)
        if self.velocity_measure:  # gain of the measured velocity, from the slot's memory and log depth
            self.vel_gain = mlp(self.hidden + 1, 16, 3)
        if self.vis_spread:  # spread of the predicted position: metres per second hidden, and per metre moved
            self.spread = nn.Parameter(torch.tensor([-3.0, -1.0]))
        self.sigma = mlp(self.hidden + N_GEO + 2 + int(self.gap_motion), self.hidden, len(PREDICTED))
        if self.ego_sigma:  # log-scale per feature from the size of the camera's own motion (0 at first)
            self.sigma_ego = nn.Linear(5, len(PREDICTED))
        self.residual = mlp(self.hidden + N_GEO, self.hidden, len(PREDICTED))
        self.gain = mlp(self.hidden + 3 + 2 + 4 + N_GEO, self.hidden, 6)
        self.new_vis = nn.Parameter(torch.tensor(-6.0))
        self.new_mean = nn.Parameter(torch.zeros(len(PREDICTED)))
        self.new_logsig = nn.Parameter(torch.full((len(PREDICTED),), 2.0))
        with torch.no_grad():
            nn.init.zeros_(self.ego.weight)
            self.friction[-1].bias.fill_(-4.0)
            for net in (self.collide, self.residual):
                net[-1].weight.mul_(0.01)
                net[-1].bias.zero_()
            self.gain[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, -2.0, -2.0, -2.0]))
            if self.velocity_measure:
                self.vel_gain[-1].bias.zero_()
            if self.ego_sigma:
                nn.init.zeros_(self.sigma_ego.weight)
                nn.init.zeros_(self.sigma_ego.bias)
        self._layout = {
            "p": 3,
            "v": 3,
            "a": N_ATTR,
            "n": 1,
            "h": self.hidden,
            "seen": 1,
            "gap": 1,
            "m": MSG,
            "geo": N_GEO,
        }
        if self.velocity_measure:  # the last measured centre (moved with the camera) and whether it was whole
            self._layout.update({"q": 3, "qn": 1})
        if self.gap_motion:  # the camera's own motion since the slot was last seen
            self._layout["drift"] = 1
        self._finish_init()

    # -------------------------------------------------------------------------------------------- input and state

    def frames_from(self, rgb: Any, segmentation: Any = None, depth: Any = None) -> torch.Tensor:  # noqa: D102 - see WorldModel.frames_from
        if segmentation is None:
            raise ValueError("the objects model reads the segmentation pass (and depth): render obs_mode='rgbd_seg'")
        rgb, seg = np.asarray(rgb), np.asarray(segmentation)
        dep = None if depth is None else np.asarray(depth)
        tables = [
            object_features(rgb[i], seg[i], None if dep is None else dep[i], self.fov, self.slots)
            for i in range(len(rgb))
        ]
        return torch.from_numpy(np.stack(tables)) if tables else torch.zeros(0, *self.frame_shape)

    def clip_encoder(self) -> Any:  # noqa: D102 - see WorldModel.clip_encoder
        return functools.partial(clip_features, fov=self.fov, max_slots=self.slots)

    @property
    def state_size(self) -> int:
        """Length of one slot's packed state."""
        return sum(self._layout.values())

    def initial_state(self, n: int) -> torch.Tensor:
        """The memory of ``n`` fresh streams: ``(n, slots, state_size)`` zeros (nothing seen yet)."""
        return torch.zeros(n, self.slots, self.state_size, device=self.device)

    def _unpack(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        out, i = {}, 0
        for key, size in self._layout.items():
            out[key] = state[..., i : i + size]
            i += size
        return out

    def _pack(self, st: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([st[key] for key in self._layout], dim=-1)

    # ------------------------------------------------------------------------------------------------ one step

    def _boxes(self, p: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        zc = p[..., 2:3].clamp(min=0.2)
        centre = torch.cat([self.k * p[..., 0:1] / zc, -self.k * p[..., 1:2] / zc], -1)
        return centre, a[..., 4:6] / zc, zc

    def _geometry(self, p: torch.Tensor, a: torch.Tensor, seen: torch.Tensor, widen: torch.Tensor | None = None):
        """Per slot: fraction of its predicted box inside the image, largest and summed coverage by nearer seen
        slots' boxes, log depth; and the boxes. ``widen`` ``(B, S, 1)``: metres added on each side of every box."""
        c, wh, zc = self._boxes(p, a)
        if widen is not None:
            wh = wh + 2 * self.k * widen / zc
        area = (wh[..., 0] * wh[..., 1]).clamp(min=1e-6)
        zero, two = torch.zeros_like(c[..., 0]), torch.full_like(c[..., 0], 2.0)
        inside = _overlap(c[..., 0], wh[..., 0], zero, two) * _overlap(c[..., 1], wh[..., 1], zero, two) / area
        core = wh * a[..., 3:4].clamp(0.05, 1).sqrt() if self.cover_core else wh  # what a nearer slot hides with
        ox = _overlap(c[:, :, None, 0], wh[:, :, None, 0], c[:, None, :, 0], core[:, None, :, 0])
        oy = _overlap(c[:, :, None, 1], wh[:, :, None, 1], c[:, None, :, 1], core[:, None, :, 1])
        s = p.shape[1]
        others = 1 - torch.eye(s, device=p.device)
        nearer = (zc[:, None, :, 0] < zc[:, :, None, 0] - 0.05).float() * seen[:, None, :, 0] * others
        cover = (ox * oy / area[:, :, None] * nearer).clamp(max=1)
        geo = torch.stack(
            [inside.clamp(0, 1), cover.max(-1).values, cover.sum(-1).clamp(max=2), torch.log(zc[..., 0])], -1
        )
        return geo, c, wh

    def _messages(self, p, v, c, wh, seen) -> torch.Tensor:
        b, s, _ = p.shape
        rel = torch.cat(
            [
                p[:, None] - p[:, :, None],
                (v[:, None] - v[:, :, None]) * 10,
                c[:, None] - c[:, :, None],
                wh[:, None].expand(b, s, s, 2),
            ],
            -1,
        )
        mask = seen[:, None, :, 0] * (1 - torch.eye(s, device=p.device))[None]
        return (self.msg(rel) * mask[..., None]).sum(2)

    def _predict(self, st: dict[str, torch.Tensor], action: torch.Tensor):
        """The prior of the next frame: the moved state, and (visibility logit, feature mean, log sigma)."""
        st = dict(st)  # _move may move the measured centre
        if self.gap_motion:  # since the last sighting (gap 0: seen in this frame), in hundredths
            size = self._ego_size(action).sum(-1)[:, None, None] * EGO_SIGMA_SCALE
            st["drift"] = st["seen"] * (st["drift"] * (st["gap"] > 0).float() + size)
        p2, v2 = self._move(st, action)
        return self._prior(st, p2, v2, action)

    def _move(self, st: dict[str, torch.Tensor], action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each slot's position and velocity one step on: friction, collisions, then the camera's own motion."""
        p, v, a, h = st["p"], st["v"], st["a"], st["h"]
        mu = self.max_friction * torch.sigmoid(self.friction(torch.cat([a, h, *self._speed(v)], -1)))
        dv = 0.02 * self.collide(torch.cat([st["m"], p, v * 10], -1))
        if self.contact_range is not None:  # collisions need another seen object within reach
            s = p.shape[1]
            others = st["seen"][:, None, :, 0] * (1 - torch.eye(s, device=p.device))
            near = ((p[:, :, None] - p[:, None]).norm(dim=-1) < self.contact_range).float() * others
            dv = dv * near.amax(-1, keepdim=True)
        if self.hidden_inertia:  # a slot not seen in this frame keeps its velocity (what slows it is not seen)
            shown = (st["gap"] <= 0).float()
            mu, dv = mu * shown, dv * shown
        v2 = v * (1 - mu) + dv
        p2 = p + v2
        e = self.ego(action.float())[:, None]  # the camera's own motion moves and turns every slot alike
        cy, sy, cp, sp = torch.cos(e[..., 0]), torch.sin(e[..., 0]), torch.cos(e[..., 1]), torch.sin(e[..., 1])

        def turn(q: torch.Tensor) -> torch.Tensor:
            x, y, z = q[..., 0], q[..., 1], q[..., 2]
            x, z = cy * x - sy * z, sy * x + cy * z
            y, z = cp * y - sp * z, sp * y + cp * z
            return torch.stack([x, y, z], -1)

        p2 = turn(p2) + e[..., 2:]
        p2 = torch.cat([p2[..., :2].clamp(-30, 30), p2[..., 2:3].clamp(0.3, 30)], -1)
        if self.velocity_measure:  # the last measured centre moves with the camera alone
            st["q"] = turn(st["q"]) + e[..., 2:]
        return p2, turn(v2)

    def _prior(self, st: dict[str, torch.Tensor], p2: torch.Tensor, v2: torch.Tensor, action: torch.Tensor):
        """The prior of the next frame from the slots' moved positions ``p2`` and velocities ``v2`` under
        ``action``."""
        a, h, seen, gap = st["a"], st["h"], st["seen"], st["gap"]
        geo, c, wh = self._geometry(p2, a, seen)
        m = self._messages(p2, v2, c, wh, seen)
        exposed = (geo[..., :1] - geo[..., 1:2]).clamp(min=0) * 10
        wide = []
        if self.vis_spread:
            geo_w = self._geometry(p2, a, seen, self._spread(gap, v2, p2))[0]
            wide = [(geo_w[..., :1] - geo_w[..., 1:2]).clamp(min=0) * 10]
        vis = self.vis(torch.cat([geo, exposed, seen, *wide], -1))[..., 0]
        vis = seen[..., 0] * vis + (1 - seen[..., 0]) * self.new_vis
        zc = p2[..., 2:3]
        log_area = torch.log((wh[..., 0:1] * wh[..., 1:2] * a[..., 3:4]).clamp(min=1e-6) / 4)
        mean = torch.cat([c, wh, log_area, a[..., 3:4], a[..., 0:3], p2[..., :2], zc], -1)
        mean = mean + self.residual(torch.cat([h, geo], -1)) * self.noise * 3
        drift = [torch.log1p(st["drift"])] if self.gap_motion else []
        logsig = self.sigma(torch.cat([h, geo, seen, gap, *drift], -1))
        if self.ego_sigma:  # radians and metres per step, about 0.1 for a turn or a step: in units of 0.01
            logsig = logsig + self.sigma_ego(self._ego_size(action) * EGO_SIGMA_SCALE)[:, None]
        logsig = logsig.clamp(-4, 4)
        if self.pixel_spread > 0 or self.colour_pixels > 0 or self.depth_pixels > 0:
            logsig = torch.maximum(logsig, self._spread_floor(p2, mean, a))
        mean = seen * mean + (1 - seen) * self.new_mean
        logsig = seen * logsig + (1 - seen) * self.new_logsig
        # a slot never seen keeps a zero state: what it would carry means nothing before its first sight
        moved = {"p": p2 * seen, "v": v2 * seen, "m": m * seen, "geo": geo * seen}
        if self.velocity_measure:
            moved["q"] = st["q"] * seen
        return {**st, **moved}, (vis, mean, logsig)

    def _spread_floor(self, p: torch.Tensor, mean: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The least log-scale of each predicted feature ``(B, S, len(PREDICTED))`` under ``pixel_spread``,
        ``colour_pixels`` and ``depth_pixels`` (-inf where none sets one), for slots at ``p`` with the prior's
        ``mean`` and looks ``a``; no gradient flows through it."""
        floor = self._pixel_floor(p) if self.pixel_spread > 0 else torch.full_like(mean, -math.inf)
        if self.colour_pixels > 0:
            floor[..., list(COLOUR)] = floor[..., list(COLOUR)].maximum(self._colour_floor(mean))
        if self.depth_pixels > 0:
            depth = PREDICTED.index(Z)
            floor[..., depth : depth + 1] = floor[..., depth : depth + 1].maximum(self._depth_floor(mean, a))
        return floor

    def _log_pixels(self, mean: torch.Tensor) -> torch.Tensor:
        """``(B, S, 1)``: log of the pixels a slot is predicted to cover (at least one), detached: how many pixels an
        object covers is a fact of the image, not something to learn a spread through. In log space: an area's
        exponential overflows in training."""
        area = PREDICTED.index(LOG_AREA)
        return (mean[..., area : area + 1].detach() + 2 * math.log(self.render_size)).clamp(min=0)

    def _colour_floor(self, mean: torch.Tensor) -> torch.Tensor:
        """``colour_pixels``' least log-scale of the colour columns ``(B, S, 3)``: the mean colour of ``n`` pixels
        spreads at least ``colour_pixels / sqrt(n)``, ``n`` the predicted area."""
        return math.log(self.colour_pixels) - 0.5 * self._log_pixels(mean) - torch.log(self.noise[list(COLOUR)])

    def _depth_floor(self, mean: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``depth_pixels``' least log-scale of the depth column ``(B, S, 1)``: the mean depth of the ``n`` pixels an
        object shows spans its surface, about its width ``w`` deep, so it spreads at least ``depth_pixels * w /
        sqrt(n)`` as its edge pixels come and go (``w`` from the remembered width times depth, detached)."""
        width = (a[..., 4:5].detach() / self.k).clamp(min=1e-3)
        noise = self.noise[PREDICTED.index(Z)]
        return math.log(self.depth_pixels) + torch.log(width) - 0.5 * self._log_pixels(mean) - torch.log(noise)

    def _pixel_floor(self, p: torch.Tensor) -> torch.Tensor:
        """``pixel_spread``'s least log-scale of each predicted feature ``(B, S, len(PREDICTED))`` for slots at
        positions ``p`` (no floor, -inf, on the features it does not name). Detached, and -inf set rather than
        taken as log 0 (whose gradient, inf times 0, made every training step from a floored file NaN): the floor is
        a fact of pixels, not something to learn the spread through."""
        floor = self.pixel_image + self.pixel_depth * p[..., 2:3].detach().clamp(min=0.3)
        named = floor > 0
        return torch.where(named, torch.log(floor.clamp(min=1e-12) / self.noise), torch.full_like(floor, -math.inf))

    def _ego_size(self, action: torch.Tensor) -> torch.Tensor:
        """``(B, 5)``: the size of the action's learned camera motion (yaw, pitch in radians; shift x, y, z in
        metres), detached: what the correction's prior and ``ego_sigma``'s spread read."""
        return self.ego(action.float()).detach().abs()

    def _ego_correct(self, st: dict[str, torch.Tensor], action: torch.Tensor, obs: torch.Tensor):
        """The moved state ``st`` (of :meth:`_predict`) re-aimed at the frame ``obs`` as far as the camera's own
        motion explains it, and the prior from there.

        The learned motion per action (:attr:`ego`) is an average: how far a turn moves things in the camera's frame
        depends on the camera's pitch, and a wall stops a step. So the error of that guess is estimated from what all
        the objects seen before and seen whole in ``obs`` did together: one small rotation and shift of the camera
        (6 numbers, least squares over their measured centres, each weighted by its depth's precision), under a
        prior per action whose width is the action's own learned motion plus :data:`EGO_SLACK`. An action that does
        not move the camera (a no-op, a push) leaves almost no slack, so an object that moves by itself is not
        explained away; a turn's or a step's error is. Every seen slot, hidden or not, moves with the camera."""
        p, v, a, seen = st["p"], st["v"], st["a"], st["seen"]
        e = self._ego_size(action)
        slack = torch.tensor(EGO_SLACK, device=p.device)
        # rotation about x (pitch), y (yaw), z (roll: a yaw about the world's up, seen from a pitched camera)
        sigma = torch.stack([e[:, 1], e[:, 0], e[:, 0], e[:, 2], e[:, 3], e[:, 4]], -1) + slack
        vis = obs[..., VISIBLE] * (1 - obs[..., CLIP_L : CLIP_B + 1].max(-1).values.clamp(max=1))
        weight = (vis > 0.5).float() * seen[..., 0] * torch.sigmoid((obs[..., LOG_AREA] + 6.5) * 4)
        if self.ego_tracked:  # only slots seen in the frame before (gap 0): a slot seen again may be metres off
            weight = weight * (st["gap"][..., 0] <= 0).float()
        pd = p.detach()
        measured = self._measure(obs, a, pd).detach()
        r = (measured - pd) * weight[..., None]
        x, y, z = pd[..., 0], pd[..., 1], pd[..., 2]
        zero, one = torch.zeros_like(x), torch.ones_like(x)
        # d(position) = omega x p + tau, as a (B, S, 3, 6) Jacobian in (omega_x, omega_y, omega_z, tau)
        jac = torch.stack(
            [
                torch.stack([zero, z, -y, one, zero, zero], -1),
                torch.stack([-z, zero, x, zero, one, zero], -1),
                torch.stack([y, -x, zero, zero, zero, one], -1),
            ],
            -2,
        )
        precision = (weight / (EGO_MEASURE * z.clamp(min=0.3)) ** 2)[..., None, None]
        normal = (jac.transpose(-1, -2) @ (jac * precision)).sum(1) + torch.diag_embed(sigma**-2)
        rhs = (jac.transpose(-1, -2) @ (r[..., None] * precision)).sum(1)
        u = torch.linalg.solve(normal, rhs)[..., 0][:, None]  # (B, 1, 6)
        omega, tau = u[..., :3], u[..., 3:]
        p2 = p + torch.cross(omega.expand_as(p), p, dim=-1) + tau
        p2 = torch.cat([p2[..., :2].clamp(-30, 30), p2[..., 2:3].clamp(0.3, 30)], -1)
        v2 = v + torch.cross(omega.expand_as(v), v, dim=-1)
        if self.velocity_measure:
            q = st["q"]
            st = {**st, "q": q + torch.cross(omega.expand_as(q), q, dim=-1) + tau}
        return self._prior(st, p2, v2, action)

    def _spread(self, gap: torch.Tensor, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``vis_spread``: how far (metres, ``(B, S, 1)``) a slot hidden for ``gap`` seconds may be from its
        predicted position: a learned share of the distance it moved meanwhile at its speed ``v``, plus a learned
        drift per second; 0 for a slot seen in the last frame."""
        rate = F.softplus(self.spread)
        speed = _norm(v) * 30  # metres per second
        return (gap * (rate[0] + rate[1] * speed)).clamp(max=p[..., 2:3].clamp(min=0.3))

    def _speed(self, v: torch.Tensor) -> list[torch.Tensor]:
        """The friction's speed input (``[]`` without ``speed_friction``): log of the speed over
        :data:`SPEED_SCALE`: about 0 for an object moving at 1 m/s, -2.3 for one at rest."""
        if not self.speed_friction:
            return []
        return [torch.log(_norm(v) / SPEED_SCALE + 1e-2) / 2]

    def _measure(self, obs: torch.Tensor, a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Amodal centre (camera coordinates) from the box's exact edges and the remembered size."""
        z = obs[..., Z : Z + 1].clamp(min=0.2)
        wf, hf = a[..., 4:5] / z, a[..., 5:6] / z
        cl, cr, ct, cb = (obs[..., i : i + 1] for i in range(CLIP_L, CLIP_B + 1))
        bx, by, w, h = (
            obs[..., BOX_X : BOX_X + 1],
            obs[..., BOX_Y : BOX_Y + 1],
            obs[..., W : W + 1],
            obs[..., H : H + 1],
        )
        zp = p[..., 2:3].clamp(min=0.2)
        cxp, cyp = self.k * p[..., 0:1] / zp, -self.k * p[..., 1:2] / zp
        cx = (
            (1 - cl) * (1 - cr) * obs[..., CX : CX + 1]
            + cl * (1 - cr) * (bx + w / 2 - wf / 2)
            + cr * (1 - cl) * (bx - w / 2 + wf / 2)
            + cl * cr * cxp
        )
        cy = (
            (1 - ct) * (1 - cb) * obs[..., CX + 1 : CX + 2]
            + ct * (1 - cb) * (by + h / 2 - hf / 2)
            + cb * (1 - ct) * (by - h / 2 + hf / 2)
            + ct * cb * cyp
        )
        return torch.cat([cx * z / self.k, -cy * z / self.k, z], -1)

    def _update(
        self, st: dict[str, torch.Tensor], obs: torch.Tensor, withheld: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The state corrected by the observed slot table ``obs`` ``(B, S, F)``; ``withheld`` ``(B, S)``: 1 for the
        slots whose input was withheld in training (read with :attr:`withheld_flag`; None: none)."""
        vis = obs[..., VISIBLE : VISIBLE + 1]
        seen, p, v, a, n = st["seen"], st["p"], st["v"], st["a"], st["n"]
        geo = st["geo"]
        clip = obs[..., CLIP_L : CLIP_B + 1]
        whole = vis * (1 - clip.max(-1, keepdim=True).values)
        z = obs[..., Z : Z + 1].clamp(min=0.2)
        attrs = torch.cat(
            [obs[..., R : B + 1], obs[..., FILL : FILL + 1], obs[..., W : W + 1] * z, obs[..., H : H + 1] * z], -1
        )
        first = vis * (1 - seen)
        start = first  # slots whose position starts from this sighting
        if self.reacquire:  # seen again after the prior put its box wholly outside the image: start from the sighting
            start = first + vis * seen * (geo[..., :1] < 0.05).float()
        n2 = n + whole
        span = n2.clamp(min=1) if self.appearance_memory is None else n2.clamp(min=1, max=self.appearance_memory)
        rate = torch.where(n2 > 0, whole / span, torch.zeros_like(n))
        if self.colour_memory is not None:  # the colour follows the latest sightings, the outline keeps its memory
            hue = torch.where(n2 > 0, whole / n2.clamp(min=1, max=self.colour_memory), torch.zeros_like(n))
            rate = torch.cat([hue.expand(*hue.shape[:-1], 3), rate.expand(*rate.shape[:-1], N_ATTR - 3)], -1)
        a2 = first * attrs + (1 - first) * (a + rate * (attrs - a))
        measured = self._measure(obs, a2, p)
        trust = torch.sigmoid((obs[..., LOG_AREA : LOG_AREA + 1] + 6.5) * 4) * vis  # a sliver of pixels says little
        if self.reacquire_far is not None:  # seen far from where it was expected: start from the sighting
            far = (_norm(measured - p) > self.reacquire_far).float()
            if self.reacquire_behind:  # only where the object is behind its expected place: it slowed (unseen)
                far = far * (((measured - p) * v).sum(-1, keepdim=True) < 0).float()
            start = (start + vis * seen * far).clamp(max=1)
        err = (measured - p).clamp(-0.5, 0.5) * vis
        g = torch.sigmoid(self.gain(torch.cat([st["h"], err * 10, vis, seen, clip, geo], -1)))
        p2 = start * measured + (1 - start) * (p + trust * g[..., :3] * err)
        own = whole if self.whole_velocity else vis  # sightings that may correct the velocity
        v2 = v + trust * own * g[..., 3:6] * err
        extra = {}
        if self.velocity_measure:  # seen whole now and in the frame before: the centres' difference is the velocity
            pair = whole * trust * st["qn"]
            gv = torch.sigmoid(self.vel_gain(torch.cat([st["h"], torch.log(z)], -1)))
            v2 = v2 + pair * gv * ((measured - st["q"]).clamp(-0.2, 0.2) - v2)
            keep = (whole * trust > 0.5).float()
            extra = {"q": keep * measured + (1 - keep) * st["q"], "qn": keep}
        if self.gap_motion:
            extra["drift"] = st["drift"]
        if self.missed_stop is not None:  # not seen where its box should show: it stopped while still hidden
            missed = seen * (1 - vis) * ((geo[..., :1] - geo[..., 1:2]) > self.missed_stop).float()
            if self.missed_speed is not None:  # only a slot slow enough to have stopped behind the cover
                missed = missed * (_norm(v) * 30 < self.missed_speed).float()
            p2, v2 = p2 - missed * v, (1 - missed) * v2
        v2 = ((1 - start) * v2).clamp(-0.2, 0.2)
        b, s, _ = p.shape
        seen_obs = obs[..., list(PREDICTED)] / self.noise / 10 * vis
        flag = []
        if self.withheld_flag:
            flag = [torch.zeros_like(vis) if withheld is None else withheld[..., None].to(vis.dtype)]
        inp = torch.cat([seen_obs, vis, clip, err * 10, st["m"], geo, *flag], -1)
        h = self.gru(inp.reshape(b * s, -1), st["h"].reshape(b * s, -1)).reshape(b, s, -1)
        seen2 = torch.maximum(seen, vis)
        return {  # a slot never seen keeps a zero state (so leaving it out of the computation changes nothing)
            "p": p2,
            "v": v2,
            "a": a2,
            "n": n2,
            "h": h * seen2,
            "seen": seen2,
            "gap": (st["gap"] + 1 / 30) * (1 - vis) * seen2,
            "m": st["m"],
            "geo": geo,
            **extra,
        }

    # ------------------------------------------------------------------------------------------- likelihoods

    def _errors(self, dist, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vis_logit, mean, logsig = dist
        seen = obs[..., VISIBLE]
        bce = F.binary_cross_entropy_with_logits(vis_logit, seen, reduction="none")
        z = (obs[..., self.predicted] - mean) / self.noise / logsig.exp()
        return bce, z, seen

    @staticmethod
    def _whole(obs: torch.Tensor) -> torch.Tensor:
        """``(B, S)``: 1 where a slot is seen whole (no edge of its box cut by the image edge or a nearer object)."""
        return obs[..., VISIBLE] * (obs[..., CLIP_L : CLIP_B + 1].max(-1).values <= 0).float()

    def _nll(self, dist, obs: torch.Tensor, errors: tuple | None = None) -> torch.Tensor:
        """Per slot negative log-likelihood ``(B, S)`` of the observed table (the training loss); ``errors``:
        :meth:`_errors` of the same prior and table, when already computed."""
        bce, z, seen = errors if errors is not None else self._errors(dist, obs)
        if self.whole_loss:  # a cut box's features say where the cut is: only whole sightings' are fitted
            seen = self._whole(obs)
        return bce + seen * (0.5 * z.clamp(-10, 10) ** 2 + dist[2]).sum(-1)

    def _in_view(self, st: dict[str, torch.Tensor]) -> torch.Tensor | float:
        """With :attr:`reacquire`, ``(B, S)``: 0 for slots whose prior put their box wholly outside the image (where
        they are is the learned turn's guess: seen again, they count as new objects do), else 1; 1 without it."""
        if not self.reacquire:
            return 1.0
        return (st["geo"][..., 0] >= 0.05).float()

    def _surprise(
        self, dist, obs: torch.Tensor, seen_before: torch.Tensor, errors: tuple | None = None
    ) -> torch.Tensor:
        """Per slot excess surprise ``(B, S)`` (the module docstring; :attr:`surprise_terms`); ``errors`` as in
        :meth:`_nll`."""
        bce, z, seen = errors if errors is not None else self._errors(dist, obs)
        if self.surprise_terms in ("whole", "motion", "sightings"):
            whole = self._whole(obs)
            terms = 0.5 * (z.clamp(-OUTLIER, OUTLIER) ** 2 - 1)
            if self.surprise_terms == "sightings":
                return self._sighting_surprise(dist, obs, seen_before, bce, terms.clamp(min=0), seen, whole)
            if self.surprise_terms == "motion":
                terms = terms[..., list(MOTION)]
            return whole * seen_before * terms.sum(-1)
        terms = 0.5 * (z.clamp(-30, 30) ** 2 - 1)
        if self.surprise_floor:  # no feature better predicted than expected counts
            terms = terms.clamp(min=0)
        return self._visibility_surprise(dist, bce, self.surprise_floor) + seen * seen_before * terms.sum(-1)

    def _visibility_surprise(self, dist, bce: torch.Tensor, floor: bool) -> torch.Tensor:
        """Per slot ``(B, S)`` cost of whether it is seen, beyond the expected (its entropy) or, with ``floor``,
        beyond the likelier outcome's."""
        if floor:  # the likeliest outcome costs 0
            return bce - F.softplus(-dist[0].abs())  # -log max(p, 1 - p)
        return bce - F.binary_cross_entropy_with_logits(dist[0], torch.sigmoid(dist[0]), reduction="none")

    def _sighting_surprise(self, dist, obs, seen_before, bce, excess, seen, whole) -> torch.Tensor:
        """``surprise_terms="sightings"``, per slot ``(B, S)``: whether it is seen, beyond the likelier outcome's
        cost; for a slot seen before and seen whole, every feature's positive excess (``excess``: ``0.5 (z^2 - 1)``
        floored at 0, errors capped at :data:`OUTLIER`); for one whose box is cut by the image edge or a nearer
        object, its box's edges against the predicted box (:meth:`_edge_surprise`) and its colour where it shows
        at least ``exp(SIGHTING_AREA)`` of the image."""
        cut = seen - whole
        colour = excess[..., list(COLOUR)].sum(-1) * torch.sigmoid((obs[..., LOG_AREA] - SIGHTING_AREA) * 4)
        features = whole * excess.sum(-1) + cut * (colour + self._edge_surprise(dist, obs))
        return self._visibility_surprise(dist, bce, floor=True) + seen_before * features

    def _edge_surprise(self, dist, obs: torch.Tensor) -> torch.Tensor:
        """``(B, S)``: how far the observed box's edges are from the predicted box's (centre plus and minus half
        the size, spread from the centre's and the size's predicted spreads), ``0.5 (z^2 - 1)`` per side floored
        at 0 with ``|z|`` capped at :data:`OUTLIER`. An exact side (its clip flag 0) counts either way; a side cut
        by the image edge or a nearer object only where the object shows *beyond* the predicted edge (behind the
        cut it may go on)."""
        _, mean, logsig = dist
        spread = self.noise * logsig.exp()
        out = torch.zeros_like(obs[..., 0])
        for centre, size, box, extent, sides in (
            (0, 2, BOX_X, W, (CLIP_L, CLIP_R)),
            (1, 3, BOX_Y, H, (CLIP_T, CLIP_B)),
        ):
            sigma = torch.sqrt(spread[..., centre] ** 2 + (spread[..., size] / 2) ** 2)
            for sign, clip in zip((-1.0, 1.0), sides, strict=True):
                edge = obs[..., box] + sign * obs[..., extent] / 2
                z = (edge - (mean[..., centre] + sign * mean[..., size] / 2)) / sigma
                exact = (obs[..., clip] <= 0).float()
                dev = exact * z.abs() + (1 - exact) * (sign * z).clamp(min=0)
                out = out + (0.5 * (dev.clamp(max=OUTLIER) ** 2 - 1)).clamp(min=0)
        return out

    # ---------------------------------------------------------------------------------------- WorldModel API

    def _active(self, frames: torch.Tensor, state: torch.Tensor | None) -> int:
        """Slots in use: up to the last one seen in ``frames`` ``(B, T, S, F)`` or in ``state`` (at least 1). Slots
        beyond never change: their state stays zero and their prior is the constant prior of a new object."""
        used = (frames[..., VISIBLE] > 0).flatten(0, -2).any(0)
        if state is not None:
            used = used | (self._unpack(state)["seen"][..., 0] > 0).any(0)
        idx = torch.nonzero(used)
        return int(idx.max()) + 1 if len(idx) else 1

    def _unused_cost(self, unused: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, surprise) of ``unused`` never-seen slots that stay unseen: each is predicted unseen with the new
        object's probability."""
        bce = F.softplus(self.new_vis)
        entropy = F.binary_cross_entropy_with_logits(self.new_vis, torch.sigmoid(self.new_vis))
        return unused * bce, unused * (bce - entropy).detach() * float(self.surprise_terms in ("all", "sightings"))

    def _withheld(self, b: int, t: int, n: int, device: torch.device) -> torch.Tensor | None:
        """``(B, T, S)`` 1 where a slot's input is shown, 0 over one withheld stretch in a ``withhold`` share of the
        slots (the first frame is always shown); None when nothing is withheld."""
        if self.withhold <= 0 or t < 2:
            return None
        lo, hi = self.gap_frames
        pick = torch.rand(b, n, device=device) < self.withhold
        length = torch.randint(lo, hi + 1, (b, n), device=device)
        start = (torch.rand(b, n, device=device) * (t - 1)).long() + 1
        steps = torch.arange(t, device=device)[None, :, None]
        hidden = (steps >= start[:, None]) & (steps < (start + length)[:, None]) & pick[:, None]
        return (~hidden).float()

    def _unroll(self, frames: torch.Tensor, actions: torch.Tensor, state: torch.Tensor | None, withhold: bool = False):
        """Teacher-forced unroll: per step ``(B, T)`` loss and surprise of frames ``1 .. T``, and the final state
        (the prior of the frame after the last). ``withhold`` hides stretches of the input (:meth:`_withheld`);
        the loss is always on the true frames."""
        frames = frames.float()
        b = frames.shape[0]
        n = self._active(frames, state)
        full = self.initial_state(b) if state is None else state
        st = self._unpack(full[:, :n])
        shown = self._withheld(b, actions.shape[1], n, frames.device) if withhold else None
        losses, surprises = [], []
        for t in range(actions.shape[1]):
            seen_now = frames[:, t, :n] if shown is None else frames[:, t, :n] * shown[:, t, :, None]
            st = self._update(st, seen_now, None if shown is None else 1 - shown[:, t])
            before = st["seen"][..., 0]
            st, dist = self._predict(st, actions[:, t])
            nxt = frames[:, t + 1, :n]
            if self.ego_correction:
                st, dist = self._ego_correct(st, actions[:, t], nxt)
            errors = self._errors(dist, nxt)
            nll = self._nll(dist, nxt, errors)
            if shown is not None and self.gap_weight != 1.0:
                nll = nll * (1 + (self.gap_weight - 1) * (1 - shown[:, t]))
            losses.append(nll.sum(-1))
            surprises.append(self._surprise(dist, nxt, before * self._in_view(st), errors).sum(-1).detach())
        extra_loss, extra_surprise = self._unused_cost(self.slots - n)
        out = torch.cat([self._pack(st), full[:, n:]], dim=1)
        return torch.stack(losses, 1) + extra_loss, torch.stack(surprises, 1) + extra_surprise, out

    def compute_loss(self, batch: Transitions) -> LossOutput:
        """The loss of every step of the ``k + 1``-frame windows unrolled from a fresh state; the per-sample loss and
        the surprise are the last step's (the transition itself)."""
        clips = batch.clip()
        loss, surprise, _ = self._unroll(clips.frames.to(self.device), clips.actions.to(self.device), None)
        return LossOutput(loss.mean(), loss[:, -1].detach(), surprise[:, -1], {"nll": float(loss.detach().mean())})

    def clip_loss(self, clips: Clips, state: torch.Tensor | None = None) -> tuple[LossOutput, torch.Tensor]:
        """Loss over whole clips unrolled from ``state``; returns the detached final state (truncated
        backpropagation through time). In training mode a ``withhold`` share of the slots has a stretch of its input
        withheld (the model carries them through it; the loss stays on the true frames)."""
        loss, surprise, st = self._unroll(
            clips.frames.to(self.device), clips.actions.to(self.device), state, withhold=self.training
        )
        out = LossOutput(loss.mean(), loss.detach().mean(1), surprise.mean(1), {"nll": float(loss.detach().mean())})
        return out, st.detach()

    @torch.no_grad()
    def prepare(self, context, action, past_actions=None, state=None) -> object:
        """Absorb the newest context frame into ``state`` (or, with no state, the whole context window from a fresh
        one) and predict the next frame under ``action``."""
        ctx = context.to(self.device).float()
        action = action.to(self.device, dtype=torch.float32)
        b, k = ctx.shape[:2]
        n = self._active(ctx, None if state is None else state.to(self.device))
        if state is None:
            if past_actions is None:
                past_actions = action.new_zeros(b, k - 1, action.shape[-1])
            st = self._unpack(self.initial_state(b)[:, :n])
            for j in range(k - 1):
                st, _ = self._predict(self._update(st, ctx[:, j, :n]), past_actions[:, j].to(action))
        else:
            st = self._unpack(state.to(self.device)[:, :n])
        st = self._update(st, ctx[:, -1, :n])
        before = st["seen"][..., 0]
        st, dist = self._predict(st, action)
        # [state, prior, seen before] over all slots, then what the ego-motion correction starts from
        return [*self._padded(st, dist, before), st, action]

    def _padded(self, st: dict[str, torch.Tensor], dist: tuple, before: torch.Tensor) -> tuple:
        """State, prior and seen-before of the first ``n`` slots completed with the slots left out: never seen,
        predicted as a new object would be."""
        vis, mean, logsig = dist
        b, n = vis.shape
        pad = self.slots - n
        if pad:
            vis = torch.cat([vis, self.new_vis.expand(b, pad)], 1)
            mean = torch.cat([mean, self.new_mean.expand(b, pad, -1)], 1)
            logsig = torch.cat([logsig, self.new_logsig.expand(b, pad, -1)], 1)
            before = torch.cat([before, before.new_zeros(b, pad)], 1)
            zeros = self._unpack(self.initial_state(b)[:, :pad])
            st = {key: torch.cat([value, zeros[key]], 1) for key, value in st.items()}
        return st, (vis, mean, logsig), before

    @torch.no_grad()
    def evaluate_prepared(self, prepared: object, next_frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Surprise and loss of the prepared step's next frame, ``(B,)`` each (:meth:`surprise_parts` summed over
        the slots)."""
        parts = self.surprise_parts(prepared, next_frame)
        return parts["surprise"].sum(-1), parts["loss"].sum(-1)

    @torch.no_grad()
    def surprise_parts(self, prepared: object, next_frame: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the surprise of the prepared step's next frame is made of: per slot, ``surprise`` and ``loss``
        ``(B, S)``, and ``z2`` ``(B, S, len(PREDICTED))`` the squared standardised error of each predicted feature
        (:data:`PREDICTED`; 0 where the slot is not seen). Use it *instead of* :meth:`evaluate_prepared` (each
        re-aims the prepared step: with :attr:`ego_correction` the prior is first corrected by the frame,
        :meth:`_ego_correct`, and the next step starts from there)."""
        nxt = next_frame.to(self.device).float()
        if self.ego_correction:
            st, action = prepared[3], prepared[4]  # type: ignore[index]
            n = st["p"].shape[1]
            st, dist = self._ego_correct(st, action, nxt[:, :n])
            prepared[:3] = self._padded(st, dist, prepared[2][:, :n])  # type: ignore[index]
        st, dist, before = prepared[:3]  # type: ignore[index]
        before = before * self._in_view(st)
        errors = self._errors(dist, nxt)
        _, z, seen = errors
        return {
            "surprise": self._surprise(dist, nxt, before, errors),
            "loss": self._nll(dist, nxt, errors),
            "z2": z.square() * seen[..., None],
        }

    def next_state(self, prepared: object) -> torch.Tensor:  # noqa: D102 - the prior of the next frame, packed
        return self._pack(prepared[0])  # type: ignore[index]

    def predicted_objects(self, prepared: object) -> dict[str, torch.Tensor]:
        """What the prepared step expects of each slot: ``visible`` probability ``(B, S)``, image ``box`` ``(B, S,
        4)`` (centre x, centre y, width, height in image units), 3D ``position`` ``(B, S, 3)`` in camera coordinates
        and ``velocity`` in metres per step, and whether the slot was ``seen`` before ``(B, S)``."""
        st, (vis, mean, _), _ = prepared[:3]  # type: ignore[index]
        return {
            "visible": torch.sigmoid(vis),
            "box": mean[..., 0:4],
            "position": st["p"],
            "velocity": st["v"],
            "seen": st["seen"][..., 0],
        }

    @torch.no_grad()
    def rollout_positions(self, frames: torch.Tensor, actions: torch.Tensor, horizon: int) -> torch.Tensor:
        """Open-loop predictions of where every slot's centre will be seen: the model reads ``frames`` ``(B, k, S,
        F)`` (with the ``k - 1`` actions between them, ``actions[:, :k - 1]``), then predicts ``horizon`` steps on
        its own under ``actions[:, k - 1 : k - 1 + horizon]``, correcting nothing.

        Returns:
            ``(B, horizon, S, 2)`` image coordinates of the predicted centres (x right, y down, [-1, 1]).
        """
        frames = frames.to(self.device).float()
        actions = actions.to(self.device, dtype=torch.float32)
        b, k = frames.shape[:2]
        st = self._unpack(self.initial_state(b))
        for j in range(k - 1):
            st, _ = self._predict(self._update(st, frames[:, j]), actions[:, j])
        st = self._update(st, frames[:, k - 1])
        out = []
        for h in range(horizon):
            st, _ = self._predict(st, actions[:, k - 1 + h])
            out.append(self._boxes(st["p"], st["a"])[0])
        return torch.stack(out, 1)

    def config(self) -> dict:  # noqa: D102
        return {
            **super().config(),
            "hidden": self.hidden,
            "fov": self.fov,
            "resolution": self.render_size,
            "withhold": self.withhold,
            "gap_frames": list(self.gap_frames),
            "gap_weight": self.gap_weight,
            "max_friction": self.max_friction,
            "ego_correction": self.ego_correction,
            "surprise_terms": self.surprise_terms,
            "speed_friction": self.speed_friction,
            "whole_velocity": self.whole_velocity,
            "appearance_memory": self.appearance_memory,
            "velocity_measure": self.velocity_measure,
            "vis_spread": self.vis_spread,
            "ego_sigma": self.ego_sigma,
            "ego_tracked": self.ego_tracked,
            "reacquire": self.reacquire,
            "surprise_floor": self.surprise_floor,
            "hidden_inertia": self.hidden_inertia,
            "pixel_spread": self.pixel_spread,
            "contact_range": self.contact_range,
            "cover_core": self.cover_core,
            "colour_pixels": self.colour_pixels,
            "depth_pixels": self.depth_pixels,
            "colour_memory": self.colour_memory,
            "gap_motion": self.gap_motion,
            "whole_loss": self.whole_loss,
            "missed_stop": self.missed_stop,
            "missed_speed": self.missed_speed,
            "withheld_flag": self.withheld_flag,
            "reacquire_far": self.reacquire_far,
            "reacquire_behind": self.reacquire_behind,
        }

    @property
    def resolution(self) -> tuple[int, int]:
        """The render size its slot tables are read at."""
        return self.render_size, self.render_size
