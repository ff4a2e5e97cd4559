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
from bench.data.build.reacher import select_episodes
from bench.data.build.replay import ReplayBuffer, chunk_path, load_chunk
from bench.data.build.rollout import RawEpisode, RolloutStats, take_transitions
from bench.data.info import card_digest
from bench.data.loaders import load_minari_path, load_task_dataset
from bench.errors import BenchError
from bench.tasks import get_task

# Small networks and a wide selection band so a few hundred SAC steps produce a dataset.
TINY_SAC: dict[str, Any] = {
    "sac_hidden_units": (32, 32),
    "sac_batch_size": 32,
    "sac_random_steps": 300,
    "sac_update_start": 300,
}
# keep_above -1 keeps every episode: a few hundred steps of SAC never return more than 20.
TINY_REACHER: dict[str, Any] = {
    **TINY_SAC,
    "eval_every": 500,
    "episodes": 4,
    "n_envs": 4,
    "medium_band": (0.0, 100.0),
    "medium_max_steps": 1000,
    "keep_above": -1.0,
    "min_acceptance": 0.0,
}
TINY_HOPPER: dict[str, Any] = {
    **TINY_SAC,
    "eval_every": 500,
    "eval_episodes": 2,
    "confirm_episodes": 3,
    "n_envs": 4,
    "medium_band": (-100.0, 100.0),
    "medium_target": 99.0,
    "medium_max_steps": 1000,
    "expert_band": (-100.0, 100.0),
    "expert_max_steps": 1500,
}


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


def test_locomotion_bands_are_centred_per_env_on_d4rl_v2() -> None:
    """Medium bands sit on D4RL v2's medium means, expert targets on its expert-v2 means (normalized)."""
    expected = {"hopper": (44.0, 108.0), "halfcheetah": (41.0, 88.0), "walker2d": (62.0, 107.0)}
    for env, (medium, expert) in expected.items():
        r = LocomotionRecipe.for_env(env)
        assert r.medium.target == medium and r.medium.band == (medium - 8.0, medium + 8.0)
        assert r.medium.tolerance == 4.0
        assert r.expert.target == expert and r.expert.band == (expert - 20.0, 1000.0)
    assert LocomotionRecipe() == LocomotionRecipe.for_env("hopper")
    # walker2d's band no longer overlaps hopper's: one band for all built walker2d-medium far too weak.
    assert LocomotionRecipe.for_env("walker2d").medium.band[0] > LocomotionRecipe.for_env("hopper").medium.band[1]
    with pytest.raises(BenchError, match="no locomotion recipe for 'ant'"):
        LocomotionRecipe.for_env("ant")


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
            buf.add(
                rng.normal(size=3),
                rng.normal(size=2),
                float(t),
                -float(t),
                rng.normal(size=3),
                terminal=t == 2,
                end=t == 2,
            )
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
        return RawEpisode(
            i,
            i,
            np.zeros((n + 1, 2), np.float32),
            np.zeros((n, 1), np.float32),
            np.ones(n, np.float32),
            terms,
            np.zeros(n, bool),
        )

    kept = take_transitions([ep(0, 4), ep(1, 6), ep(2, 3)], 7)
    assert [len(e) for e in kept] == [4, 3]
    assert kept[1].observations.shape == (4, 2)
    assert kept[1].truncations[-1] and not kept[1].terminations[-1]
    assert kept[0].terminations[-1]


def _fake_run(returns: list[float]) -> Any:
    """A stand-in for the rollout runner: episode i has return returns[i] (all in its first step)."""
    calls: list[tuple[int, int]] = []

    def run(first: int, n: int) -> tuple[list[RawEpisode], RolloutStats]:
        calls.append((first, n))
        eps = []
        for i in range(first, min(first + n, len(returns))):
            rewards = np.zeros(100, np.float32)
            rewards[0] = returns[i]
            eps.append(
                RawEpisode(
                    i - first,
                    i,
                    np.zeros((101, 12), np.float32),
                    np.zeros((100, 2), np.float32),
                    rewards,
                    np.zeros(100, bool),
                    np.eye(100, dtype=bool)[-1],
                )
            )
        return eps, RolloutStats(len(eps), 100 * len(eps), 0.1)

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_reacher_selection_keeps_returns_above_20_until_49_as_the_official_script() -> None:
    recipe = ReacherRecipe()
    # srzer/LaMo-2023 test.py: `ep` from 1 while `ep < 50`, `if ep_reward > 20` keeps; action_std 0.1.
    assert (recipe.episodes, recipe.keep_above, recipe.action_noise) == (49, 20.0, 0.1)
    assert recipe.medium.target == 36.0
    returns = [float(x) for x in np.tile([10, 20, 21, 45, 36, 0, 30, 60], 20)]
    sel = select_episodes(_fake_run(returns), 49, recipe)
    kept_expected = [r for r in returns if r > 20][:49]
    assert sel.complete and [e.episode_return for e in sel.kept] == kept_expected
    # Exactly 20 (not above) is rejected; episodes after the 49th kept one are not counted as attempted.
    # 5 of every 8 are kept: 9 blocks give 45 (72 episodes), then 21, 45, 36, (0), 30 at episode 79.
    assert sel.attempted == 79
    assert sel.rejected == 30 and sel.kept_mean == pytest.approx(np.mean(kept_expected))
    # The result does not depend on the batch size.
    again = select_episodes(_fake_run(returns), 49, with_overrides(recipe, {"n_envs": 7}))
    assert [e.episode_return for e in again.kept] == kept_expected and again.attempted == sel.attempted


def test_reacher_selection_gives_up_on_a_policy_that_rarely_succeeds() -> None:
    recipe = ReacherRecipe()
    assert recipe.min_acceptance == 0.04
    rare = [30.0 if i % 50 == 0 else 0.0 for i in range(5000)]  # 2% accepted, under the 4% floor
    run = _fake_run(rare)
    sel = select_episodes(run, 49, recipe)
    assert not sel.complete and run.calls == [(0, 50)] and len(sel.kept) == 1
    capped = select_episodes(_fake_run(rare), 49, with_overrides(recipe, {"min_acceptance": 0.0, "max_attempts": 600}))
    assert not capped.complete and capped.attempted == 600 and len(capped.kept) == 12


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
def test_reacher_build_is_reproducible_and_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    # The rejection rule's figures, as `bench data info --json` shows them (card digest).
    rule = card_b["selection_rule"]
    assert (rule["kept"], rule["keep_above"]) == (4, -1.0) and rule["attempted"] >= 4
    assert rule["kept_return_mean"] == pytest.approx(ds.episode_returns().mean(), abs=1e-4)
    digest = card_digest(path_b, ds.content_hash())
    assert digest is not None and digest["card_matches_data"] and digest["selection_rule"] == rule
    assert "differences_from_official" in digest and not card_digest(tmp_path / "nowhere", "x")
    assert not list((tmp_path / "b" / "minari").glob(".staging-*"))


@pytest.mark.slow
def test_locomotion_datasets_share_one_training_run(data_root: Path) -> None:
    medium = build_dataset(
        get_task("hopper-medium"), seed=0, transitions=600, progress=False, retrain=True, **TINY_HOPPER
    )
    card = _card(medium)
    assert card["transitions"] == 600 and card["training_runs_started_at_steps"] == [0]
    assert card["behaviour_policy"]["medium"]["training_steps"] == 1000
    # Every quick score fell in the (wide) band, so each was re-measured and the confirmed score selected.
    curve = card["learning_curve"]
    assert [p["step"] for p in curve] == [500, 1000] and all("confirmed_normalized" in p for p in curve)
    chosen = card["behaviour_policy"]["medium"]["selection"]["selected_normalized"]
    assert chosen == max((p["confirmed_normalized"] for p in curve), key=lambda x: -abs(x - 99.0))
    assert card["collection"]["medium"]["env_steps_per_s"] > 0

    replay = build_dataset(get_task("hopper-medium-replay"), seed=0, progress=False, retrain=True, **TINY_HOPPER)
    replay_card = _card(replay)
    assert replay_card["training_runs_started_at_steps"] == [0]  # no retraining
    assert replay_card["transitions"] == 1000  # every training step up to the medium checkpoint
    replay_ds = load_minari_path(replay)
    assert replay_ds.timeouts[replay_ds.episode_starts[1:] - 1].any()  # the checkpoint cut is a timeout

    mixed = build_dataset(
        get_task("hopper-medium-expert"), seed=0, transitions=600, progress=False, retrain=True, **TINY_HOPPER
    )
    mixed_card = _card(mixed)
    assert mixed_card["transitions"] == 1200
    assert mixed_card["training_runs_started_at_steps"] == [0, 1000]  # the expert phase continues the run
    assert mixed_card["behaviour_policy"]["expert"]["training_steps"] == 1500
    medium_ds, mixed_ds = load_minari_path(medium), load_minari_path(mixed)
    first = mixed_ds.select_episodes(np.arange(medium_ds.num_episodes))
    assert first.content_hash() == medium_ds.content_hash()  # medium half = the medium dataset

    # After the run has trained on to the expert checkpoint, medium-replay is still the buffer up to the
    # medium checkpoint (D4RL's definition), not everything trained so far.
    replay_again = _card(
        build_dataset(get_task("hopper-medium-replay"), seed=0, progress=False, retrain=True, **TINY_HOPPER)
    )
    assert replay_again["transitions"] == 1000 and replay_again["content_hash"] == replay_card["content_hash"]
    # Every card puts its figures next to D4RL v2's.
    assert card["reference"]["d4rl_v2"]["medium_normalized_mean"] == 44.3
    assert replay_card["reference"]["d4rl_v2"]["medium_replay_transitions"] == 402_000
    assert mixed_card["reference"]["this_dataset"]["expert_policy_normalized"] == pytest.approx(
        mixed_card["behaviour_policy"]["expert"]["selection"]["selected_normalized"], abs=0.01
    )


def test_medium_replay_rebuilds_to_the_same_bytes_from_a_fresh_training_run(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """medium-replay is not shipped (it is the training buffer, about 10 MB per environment); `--retrain` must give
    the same dataset again, so the seeded training run itself has to be reproducible, evaluation included (on one
    machine: another CPU may round differently)."""
    hashes = []
    for name in ("first", "second"):
        root = data_root / name
        root.mkdir()
        monkeypatch.setenv("LAMO_BENCH_DATA", str(root))
        replay = build_dataset(get_task("hopper-medium-replay"), seed=0, progress=False, retrain=True, **TINY_HOPPER)
        card = _card(replay)
        hashes.append((card["content_hash"], card["behaviour_policy"]["medium"]["selection"]["selected_normalized"]))
    assert hashes[0] == hashes[1]


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
    # D4RL's relabelling: the goal columns hold the fixed evaluation goal, the reward is 1 within 0.5 of it.
    goal = np.array([-1.0, 1.0], np.float32)  # D4RL U_MAZE 'G' cell (1, 1) in gymnasium-robotics coordinates
    np.testing.assert_allclose(ds.observations[:, 4:], np.broadcast_to(goal, (700, 2)))
    nxt = np.concatenate([ds.observations[1:300], ds.observations[300:301]])  # within the first episode
    near = (np.linalg.norm(nxt[:299, :2] - goal, axis=1) <= 0.5).astype(np.float32)
    np.testing.assert_array_equal(ds.rewards[:299], near)
    assert _card(path)["reference"]["d4rl"]["transitions"] == 1_000_000
    again = build_dataset(task, seed=1, transitions=700, progress=False)
    assert _card(again)["content_hash"] == ds.content_hash()
