"""Resumable online SAC training of a behaviour policy, stopped at a target level of performance.

The loop is our own (d3rlpy's `fit_online` cannot resume: it resets the environment unseeded and keeps its
buffer and counters in memory) but the learner is d3rlpy's SAC, driven through `algo.update`. Training is
cut into segments of `eval_every` steps. At the end of a segment the running episode is cut (recorded as a
timeout), the segment's transitions are written as one buffer chunk, the policy is evaluated, and weights,
optimizer states, random-generator states and counters are checkpointed. The next segment resets the
environment with a seed derived from the segment index, so a build resumed from a checkpoint continues
exactly as an uninterrupted one would have.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from bench.atomic import atomic_write
from bench.data.build.config import Phase, SacSettings
from bench.data.build.policy import GaussianActor, create_sac, save_policy
from bench.data.build.replay import ReplayBuffer, chunk_path
from bench.data.build.workdir import WorkDir
from bench.errors import BenchError

# Stream ids mixed into seeds so training resets, evaluation episodes and minibatch sampling never share one.
TRAIN_RESET_STREAM = 1
EVAL_STREAM = 2
SAMPLER_STREAM = 3
CONFIRM_STREAM = 4


def derived_seed(seed: int, stream: int, index: int) -> int:
    """A 31-bit seed for item `index` of a named random stream of build seed `seed`."""
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class Evaluation:
    raw: float
    normalized: float
    # Recipe-specific figures recorded next to the score in the learning curve (e.g. an acceptance rate).
    details: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Selected:
    """The checkpoint a phase kept: its training step, evaluated score and saved policy weights."""

    phase: str
    step: int
    raw: float
    normalized: float
    policy_path: Path


Evaluate = Callable[[GaussianActor], Evaluation]
TrainReward = Callable[[np.ndarray, float], float]


class SacTrainer:
    """Trains, checkpoints and evaluates one SAC behaviour policy in a work dir; see the module docstring."""

    def __init__(
        self,
        workdir: WorkDir,
        settings: SacSettings,
        make_env: Callable[[], gym.Env[Any, Any]],
        evaluate: Evaluate,
        eval_every: int,
        seed: int,
        identity: dict[str, Any],
        train_reward: TrainReward | None = None,
        progress: bool = True,
        on_checkpoint: Callable[[int], None] | None = None,
        confirm: Evaluate | None = None,
    ) -> None:
        self.workdir, self.settings, self.make_env = workdir, settings, make_env
        self.evaluate, self.confirm, self.eval_every, self.seed = evaluate, confirm, eval_every, seed
        self.train_reward, self.progress, self.on_checkpoint = train_reward, progress, on_checkpoint
        self.identity = json.loads(
            json.dumps({**identity, "sac": asdict(settings), "eval_every": eval_every, "seed": seed})
        )
        probe = make_env()
        obs_space, act_space = probe.observation_space, probe.action_space
        probe.close()
        assert obs_space.shape is not None and act_space.shape is not None
        self.obs_dim, self.act_dim = int(np.prod(obs_space.shape)), int(np.prod(act_space.shape))
        self.state = self._load_or_init_state()
        # Seconds this process spent in checkpointed training segments (the rest of a build is collection).
        self.session_train_s = 0.0

    # --- state --------------------------------------------------------------------------------------------

    def _load_or_init_state(self) -> dict[str, Any]:
        state = self.workdir.load_state()
        if state is None:
            return {
                "identity": self.identity,
                "step": 0,
                "segments": 0,
                "grad_step": 0,
                "checkpoint": None,
                "train_wall_s": 0.0,
                "starts": [],
                "curve": [],
                "phases": {},
            }
        if state.get("identity") != self.identity:
            old, new = state.get("identity", {}), self.identity
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise BenchError(
                f"work dir {self.workdir.root} holds a build with different settings ({', '.join(diff)}); "
                "delete it or pass another work dir to start over"
            )
        return state

    def selected(self, phase: str) -> Selected | None:
        entry = self.state["phases"].get(phase)
        if not entry or entry.get("step") is None:
            return None
        return Selected(
            phase,
            int(entry["step"]),
            float(entry["raw"]),
            float(entry["normalized"]),
            self.workdir.path(entry["policy"]),
        )

    def phase_done(self, phase: str) -> bool:
        return bool(self.state["phases"].get(phase, {}).get("done"))

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def curve(self) -> list[dict[str, float]]:
        return list(self.state["curve"])

    def chunk_paths(self, upto_step: int | None = None) -> list[Path]:
        """Buffer chunks in order, up to and including the segment that ends at `upto_step`."""
        n = self.state["segments"] if upto_step is None else upto_step // self.eval_every
        return [chunk_path(self.workdir.path("buffer"), i) for i in range(n)]

    # --- training -----------------------------------------------------------------------------------------

    def run_phase(self, phase: Phase) -> Selected:
        """Train (resuming if possible) until `phase` has selected a checkpoint, and return it."""
        if self.phase_done(phase.name):
            sel = self.selected(phase.name)
            assert sel is not None
            return sel
        self.state["phases"].setdefault(phase.name, {"step": None, "done": False, "started_at": self.step})
        algo, rng, buffer = self._restore()
        actor = GaussianActor(algo)
        env = self.make_env()
        bar = tqdm(
            total=phase.max_steps,
            initial=self.step,
            desc=f"train {phase.name}",
            unit="step",
            disable=not self.progress,
            mininterval=2.0,
        )
        self.state["starts"].append(self.step)
        try:
            while not self._phase_finished(phase):
                if self.step >= phase.max_steps:
                    self.workdir.save_state(self.state)
                    band = f"[{phase.band[0]:g}, {phase.band[1]:g}]"
                    raise BenchError(
                        f"behaviour policy never scored inside the {phase.name} band {band} (normalized) within "
                        f"{phase.max_steps} training steps; raise {phase.name}_max_steps or try another --seed"
                    )
                t0 = time.perf_counter()
                self._train_segment(algo, actor, env, rng, buffer, bar)
                self._checkpoint(algo, actor, rng, buffer, phase, t0)
                last = self.state["curve"][-1]
                bar.set_postfix(normalized=f"{last['normalized']:.1f}")
                if self.on_checkpoint is not None:
                    self.on_checkpoint(self.step)
        finally:
            bar.close()
            env.close()
        self.state["phases"][phase.name]["done"] = True
        self.workdir.save_state(self.state)
        sel = self.selected(phase.name)
        assert sel is not None
        return sel

    def _phase_finished(self, phase: Phase) -> bool:
        sel = self.selected(phase.name)
        if sel is not None and abs(sel.normalized - phase.target) <= phase.tolerance:
            return True
        return sel is not None and self.step >= phase.max_steps

    def _restore(self) -> tuple[Any, np.random.Generator, ReplayBuffer]:
        s = self.settings
        algo = create_sac(s, self.obs_dim, self.act_dim, self.seed)
        rng = np.random.default_rng([self.seed, SAMPLER_STREAM])
        buffer = ReplayBuffer(s.buffer_size, self.obs_dim, self.act_dim)
        if self.state["checkpoint"] is not None:
            ckpt = self.workdir.path(self.state["checkpoint"])
            algo.load_model(str(ckpt / "model.pt"))
            extra = torch.load(ckpt / "rng.pt", map_location="cpu", weights_only=False)
            torch.set_rng_state(extra["torch"])
            rng.bit_generator.state = extra["numpy"]
            algo._grad_step = int(self.state["grad_step"])
            buffer.restore(self.chunk_paths())
        return algo, rng, buffer

    def _train_segment(
        self,
        algo: Any,
        actor: GaussianActor,
        env: gym.Env[Any, Any],
        rng: np.random.Generator,
        buffer: ReplayBuffer,
        bar: tqdm,
    ) -> None:
        from d3rlpy.dataset import TransitionMiniBatch

        s = self.settings
        obs, _ = env.reset(seed=derived_seed(self.seed, TRAIN_RESET_STREAM, self.state["segments"]))
        obs = np.asarray(obs, np.float32)
        ones = np.ones((s.batch_size, 1), np.float32)
        zeros_act = np.zeros((s.batch_size, self.act_dim), np.float32)
        step = self.step
        for _ in range(self.eval_every):
            if step < s.random_steps:
                action = rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
            else:
                action = actor.sample(obs[None], rng.standard_normal((1, self.act_dim)))[0]
            next_obs, reward, terminated, truncated, _ = env.step(action)
            next_obs = np.asarray(next_obs, np.float32)
            train_r = self.train_reward(next_obs, float(reward)) if self.train_reward else float(reward)
            buffer.add(obs, action, float(reward), train_r, next_obs, bool(terminated), terminated or truncated)
            step += 1
            if step > s.update_start and buffer.size >= s.batch_size:
                b = buffer.sample(rng, s.batch_size)
                algo.update(
                    TransitionMiniBatch(
                        observations=b["observations"],
                        actions=b["actions"],
                        rewards=b["rewards"],
                        next_observations=b["next_observations"],
                        next_actions=zeros_act,
                        terminals=b["terminals"],
                        intervals=ones,
                        transitions=[],
                    )
                )
            obs = np.asarray(env.reset()[0], np.float32) if terminated or truncated else next_obs
            bar.update(1)
        buffer.mark_end()
        self.state["step"] = step

    def _checkpoint(
        self,
        algo: Any,
        actor: GaussianActor,
        rng: np.random.Generator,
        buffer: ReplayBuffer,
        phase: Phase,
        started: float,
    ) -> None:
        step, segment = self.step, self.state["segments"]
        buffer.flush_chunk(chunk_path(self.workdir.path("buffer"), segment))
        result = self.evaluate(actor)
        point: dict[str, Any] = {
            "step": step,
            "return": result.raw,
            "normalized": result.normalized,
            "phase": phase.name,
            **result.details,
        }
        lo, hi = phase.band
        if self.confirm is not None and lo <= result.normalized <= hi:
            # A quick evaluation inside the band is noisy; a longer one decides (and is what gets compared).
            result = self.confirm(actor)
            point.update({"confirmed_return": result.raw, "confirmed_normalized": result.normalized})
        self.state["curve"].append(point)
        entry = self.state["phases"][phase.name]
        distance = abs(result.normalized - phase.target)
        better = entry["step"] is None or distance < abs(entry["normalized"] - phase.target)
        if lo <= result.normalized <= hi and better:
            rel = f"policies/{phase.name}_step{step:09d}.pt"
            atomic_write(self.workdir.path(rel), lambda tmp: save_policy(algo, tmp))
            entry.update({"step": step, "raw": result.raw, "normalized": result.normalized, "policy": rel})
        ckpt_rel = f"ckpt/step_{step:09d}"
        ckpt = self.workdir.path(ckpt_rel)
        ckpt.mkdir(parents=True, exist_ok=True)
        atomic_write(ckpt / "model.pt", lambda tmp: algo.save_model(str(tmp)))
        extra = {"torch": torch.get_rng_state(), "numpy": rng.bit_generator.state}
        atomic_write(ckpt / "rng.pt", lambda tmp: torch.save(extra, tmp))
        previous = self.state["checkpoint"]
        elapsed = time.perf_counter() - started  # training, evaluation and checkpoint writing
        self.session_train_s += elapsed
        self.state.update(
            {
                "segments": segment + 1,
                "grad_step": int(algo._grad_step),
                "checkpoint": ckpt_rel,
                "train_wall_s": self.state["train_wall_s"] + elapsed,
            }
        )
        self.workdir.save_state(self.state)
        if previous is not None and previous != ckpt_rel:
            old = self.workdir.path(previous)
            for f in old.glob("*"):
                f.unlink()
            old.rmdir()
