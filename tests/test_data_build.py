"""Dataset building (bench.data.build) with tiny budgets: format, cards, reproducibility and resuming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.data.build import LocomotionRecipe, ReacherRecipe, build_dataset, with_overrides
from bench.data.build.api import _not_built_here
from bench.data.build.maze import WaypointPlanner
from bench.data.build.replay import ReplayBuffer, chunk_path, load_chunk
from bench.data.build.rollout import RawEpisode, take_transitions
from bench.data.loaders import load_minari_path, load_task_dataset
from bench.errors import BenchError
from bench.tasks import get_task

# Small networks and a wide selection band so a few hundred SAC steps produce a dataset.
TINY_SAC: dict[str, Any] = {"sac_hidden_units": (32, 32), "sac_batch_size": 32, "sac_random_steps": 300,
                            "sac_update_start": 300}
TINY_REACHER: dict[str, Any] = {**TINY_SAC, "eval_every": 500, "episodes": 4, "n_envs": 4,
                                "medium_band": (0.0, 100.0), "medium_max_steps": 1000}
TINY_HOPPER: dict[str, Any] = {**TINY_SAC, "eval_every": 500, "eval_episodes": 2, "confirm_episodes": 3, "n_envs": 4,
                               "medium_band": (-100.0, 100.0), "medium_target": 99.0, "medium_max_steps": 1000,
                               "expert_band": (-100.0, 100.0), "expert_max_steps": 1500}


def _card(path: Path) -> dict[str, Any]:
    return json.loads((path / "card.json").read_text())


class Kill(Exception):
    """Stands in for the process being killed right after a checkpoint."""


# --- configuration and errors -----------------------------------------------------------------------------

def test_overrides_reach_nested_settings_and_reject_unknown_names() -> None:
    r = with_overrides(LocomotionRecipe(), {"medium_max_steps": 3000, "sac_hidden_units": [8, 8], "eval_every": 7})
    assert r.medium.max_steps == 3000 and r.sac.hidden_units == (8, 8) and r.eval_every == 7
    assert r.expert == LocomotionRecipe().expert
    with pytest.raises(BenchError, match="unknown budget override 'medium_steps'.*medium_max_steps"):
        with_overrides(LocomotionRecipe(), {"medium_steps": 1})
    with pytest.raises(BenchError, match="wrong type"):
        with_overrides(ReacherRecipe(), {"episodes": "many"})


def test_atari_points_to_its_own_sources(data_root: Path) -> None:
    with pytest.raises(BenchError, match="no scripted player for qbert-medium.*dqn_replay"):
        build_dataset(get_task("qbert-medium"), progress=False)
    assert "dqn_replay:Pong/1" in str(_not_built_here(get_task("pong-medium")))


def test_bad_seed_and_transitions_are_one_line_errors(data_root: Path) -> None:
    task = get_task("reacher2d-medium")
    with pytest.raises(BenchError, match="transitions 0 is not accepted"):
        build_dataset(task, transitions=0)
    with pytest.raises(BenchError, match="seed -1 is not accepted"):
        build_dataset(task, seed=-1)


# --- building blocks --------------------------------------------------------------------------------------

def test_replay_chunks_restore_the_ring_and_record_episode_ends(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=8, obs_dim=3, act_dim=2)
    for seg in range(2):
        for t in range(5):
            buf.add(rng.normal(size=3), rng.normal(size=2), float(t), -float(t), rng.normal(size=3),
                    terminal=t == 2, end=t == 2)
        buf.mark_end()
        buf.flush_chunk(chunk_path(tmp_path, seg))
    again = ReplayBuffer(capacity=8, obs_dim=3, act_dim=2)
    again.restore([chunk_path(tmp_path, 0), chunk_path(tmp_path, 1)])
    assert (again.size, again.cursor) == (buf.size, buf.cursor) == (8, 2)
    np.testing.assert_array_equal(again.obs, buf.obs)
    np.testing.assert_array_equal(again.train_rewards, buf.train_rewards)
    chunk = load_chunk(chunk_path(tmp_path, 1))
    assert chunk["ends"].tolist() == [False, False, True, False, True]
    assert chunk["rewards"].tolist() == [0, 1, 2, 3, 4] and chunk["train_rewards"][1] == -1


def test_take_transitions_cuts_the_last_episode_with_a_timeout() -> None:
    def ep(i: int, n: int) -> RawEpisode:
        terms = np.zeros(n, bool)
        terms[-1] = True
        return RawEpisode(i, i, np.zeros((n + 1, 2), np.float32), np.zeros((n, 1), np.float32),
                          np.ones(n, np.float32), terms, np.zeros(n, bool))

    kept = take_transitions([ep(0, 4), ep(1, 6), ep(2, 3)], 7)
    assert [len(e) for e in kept] == [4, 3]
    assert kept[1].observations.shape == (4, 2)
    assert kept[1].truncations[-1] and not kept[1].terminations[-1]
    assert kept[0].terminations[-1]


def test_waypoint_planner_follows_the_u_maze() -> None:
    u_maze = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]
    planner = WaypointPlanner(u_maze)
    cell, path = (1, 1), [(1, 1)]
    while cell != (3, 1):
        cell = planner.next_cell(cell, (3, 1))
        path.append(cell)
    assert path == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]


# --- whole builds -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_reacher_build_is_reproducible_and_resumes_from_its_checkpoint(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("reacher2d-medium")
    monkeypatch.setenv("LAMO_BENCH_DATA", str(tmp_path / "a"))
    path_a = build_dataset(task, seed=3, transitions=400, progress=False, **TINY_REACHER)
    card_a = _card(path_a)

    # Same seed, another data root: killed right after the first checkpoint, then started again.
    monkeypatch.setenv("LAMO_BENCH_DATA", str(tmp_path / "b"))

    def kill(step: int) -> None:
        raise Kill(step)

    with pytest.raises(Kill):
        build_dataset(task, seed=3, transitions=400, progress=False, on_checkpoint=kill, **TINY_REACHER)
    state = json.loads((tmp_path / "b" / "build" / "reacher2d-seed3" / "state.json").read_text())
    assert state["step"] == 500 and not (tmp_path / "b" / "minari" / "lamo-bench").exists()
    path_b = build_dataset(task, seed=3, transitions=400, progress=False, **TINY_REACHER)
    card_b = _card(path_b)

    assert card_a["training_runs_started_at_steps"] == [0]
    assert card_b["training_runs_started_at_steps"] == [0, 500]  # continued, not restarted
    assert card_b["learning_curve"] == card_a["learning_curve"]
    assert card_b["content_hash"] == card_a["content_hash"]
    # The resumed build's wall time counts the killed run's checkpointed training too.
    assert card_b["build_wall_time_s"] > card_b["training_wall_time_s"] > 0
    assert card_b["this_invocation_wall_time_s"] < card_b["build_wall_time_s"]

    ds = load_task_dataset(task)
    assert ds.metadata["source"] == "generated:lamo-bench/reacher2d/medium-v0"
    assert ds.content_hash() == card_b["content_hash"]
    assert (ds.num_episodes, ds.num_transitions, ds.observation_shape) == (4, 400, (12,))
    assert set(np.unique(ds.rewards)) <= {0.0, 1.0}  # the sparse task reward, not the shaped training one
    assert card_b["behaviour_policy"]["training_reward"].startswith("shaped")
    assert card_b["normalized_return"]["mean"] == pytest.approx(ds.episode_returns().mean())
    assert set(card_b["versions"]) >= {"mujoco", "gymnasium", "minari", "d3rlpy", "lamo-bench"}
    assert not list((tmp_path / "b" / "minari").glob(".staging-*"))


@pytest.mark.slow
def test_locomotion_datasets_share_one_training_run(data_root: Path) -> None:
    medium = build_dataset(get_task("hopper-medium"), seed=0, transitions=600, progress=False, **TINY_HOPPER)
    card = _card(medium)
    assert card["transitions"] == 600 and card["training_runs_started_at_steps"] == [0]
    assert card["behaviour_policy"]["medium"]["training_steps"] == 1000
    # Every quick score fell in the (wide) band, so each was re-measured and the confirmed score selected.
    curve = card["learning_curve"]
    assert [p["step"] for p in curve] == [500, 1000] and all("confirmed_normalized" in p for p in curve)
    chosen = card["behaviour_policy"]["medium"]["selection"]["selected_normalized"]
    assert chosen == max((p["confirmed_normalized"] for p in curve), key=lambda x: -abs(x - 99.0))
    assert card["collection"]["medium"]["env_steps_per_s"] > 0

    replay = build_dataset(get_task("hopper-medium-replay"), seed=0, progress=False, **TINY_HOPPER)
    replay_card = _card(replay)
    assert replay_card["training_runs_started_at_steps"] == [0]  # no retraining
    assert replay_card["transitions"] == 1000  # every training step up to the medium checkpoint
    replay_ds = load_minari_path(replay)
    assert replay_ds.timeouts[replay_ds.episode_starts[1:] - 1].any()  # the checkpoint cut is a timeout

    mixed = build_dataset(get_task("hopper-medium-expert"), seed=0, transitions=600, progress=False, **TINY_HOPPER)
    mixed_card = _card(mixed)
    assert mixed_card["transitions"] == 1200
    assert mixed_card["training_runs_started_at_steps"] == [0, 1000]  # the expert phase continues the run
    assert mixed_card["behaviour_policy"]["expert"]["training_steps"] == 1500
    medium_ds, mixed_ds = load_minari_path(medium), load_minari_path(mixed)
    first = mixed_ds.select_episodes(np.arange(medium_ds.num_episodes))
    assert first.content_hash() == medium_ds.content_hash()  # medium half = the medium dataset


@pytest.mark.slow
def test_pointmaze_stream_is_flat_and_cut_into_timeouts(data_root: Path) -> None:
    task = get_task("pointmaze-umaze")
    abandoned = data_root / "minari" / ".staging-999999999-dead"  # left by a build killed while writing
    (abandoned / "lamo-bench").mkdir(parents=True)
    path = build_dataset(task, seed=1, transitions=700, progress=False)
    assert not abandoned.exists()
    ds = load_task_dataset(task)
    assert ds.observation_shape == (6,)
    assert ds.episode_lengths.tolist() == [300, 300, 100]
    assert ds.timeouts.sum() == 3 and not ds.terminals.any()
    # Episodes continue one stream: an episode starts where the previous one ended.
    assert np.abs(ds.observations[300, :2] - ds.observations[299, :2]).max() < 0.2
    assert _card(path)["content_hash"] == ds.content_hash()
    again = build_dataset(task, seed=1, transitions=700, progress=False)
    assert _card(again)["content_hash"] == ds.content_hash()
