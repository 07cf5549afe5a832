"""SpilledStrings keeps a job item's file list on disk; its results line is the same text."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline._spill as spill
from output import ManifestWriter, read_manifest
from pipeline._job import ItemResult
from pipeline._spill import SpilledStrings, iter_json_list

texts = st.lists(st.text(max_size=40), max_size=60)


@given(texts, st.sampled_from([0, 3, 1000]))
def test_spilled_strings_read_back_what_was_appended(items: list[str], after: int) -> None:
    with mock.patch.object(spill, "SPILL_AFTER", after):
        spilled = SpilledStrings(items)
    try:
        assert spilled.spilled == (len(items) > after)
        assert len(spilled) == len(items)
        assert list(spilled) == items and spilled == items
        assert "".join(iter_json_list(spilled)) == json.dumps(items, ensure_ascii=False)
        if items:
            assert spilled[-1] == items[-1]
        spilled.append("one more")
        assert list(spilled) == [*items, "one more"]  # reading never moved the end
    finally:
        spilled.close()


@given(texts, st.text(max_size=30), st.dictionaries(st.text(max_size=8), st.text(max_size=8)))
def test_a_results_line_in_pieces_is_the_whole_line(
    files: list[str], error: str, source: dict[str, str]
) -> None:
    with mock.patch.object(spill, "SPILL_AFTER", 2):
        on_disk = SpilledStrings(files)
    for audio_files in (files, SpilledStrings(files), on_disk):
        result = ItemResult(item="item_0001", kind="narrate", status="failed",
                            audio_files=audio_files, errors=[error], source=source,
                            duration_s=1.5)  # fmt: skip
        whole = json.dumps(result.to_record(), ensure_ascii=False, allow_nan=False)
        assert "".join(result.iter_json()) == whole
        assert result.to_record()["audio_files"] == files


def test_a_long_line_goes_out_in_blocks_and_a_failing_one_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ManifestWriter(path)
    files = SpilledStrings(f"item_0001/chapter_{n:02d}/segment_{n:04d}.wav" for n in range(9000))
    assert files.spilled
    writer.append_pieces(ItemResult(item="a", kind="narrate", status="completed",
                                    audio_files=files).iter_json())  # fmt: skip

    def broken() -> object:
        yield '{"item": "b", '
        raise OSError(28, "No space left on device")

    with pytest.raises(Exception, match="No space left"):
        writer.append_pieces(broken())  # type: ignore[arg-type]
    writer.close()
    (line,) = read_manifest(path)
    assert line["audio_files"] == list(files) and len(line["audio_files"]) == 9000
