"""How methods are named, ordered and coloured in every table and figure of a report.

One place decides this so that LaMo is the same colour in the ratio plot, the learning curves and the
rliable plots, and so that table columns follow the paper's order (LaMo, DT, then the value-based and
imitation baselines). Ablation variants sit right after their base agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# The paper's column order; anything else (new agents) goes after these, alphabetically.
BASE_ORDER: tuple[str, ...] = ("lamo", "dt", "cql", "iql", "td3+bc", "bc")

DISPLAY_NAMES: dict[str, str] = {
    "lamo": "LaMo",
    "dt": "DT",
    "cql": "CQL",
    "iql": "IQL",
    "td3+bc": "TD3+BC",
    "bc": "BC",
}

# Colour-blind-friendly (Okabe-Ito based); fixed per base method so reports stay comparable.
FIXED_COLORS: dict[str, str] = {
    "lamo": "#D55E00",
    "dt": "#0072B2",
    "cql": "#009E73",
    "iql": "#CC79A7",
    "td3+bc": "#E69F00",
    "bc": "#555555",
}
# Ablations and unknown methods take these in sorted-name order.
EXTRA_COLORS: tuple[str, ...] = (
    "#56B4E9",
    "#F0E442",
    "#882255",
    "#44AA99",
    "#AA4499",
    "#117733",
    "#999933",
    "#332288",
    "#88CCEE",
    "#661100",
)

REWARD_ORDER: tuple[str, ...] = ("sparse", "dense")

FONT_SIZES: dict[str, float] = {"title": 12.0, "label": 11.0, "tick": 9.5, "legend": 9.5}


def display_name(variant: str) -> str:
    """Paper spelling for the base agents; ablation variants keep their registry name."""
    return DISPLAY_NAMES.get(variant, variant)


def _base_of(variant: str, agents: Mapping[str, str]) -> str:
    agent = agents.get(variant, variant)
    if agent in BASE_ORDER:
        return agent
    for base in BASE_ORDER:
        if variant.startswith(base + "-"):
            return base
    return agent


def method_order(variants: Iterable[str], agents: Mapping[str, str] | None = None) -> list[str]:
    """Order variants as the paper's columns, each ablation right after its base agent."""
    agents = agents or {}

    def key(v: str) -> tuple[int, str, int, str]:
        base = _base_of(v, agents)
        rank = BASE_ORDER.index(base) if base in BASE_ORDER else len(BASE_ORDER)
        return (rank, base, 0 if v == base else 1, v)

    return sorted(set(variants), key=key)


def method_colors(variants: Iterable[str]) -> dict[str, str]:
    """A colour per variant: fixed for base agents, the rest assigned in sorted order without repeats."""
    colors: dict[str, str] = {}
    extra = 0
    for v in sorted(set(variants)):
        if v in FIXED_COLORS:
            colors[v] = FIXED_COLORS[v]
        else:
            colors[v] = EXTRA_COLORS[extra % len(EXTRA_COLORS)]
            extra += 1
    return colors


def reward_order(reward_types: Iterable[str]) -> list[str]:
    """Sparse before dense (the paper's Table 1 before Tables 2-3); unknown labels after, sorted."""
    present = set(reward_types)
    known = [r for r in REWARD_ORDER if r in present]
    return known + sorted(present - set(REWARD_ORDER))


def format_ratio(ratio: float) -> str:
    return f"{ratio:g}"
