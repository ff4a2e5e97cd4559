"""The one atomic writer: shared file mode, no torn target, no temporary file left after a failure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.atomic import FILE_MODE, atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_parquet


def test_every_writer_gives_the_same_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_json(tmp_path / "sub" / "b.json", {"k": 1})
    atomic_write_parquet(tmp_path / "c.parquet", pd.DataFrame({"v": [1, 2]}))
    atomic_write(tmp_path / "d.txt", lambda tmp: tmp.write_text("d"))
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert [p.name for p in written] == ["a.bin", "c.parquet", "d.txt", "b.json"]
    assert {p.stat().st_mode & 0o777 for p in written} == {FILE_MODE}
    assert pd.read_parquet(tmp_path / "c.parquet")["v"].tolist() == [1, 2]


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write_json(target, {"step": 1})

    def torn(tmp: Path) -> None:
        tmp.write_text('{"step": ')
        raise KeyboardInterrupt  # a kill in the middle of the write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, torn)
    assert target.read_text() == '{\n  "step": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
