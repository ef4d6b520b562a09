"""Each way of tampering with an exported file is caught (exit 1) with a message naming what
changed and where; untouched exports verify (exit 0). Runs the command line."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from transparency_log.__main__ import main
from transparency_log.canonical import canonical_bytes
from transparency_log.note import Signer, generate_signer

from .conftest import LOG_NAME
from .exports import originator, sample_events, signed_checkpoint, write_full_export, write_request_trail

EVENTS = 40


@pytest.fixture
def export(tmp_path, signer):
    """A full export of EVENTS events (event i: position 10 + 3i, request i % 8, version i // 8 + 1)."""
    path = tmp_path / "audit.jsonl"
    write_full_export(path, signer, sample_events(EVENTS))
    return path


@pytest.fixture
def trail(tmp_path, signer):
    """The request export of request 2 (leaves 2, 10, 18, 26, 34) of the EVENTS-event log."""
    path = tmp_path / "trail.jsonl"
    write_request_trail(path, signer, sample_events(EVENTS), request=2)
    return path


def _verify(capsys, path, signer, since=None) -> tuple[int, str, str]:
    argv = ["verify", str(path), "--key", signer.verifier_key]
    if since is not None:
        argv += ["--since", str(since)]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _broken(capsys, path, signer, since=None) -> str:
    code, out, err = _verify(capsys, path, signer, since)
    assert (code, out) == (1, ""), err
    assert err.startswith("broken: ") and err.endswith("\n")
    return err[len("broken: ") : -1]


def _lines(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _write_lines(path, lines) -> None:
    path.write_bytes(b"".join(lines))


def _without_hashes(path):
    os.remove(f"{path}.hashes")
    return path


def _flip_byte_in_actor(path, number: int) -> None:
    """Flips the lowest bit of the first letter of line ``number``'s actor ('u' becomes 't')."""
    data = bytearray(path.read_bytes())
    line_start = sum(len(line) for line in _lines(path)[: number - 1])
    offset = data.index(b'"actor":"', line_start) + len(b'"actor":"')
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_untouched_full_export_verifies(capsys, export, signer):
    code, out, err = _verify(capsys, export, signer)
    assert (code, err) == (0, "")
    assert out.startswith(f"intact: {EVENTS} events, tree size {EVENTS}, root ")


def test_untouched_request_export_verifies(capsys, trail, signer):
    code, out, err = _verify(capsys, trail, signer)
    assert (code, err) == (0, "")
    assert out.startswith(f"intact: 5 events, tree size {EVENTS}, root ")


def test_untouched_empty_log_verifies(capsys, tmp_path, signer):
    path = tmp_path / "empty.jsonl"
    write_full_export(path, signer, [])
    empty_root = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    assert _verify(capsys, path, signer) == (0, f"intact: 0 events, tree size 0, root {empty_root}\n", "")


def test_untouched_export_verifies_since_an_older_checkpoint(capsys, tmp_path, export, signer):
    write_full_export(tmp_path / "old.jsonl", signer, sample_events(EVENTS)[:25])
    code, out, err = _verify(capsys, export, signer, since=tmp_path / "old.jsonl.checkpoint")
    assert (code, err) == (0, "")
    assert out.endswith("\nthe log grew from 25 to 40 events\n")


def test_flipped_byte_names_its_line(capsys, export, signer):
    _flip_byte_in_actor(export, 17)
    assert _broken(capsys, export, signer) == (
        "line 17 (position 58): its content differs from the event the checkpoint covers "
        "(leaf hash differs from the export's .hashes)"
    )


def test_flipped_byte_without_hashes_breaks_the_root(capsys, export, signer):
    _flip_byte_in_actor(_without_hashes(export), 17)
    reason = _broken(capsys, export, signer)
    assert reason.startswith("the checkpoint's root does not match the lines")


def test_flipped_byte_with_a_forged_hashes_list_breaks_the_root(capsys, export, signer):
    """An attacker who also rewrites .hashes only gets the root mismatch: .hashes is not trusted."""
    _flip_byte_in_actor(export, 17)
    lines = _lines(export)
    hashes = _lines(export.with_name("audit.jsonl.hashes"))
    from transparency_log.merkle import leaf_hash

    hashes[16] = base64.b64encode(leaf_hash(lines[16][:-1])) + b"\n"
    _write_lines(export.with_name("audit.jsonl.hashes"), hashes)
    reason = _broken(capsys, export, signer)
    assert reason.startswith("the checkpoint's root does not match the lines (the .hashes file does not hash")


def test_deleted_event_names_where_it_was(capsys, export, signer):
    lines = _lines(export)
    del lines[12]
    _write_lines(export, lines)
    assert _broken(capsys, export, signer) == (
        "line 13 (position 49): the event the checkpoint covers before this one is missing: an event was deleted"
    )


def test_deleted_event_without_hashes_is_a_missing_version(capsys, export, signer):
    lines = _lines(export)
    del lines[12]  # request 4, version 2
    _write_lines(_without_hashes(export), lines)
    assert _broken(capsys, export, signer) == (
        f"line 20 (position 70): AccessRequest {originator(4)}: version 3 follows version 1: an event is missing"
    )


def test_deleted_last_event_is_a_truncation(capsys, export, signer):
    _write_lines(_without_hashes(export), _lines(export)[:-1])
    assert _broken(capsys, export, signer) == (
        f"the file holds {EVENTS - 1} events; the checkpoint covers {EVENTS}: the file was truncated"
    )


def test_swapped_events_are_named(capsys, export, signer):
    lines = _lines(export)
    lines[20], lines[21] = lines[21], lines[20]
    _write_lines(export, lines)
    assert _broken(capsys, export, signer) == "line 21 (position 73): swapped with line 22: events reordered"


def test_swapped_events_without_hashes_are_reordered_positions(capsys, export, signer):
    lines = _lines(export)
    lines[20], lines[21] = lines[21], lines[20]
    _write_lines(_without_hashes(export), lines)
    assert _broken(capsys, export, signer) == (
        "line 22 (position 70): positions go back (line 21 had position 73): events reordered"
    )


def test_duplicated_event_is_named(capsys, export, signer):
    lines = _lines(export)
    lines.insert(9, lines[8])
    _write_lines(export, lines)
    assert _broken(capsys, export, signer) == (
        "line 10 (position 34): position 34 appears twice (line 9 too): an event is duplicated"
    )


def _forged_event(position: int) -> bytes:
    forged = {
        **sample_events(1)[0],
        "position": position,
        "originator_id": originator(99),
        "actor": "mallory@example.com",
    }
    return canonical_bytes(forged) + b"\n"


def test_forged_event_with_a_fresh_position_is_named(capsys, export, signer):
    lines = _lines(export)
    lines.insert(30, _forged_event(10 + 3 * 29 + 1))
    _write_lines(export, lines)
    assert _broken(capsys, export, signer) == (
        "line 31 (position 98): the checkpoint does not cover this event: an event was inserted"
    )


def test_forged_event_with_a_fresh_position_without_hashes_is_an_extra_event(capsys, export, signer):
    lines = _lines(export)
    lines.insert(30, _forged_event(10 + 3 * 29 + 1))
    _write_lines(_without_hashes(export), lines)
    assert _broken(capsys, export, signer) == (
        f"the file holds {EVENTS + 1} events; the checkpoint covers {EVENTS}: events were added"
    )


def test_forged_event_appended_is_named(capsys, export, signer):
    _write_lines(export, _lines(export) + [_forged_event(1000)])
    assert _broken(capsys, export, signer) == (
        f"line {EVENTS + 1} (position 1000): the checkpoint covers {EVENTS} events, not this one: an event was added"
    )


def test_truncated_file_is_named(capsys, export, signer):
    _write_lines(export, _lines(export)[:33])
    assert _broken(capsys, export, signer) == (
        f"the file holds 33 events; the checkpoint covers {EVENTS}: the file was truncated"
    )


def test_file_cut_inside_a_line_is_named(capsys, export, signer):
    data = export.read_bytes()
    export.write_bytes(data[: len(b"".join(_lines(export)[:33])) + 50])
    assert _broken(capsys, export, signer) == "line 34: the line does not end with a newline: the file was cut off"


def test_truncated_log_with_its_own_checkpoint_shrank_since_an_older_checkpoint(capsys, tmp_path, export, signer):
    """The log (or whoever holds its key) re-exports only the first 30 events: the export is
    self-consistent, but the auditor's older checkpoint covers 40."""
    older = tmp_path / "older.checkpoint"
    older.write_text(export.with_name("audit.jsonl.checkpoint").read_text())
    write_full_export(export, signer, sample_events(EVENTS)[:30])
    assert _verify(capsys, export, signer)[0] == 0
    assert _broken(capsys, export, signer, since=older) == (
        f"--since: the older checkpoint covers {EVENTS} events, this export 30: the log shrank"
    )


def test_checkpoint_signed_by_another_key_is_refused(capsys, export, signer):
    impostor = Signer.from_text(generate_signer(LOG_NAME))
    export.with_name("audit.jsonl.checkpoint").write_text(signed_checkpoint(impostor, sample_events(EVENTS)))
    reason = _broken(capsys, export, signer)
    assert reason == f"checkpoint: not signed by key {signer.verifier}: signed only by {impostor.verifier}"


def test_checkpoint_with_an_edited_size_is_refused(capsys, export, signer):
    path = export.with_name("audit.jsonl.checkpoint")
    path.write_text(path.read_text().replace(f"\n{EVENTS}\n", f"\n{EVENTS - 1}\n"))
    assert _broken(capsys, export, signer) == f"checkpoint: signature by {signer.verifier} does not match the text"


def test_rewritten_history_fails_against_an_older_checkpoint(capsys, tmp_path, export, signer):
    """Same key, but the first events differ from those the older checkpoint covers."""
    write_full_export(tmp_path / "first.jsonl", signer, sample_events(20))
    write_full_export(export, signer, sample_events(EVENTS, tag=" (rewritten)"))
    assert _verify(capsys, export, signer)[0] == 0
    assert _broken(capsys, export, signer, since=tmp_path / "first.jsonl.checkpoint") == (
        "--since: the first 20 events do not hash to the older checkpoint's root: history was rewritten"
    )


def test_request_export_with_an_altered_proof_hash_is_named(capsys, trail, signer):
    lines = _lines(trail)
    line = json.loads(lines[2])
    hashes = line["inclusion_proof"]["hashes"]
    hashes[1] = base64.b64encode(bytes(32)).decode()
    lines[2] = canonical_bytes(line) + b"\n"
    _write_lines(trail, lines)
    reason = _broken(capsys, trail, signer)
    assert reason.startswith("line 3 (position 64): the inclusion proof does not lead to the checkpoint's root")


def test_request_export_with_an_altered_event_is_named(capsys, trail, signer):
    lines = _lines(trail)
    line = json.loads(lines[1])
    line["actor"] = "mallory@example.com"
    lines[1] = canonical_bytes(line) + b"\n"
    _write_lines(trail, lines)
    reason = _broken(capsys, trail, signer)
    assert reason.startswith("line 2 (position 40): the inclusion proof does not lead to the checkpoint's root")


def test_request_export_with_a_dropped_line_still_verifies(capsys, trail, signer):
    """A trail is a subset of the log: each line proves its own inclusion, but a dropped line
    cannot be told from the trail alone (the full export shows every event)."""
    lines = _lines(trail)
    del lines[1]
    _write_lines(trail, lines)
    assert _verify(capsys, trail, signer)[0] == 0


def test_request_export_with_rewritten_history_fails_since_an_older_checkpoint(capsys, tmp_path, signer):
    events = sample_events(EVENTS)
    older = tmp_path / "older.checkpoint"
    older.write_text(signed_checkpoint(signer, sample_events(20, tag=" (original)")))
    path = tmp_path / "trail.jsonl"
    write_request_trail(path, signer, events, request=2, since_size=20)
    assert _broken(capsys, path, signer, since=older) == (
        f"--since: {path}.consistency starts from another root than the older checkpoint's: history was rewritten"
    )
