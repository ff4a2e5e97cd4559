"""Shipped behaviour policies: export from a work dir, loading with integrity checks, rollout builds.

The policy here is a freshly initialised (seeded) d3rlpy SAC actor written into a hand-made work dir, then
exported through `bench data ship-policy`'s own code path: the machinery is what is tested, not the policy.
The band test at the end runs over whatever real policies are committed in datasets/policies/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.data.build import build_dataset
from bench.data.build.config import SacSettings
from bench.data.build.shipped import (
    NumpyGaussianActor,
    export_policy,
    load_shipped,
    policy_files,
    rollout,
    shipped_cards,
)
from bench.errors import BenchError
from bench.paths import REPO_ROOT
from bench.tasks import get_task

HOPPER = get_task("hopper-medium")
TINY = SacSettings(hidden_units=(32, 32))


def make_workdir(root: Path, domain: str = "hopper", obs_dim: int = 11, act_dim: int = 3, expert: bool = False) -> Path:
    """A finished medium phase as the trainer leaves it: state.json and the selected policy's state dict."""
    from dataclasses import asdict

    from bench.data.build.config import LocomotionRecipe
    from bench.data.build.policy import create_sac, save_policy

    recipe = LocomotionRecipe.for_env(domain)
    wd = root / f"{domain}-seed0"
    (wd / "policies").mkdir(parents=True)
    save_policy(create_sac(TINY, obs_dim, act_dim, seed=0), wd / "policies" / "medium_step000010000.pt")
    state = {
        "identity": {
            "recipe": f"d4rl-{domain}",
            "eval_episodes": 10,
            "confirm_episodes": 100,
            "bands": {p.name: [list(p.band), p.target, p.tolerance] for p in (recipe.medium, recipe.expert)},
            "sac": json.loads(json.dumps(asdict(TINY))),
            "eval_every": 5000,
            "seed": 0,
        },
        "step": 10000,
        "segments": 2,
        "train_wall_s": 123.4,
        "starts": [0],
        "curve": [{"step": 5000, "return": 10.0, "normalized": 1.0, "phase": "medium"}],
        "phases": {
            "medium": {
                "step": 10000,
                "raw": 12.0,
                "normalized": 1.0,
                "policy": "policies/medium_step000010000.pt",
                "done": True,
                "started_at": 0,
            }
        },
    }
    if expert:
        save_policy(create_sac(TINY, obs_dim, act_dim, seed=1), wd / "policies" / "expert_step000020000.pt")
        state["phases"]["expert"] = {  # type: ignore[index]
            **state["phases"]["medium"],  # type: ignore[index]
            "step": 20000,
            "policy": "policies/expert_step000020000.pt",
        }
    (wd / "state.json").write_text(json.dumps(state))
    return wd


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "policies"
    monkeypatch.setenv("LAMO_BENCH_POLICIES", str(root))
    return root


@pytest.fixture
def shipped_hopper(tmp_path: Path, policies: Path) -> dict[str, Any]:
    wd = make_workdir(tmp_path / "build")
    # A random actor is far below the medium band: refused unless shipped knowingly, and flagged then.
    with pytest.raises(BenchError, match=r"outside its band \[36, 52\]; nothing written .*--allow-outside-band"):
        export_policy("hopper", "medium", workdir=wd, eval_episodes=4, workers=1)
    assert not policies.exists() or not list(policies.iterdir())
    _, card = export_policy("hopper", "medium", workdir=wd, eval_episodes=4, workers=1, allow_outside_band=True)
    assert card["evaluation"]["in_band"] is False
    return card


def test_exported_policy_loads_with_its_card(shipped_hopper: dict[str, Any], policies: Path) -> None:
    card = shipped_hopper
    weights_path, card_path = policy_files("hopper", "medium")
    assert weights_path.parent == policies and json.loads(card_path.read_text()) == card
    assert card["sha256"] == __import__("hashlib").sha256(weights_path.read_bytes()).hexdigest()
    assert (card["env_id"], card["phase"], card["obs_dim"], card["act_dim"]) == ("Hopper-v5", "medium", 11, 3)
    assert card["hidden_units"] == [32, 32] and card["training_steps"] == 10000 and card["seed"] == 0
    assert card["algorithm"].startswith("SAC (d3rlpy")
    assert card["selection"]["band_normalized"] == [36.0, 52.0] and card["d4rl_v2_reference_normalized"] == 44.3
    assert card["learning_curve"][0]["step"] == 5000 and card["train_wall_s"] == 123.4
    ev = card["evaluation"]
    assert ev["episodes"] == 4 and len(ev["episode_returns"]) == 4
    task = get_task("hopper-medium")
    assert ev["normalized_mean"] == pytest.approx(np.mean([task.normalize(r) for r in ev["episode_returns"]]), abs=1e-2)
    assert "--retrain" in card["train_command"] and card["export_command"].startswith("bench data ship-policy hopper")
    assert card["source_checkpoint"]["file"] == "policies/medium_step000010000.pt"
    # float32 weights, 32x32 here; the real 256x256 actor is ~300 KB.
    assert weights_path.stat().st_size < 20_000
    policy = load_shipped("hopper", "medium")
    assert policy.sha256 == card["sha256"] and (policy.actor.obs_dim, policy.actor.act_dim) == (11, 3)


def test_numpy_actor_matches_d3rlpy_policy_module() -> None:
    """The float64 numpy actor computes d3rlpy's NormalPolicy (independent re-statement of its forward)."""
    import torch

    from bench.data.build.policy import GaussianActor, create_sac, policy_module

    algo = create_sac(TINY, 11, 3, seed=1)
    module = policy_module(algo)
    weights = {k: v.numpy() for k, v in module.state_dict().items()}
    actor = NumpyGaussianActor(weights, module._min_logstd, module._max_logstd)
    obs = np.random.default_rng(0).standard_normal((20, 11)).astype(np.float32)
    eps = np.random.default_rng(1).standard_normal((20, 3))
    with torch.no_grad():
        expected = GaussianActor(algo).sample(obs, eps)
    np.testing.assert_allclose(actor.sample(obs, eps), expected, atol=1e-5)
    # A row's action does not depend on the batch around it.
    one_by_one = np.concatenate([actor.sample(obs[i : i + 1], eps[i : i + 1]) for i in range(20)])
    assert np.array_equal(one_by_one, actor.sample(obs, eps))


def test_rollout_build_is_deterministic_and_names_its_policy(shipped_hopper: dict[str, Any], data_root: Path) -> None:
    task = get_task("hopper-medium")
    first = build_dataset(task, seed=3, transitions=2000, progress=False, n_envs=4, workers=1)
    card_a = json.loads((first / "card.json").read_text())
    second = build_dataset(task, seed=3, transitions=2000, progress=False, n_envs=1, workers=1)
    card_b = json.loads((second / "card.json").read_text())
    assert card_a["content_hash"] == card_b["content_hash"]  # and the number of parallel envs does not matter
    assert card_a["transitions"] == 2000
    used = card_a["behaviour_policy"]["medium"]
    assert used["sha256"] == shipped_hopper["sha256"] and used["shipped_policy"].endswith("hopper-medium.safetensors")
    assert card_a["reference"]["d4rl_v2"]["medium_normalized_mean"] == 44.3
    assert "training_wall_time_s" not in card_a  # nothing was trained
    other = build_dataset(task, seed=4, transitions=2000, progress=False, workers=1)
    assert json.loads((other / "card.json").read_text())["content_hash"] != card_a["content_hash"]


@pytest.mark.slow
def test_worker_processes_do_not_change_the_data(shipped_hopper: dict[str, Any]) -> None:
    policy = load_shipped("hopper", "medium")
    runs = [
        rollout(HOPPER, policy, lambda i: 100 + i, transitions=3000, n_envs=n, workers=w)[0]
        for n, w in ((8, 1), (3, 2))
    ]
    for a, b in zip(*runs, strict=True):
        assert a.seed == b.seed and np.array_equal(a.observations, b.observations)
        assert np.array_equal(a.actions, b.actions) and np.array_equal(a.truncations, b.truncations)
    assert sum(len(e) for e in runs[0]) == 3000


def test_missing_and_corrupt_policies_are_refused(shipped_hopper: dict[str, Any], data_root: Path) -> None:
    weights_path, card_path = policy_files("hopper", "medium")
    good = weights_path.read_bytes()
    with pytest.raises(
        BenchError, match=r"no shipped expert policy for hopper: .*hopper-expert.safetensors is missing"
    ):
        build_dataset(get_task("hopper-medium-expert"), transitions=100, progress=False)
    # Edited weights: the hash no longer matches the card.
    weights_path.write_bytes(good[:-4] + b"\0\0\0\0")
    with pytest.raises(BenchError, match=r"has sha256 .* its card hopper-medium.json says .*git checkout"):
        load_shipped("hopper", "medium")
    # Bytes that are not a safetensors file, with a card that matches them: the parse is refused.
    bad = b"not a safetensors file"
    weights_path.write_bytes(bad)
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "sha256": __import__("hashlib").sha256(bad).hexdigest()}))
    with pytest.raises(BenchError, match=r"cannot read shipped policy .*hopper-medium.safetensors"):
        load_shipped("hopper", "medium")
    weights_path.unlink()
    with pytest.raises(BenchError, match=r"no shipped medium policy for hopper: .* ship-policy hopper --phase medium"):
        build_dataset(get_task("hopper-medium"), transitions=100, progress=False)
    # Training settings without --retrain, and medium-replay without a trained work dir: one line each.
    with pytest.raises(BenchError, match=r"settings sac_batch_size only apply when training .* add --retrain"):
        build_dataset(get_task("hopper-medium"), transitions=100, progress=False, sac_batch_size=32)
    with pytest.raises(BenchError, match=r"hopper-medium-replay .* `bench data build hopper-medium-replay --retrain`"):
        build_dataset(get_task("hopper-medium-replay"), progress=False)


def test_cli_prints_one_line_with_exit_code_2(tmp_path: Path) -> None:
    env = {**os.environ, "LAMO_BENCH_POLICIES": str(tmp_path / "none"), "LAMO_BENCH_DATA": str(tmp_path / "d")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "bench.cli", "data", "build", "hopper-medium", "--transitions", "100"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no shipped medium policy for hopper" in lines[0] and "Traceback" not in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "bench.cli", "data", "ship-policy", "hopper", "--workdir", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 2 and "no training state at" in out.stderr and "Traceback" not in out.stderr


def test_export_refuses_an_unfinished_phase(tmp_path: Path, policies: Path) -> None:
    wd = make_workdir(tmp_path / "build")
    state = json.loads((wd / "state.json").read_text())
    state["phases"]["medium"]["done"] = False
    (wd / "state.json").write_text(json.dumps(state))
    with pytest.raises(BenchError, match=r"no finished medium phase \(selected step 10000, phase still training"):
        export_policy("hopper", "medium", workdir=wd, eval_episodes=1, workers=1, allow_outside_band=True)
    with pytest.raises(BenchError, match=r"no finished expert phase"):
        export_policy("hopper", "expert", workdir=wd, eval_episodes=1, workers=1)
    assert not policies.exists() or not list(policies.iterdir())


COMMITTED = shipped_cards()


@pytest.mark.skipif(not COMMITTED, reason="no policies committed in datasets/policies/ yet")
@pytest.mark.parametrize("card_path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_policy_scores_in_its_band(card_path: Path) -> None:
    """Each committed policy loads (hash checked) and, on 5 of its evaluation episodes, scores in its band.

    The 100-episode mean on the card must be inside the band; 5 episodes are noisier, so their mean may be
    off by three standard errors of the card's own per-episode spread (a deterministic check: same seeds).
    """
    from bench.data.build.shipped import evaluate

    card = json.loads(card_path.read_text())
    policy = load_shipped(card["env"], card["phase"])
    task = get_task(f"{card['env']}-medium")
    lo, hi = card["selection"]["band_normalized"]
    assert card["evaluation"]["in_band"] and lo <= card["evaluation"]["normalized_mean"] <= hi
    result = evaluate(task, policy, card["evaluation"]["seed"], episodes=5)
    assert result["episode_returns"] == pytest.approx(card["evaluation"]["episode_returns"][:5], rel=1e-3)
    slack = 3 * card["evaluation"]["normalized_std"] / np.sqrt(5)
    assert lo - slack <= result["normalized_mean"] <= hi + slack


def test_medium_expert_rolls_out_both_shipped_policies(tmp_path: Path, policies: Path, data_root: Path) -> None:
    wd = make_workdir(tmp_path / "build", expert=True)
    for phase in ("medium", "expert"):
        export_policy("hopper", phase, workdir=wd, eval_episodes=2, workers=1, allow_outside_band=True)
    medium = build_dataset(get_task("hopper-medium"), transitions=600, progress=False, workers=1)
    mixed = build_dataset(get_task("hopper-medium-expert"), transitions=600, progress=False, workers=1)
    card = json.loads((mixed / "card.json").read_text())
    assert card["transitions"] == 1200 and set(card["behaviour_policy"]) == {"medium", "expert"}
    assert card["behaviour_policy"]["expert"]["training_steps"] == 20000
    from bench.data.loaders import load_minari_path

    medium_ds, mixed_ds = load_minari_path(medium), load_minari_path(mixed)
    first = mixed_ds.select_episodes(np.arange(medium_ds.num_episodes))
    assert first.content_hash() == medium_ds.content_hash()  # medium half = the medium dataset


def test_info_puts_the_mean_next_to_d4rl() -> None:
    from bench.data.info import d4rl_comparison, d4rl_line

    doc = d4rl_comparison(get_task("hopper-medium-expert"), 71.234)
    assert doc == {"normalized_mean": 71.23, "d4rl_v2_medium_normalized": 44.3, "d4rl_v2_expert_normalized": 108.0}
    assert d4rl_line(doc) == "normalized mean 71.2 (D4RL v2 medium 44.3, expert 108)"
    assert d4rl_comparison(get_task("reacher2d-medium"), 1.0) is None
