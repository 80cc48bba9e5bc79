"""World models with memory: what they remember, where it is reset, and how they train."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from tdwgym.agents.curiosity import CuriosityVecEnv
from tdwgym.agents.models import (
    Clips,
    Stream,
    Transitions,
    load_world_model,
    make_world_model,
    world_model_from_config,
)
from tdwgym.agents.pretraining import save_world_model

RES = 16
MEMORY = ("recurrent", "jepa")


def _model(name: str, k: int | None = None):
    torch.manual_seed(0)
    kwargs = {"width": 8, "hidden": 8} if name == "recurrent" else {"width": 8, "feature_dim": 16, "heads": 2}
    return make_world_model(name, (3, RES, RES), 5, context_frames=k, device="cpu", **kwargs)


def _clip(t: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (t, 3, RES, RES), generator=g, dtype=torch.uint8)
    actions = torch.nn.functional.one_hot(torch.randint(0, 5, (t - 1,), generator=g), 5).float()
    return frames, actions


@pytest.mark.parametrize("name", MEMORY)
def test_memory_models_default_to_a_long_context_and_rebuild_from_their_config(name):
    model = _model(name)
    assert model.context_frames == 16 and model.uses_past_actions
    clone = world_model_from_config(model.config(), device="cpu")
    clone.load_state_dict(model.state_dict())
    frames, _ = _clip(17)
    batch = Transitions(frames[None, :16], torch.eye(5)[:1], frames[None, 16], torch.zeros(1, 15, 5))
    assert torch.allclose(model.evaluate(batch)[0], clone.evaluate(batch)[0])


def test_the_recurrent_model_remembers_beyond_its_context_window_and_the_frame_pair_model_does_not():
    """Two clips that differ only in frames the k-frame window has long dropped: a stream through the recurrent
    model still scores their last step differently; the pixel model (k = 2) cannot tell them apart."""
    frames, actions = _clip(12)
    other = frames.clone()
    other[:3] = 255 - other[:3]  # a different beginning, same last 9 frames
    for name, remembers in (("recurrent", True), ("pixel", False)):
        torch.manual_seed(0)
        model = make_world_model(name, (3, RES, RES), 5, device="cpu", width=8)
        streams = Stream(model, torch.stack([frames[0], other[0]]))
        for t in range(11):
            _, _, pred = streams.step(torch.stack([actions[t]] * 2), torch.stack([frames[t + 1], other[t + 1]]))
        assert (float((pred[0] - pred[1]).abs().max()) > 0) == remembers, name


@pytest.mark.parametrize("name", MEMORY)
def test_a_stream_scores_like_the_model_on_its_window_and_restarts_only_the_episodes_asked(name):
    model = _model(name, k=4)
    frames, actions = _clip(8)
    stream = Stream(model, torch.stack([frames[0], frames[0]]))
    for t in range(5):
        stream.step(torch.stack([actions[t]] * 2), torch.stack([frames[t + 1]] * 2))
    before = None if stream.state is None else stream.state.clone()
    stream.restart([0], frames[6:7])
    assert torch.equal(stream.context[0], frames[6][None].repeat(4, 1, 1, 1))
    assert torch.equal(stream.context[1, -1], frames[5])
    assert torch.count_nonzero(stream.past_actions[0]) == 0 and torch.count_nonzero(stream.past_actions[1]) > 0
    if before is not None:  # the recurrent model: env 0's memory is cleared, env 1's kept
        assert torch.count_nonzero(stream.state[0]) == 0 and torch.equal(stream.state[1], before[1])
    else:  # the context model's memory is its window: a stream step equals scoring that window
        batch = stream.transitions(torch.stack([actions[6]] * 2), torch.stack([frames[7]] * 2))
        s_stream, _, _ = stream.step(batch.action, batch.next_frame)
        torch.testing.assert_close(s_stream, model.evaluate(batch)[0])


def test_the_curiosity_wrapper_keeps_each_envs_memory_and_resets_it_at_that_envs_episode_end(square_env_fn):
    """Two subprocess envs whose episodes end at different steps: at each end only that env's memory restarts."""
    fns = [square_env_fn(size=RES, max_steps=3), square_env_fn(size=RES, max_steps=5)]
    venv = CuriosityVecEnv(
        SubprocVecEnv(fns, start_method="fork"), _model("recurrent"), seed=0, reward_gate="none", wm_background=False
    )
    try:
        venv.seed(0)
        venv.reset()
        assert torch.count_nonzero(venv.stream.state) == 0
        ends = []
        for _ in range(6):
            _, _, dones, _ = venv.step(np.array([1, 2]))
            state = venv.stream.state
            for i in range(2):
                assert (torch.count_nonzero(state[i]) == 0) == bool(dones[i])
            ends.append(dones.tolist())
        assert ends[2] == [True, False] and ends[4] == [False, True] and ends[5] == [True, False]
        # the buffer trains on windows with the actions between their frames
        assert venv.learner.buffer.arrays["past_actions"].shape[1:] == (15, 5)
    finally:
        venv.close()


@pytest.mark.parametrize("name", MEMORY)
def test_clip_training_carries_the_state_and_lowers_the_loss(name):
    model = _model(name, k=4)
    frames, actions = _clip(9)
    # a predictable clip: the same frame throughout
    clips = Clips(frames[:1].repeat(9, 1, 1, 1)[None].repeat(2, 1, 1, 1, 1), actions[None].repeat(2, 1, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        state = None
        for s in (0, 4):
            out, state = model.clip_loss(Clips(clips.frames[:, s : s + 5], clips.actions[:, s : s + 4]), state)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            model.after_update()
            if state is not None:
                assert not state.requires_grad  # truncated: no gradient flows into the next chunk
        losses.append(float(out.per_sample.detach().mean()))
    assert out.per_sample.shape == (2,) and losses[-1] < 0.5 * losses[0]


def test_a_saved_world_model_loads_without_running_code(tmp_path):
    model = _model("recurrent")
    path = tmp_path / "world_model.pt"
    save_world_model(model, path, meta={"frames": 3})
    state = torch.load(path, weights_only=True)  # plain data and tensors only
    assert state["meta"] == {"frames": 3}
    loaded = load_world_model(path, device="cpu")
    assert type(loaded) is type(model) and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_curiosity_with_a_ready_memory_model_trains_in_a_dummy_vec_env(square_env_fn):
    venv = CuriosityVecEnv(
        DummyVecEnv([square_env_fn(size=RES)] * 2),
        _model("jepa", k=4),
        seed=0,
        reward_gate="none",
        wm_batch_size=4,
        wm_updates_per_transition=1.0,
        wm_background=False,
    )
    venv.reset()
    for _ in range(6):
        _, rewards, _, infos = venv.step(np.array([1, 3]))
        assert np.isfinite(rewards).all()
    assert venv.learner.updates > 0
    venv.close()
