"""World models whose prediction error is a curiosity signal (torch only: no env or SB3 imports), one module per
family.

Every model implements one interface, :class:`WorldModel` (:mod:`.base`): from a batch of :class:`Transitions`
(``k`` context frames, the action taken after the last of them, the next frame) it computes a training loss
(:meth:`WorldModel.compute_loss`) and a per-transition surprise (:meth:`WorldModel.surprise`).

Models, one module each:

* :class:`PixelPredictor`: conv encoder over the ``k`` stacked context frames, an action-conditioned latent
  transition and a conv decoder that predicts the next frame (as a residual on the last context frame); the loss
  is a configurable mix of L1 and L2.
* :class:`LatentPredictor`: JEPA-style. An online encoder and a predictor are trained to match a target encoder's
  features of the next frame. The target is an EMA of the online encoder; a variance-covariance (VICReg)
  regulariser on the online features additionally keeps them from collapsing. Surprise is the distance in target
  feature space.
* :class:`RNDModel`: random network distillation (Burda et al. 2018), the standard baseline: surprise is the error
  of a trained predictor against a fixed random network on the (normalised) next frame.
* :class:`ICMModel`: intrinsic curiosity module (Pathak et al. 2017): features learned by an inverse model, and a
  forward model in that feature space whose error is the surprise.
* :class:`LearningProgress`: wraps any of the above; surprise is the decrease of the model's error over time
  (error of a lagged copy minus error of the current model, clipped at 0), which stays near zero on transitions
  that can never be predicted (the noisy TV).

Models with memory (a frame-to-frame predictor cannot pass object permanence; these remember):

* :class:`RecurrentPixelPredictor` (``"recurrent"``): a convolutional GRU whose state is carried through the whole
  episode. Each step it encodes the newest frame and the action, updates the state, and decodes the next frame as
  a residual on the (optionally action-warped) newest frame. Trained with an L1 + L2 loss by truncated
  backpropagation through time: over the ``k``-frame windows of the online buffer, and over long clips whose state
  is carried from one chunk to the next in pretraining (:mod:`tdwgym.agents.pretraining`).
* :class:`ContextLatentPredictor` (``"jepa"``): V-JEPA-like. An online encoder embeds every frame; a causal
  transformer over the last ``k`` (default 16) frames' features and actions predicts the next frame's features
  under an EMA target encoder; a variance-covariance regulariser keeps the features from collapsing. Surprise is
  the prediction error in feature space.

The object-centric model (:mod:`.objects`, ``"objects"``): one slot per object id read from the segmentation pass
(:mod:`.slots`: visibility, image box, colour, the 3D centroid from depth), a recurrent state per slot with a
3D position and velocity, interactions between slots, the agent's actions moving the camera; surprise is how much
less likely what is seen was than the model expected (it reads object identities from the simulator, as PLATO
reads masks).

Beside them: :mod:`.data` (:class:`Transitions`, :class:`Clips`, :class:`LossOutput`, :class:`Stream`), :mod:`.base`
(the interface and shared building blocks) and :mod:`.registry` (:data:`MODELS` by name, :func:`make_world_model`,
loading checkpoints, the shipped :data:`PRETRAINED` model). Importing the package registers every family; the
names below are its public interface.
"""

from tdwgym.agents.models.base import WARP_SCALE, PixelOutput, WorldModel, resize_frames
from tdwgym.agents.models.data import Clips, LossOutput, Stream, Transitions
from tdwgym.agents.models.icm import ICMModel
from tdwgym.agents.models.latent import LatentPredictor
from tdwgym.agents.models.pixel import PixelPredictor
from tdwgym.agents.models.progress import LearningProgress
from tdwgym.agents.models.recurrent import ConvGRUCell, RecurrentPixelPredictor  # registers "recurrent"
from tdwgym.agents.models.registry import (
    MAX_MODEL_SIZE,
    MODELS,
    PRETRAINED,
    SHIPPED,
    check_model_kwargs,
    load_world_model,
    make_world_model,
    register_world_model,
    resolve_model_path,
    safe_load,
    world_model_from_config,
)
from tdwgym.agents.models.rnd import RNDModel

# isort: split
from tdwgym.agents.models.context_latent import ContextLatentPredictor  # registers "jepa", after "recurrent"
from tdwgym.agents.models.objects import ObjectModel  # registers "objects"
from tdwgym.agents.models.slots import FEATURES, object_features

__all__ = [
    "Clips",
    "ContextLatentPredictor",
    "FEATURES",
    "ObjectModel",
    "object_features",
    "ConvGRUCell",
    "ICMModel",
    "LatentPredictor",
    "LearningProgress",
    "LossOutput",
    "MAX_MODEL_SIZE",
    "MODELS",
    "PRETRAINED",
    "SHIPPED",
    "PixelOutput",
    "PixelPredictor",
    "RNDModel",
    "RecurrentPixelPredictor",
    "Stream",
    "Transitions",
    "WARP_SCALE",
    "WorldModel",
    "check_model_kwargs",
    "load_world_model",
    "make_world_model",
    "register_world_model",
    "resize_frames",
    "resolve_model_path",
    "safe_load",
    "world_model_from_config",
]
