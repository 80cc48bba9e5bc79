"""Loss-prioritised buffer and online learner."""

from __future__ import annotations

import numpy as np
import torch
from conftest import make_batch
from tdwgym.agents.models import make_world_model
from tdwgym.agents.online import LossPrioritisedBuffer, OnlineLearner


def test_buffer_keeps_highest_loss_transitions():
    buf = LossPrioritisedBuffer(capacity=5, seed=0)
    rng = np.random.default_rng(0)
    all_losses = []
    for step in range(6):
        batch = make_batch(b=4, seed=step)
        losses = rng.random(4)
        # tag each transition by its loss so we can check which ones survived
        batch.next_frame[:, 0, 0, 0] = torch.arange(4, dtype=torch.uint8) + 4 * step
        buf.add(batch, losses)
        all_losses.extend(losses.tolist())
    assert len(buf) == 5
    kept = np.sort(buf.loss[: len(buf)])
    np.testing.assert_allclose(kept, np.sort(all_losses)[-5:])
    tags = sorted(int(t) for t in buf.next_frame[:, 0, 0, 0])
    assert tags == sorted(int(np.argsort(all_losses)[-5:][i]) for i in range(5))


def test_buffer_rejects_lower_loss_when_full():
    buf = LossPrioritisedBuffer(capacity=2)
    buf.add(make_batch(b=2), np.array([5.0, 6.0]))
    slots = buf.add(make_batch(b=1, seed=3), np.array([1.0]))
    assert slots[0] == -1 and sorted(buf.loss.tolist()) == [5.0, 6.0]
    slots = buf.add(make_batch(b=1, seed=3), np.array([7.0]))
    assert slots[0] == 0 and sorted(buf.loss.tolist()) == [6.0, 7.0]


def _learner(seed: int = 0) -> OnlineLearner:
    torch.manual_seed(seed)
    model = make_world_model("pixel", (3, 16, 16), 5, width=4, latent_dim=32, device="cpu")
    return OnlineLearner(model, capacity=16, batch_size=4, updates_per_transition=0.5, seed=seed)


def test_learner_trains_from_stream_and_surprise_falls():
    learner = _learner()
    batch = make_batch(b=4, seed=7)
    first = learner.observe(batch).mean()
    for _ in range(30):
        learner.observe(batch)
    assert learner.updates > 0 and learner.transitions_seen == 124
    assert learner.observe(batch, train=False).mean() < first
    assert np.isfinite(first) and first >= 0


def test_learner_checkpoint_round_trip(tmp_path):
    learner = _learner()
    for s in range(6):
        learner.observe(make_batch(b=4, seed=s))
    path = tmp_path / "wm.pt"
    learner.save(path)
    restored = OnlineLearner.from_checkpoint(path, device="cpu")
    assert restored.updates == learner.updates and restored.transitions_seen == learner.transitions_seen
    for a, b in zip(learner.model.state_dict().values(), restored.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(
        restored.buffer.context[: len(learner.buffer)], learner.buffer.context[: len(learner.buffer)]
    )
    np.testing.assert_array_equal(restored.buffer.loss, learner.buffer.loss)
    assert restored.optimizer.state_dict()["state"][0]["step"] == learner.optimizer.state_dict()["state"][0]["step"]
    # both continue identically
    nxt = make_batch(b=4, seed=99)
    np.testing.assert_allclose(restored.observe(nxt), learner.observe(nxt), rtol=1e-5)
    for a, b in zip(learner.model.parameters(), restored.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
