"""lamo-bench: benchmark harness for LaMo vs Decision Transformer, CQL and BC on offline RL tasks."""

__version__ = "0.1.0"
