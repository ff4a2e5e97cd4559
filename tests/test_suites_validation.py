"""Suite and profile TOML files: every key validated, one line naming the file, the key and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.suites import CellOverride, load_profiles, load_suite, parse_profiles
from bench.tasks import get_task

SUITE = 'agents = ["dt"]\ntasks = ["reacher2d-medium"]\nseeds = [0]\n'
PROFILE = "[p]\neval_every = 10\neval_episodes = 2\n"


def _suite(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return str(path)


def test_a_valid_user_suite_with_every_key(tmp_path: Path) -> None:
    suite = load_suite(
        _suite(
            tmp_path,
            SUITE + 'description = "x"\nratios = [0.5]\ndefault_profile = "quick"\n'
            'task_ratios = { "reacher2d-medium" = "paper" }\n'
            '[[cell_overrides]]\nagent = "dt"\ntask = "reacher2d-medium"\n'
            "set = { batch_size = 8, learning_rate = 1 }\n",
        )
    )
    assert suite.ratios == {"reacher2d-medium": get_task("reacher2d-medium").sample_ratios}  # task_ratios wins
    assert suite.default_profile == "quick"
    assert suite.cell_overrides == (
        CellOverride("dt", "reacher2d-medium", None, {"batch_size": 8, "learning_rate": 1.0}),
    )


@pytest.mark.parametrize(
    ("extra_or_text", "needles"),
    [
        (SUITE.replace('["dt"]', '"dt"'), ["agents = 'dt' is not accepted", "list of strings"]),
        (SUITE.replace('["dt"]', '["dtt"]'), ["agents: unknown agent 'dtt'", "known agents"]),
        (SUITE.replace('["reacher2d-medium"]', '["hoper"]'), ["tasks: unknown task 'hoper'"]),
        (SUITE.replace("[0]", "[-1]"), ["seeds = [-1] is not accepted", "integers >= 0"]),
        (SUITE.replace("[0]", '["0"]'), ["seeds = ['0'] is not accepted"]),
        (SUITE + "ratios = [2.0]\n", ["ratios = 2.0 is not accepted", "(0, 1]"]),
        (SUITE + 'ratios = "all"\n', ["ratios = 'all' is not accepted", '"paper" or a non-empty list']),
        (SUITE + "seed = [1]\n", ["unknown key(s) seed", "accepted: description, agents"]),
        (SUITE + 'default_profile = "fast"\n', ["default_profile = 'fast' is not accepted", "paper, quick, smoke"]),
        (SUITE + "task_ratios = { hopper-medium = [0.1] }\n", ["task_ratios names hopper-medium, not in tasks"]),
        ('agents = ["dt"]\ntasks = ["reacher2d-medium"]\n', ["lacks seeds"]),
        (
            SUITE + '[[cell_overrides]]\nagent = "dt"\ntask = "reacher2d-medium"\nset = { batch_size = "8" }\n',
            ["cell_overrides[0]", "batch_size = '8' has the wrong type; expected an integer"],
        ),
        (
            SUITE + '[[cell_overrides]]\nagent = "dt"\ntask = "reacher2d-medium"\nratio = 0\nset = {}\n',
            ["cell_overrides[0].ratio = 0 is not accepted"],
        ),
        (
            SUITE + '[[cell_overrides]]\nagent = "dt"\ntask = "reacher2d-medium"\nset = { lm_source = "gpt2" }\n',
            ["unknown DTConfig field(s) lm_source"],
        ),
        (SUITE + '[[cell_overrides]]\nagent = "dt"\nset = {}\n', ["[cell_overrides[0]] lacks task"]),
        (SUITE + 'cell_overrides = "lamo"\n', ["cell_overrides = 'lamo' is not accepted", "array of tables"]),
    ],
)
def test_bad_suite_files_are_one_line_errors(tmp_path: Path, extra_or_text: str, needles: list[str]) -> None:
    path = _suite(tmp_path, extra_or_text)
    with pytest.raises(BenchError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(path), message
    for needle in needles:
        assert needle in message, message


def test_a_folder_or_a_binary_file_is_not_a_suite(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="is a folder; expected a suite .toml file"):
        load_suite(str(tmp_path))
    (tmp_path / "x.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BenchError, match="is not a text file"):
        load_suite(str(tmp_path / "x.toml"))


def test_packaged_profiles_are_typed() -> None:
    smoke = load_profiles()["smoke"]
    assert smoke.agent_overrides["cql"]["hidden_units"] == (64, 64)  # TOML list -> the config's tuple
    assert smoke.cell_overrides == ()


def test_profile_cell_overrides_key(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        PROFILE + '[[p.cell_overrides]]\nagent = "lamo"\ntask = "kitchen-complete"\nratio = 0.3\n'
        'set = { lm_source = "gpt2-medium" }\n'
    )
    (cell,) = parse_profiles(path)["p"].cell_overrides
    assert cell == CellOverride("lamo", "kitchen-complete", 0.3, {"lm_source": "gpt2-medium"})


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ('steps = "many"\n', ["p.steps = 'many' is not accepted", "integer >= 1"]),
        ("evaluate_every = 3\n", ["unknown key(s) evaluate_every in [p]", "accepted: description, steps"]),
        ("[p.agents.dt]\nbatch_size = 2.5\n", ["[p.agents.dt] DTConfig.batch_size = 2.5 has the wrong type"]),
        ("[p.agents.dt]\nbatchsize = 8\n", ["[p.agents.dt] unknown DTConfig field(s) batchsize"]),
        ("[p.agents.cql]\nhidden_units = 64\n", ["hidden_units = 64 has the wrong type; expected a list of integers"]),
        ("[p.agents.lamo]\nlm_layers = 0\n", ["[p.agents.lamo]", "lm_layers"]),  # a range check of the config
        ("[p.agents.dqn]\nbatch_size = 8\n", ["p.agents.dqn: unknown agent 'dqn'"]),
        ("max_ratios = 0\n", ["p.max_ratios = 0 is not accepted; expected an integer >= 1"]),
        ('max_seeds = "two"\n', ["p.max_seeds = 'two' is not accepted; expected an integer >= 1"]),
        ("max_seeds = true\n", ["p.max_seeds = True is not accepted; expected an integer >= 1"]),
        (
            '[[p.cell_overrides]]\nagent = "lamo"\ntask = "kitchen"\nset = {}\n',
            ["p.cell_overrides[0].task: unknown task 'kitchen'"],
        ),
    ],
)
def test_bad_profiles_are_one_line_errors(tmp_path: Path, extra: str, needles: list[str]) -> None:
    path = tmp_path / "profiles.toml"
    text = (
        PROFILE.replace("eval_episodes = 2\n", "eval_episodes = 2\n" + extra)
        if not extra.startswith("[")
        else PROFILE + extra
    )
    path.write_text(text)
    with pytest.raises(BenchError) as info:
        parse_profiles(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for needle in needles:
        assert needle in message, message
    path.write_text("[p]\neval_every = 0\neval_episodes = 2\n")
    with pytest.raises(BenchError, match="p.eval_every = 0 is not accepted; expected an integer >= 1"):
        parse_profiles(path)


def test_profile_thins_the_grid_and_says_so(tmp_path: Path) -> None:
    """max_ratios keeps each task's lowest ratios, max_seeds the first seeds; both are run-level deviations."""
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILE + "max_ratios = 2\nmax_seeds = 1\n")
    profile = parse_profiles(path)["p"]
    assert (profile.max_ratios, profile.max_seeds) == (2, 1)
    assert profile.pick_ratios((1.0, 0.005, 0.1, 0.01)) == (0.005, 0.01)
    assert profile.pick_ratios((0.3,)) == (0.3,)
    assert profile.pick_seeds((4, 0, 1)) == (4,)
    deviations = profile.deviations()
    assert "at most 2 sample ratio(s) per task, the suite's lowest, instead of every ratio" in " | ".join(deviations)
    assert "at most 1 seed(s) per cell instead of the paper's 3" in deviations
    path.write_text(PROFILE)
    plain = parse_profiles(path)["p"]
    assert plain.pick_ratios((1.0, 0.1)) == (1.0, 0.1) and plain.pick_seeds((0, 1, 2)) == (0, 1, 2)
    assert not any("sample ratio" in d or "seed(s)" in d for d in plain.deviations())
