"""A lockstep vector env for stable-baselines3 that keeps every core busy: :class:`LockstepVecEnv`.

``SubprocVecEnv`` runs one process per env and leaves the calling process waiting on its pipes while they step; on
two cores, three processes and two pickled round trips per env and step (observation included) eat most of what
the second core brings. ``LockstepVecEnv`` instead

* steps a share of the envs in the calling process while worker processes step the rest, at the same time;
* has each worker step several envs (when there are more envs than workers) with one round trip per step;
* has workers write observations into shared memory (``multiprocessing.shared_memory``), so only infos are
  pickled;
* passes a step without a pipe: the actions, rewards, done flags and pickled infos cross in a shared block per
  worker, and a semaphore per direction says when (no pickling of actions, no pipe writes and reads; a pipe round
  trip cost 17-21 % of an env step at 64x64: ``scripts/lockstep_timeline.py``, BENCHMARKS.md). Every other command
  (reset, ``env_method``, ...), an error's traceback and infos too large for the block go by the worker's pipe;
* optionally (``spin``) has each side poll for a moment before it blocks: a process that sleeps must be woken by
  the kernel when the other side signals, which on a virtual machine's two cores costs tens to hundreds of
  microseconds per crossing.

It returns exactly what SB3's ``DummyVecEnv`` and ``SubprocVecEnv`` return (observations, rewards, dones, infos
with ``terminal_observation`` and ``TimeLimit.truncated``, ``reset_infos``, ``env_method``, ``get_attr``,
``set_attr``, ``env_is_wrapped``, ``seed``, ``render``), and the same observations as ``DummyVecEnv`` for the same
seed and actions. The infos are the envs' own: an env made with ``info_level="light"`` passes a lighter ``info``
(less to pickle), and ``venv.env_method("full_info")`` returns the rest on demand.

Workers die with the calling process, even after a kill -9 of it (:mod:`tdwgym.util.processes`); :meth:`close` (or the
resource tracker, after a kill -9) frees the shared memory.

Needs stable-baselines3 (``pip install 'tdwgym[agents]'``).

Longer than 600 lines: both sides of the lockstep protocol (parent and worker) and the shared-memory layout they agree
on, which must change together.
"""

from __future__ import annotations

import copyreg
import io
import multiprocessing as mp
import os
import pickle
import struct
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from multiprocessing import shared_memory
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from stable_baselines3.common.vec_env.base_vec_env import (
        CloudpickleWrapper,
        VecEnv,
        VecEnvIndices,
        VecEnvObs,
        VecEnvStepReturn,
    )
    from stable_baselines3.common.vec_env.patch_gym import _patch_env
    from stable_baselines3.common.vec_env.util import dict_to_obs, obs_space_info
except ImportError as exc:  # pragma: no cover - the extra is installed in development
    raise ImportError("tdwgym.tools.vector needs stable-baselines3: pip install 'tdwgym[agents]'") from exc

from tdwgym.util.processes import die_with_parent, forkserver_context

__all__ = ["LockstepVecEnv", "WorkerError", "check_spin", "default_split"]

START_METHODS = ("fork", "forkserver", "spawn")


def default_split(n_envs: int, cpus: int | None = None, learner: bool = False) -> tuple[int, int]:
    """``(workers, envs in the calling process)`` for ``n_envs`` envs on ``cpus`` cores (default: this machine's):
    one process per core, the calling process counted, never more processes than envs; the calling process takes
    the smallest share. With ``learner`` (the calling process also runs a policy's inference and training between
    steps, as ``tdwgym train`` does) it takes one env fewer than that share, but at least one: with 4 envs on 2
    cores, 1 here and 3 in the worker (measured faster for PPO with and without curiosity than 2 and 2)."""
    cpus = cpus or os.cpu_count() or 1
    processes = max(1, min(n_envs, cpus))
    workers = processes - 1
    share = n_envs // processes
    if learner and workers:
        share = max(1, share - 1)
    return workers, share


def check_spin(spin: Any, name: str = "spin") -> float:
    """``spin`` as float seconds of polling, or ValueError naming ``name`` and the valid range [0, 1]."""
    if isinstance(spin, bool) or not isinstance(spin, (int, float)) or not 0 <= spin <= 1:
        raise ValueError(f"{name} must be a number of seconds in [0, 1], got {spin!r}")
    return float(spin)


INFO_BYTES = 4 << 20
"""Room for one step's pickled infos per worker in its channel (larger infos go by its pipe)."""

# the command a worker finds: step with the actions in the block, or read the next command from the pipe
_STEP, _PIPE = 1, 2
_HEADER = struct.Struct("qqq")  # command, infos' pickled size (-1: on the pipe), failed (the traceback on the pipe)


def _acquire(semaphore: Any, spin: float, process: Any = None) -> None:
    """Take ``semaphore``, after polling it for up to ``spin`` seconds (0: block at once). With ``process`` (a
    worker), raise RuntimeError if it dies while this waits."""
    if spin > 0:
        end = time.perf_counter() + spin
        while time.perf_counter() < end:
            if semaphore.acquire(False):
                return
    if process is None:
        semaphore.acquire()
        return
    while not semaphore.acquire(timeout=1.0):
        if not process.is_alive():
            raise RuntimeError(f"a LockstepVecEnv worker died (exit code {process.exitcode})")


def _array_from_bytes(data: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(data, dtype).reshape(shape).copy()


def _reduce_array(array: np.ndarray) -> tuple:
    """A C-ordered array of numbers as its bytes, dtype and shape, cheaper to pickle than numpy's own reduction,
    in which a step's full ``info`` (object states, camera, contacts: a few arrays per object) spent most of its
    pickling time (the reply fell from 0.087-0.089 to 0.076 ms: BENCHMARKS.md); anything else as numpy pickles it."""
    if array.dtype.kind in "biufc" and array.flags.c_contiguous:
        return _array_from_bytes, (array.tobytes(), array.dtype.str, array.shape)
    return array.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


class _InfoPickler(pickle.Pickler):
    """Pickles a step's infos for the channel (:func:`_reduce_array` for plain arrays)."""

    dispatch_table = {**copyreg.dispatch_table, np.ndarray: _reduce_array}


class WorkerError(RuntimeError):
    """An exception raised in a worker's env, raised again in the calling process with the worker's traceback."""


class _Channel:
    """How one worker's steps cross: a shared block (header, the worker's actions, rewards, done flags, pickled
    infos) and two semaphores, ``command`` (this process to the worker) and ``done`` (back). Made here and passed
    to the worker, which attaches to it by name."""

    def __init__(
        self,
        n: int,
        action_space: gym.Space,
        ctx: Any = None,
        info_bytes: int | None = None,
        attach: tuple[str, Any, Any] | None = None,
    ) -> None:
        info_bytes = INFO_BYTES if info_bytes is None else info_bytes
        self.n, self.action_space, self.info_bytes = n, action_space, info_bytes
        shape, dtype = action_space.shape, action_space.dtype
        self.action_shape: tuple[int, ...] | None = None
        if shape is not None and dtype is not None and np.dtype(dtype).kind in "biuf":
            self.action_shape, self.action_dtype = (n, *shape), np.dtype(dtype)
        offset = _HEADER.size
        actions_at = offset
        if self.action_shape is not None:
            offset += int(np.prod(self.action_shape)) * self.action_dtype.itemsize
        offset = -(-offset // 8) * 8
        rewards_at, offset = offset, offset + 8 * n
        dones_at, offset = offset, offset + n
        self._info_at = offset
        size = offset + info_bytes
        if attach is None:
            self.block = shared_memory.SharedMemory(create=True, size=size)
            self.command, self.done = ctx.Semaphore(0), ctx.Semaphore(0)
        else:
            name, self.command, self.done = attach
            self.block = shared_memory.SharedMemory(name=name)
        buf = self.block.buf
        self.actions = None
        if self.action_shape is not None:
            self.actions = np.ndarray(self.action_shape, self.action_dtype, buffer=buf, offset=actions_at)
        self.rewards = np.ndarray((n,), np.float64, buffer=buf, offset=rewards_at)
        self.dones = np.ndarray((n,), np.bool_, buffer=buf, offset=dones_at)

    @property
    def spec(self) -> dict[str, Any]:
        """What a worker passes to ``_Channel(**spec)`` to attach."""
        attach = (self.block.name, self.command, self.done)
        return {"n": self.n, "action_space": self.action_space, "info_bytes": self.info_bytes, "attach": attach}

    def header(self) -> tuple[int, int, int]:
        return _HEADER.unpack_from(self.block.buf)

    def set_header(self, command: int, info_size: int = 0, failed: int = 0) -> None:
        _HEADER.pack_into(self.block.buf, 0, command, info_size, failed)

    # -- this process -------------------------------------------------------------------------------------------
    def send_step(self, actions: Any) -> bool:
        """Put ``actions`` in the block and tell the worker to step; False (nothing sent) when they do not fit the
        block's array exactly (another dtype or shape: they go by the pipe, unchanged)."""
        if (
            self.actions is None
            or not isinstance(actions, np.ndarray)
            or actions.dtype != self.action_dtype
            or actions.shape != self.action_shape
        ):
            return False
        self.actions[...] = actions
        self.set_header(_STEP)
        self.command.release()
        return True

    def signal_pipe(self) -> None:
        """Tell the worker to read its next command from its pipe."""
        self.set_header(_PIPE)
        self.command.release()

    # -- the worker ---------------------------------------------------------------------------------------------
    def write_infos(self, payload: Any) -> int:
        """Pickle ``payload`` into the block; its size, or -1 (nothing written) when it does not fit."""
        out = io.BytesIO()
        _InfoPickler(out, pickle.HIGHEST_PROTOCOL).dump(payload)
        data = out.getbuffer()
        if len(data) > self.info_bytes:
            return -1
        self.block.buf[self._info_at : self._info_at + len(data)] = data
        return len(data)

    def read_infos(self, size: int) -> Any:
        return pickle.loads(self.block.buf[self._info_at : self._info_at + size])

    def close(self, unlink: bool) -> None:
        self.actions = self.rewards = self.dones = None  # the views first: a block with live views cannot close
        self.block.close()
        if unlink:
            try:
                self.block.unlink()
            except FileNotFoundError:
                pass


class _Buffers:
    """Numpy views of one shared-memory block per observation key, ``(n_envs, *shape)`` each."""

    def __init__(self, space: gym.Space, n_envs: int, names: dict[Any, str] | None = None) -> None:
        self.keys, shapes, dtypes = obs_space_info(space)
        self.blocks: dict[Any, shared_memory.SharedMemory] = {}
        self.arrays: dict[Any, np.ndarray] = {}
        for key in self.keys:
            shape, dtype = (n_envs, *shapes[key]), np.dtype(dtypes[key])
            size = max(1, int(np.prod(shape)) * dtype.itemsize)
            if names is None:
                block = shared_memory.SharedMemory(create=True, size=size)
            else:
                block = shared_memory.SharedMemory(name=names[key])
            self.blocks[key] = block
            self.arrays[key] = np.ndarray(shape, dtype=dtype, buffer=block.buf)

    @property
    def names(self) -> dict[Any, str]:
        return {key: block.name for key, block in self.blocks.items()}

    def write(self, index: int, obs: Any) -> None:
        for key in self.keys:
            self.arrays[key][index] = obs if key is None else obs[key]

    def read(self, space: gym.Space) -> VecEnvObs:
        return dict_to_obs(space, {key: array.copy() for key, array in self.arrays.items()})

    def close(self, unlink: bool) -> None:
        self.arrays.clear()  # the views first: a block with live views cannot close
        for block in self.blocks.values():
            block.close()
            if unlink:
                try:
                    block.unlink()
                except FileNotFoundError:
                    pass
        self.blocks.clear()


def _step(env: gym.Env, action: Any) -> tuple[Any, float, bool, dict, dict | None]:
    """One env step in SB3's VecEnv convention: (obs, reward, done, info, reset info or None); a finished episode's
    last observation goes to ``info["terminal_observation"]`` and the env resets."""
    obs, reward, terminated, truncated, info = env.step(action)
    done = terminated or truncated
    info["TimeLimit.truncated"] = truncated and not terminated
    reset_info = None
    if done:
        info["terminal_observation"] = obs
        obs, reset_info = env.reset()
    return obs, reward, done, info, reset_info


def _call(envs: list[gym.Env], cmd: str, data: Any) -> Any:
    """The commands other than step, on some of ``envs`` (``data[0]``: their positions)."""
    from stable_baselines3.common.env_util import is_wrapped

    targets = [envs[i] for i in data[0]]
    if cmd == "env_method":
        name, args, kwargs = data[1:]
        return [env.get_wrapper_attr(name)(*args, **kwargs) for env in targets]
    if cmd == "get_attr":
        return [env.get_wrapper_attr(data[1]) for env in targets]
    if cmd == "has_attr":
        found = []
        for env in targets:
            try:
                env.get_wrapper_attr(data[1])
                found.append(True)
            except AttributeError:
                found.append(False)
        return found
    if cmd == "set_attr":
        for env in targets:
            setattr(env, data[1], data[2])
        return [None] * len(targets)
    if cmd == "is_wrapped":
        return [is_wrapped(env, data[1]) for env in targets]
    if cmd == "render":
        return [env.render() for env in targets]
    raise NotImplementedError(f"`{cmd}` is not implemented in the worker")


def _worker(
    remote: Any,
    parent_remote: Any,
    env_fns: CloudpickleWrapper,
    first: int,
    names: dict[Any, str],
    space: gym.Space,
    n_envs: int,
    parent: int | None,
    channel_spec: dict[str, Any],
    spin: float = 0.0,
) -> None:
    """Step envs ``first, first + 1, ...`` of the vector env, writing their observations into the shared blocks;
    steps come and go by the channel, every other command by the pipe."""
    die_with_parent(parent if parent is not None else os.getppid())  # forkserver: the server, which dies with it
    parent_remote.close()
    buffers = _Buffers(space, n_envs, names)
    channel = _Channel(**channel_spec)
    envs: list[gym.Env] = []
    try:
        envs = [_patch_env(fn()) for fn in env_fns.var]
        remote.send((True, None))
        while True:
            try:
                _acquire(channel.command, spin)
                command = channel.header()[0]
                if command == _STEP:
                    assert channel.actions is not None
                    cmd, data = "step", channel.actions.copy()
                else:
                    cmd, data = remote.recv()
            except (EOFError, KeyboardInterrupt):
                break
            if cmd == "close":
                break
            if cmd == "step":
                try:
                    infos, reset_infos = [], {}
                    for j, (env, action) in enumerate(zip(envs, data, strict=True)):
                        obs, channel.rewards[j], channel.dones[j], info, reset_info = _step(env, action)
                        buffers.write(first + j, obs)
                        infos.append(info)
                        if reset_info is not None:
                            reset_infos[j] = reset_info
                    size = channel.write_infos((infos, reset_infos))
                    if size < 0:
                        remote.send((infos, reset_infos))
                    channel.set_header(command, size)
                except Exception as exc:  # noqa: BLE001 - raised again in the calling process, with this traceback
                    remote.send((False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
                    channel.set_header(command, 0, failed=1)
                channel.done.release()
                continue
            try:
                if cmd == "reset":
                    reset_infos_list = []
                    for j, (env, (seed, options)) in enumerate(zip(envs, data, strict=True)):
                        obs, reset_info = env.reset(seed=seed, **({"options": options} if options else {}))
                        buffers.write(first + j, obs)
                        reset_infos_list.append(reset_info)
                    reply: Any = reset_infos_list
                elif cmd == "get_spaces":
                    reply = (envs[0].observation_space, envs[0].action_space)
                else:
                    reply = _call(envs, cmd, data)
            except Exception as exc:  # noqa: BLE001 - raised again in the calling process, with this traceback
                remote.send((False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
                continue
            remote.send((True, reply))
    except Exception as exc:  # noqa: BLE001 - a failing env constructor
        try:
            remote.send((False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        except OSError:
            pass
    finally:
        for env in envs:
            env.close()
        buffers.close(unlink=False)
        channel.close(unlink=False)
        remote.close()


class LockstepVecEnv(VecEnv):
    """Steps ``len(env_fns)`` envs in lockstep: ``in_process`` of them in the calling process, the rest split
    over ``workers`` processes, all at the same time; observations cross in shared memory.

    Envs ``0 .. in_process - 1`` live in the calling process; the others in contiguous runs, one per worker.

    Args:
        env_fns: Functions that make the envs (pickled with cloudpickle for ``spawn`` and ``forkserver``).
        workers: Worker processes (default: one per core but the calling process's, never more than envs need:
            :func:`default_split`).
        in_process: Envs stepped in the calling process (default: its share of ``workers + 1`` processes, the
            smallest; 0: every env in a worker, as ``SubprocVecEnv`` but several envs per worker).
        start_method: ``"fork"``, ``"forkserver"`` or ``"spawn"`` (default: ``"forkserver"`` where the platform
            has it, else ``"spawn"``, as ``SubprocVecEnv``).
        spin: Seconds each side polls before it blocks: a worker waiting for the next command, this process
            waiting for a worker's step once its own envs have stepped (default 0: block at once). Each poll
            costs CPU while it lasts, so this pays where every process has a core of its own (``tdwgym bench``:
            BENCHMARKS.md) and not where a process shares its core with other work.

    Raises:
        ValueError: A bad ``workers``, ``in_process``, ``start_method`` or ``spin`` (before any process starts).
        RuntimeError: A worker failed to make its envs (with the worker's traceback); later, a worker that died.
            An error in a worker's env is a :class:`WorkerError` (a RuntimeError, with the worker's traceback), one
            in this process's env that error itself; either is raised once every worker has answered, so the
            vector env can step on.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        workers: int | None = None,
        in_process: int | None = None,
        start_method: str | None = None,
        spin: float = 0.0,
    ) -> None:
        n_envs = len(env_fns)
        if n_envs < 1:
            raise ValueError("LockstepVecEnv needs at least one env function")
        cpus = os.cpu_count() or 1
        if workers is None and in_process is None:
            workers, in_process = default_split(n_envs, cpus)
        elif in_process is None:
            in_process = n_envs if workers == 0 else n_envs // (workers + 1)
        elif workers is None:
            workers = min(n_envs - in_process, max(1, cpus - (1 if in_process else 0)))
        if not (isinstance(in_process, int) and 0 <= in_process <= n_envs):
            raise ValueError(f"in_process must be an int in [0, {n_envs}], got {in_process!r}")
        remote_envs = n_envs - in_process
        if not (isinstance(workers, int) and workers >= 0) or (workers == 0) != (remote_envs == 0):
            raise ValueError(
                f"workers must be an int >= 1 when envs are left for them ({remote_envs}) and 0 otherwise, "
                f"got {workers!r}"
            )
        workers = min(workers, remote_envs)
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        if start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {list(START_METHODS)}, got {start_method!r}")
        spin = check_spin(spin)

        self.waiting = False
        self.closed = False
        self.in_process = in_process
        self.start_method = start_method
        self.spin = spin
        # who steps env i: (None, i) in this process, (k, position) in worker k
        self._owner: list[tuple[int | None, int]] = [(None, i) for i in range(in_process)]
        self._ranges: list[tuple[int, int]] = []
        start = in_process
        for k in range(workers):
            size = remote_envs // workers + (1 if k < remote_envs % workers else 0)
            self._ranges.append((start, start + size))
            self._owner += [(k, j) for j in range(size)]
            start += size

        # the spaces come from the first env, made here (when this process steps some) or in the first worker
        self.envs: list[gym.Env] = []
        self.remotes: list[Any] = []
        self.processes: list[Any] = []
        self.channels: list[_Channel] = []
        self._buffers: _Buffers | None = None
        self._held: list[_Buffers] = []
        self._actions: np.ndarray | None = None
        # everything started is released at close(), or else when this is collected or the interpreter exits
        self._finalizer = weakref.finalize(
            self, _release, self.remotes, self.processes, self.channels, self.envs, self._held
        )
        try:
            if in_process:
                self.envs.extend(_patch_env(fn()) for fn in env_fns[:in_process])
                observation_space, action_space = self.envs[0].observation_space, self.envs[0].action_space
            else:
                probe = _patch_env(env_fns[0]())
                observation_space, action_space = probe.observation_space, probe.action_space
                probe.close()
            self._buffers = _Buffers(observation_space, n_envs)
            self._held.append(self._buffers)
            self._start_workers(env_fns, observation_space, action_space, n_envs)
        except BaseException:
            self._release()
            raise
        super().__init__(n_envs, observation_space, action_space)

    # -- processes --------------------------------------------------------------------------------------------
    def _start_workers(
        self, env_fns: Sequence[Callable[[], gym.Env]], space: gym.Space, action_space: gym.Space, n_envs: int
    ) -> None:
        if not self._ranges:
            return
        ctx = forkserver_context(["tdwgym.tools.vector"]) if self.start_method == "forkserver" else None
        ctx = ctx or mp.get_context(self.start_method)
        parent = None if self.start_method == "forkserver" else os.getpid()
        assert self._buffers is not None
        for first, end in self._ranges:
            remote, work_remote = ctx.Pipe()
            channel = _Channel(end - first, action_space, ctx)
            self.channels.append(channel)
            args = (work_remote, remote, CloudpickleWrapper(list(env_fns[first:end])), first)
            args += (self._buffers.names, space, n_envs, parent, channel.spec, self.spin)
            process = ctx.Process(target=_worker, args=args, daemon=True)
            process.start()
            work_remote.close()
            self.remotes.append(remote)
            self.processes.append(process)
        for remote in self.remotes:
            self._receive(remote)

    @staticmethod
    def _receive(remote: Any) -> Any:
        try:
            ok, payload = remote.recv()
        except EOFError:
            raise RuntimeError("a LockstepVecEnv worker died (its pipe closed)") from None
        if not ok:
            raise WorkerError(f"in a LockstepVecEnv worker: {payload}")
        return payload

    def _send(self, k: int, message: Any) -> None:
        """A command to worker ``k`` by its pipe (a step too, when its actions do not fit the channel)."""
        self.remotes[k].send(message)
        self.channels[k].signal_pipe()

    # -- stepping ---------------------------------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        for k, (first, end) in enumerate(self._ranges):
            if not self.channels[k].send_step(actions[first:end]):
                self._send(k, ("step", actions[first:end]))
        self._actions = actions
        self.waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        assert self._buffers is not None and self._actions is not None
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict] = [{}] * self.num_envs
        # this process's envs step while the workers step theirs; an error (here or in a worker) is raised once
        # every worker has answered, so that the next step finds them all waiting for it
        error: Exception | None = None
        try:
            for i, env in enumerate(self.envs):
                obs, rewards[i], dones[i], infos[i], reset_info = _step(env, self._actions[i])
                self._buffers.write(i, obs)
                if reset_info is not None:
                    self.reset_infos[i] = reset_info
        except Exception as exc:  # noqa: BLE001 - raised below
            error = exc
        try:
            for k, (first, end) in enumerate(self._ranges):
                channel = self.channels[k]
                _acquire(channel.done, self.spin, self.processes[k])
                _, size, failed = channel.header()
                if failed:
                    try:
                        self._receive(self.remotes[k])  # raises the worker's error
                    except WorkerError as exc:
                        error = error or exc
                    continue
                worker_infos, reset_infos = channel.read_infos(size) if size >= 0 else self.remotes[k].recv()
                rewards[first:end] = channel.rewards
                dones[first:end] = channel.dones
                infos[first:end] = worker_infos
                for j, reset_info in reset_infos.items():
                    self.reset_infos[first + j] = reset_info
        finally:
            self.waiting = False
        if error is not None:
            raise error
        return self._buffers.read(self.observation_space), rewards, dones, infos

    def reset(self) -> VecEnvObs:
        assert self._buffers is not None
        for k, (first, end) in enumerate(self._ranges):
            self._send(k, ("reset", [(self._seeds[i], self._options[i]) for i in range(first, end)]))
        for i, env in enumerate(self.envs):
            options = self._options[i]
            obs, self.reset_infos[i] = env.reset(seed=self._seeds[i], **({"options": options} if options else {}))
            self._buffers.write(i, obs)
        for remote, (first, _) in zip(self.remotes, self._ranges, strict=True):
            for j, reset_info in enumerate(self._receive(remote)):
                self.reset_infos[first + j] = reset_info
        # seeds and options are used once
        self._reset_seeds()
        self._reset_options()
        return self._buffers.read(self.observation_space)

    # -- everything else, routed to the envs' owners ----------------------------------------------------------
    def _dispatch(self, cmd: str, indices: VecEnvIndices, *data: Any) -> list[Any]:
        targets = list(self._get_indices(indices))
        by_worker: dict[int, list[int]] = {}
        for i in targets:
            k, j = self._owner[i]
            if k is not None:
                by_worker.setdefault(k, []).append(j)
        for k, positions in by_worker.items():
            self._send(k, (cmd, (positions, *data)))
        results: dict[int, Any] = {}
        error: Exception | None = None  # raised once every worker has answered
        local = [i for i in targets if self._owner[i][0] is None]
        if local:
            try:
                results.update(zip(local, _call(self.envs, cmd, (local, *data)), strict=True))
            except Exception as exc:  # noqa: BLE001 - raised below
                error = exc
        for k, positions in by_worker.items():
            first = self._ranges[k][0]
            try:
                results.update(zip([first + j for j in positions], self._receive(self.remotes[k]), strict=True))
            except WorkerError as exc:
                error = error or exc
        if error is not None:
            raise error
        return [results[i] for i in targets]

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any):
        """Call a method of the envs (see ``VecEnv.env_method``)."""
        return self._dispatch("env_method", indices, method_name, method_args, method_kwargs)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of the envs (see ``VecEnv.get_attr``)."""
        return self._dispatch("get_attr", indices, attr_name)

    def has_attr(self, attr_name: str) -> bool:
        """Whether every env has the attribute."""
        return all(self._dispatch("has_attr", None, attr_name))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the envs (see ``VecEnv.set_attr``)."""
        self._dispatch("set_attr", indices, attr_name, value)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Whether the envs are wrapped with ``wrapper_class``."""
        return self._dispatch("is_wrapped", indices, wrapper_class)

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Each env's ``render()`` (``rgb_array`` render mode)."""
        if self.render_mode != "rgb_array":
            import warnings

            warnings.warn(
                f"The render mode is {self.render_mode}, but this method assumes it is `rgb_array` to obtain images.",
                stacklevel=2,
            )
            return [None] * self.num_envs
        return self._dispatch("render", None)

    def close(self) -> None:
        """Close the envs, end the workers and free the shared memory."""
        if self.closed:
            return
        if self.waiting:  # a step under way: let the workers finish it
            for channel, process in zip(self.channels, self.processes, strict=True):
                try:
                    _acquire(channel.done, 0.0, process)
                except RuntimeError:
                    pass
        self._release()
        self.closed = True

    def _release(self) -> None:
        self._finalizer()  # runs once: _release(...) below


def _release(
    remotes: list[Any], processes: list[Any], channels: list[_Channel], envs: list[gym.Env], buffers: list[_Buffers]
) -> None:
    """End the workers, close the envs and free the shared memory (each list emptied): at :meth:`close`, or when
    a vector env that was never closed is collected or the interpreter exits."""
    for remote, channel in zip(remotes, channels, strict=False):
        try:
            remote.send(("close", None))
            channel.signal_pipe()
        except (OSError, ValueError):
            pass
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
    for remote in remotes:
        remote.close()
    for env in envs:
        env.close()
    for block in buffers:
        block.close(unlink=True)
    for channel in channels:
        channel.close(unlink=True)
    for held in (remotes, processes, channels, envs, buffers):
        held.clear()
