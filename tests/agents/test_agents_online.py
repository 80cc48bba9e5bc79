"""Loss-prioritised buffer and online learner."""

from __future__ import annotations

import numpy as np
import pytest
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
    tags = sorted(int(t) for t in buf.arrays["next_frame"][:, 0, 0, 0])
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


def _bg_learner(seed: int = 0, variant: str = "pixel", **kwargs) -> OnlineLearner:
    torch.manual_seed(seed)
    model = make_world_model(variant, (3, 16, 16), 5, width=4, device="cpu")
    return OnlineLearner(
        model,
        capacity=16,
        batch_size=4,
        updates_per_transition=0.5,
        seed=seed,
        background=True,
        sync_every=2,
        **kwargs,
    )


@pytest.mark.parametrize("variant", ["pixel", "rnd", "progress"])
def test_background_learner_is_deterministic_and_matches_its_own_rerun(variant):
    runs = []
    for _ in range(2):
        learner = _bg_learner(variant=variant)
        surprises = [learner.observe(make_batch(b=4, seed=s)) for s in range(12)]
        learner.flush()
        runs.append((np.concatenate(surprises), [p.detach().clone() for p in learner.model.state_dict().values()]))
        learner.close()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.equal(a, b)


def test_background_learner_trains_and_hands_weights_to_the_scorer():
    learner = _bg_learner()
    batch = make_batch(b=4, seed=7)
    first = learner.observe(batch, train=False).mean()
    for _ in range(40):
        learner.observe(batch)
    learner.flush()
    assert learner.updates == 80 and learner.transitions_seen == 160
    assert learner.trainee is not learner.model
    for a, b in zip(learner.model.state_dict().values(), learner.trainee.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert learner.observe(batch, train=False).mean() < first
    assert learner.train_time_s > 0 and "loss" in learner.last_metrics
    learner.close()
    assert learner._thread is None


@pytest.mark.parametrize("max_lag", [1, 3])
def test_background_learner_scorer_lags_by_max_lag_hand_overs(max_lag):
    learner = _bg_learner(max_lag=max_lag)
    before = [p.clone() for p in learner.model.parameters()]
    for s in range(max_lag):  # 2 updates and one hand-over mark queued per batch, none applied yet
        learner.observe(make_batch(b=4, seed=s))
        assert all(torch.equal(a, b) for a, b in zip(before, learner.model.parameters(), strict=True))
    learner.observe(make_batch(b=4, seed=99))  # one more mark: the first one's weights reach the scorer
    assert not all(torch.equal(a, b) for a, b in zip(before, learner.model.parameters(), strict=True))
    learner.close()


def test_background_checkpoint_round_trip(tmp_path):
    learner = _bg_learner()
    for s in range(6):
        learner.observe(make_batch(b=4, seed=s))
    path = tmp_path / "wm.pt"
    learner.save(path)  # finishes the queued steps first (the trainee's state is saved; the scorer keeps its lag)
    restored = OnlineLearner.from_checkpoint(path, device="cpu", background=False)
    assert restored.updates == learner.updates == 12
    for a, b in zip(learner.trainee.state_dict().values(), restored.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert OnlineLearner.from_checkpoint(path, device="cpu").background
    learner.close()


def test_background_worker_error_is_raised_in_the_caller_and_learner_stays_usable(monkeypatch):
    learner = _bg_learner()
    learner.observe(make_batch(b=4, seed=0))
    learner.flush()
    good = [p.clone() for p in learner.model.parameters()]

    def broken(batch):
        raise ValueError("boom")

    monkeypatch.setattr(learner.trainee, "compute_loss", broken)
    with pytest.raises(RuntimeError, match="background thread.*boom"):
        for s in range(1, 6):
            learner.observe(make_batch(b=4, seed=s))
        learner.flush()
    monkeypatch.undo()
    # the scorer kept its last good weights; training resumes from them
    assert all(torch.equal(a, b) for a, b in zip(good, learner.model.parameters(), strict=True))
    learner.observe(make_batch(b=4, seed=9))
    learner.flush()
    assert np.isfinite(learner.last_metrics["loss"])
    learner.close()


def test_buffer_skips_loss_refresh_of_a_replaced_slot():
    buf = LossPrioritisedBuffer(capacity=2)
    buf.add(make_batch(b=2), np.array([5.0, 6.0]))
    generation = buf.generation[[0, 1]].copy()
    buf.add(make_batch(b=1, seed=3), np.array([9.0]))  # replaces slot 0 (lowest loss)
    buf.update_losses(np.array([0, 1]), np.array([0.5, 0.25]), generation)
    assert buf.loss[0] == 9.0 and buf.loss[1] == 0.25


def test_learner_rejects_bad_settings():
    model = make_world_model("pixel", (3, 16, 16), 5, width=4, device="cpu")
    for kwargs in ({"batch_size": 0}, {"updates_per_transition": -1.0}, {"sync_every": 0}, {"max_lag": 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            OnlineLearner(model, **kwargs)


def test_online_learner_benchmark_runs_with_the_training_defaults():
    from tdwgym.agents.overhead import bench_online_learner

    out = bench_online_learner("pixel", frames=24, warmup=40, device="cpu")
    assert out["frames_per_s"] > 0 and out["model_resolution"] == 32 and out["background"] is True
    assert out["updates_per_s"] > 0


def test_background_checkpoint_does_not_change_the_run(tmp_path):
    plain, saved = _bg_learner(), _bg_learner()
    out_plain, out_saved = [], []
    for s in range(10):
        out_plain.append(plain.observe(make_batch(b=4, seed=s)))
        out_saved.append(saved.observe(make_batch(b=4, seed=s)))
        if s % 3 == 0:
            saved.save(tmp_path / "wm.pt")
    np.testing.assert_array_equal(np.concatenate(out_plain), np.concatenate(out_saved))
    plain.close(), saved.close()


@pytest.mark.parametrize("background", [False, True])
def test_refreshed_losses_reach_the_slots_they_were_computed_for(background):
    """A training batch starts with the freshest transitions, some of which the full buffer did not keep (slot
    -1); each refreshed loss must land on the slot of its own row, in both modes."""
    torch.manual_seed(0)
    model = make_world_model("pixel", (3, 16, 16), 5, width=4, device="cpu")
    learner = OnlineLearner(model, capacity=8, batch_size=8, updates_per_transition=0.0, seed=0, background=background)
    for s in range(4):  # fill the buffer
        learner.observe(make_batch(b=4, seed=s))
    learner.buffer.loss[:] = 1e9  # nothing new can displace these entries: the next fresh rows stay unstored
    learner.observe(make_batch(b=4, seed=10))
    assert (learner._fresh_slots == -1).all()
    rows: list[np.ndarray] = []
    real_batch = learner._training_batch

    def recording_batch():
        batch, slots = real_batch()
        rows.append(slots.copy())
        return batch, slots

    def tagged_step(batch):  # row i's loss is 1000 + i
        return 1000.0 + np.arange(len(batch), dtype=np.float64), {"loss": 0.0}

    learner._training_batch, learner._step = recording_batch, tagged_step
    learner._credit = 3.0
    learner.run_due_updates()
    learner.flush()
    expected: dict[int, float] = {}  # slot -> the loss of the last row that trained on it
    for slots in rows:
        assert slots[0] == -1 and (slots >= 0).any()  # unstored fresh rows first, then buffer entries
        expected.update({int(slot): 1000.0 + i for i, slot in enumerate(slots) if slot >= 0})
    assert expected and all(learner.buffer.loss[slot] == loss for slot, loss in expected.items())
    learner.close()


def test_checkpoints_load_without_running_code(tmp_path):
    """Learner checkpoints hold tensors and plain data only (torch.load(weights_only=True)); a file that would run
    code, or that holds numpy arrays, does not load."""
    import pickle

    from tdwgym.agents.models import make_world_model, safe_load

    learner = OnlineLearner(make_world_model("pixel", (3, 16, 16), 5, device="cpu"), capacity=8, batch_size=2)
    learner.observe(make_batch(b=4, hw=16))
    path = tmp_path / "wm.pt"
    learner.save(path)
    torch.load(path, weights_only=True)  # no numpy, no classes
    assert len(OnlineLearner.from_checkpoint(path, device="cpu").buffer) == 4
    torch.save({"buffer": np.zeros(3)}, tmp_path / "numpy.pt")
    with pytest.raises(pickle.UnpicklingError):
        safe_load(tmp_path / "numpy.pt")

    class Boom:
        def __reduce__(self):
            return (print, ("code ran",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"model": Boom()}))
    with pytest.raises(pickle.UnpicklingError):
        safe_load(tmp_path / "evil.pt")


def test_curiosity_overhead_benchmark_trains_both_agents_with_the_given_vector_env(capsys):
    """``python -m tdwgym.agents.overhead --quick --overhead-only --vec-env dummy``: plain PPO and PPO + curiosity
    both train on the given vector env, and the figures name it."""
    from tdwgym.agents.overhead import main

    assert main(["--quick", "--overhead-only", "--vec-env", "dummy"]) == 0
    out = capsys.readouterr().out
    assert "(dummy)" in out and "PPO + pixel curiosity vs plain PPO, 256 steps" in out
    with pytest.raises(SystemExit) as exc:  # a bad value is one line, before any run starts
        main(["--quick", "--overhead-only", "--vec-env", "spin"])
    assert exc.value.code == 2 and "invalid choice: 'spin'" in capsys.readouterr().err


def test_curiosity_overhead_benchmark_measures_the_reward_it_is_given(capsys):
    """``--curiosity-overrides``: the curiosity run takes the given reward (the ``objects`` model, frozen), plain
    PPO does not, and the figures name the reward."""
    from tdwgym.agents.overhead import main

    reward = (
        '{"curiosity": "objects", "world_model": "pretrained", "reward_gate": "none", "wm_updates_per_transition": 0}'
    )
    assert main(["--quick", "--overhead-only", "--vec-env", "dummy", "--curiosity-overrides", reward]) == 0
    out = capsys.readouterr().out
    assert 'PPO + objects curiosity {"world_model": "pretrained", "reward_gate": "none"' in out
