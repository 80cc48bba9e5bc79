"""tdwgym.tools.vector.LockstepVecEnv: SB3's VecEnv API, the same observations as DummyVecEnv, workers that die with
their parent, and shared memory that never outlives it."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from tdwgym.tools.vector import LockstepVecEnv, default_split  # noqa: E402

ENV = "TDWRoom-Occlusion-v0"
ROOT = Path(__file__).resolve().parents[1]


def _make(episode: int = 5, **kwargs) -> gym.Env:
    import tdwgym  # noqa: F401 - registers the ids in spawned workers

    return gym.make(ENV, resolution=24, max_episode_steps=episode, **kwargs)


def _shm(name: str) -> Path:
    return Path("/dev/shm") / name.lstrip("/")


def _same(a, b) -> bool:
    """Deep equality of infos (dicts, lists, arrays, scalars)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize(
    ("n_envs", "kwargs"),
    [
        (2, {"start_method": "fork"}),  # the default split on 2 cores: one env here, one in a worker
        (3, {"workers": 1, "in_process": 1, "start_method": "forkserver"}),  # a worker stepping two envs
        (3, {"workers": 2, "in_process": 0, "start_method": "fork"}),  # every env in a worker
        (2, {"workers": 0}),  # every env here
        (3, {"workers": 1, "in_process": 1, "start_method": "fork", "spin": 0.002}),  # both sides poll first
    ],
)
@pytest.mark.parametrize("obs_mode", ["rgb", "rgbd"])
def test_same_observations_rewards_dones_and_infos_as_dummy_vec_env(n_envs, kwargs, obs_mode):
    fns = [functools.partial(_make, 5, obs_mode=obs_mode)] * n_envs
    lock, dummy = LockstepVecEnv(fns, **kwargs), DummyVecEnv(fns)
    try:
        assert lock.observation_space == dummy.observation_space and lock.action_space == dummy.action_space
        lock.seed(7)
        dummy.seed(7)
        assert _same(lock.reset(), dummy.reset())
        assert _same(lock.reset_infos, dummy.reset_infos)
        rng = np.random.default_rng(0)
        ends = 0
        for _ in range(12):  # two episode ends per env (5-step time limit)
            actions = rng.integers(0, lock.action_space.n, size=n_envs)
            got, want = lock.step(actions), dummy.step(actions)
            for a, b in zip(got, want, strict=True):
                assert _same(a, b)
            assert got[1].dtype == want[1].dtype and got[2].dtype == want[2].dtype
            ends += int(got[2].sum())
            assert _same(lock.reset_infos, dummy.reset_infos)
        assert ends == 2 * n_envs
    finally:
        lock.close()
        dummy.close()


def test_a_finished_episode_passes_its_last_observation_and_truncation_as_sb3_does():
    lock = LockstepVecEnv([functools.partial(_make, 3)] * 2, start_method="fork")
    try:
        lock.seed(0)
        obs = lock.reset()
        obs = lock.step(np.array([0, 0]))[0]
        obs = lock.step(np.array([0, 0]))[0]
        new_obs, _, dones, infos = lock.step(np.array([0, 0]))
        assert dones.tolist() == [True, True]
        for i, info in enumerate(infos):
            assert info["TimeLimit.truncated"] is True
            assert info["terminal_observation"].shape == obs[i].shape
            assert "labels" in lock.reset_infos[i]  # the reset's info of the new episode
        # the returned observations are copies: the next step does not change them
        kept = new_obs.copy()
        lock.step(np.array([1, 1]))
        assert np.array_equal(kept, new_obs)
    finally:
        lock.close()


def test_env_method_get_attr_set_attr_and_render_reach_every_env_in_order():
    fns = [functools.partial(_make, 50, render_mode="rgb_array", render_size=16, info_level="light")] * 3
    lock = LockstepVecEnv(fns, workers=1, in_process=1, start_method="fork")
    try:
        lock.seed(1)
        lock.reset()
        lock.step(np.array([0, 1, 2]))
        assert lock.get_attr("level") == [0, 0, 0]
        lock.set_attr("marker", "x", indices=[0, 2])
        assert lock.get_attr("marker", indices=[2, 0]) == ["x", "x"]
        assert lock.has_attr("info_level") and not lock.has_attr("marker")
        # the full info on demand from envs made with info_level="light"
        full = lock.env_method("full_info", indices=[1, 2])
        assert len(full) == 2 and all({"objects", "camera", "contacts"} <= set(f) for f in full)
        scenes = lock.get_attr("scene")
        assert len({repr(s) for s in scenes}) == 3  # seeds seed + index, as SB3's seed(): three scenes
        assert lock.env_is_wrapped(Monitor) == [False, False, False]
        images = lock.get_images()
        assert [im.shape for im in images] == [(16, 16, 3)] * 3
        assert lock.render(mode="rgb_array").ndim == 3
    finally:
        lock.close()


def test_an_error_in_a_worker_is_raised_here_with_its_traceback():
    lock = LockstepVecEnv([functools.partial(_make, 5)] * 2, in_process=0, start_method="fork")
    try:
        with pytest.raises(RuntimeError, match="in a LockstepVecEnv worker: AttributeError"):
            lock.env_method("no_such_method", indices=[1])
        assert lock.get_attr("level") == [0, 0]  # the worker lives on
    finally:
        lock.close()


def test_bad_splits_are_refused_before_any_process_starts():
    fns = [functools.partial(_make, 5)] * 2
    with pytest.raises(ValueError, match="in_process"):
        LockstepVecEnv(fns, workers=1, in_process=3)
    with pytest.raises(ValueError, match="workers"):
        LockstepVecEnv(fns, workers=0, in_process=1)
    with pytest.raises(ValueError, match="start_method"):
        LockstepVecEnv(fns, start_method="thread")
    for spin in (-0.001, 2, True, "0.002"):
        with pytest.raises(ValueError, match=r"spin must be a number of seconds in \[0, 1\]"):
            LockstepVecEnv(fns, spin=spin)
    assert default_split(2, 2) == (1, 1) and default_split(4, 2) == (1, 2) and default_split(3, 8) == (2, 1)
    assert default_split(4, 1) == (0, 4)
    # beside a learner, this process takes one env fewer, but at least one
    assert default_split(4, 2, learner=True) == (1, 1) and default_split(2, 2, learner=True) == (1, 1)
    assert default_split(8, 2, learner=True) == (1, 3) and default_split(4, 1, learner=True) == (0, 4)


def test_close_frees_the_shared_memory_and_ends_the_workers():
    lock = LockstepVecEnv([functools.partial(_make, 5)] * 3, workers=2, in_process=1, start_method="forkserver")
    lock.reset()
    lock.step(np.array([0, 1, 2]))
    names = [*lock._buffers.names.values(), *(c.block.name for c in lock.channels)]
    assert len(lock.channels) == 2  # the workers' step channels
    processes = list(lock.processes)
    assert names and all(_shm(n).exists() for n in names)
    lock.close()
    assert not any(_shm(n).exists() for n in names)
    assert not any(p.is_alive() for p in processes)
    lock.close()  # twice is fine


def test_no_leak_warning_from_the_resource_tracker_after_close(tmp_path):
    script = textwrap.dedent(
        f"""
        import functools, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        import numpy as np
        from test_vector import _make
        from tdwgym.tools.vector import LockstepVecEnv
        if __name__ == "__main__":
            for method in ("fork", "forkserver"):
                lock = LockstepVecEnv([functools.partial(_make, 5, obs_mode="rgbd")] * 2, in_process=0,
                                      start_method=method)
                lock.reset(); lock.step(np.array([0, 1])); lock.close()
            print("done")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "done" in out.stdout
    assert "leaked" not in out.stderr and "resource_tracker" not in out.stderr, out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_workers_and_shared_memory_end_with_a_parent_killed_by_sigkill(tmp_path, start_method):
    from proc_tools import descendants, running

    names_file = tmp_path / "names.txt"
    script = textwrap.dedent(
        f"""
        import functools, os, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        import numpy as np
        from test_vector import _make
        from tdwgym.tools.vector import LockstepVecEnv
        if __name__ == "__main__":
            lock = LockstepVecEnv([functools.partial(_make, 5)] * 3, workers=2, in_process=1,
                                  start_method={start_method!r})
            lock.reset()
            lock.step(np.array([0, 1, 2]))
            with open({str(names_file) + ".tmp"!r}, "w") as f:
                f.write("\\n".join([*lock._buffers.names.values(), *(c.block.name for c in lock.channels)]))
            os.replace({str(names_file) + ".tmp"!r}, {str(names_file)!r})
            while True:
                lock.step(np.array([0, 1, 2]))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not names_file.exists() and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)  # stepping
        seen = descendants(proc.pid)  # 2 workers, the resource tracker (and the fork server)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(seen) >= 3, "the vector env started no workers"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(p) for p in seen):
        time.sleep(0.1)
    left = [p for p in seen if running(p)]
    for p in left:  # never leave them behind, even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"outlived the killed parent by 10 s: {left}"
    names = names_file.read_text().split()
    assert names
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_shm(n).exists() for n in names):
        time.sleep(0.1)
    assert not [n for n in names if _shm(n).exists()], "shared memory outlived the killed parent"


def test_lockstep_timeline_script_times_each_part_of_a_vector_step(capsys):
    """scripts/lockstep_timeline.py: per spin value, every part of a 2-env vector step, from both envs' stamps."""
    from script_tools import load_script

    script = load_script("lockstep_timeline")
    ms = script.timeline(steps=4, spin=0.002)
    assert ms.shape == (4, len(script.COLUMNS)) and np.isfinite(ms).all()
    send, starts, here, worker, reply, above = ms.T
    assert (here > 0).all() and (worker > 0).all() and (send > 0).all() and (reply > 0).all()
    assert (starts >= send).all()  # the worker starts stepping only after the actions were sent
    assert (above > 0).all()  # a vector step costs more than its slower env's step
    assert script.main(["--steps", "3", "--spin", "0", "0.001"]) == 0
    out = capsys.readouterr().out
    assert out.count("| 0 ms |") == 6 and out.count("| 1 ms |") == 6 and "| 1 ms | env step in the worker |" in out
    with pytest.raises(SystemExit) as exc:
        script.main(["--spin", "-1"])
    assert exc.value.code == 2 and "--spin must be a number of seconds in [0, 1]" in capsys.readouterr().err


class _FailsOnAction(gym.Wrapper):
    """Raises in ``step`` when given action 9."""

    def step(self, action):
        if int(action) == 9:
            raise ValueError("action 9 is refused by this test env")
        return self.env.step(action)


def _make_failing() -> gym.Env:
    return _FailsOnAction(_make(50))


def _lock_and_dummy(fns, **kwargs):
    lock, dummy = LockstepVecEnv(fns, **kwargs), DummyVecEnv(fns)
    lock.seed(3)
    dummy.seed(3)
    assert _same(lock.reset(), dummy.reset())
    return lock, dummy


def test_box_actions_list_actions_and_infos_too_large_for_the_channel_give_what_dummy_vec_env_gives(monkeypatch):
    """A step's actions and replies cross in the worker's shared channel; actions it cannot hold as they are (a
    list) and infos larger than its room go by the pipe instead, with the same results."""
    import tdwgym.tools.vector as vector

    rng = np.random.default_rng(1)
    # continuous actions (a float32 Box) in the channel
    fns = [functools.partial(_make, 4, action_type="continuous")] * 3
    lock, dummy = _lock_and_dummy(fns, workers=1, in_process=1, start_method="fork")
    try:
        for _ in range(6):
            low, high = lock.action_space.low, lock.action_space.high
            actions = rng.uniform(low, high, size=(3, *lock.action_space.shape)).astype(np.float32)
            for a, b in zip(lock.step(actions), dummy.step(actions), strict=True):
                assert _same(a, b)
        assert lock.channels[0].actions.dtype == np.float32
    finally:
        lock.close()
        dummy.close()
    # a list of actions, and every reply's infos too large for a 64-byte channel
    monkeypatch.setattr(vector, "INFO_BYTES", 64)
    fns = [functools.partial(_make, 4)] * 2
    lock, dummy = _lock_and_dummy(fns, workers=1, in_process=1, start_method="fork")
    try:
        assert lock.channels[0].info_bytes == 64
        for step in range(6):
            actions = [int(a) for a in rng.integers(0, 10, size=2)]
            actions = actions if step % 2 else np.array(actions)  # a list, then an array
            for a, b in zip(lock.step(actions), dummy.step(actions), strict=True):
                assert _same(a, b)
            assert _same(lock.reset_infos, dummy.reset_infos)
    finally:
        lock.close()
        dummy.close()


def test_an_error_in_a_workers_step_is_raised_here_and_the_worker_lives_on():
    lock = LockstepVecEnv([_make_failing] * 2, workers=1, in_process=1, start_method="fork")
    try:
        lock.reset()
        lock.step(np.array([0, 1]))
        with pytest.raises(RuntimeError, match="in a LockstepVecEnv worker: ValueError: action 9 is refused"):
            lock.step(np.array([0, 9]))
        assert not lock.waiting
        assert lock.get_attr("level") == [0, 0]
        obs, _, _, _ = lock.step(np.array([1, 2]))  # and steps again
        assert obs.shape[0] == 2
    finally:
        lock.close()


@pytest.mark.parametrize("in_process", [0, 1])
def test_a_worker_that_dies_is_reported_not_waited_for(in_process):
    lock = LockstepVecEnv([functools.partial(_make, 50)] * 2, in_process=in_process, start_method="fork")
    try:
        lock.reset()
        lock.step(np.array([0, 1]))
        worker = lock.processes[-1]
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(timeout=30)
        start = time.monotonic()
        with pytest.raises(RuntimeError, match=r"a LockstepVecEnv worker died \(exit code -9\)"):
            lock.step(np.array([0, 1]))
        assert time.monotonic() - start < 10
    finally:
        lock.close()
    assert lock.closed


def test_infos_pickled_for_the_channel_come_back_as_the_same_arrays():
    """The channel pickles plain arrays as their bytes (faster than numpy's reduction): the same dtype, shape,
    values and a writable copy; anything else as numpy pickles it."""
    import io
    import pickle

    from tdwgym.tools.vector import _InfoPickler

    arrays = [
        np.arange(6, dtype=np.float64).reshape(2, 3),
        np.array([1, 2], dtype=">i4"),  # another byte order
        np.array(3.5, dtype=np.float32),  # 0-d
        np.zeros((0, 3)),
        np.array([True, False]),
        np.array([1 + 2j]),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),  # not C-ordered: numpy's own
        np.arange(10)[::2],  # a strided view
        np.array([{"a": 1}, None], dtype=object),
        np.zeros(2, dtype=[("x", "f4"), ("y", "i2")]),  # structured
    ]
    out = io.BytesIO()
    _InfoPickler(out, pickle.HIGHEST_PROTOCOL).dump(([{"objects": {1: {"position": arrays[0]}}, "all": arrays}], {}))
    (info,), reset = pickle.loads(out.getvalue())
    assert reset == {} and np.array_equal(info["objects"][1]["position"], arrays[0])
    for got, want in zip(info["all"], arrays, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape and type(got) is np.ndarray
        assert got.tolist() == want.tolist()
        assert got.flags.writeable
    assert info["all"][6].flags.f_contiguous


@pytest.mark.parametrize("failing", [0, 1])  # the env here fails, or the first worker's
def test_after_an_error_every_worker_is_still_in_step(failing):
    """An error is raised only once every worker has answered the step or command: with two workers, the next
    step's results are that step's own (each env's ``sim_time`` one step on), not an earlier step's left waiting."""
    from tdwgym.tools.vector import WorkerError

    fns = [_make_failing] * 3
    lock = LockstepVecEnv(fns, workers=2, in_process=1, start_method="fork")
    try:
        lock.reset()
        *_, infos = lock.step(np.array([0, 0, 0]))
        before = [info["sim_time"] for info in infos]
        *_, infos = lock.step(np.array([0, 0, 0]))
        dt = infos[2]["sim_time"] - before[2]
        before = [info["sim_time"] for info in infos]
        actions = np.array([0, 0, 0])
        actions[failing] = 9
        with pytest.raises((ValueError, WorkerError), match="action 9 is refused"):
            lock.step(actions)
        assert [c.done.get_value() for c in lock.channels] == [0, 0]  # no answer left waiting (Linux semaphores)
        *_, infos = lock.step(np.array([1, 1, 1]))
        for i, info in enumerate(infos):  # two steps on, but one for the env that refused its action
            assert info["sim_time"] == pytest.approx(before[i] + (1 if i == failing else 2) * dt)
        with pytest.raises((AttributeError, WorkerError)):
            lock.env_method("no_such_method")  # fails here and in both workers
        assert lock.get_attr("level") == [0, 0, 0]
    finally:
        lock.close()
