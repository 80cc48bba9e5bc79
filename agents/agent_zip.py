"""Reading a stable-baselines3 PPO ``.zip`` without unpickling anything in it.

An SB3 ``.zip`` holds ``data`` (JSON; objects JSON cannot hold are cloudpickled under ``:serialized:`` keys, which
``PPO.load`` unpickles: a file from anyone could run code that way), ``policy.pth`` and ``policy.optimizer.pth``
(state dicts). :func:`load_agent` never decodes a ``:serialized:`` entry: it rebuilds the PPO model from its plain
JSON fields (and the readable copies SB3 writes beside each pickle: a space's shape, dtype and bounds), the settings
the caller passes (a run's ``config.json``) and the env when there is one, then reads the weights with
``torch.load(weights_only=True)`` (tensors and plain data, never code). Only ``trust_pickles=True`` (the command
line's ``--trust-pickles``, or ``TDWGYM_TRUST_PICKLES=1`` in the environment, which the flag sets for worker
processes) hands the file to ``PPO.load``.

    model = load_agent("runs/curiosity/checkpoints/step_0000020000/agent.zip", device="cpu")
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from tdwgym.tools.policies import TRUST_PICKLES_ENV

__all__ = ["TRUST_PICKLES_ENV", "AgentFileError", "agent_spaces", "load_agent", "read_agent_zip", "trusts_pickles"]


SCALAR_STATE = (
    "num_timesteps",
    "_total_timesteps",
    "_num_timesteps_at_start",
    "_n_updates",
    "_episode_num",
    "_current_progress_remaining",
)
"""Plain JSON fields of ``data`` that a resumed run takes back (the rest it rebuilds from its settings)."""

PPO_SETTINGS = (
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "normalize_advantage",
    "seed",
    "learning_rate",
    "use_sde",
    "sde_sample_freq",
    "target_kl",
)
"""PPO arguments read from ``data`` when they are plain JSON and the caller gives none."""


class AgentFileError(ValueError):
    """An agent file that cannot be read safely (one line naming it, and what to do)."""


def trusts_pickles(trust_pickles: bool | None = None) -> bool:
    """``trust_pickles`` when given, else whether ``$TDWGYM_TRUST_PICKLES`` is ``1`` (set by ``--trust-pickles``)."""
    if trust_pickles is not None:
        return bool(trust_pickles)
    return os.environ.get(TRUST_PICKLES_ENV, "") == "1"


def read_agent_zip(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` as plain JSON (``:serialized:`` entries left as they are, never decoded) and every ``*.pth`` member
    read with ``torch.load(weights_only=True)``.

    Raises:
        AgentFileError: Not a zip, no ``data`` or ``policy.pth``, or a member that does not load as plain data.
    """
    import torch

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "data" not in names or "policy.pth" not in names:
                raise AgentFileError(f"{path} is not a stable-baselines3 agent (no data or policy.pth in the zip)")
            data = json.loads(archive.read("data").decode("utf-8"))
            params = {}
            for name in sorted(n for n in names if n.endswith(".pth")):
                params[name[: -len(".pth")]] = torch.load(
                    io.BytesIO(archive.read(name)), map_location=device, weights_only=True
                )
    except AgentFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, ValueError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise AgentFileError(f"{path} is damaged and does not load ({type(exc).__name__}: {reason})") from None
    except Exception as exc:  # noqa: BLE001 - torch's weights-only unpickler refuses anything but plain data
        raise AgentFileError(
            f"{path} holds more than weights (torch's weights-only reader refused it: {type(exc).__name__}) and "
            "was not loaded; pass --trust-pickles only if you trust whoever made the file"
        ) from None
    if not isinstance(data, dict):
        raise AgentFileError(f"{path} is damaged: its data is not a JSON object")
    return data, params


_NUMBER = re.compile(r"[-+]?(?:inf|nan|\d+\.?\d*(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?)", re.IGNORECASE)
_BOX = re.compile(r"Box\(([^,]+), ([^,]+), \(([\d, ]*)\), (\w+)\)")


def _uniform(text: Any) -> float | None:
    """The one value every element of a numpy array's printed form has, or None."""
    if isinstance(text, (int, float)):
        return float(text)
    values = {float(v) for v in _NUMBER.findall(str(text))}
    return values.pop() if len(values) == 1 else None


def _space(entry: Any) -> spaces.Space | None:
    """A Box, Discrete or Dict of Boxes from the readable fields SB3 writes beside a pickled space, or None."""
    if not isinstance(entry, dict):
        return None
    kind = str(entry.get(":type:", ""))
    if kind.endswith(".Discrete'>"):
        try:
            return spaces.Discrete(int(entry["n"]), start=int(entry.get("start", 0)))
        except (KeyError, TypeError, ValueError):
            return None
    if kind.endswith(".Box'>"):
        shape, dtype = entry.get("_shape"), entry.get("dtype")
        low, high = _uniform(entry.get("low")), _uniform(entry.get("high"))
        if not isinstance(shape, list) or dtype is None or low is None or high is None:
            return None
        try:
            dt = np.dtype(str(dtype))
            return spaces.Box(np.full(shape, low).astype(dt), np.full(shape, high).astype(dt), tuple(shape), dt)
        except (TypeError, ValueError):
            return None
    if kind.endswith(".Dict'>"):
        found = re.findall(r"'(\w+)': " + _BOX.pattern, str(entry.get("spaces", "")))
        if not found:
            return None
        boxes = {}
        for key, low, high, shape, dtype in found:
            dims = tuple(int(d) for d in shape.replace(" ", "").split(",") if d)
            lo, hi = _uniform(low), _uniform(high)
            if lo is None or hi is None:
                return None
            boxes[key] = spaces.Box(np.full(dims, lo).astype(dtype), np.full(dims, hi).astype(dtype), dims, dtype)
        return spaces.Dict(boxes)
    return None


def agent_spaces(data: dict[str, Any]) -> tuple[spaces.Space | None, spaces.Space | None]:
    """The observation and action spaces an agent was saved with, read from ``data``'s readable fields (None where
    they cannot be told without unpickling)."""
    return _space(data.get("observation_space")), _space(data.get("action_space"))


def _plain(value: Any) -> bool:
    """Whether ``value`` is JSON that holds no pickled entry."""
    if isinstance(value, dict):
        return ":serialized:" not in value and all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return True


def _policy_name(data: dict[str, Any], observation_space: spaces.Space) -> str:
    """The SB3 policy name: from the readable copy of the pickled class when it tells, else from the space."""
    text = json.dumps(data.get("policy_class", ""))
    if "MultiInputActorCriticPolicy" in text or isinstance(observation_space, spaces.Dict):
        return "MultiInputPolicy"
    from stable_baselines3.common.preprocessing import is_image_space

    if "ActorCriticCnnPolicy" in text:
        return "CnnPolicy"
    if "ActorCriticPolicy." in text:  # the methods of MlpPolicy's own class
        return "MlpPolicy"
    return "CnnPolicy" if is_image_space(observation_space, check_channels=False) else "MlpPolicy"


def _same_space(a: spaces.Space, b: spaces.Space) -> bool:
    if isinstance(a, spaces.Dict) and isinstance(b, spaces.Dict):
        return a.spaces.keys() == b.spaces.keys() and all(_same_space(a[k], b[k]) for k in a.spaces)
    return type(a) is type(b) and a.shape == b.shape and getattr(a, "n", None) == getattr(b, "n", None)


def load_agent(
    path: str | os.PathLike,
    env: Any = None,
    device: str = "cpu",
    *,
    ppo_kwargs: dict[str, Any] | None = None,
    trust_pickles: bool | None = None,
    **kwargs: Any,
) -> Any:
    """A PPO model from an SB3 ``.zip``, rebuilt without unpickling anything (see the module docstring).

    Args:
        path: The ``.zip``.
        env: The (vectorized) env the model acts or trains in; its spaces must be the saved ones. None: the spaces
            are read from the file's readable fields (enough to predict).
        device: Torch device.
        ppo_kwargs: PPO's arguments (a run's ``TrainConfig.ppo_kwargs()``); default: the plain JSON ones in the file.
        trust_pickles: Load with SB3's ``PPO.load`` instead, unpickling the file (None: ``$TDWGYM_TRUST_PICKLES``).
        **kwargs: More PPO arguments (``tensorboard_log``, ``verbose``).

    Raises:
        AgentFileError: One line naming the file: damaged, not an SB3 agent, spaces other than the env's, or a
            policy this loader cannot rebuild without unpickling (use ``--trust-pickles`` for a trusted file).
    """
    from stable_baselines3 import PPO

    path = Path(path)
    if trusts_pickles(trust_pickles):
        return PPO.load(path, env=env, device=device, **kwargs)
    data, params = read_agent_zip(path, device)
    hint = "pass --trust-pickles only if you trust whoever made the file"
    saved_obs, saved_act = agent_spaces(data)
    if env is None and (saved_obs is None or saved_act is None):
        raise AgentFileError(f"{path}: its observation or action space cannot be read without unpickling; {hint}")
    policy_kwargs = data.get("policy_kwargs", {})
    if not isinstance(policy_kwargs, dict) or not _plain(policy_kwargs):
        raise AgentFileError(f"{path}: its policy_kwargs hold pickled objects; {hint}")
    policy_kwargs = {k: v for k, v in policy_kwargs.items() if k != "device"}
    settings = {k: data[k] for k in PPO_SETTINGS if k in data and _plain(data[k])}
    if ppo_kwargs is not None:
        settings = dict(ppo_kwargs)
        given = settings.get("policy_kwargs")
        if given is not None and given != policy_kwargs:
            raise AgentFileError(
                f"{path} was saved with policy_kwargs {policy_kwargs}, but the run's settings give {given}"
            )
    settings["policy_kwargs"] = policy_kwargs
    settings.update(kwargs)
    if env is not None:
        model = PPO(_policy_name(data, saved_obs or env.observation_space), env, device=device, **settings)
        for saved, own, what in (
            (saved_obs, model.observation_space, "observes"),
            (saved_act, model.action_space, "acts in"),
        ):
            if saved is not None and not _same_space(saved, own):
                raise AgentFileError(f"{path} {what} {saved}, but the env's space is {own}")
    else:
        model = PPO(_policy_name(data, saved_obs), None, device=device, _init_setup_model=False, **settings)
        model.observation_space, model.action_space = saved_obs, saved_act
        model.n_envs = int(data["n_envs"]) if isinstance(data.get("n_envs"), int) else 1
        model._setup_model()
    try:
        model.policy.load_state_dict(params["policy"], strict=True)
        if "policy.optimizer" in params:
            model.policy.optimizer.load_state_dict(params["policy.optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise AgentFileError(
            f"{path}: its weights do not fit the policy rebuilt from its settings ({reason})"
        ) from None
    for name in SCALAR_STATE:
        value = data.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(model, name, value)
    return model
