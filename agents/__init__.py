"""Agents behind one interface: LaMo, Decision Transformer, CQL, BC (and d3rlpy's IQL, TD3+BC)."""
