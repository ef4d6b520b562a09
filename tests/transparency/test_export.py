"""The export files as written, and the verifier's verdict on each kind of malformed line."""

from __future__ import annotations

import base64
import json
import os

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log import export as export_module
from transparency_log.__main__ import main
from transparency_log.canonical import canonical_bytes
from transparency_log.checkpoint import read_checkpoint
from transparency_log.export import (
    ConsistencyProof,
    ExportWriter,
    InclusionProof,
    UsageError,
    _LineProblem,
    _read_line,
    prepare_lines,
    verify_export,
    write_request_export,
)
from transparency_log.merkle import EMPTY_ROOT, inclusion_proof, root

from .test_canonical import PARSED_VALUES
from .exports import leaf_hashes, sample_events, signed_checkpoint, write_full_export, write_request_trail


@pytest.fixture
def export(tmp_path, signer):
    """A full export of 24 events."""
    path = tmp_path / "audit.jsonl"
    write_full_export(path, signer, sample_events(24))
    return path


def _lines(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _rewrite_line(path, number: int, change) -> None:
    """Replaces line ``number`` (from 1) with ``change(event)``, written canonically."""
    lines = _lines(path)
    lines[number - 1] = canonical_bytes(change(json.loads(lines[number - 1]))) + b"\n"
    path.write_bytes(b"".join(lines))


def _reason(path, signer, since=None) -> str:
    report = verify_export(path, signer.verifier_key, since)
    assert not report.intact and report.exit_code == 1
    return report.reason


def test_a_full_export_is_canonical_lines_with_their_hashes_and_a_signed_checkpoint(tmp_path, signer):
    events = sample_events(10)
    path = tmp_path / "audit.jsonl"
    checkpoint = write_full_export(path, signer, events)
    assert path.read_bytes() == b"".join(canonical_bytes(event) + b"\n" for event in events)
    hashes = leaf_hashes(events)
    assert (tmp_path / "audit.jsonl.hashes").read_text() == "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
    note = (tmp_path / "audit.jsonl.checkpoint").read_text()
    assert read_checkpoint(note, signer.verifier) == checkpoint
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (signer.name, 10, root(hashes))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "audit.jsonl.checkpoint", "audit.jsonl.hashes"]


def test_an_intact_full_export_verifies(export, signer):
    report = verify_export(export, signer.verifier_key)
    assert report.intact and report.exit_code == 0 and report.events == 24
    assert str(report) == f"intact: 24 events, tree size 24, root {base64.b64encode(report.checkpoint.root).decode()}"


def test_an_empty_log_exports_and_verifies(tmp_path, signer):
    path = tmp_path / "empty.jsonl"
    checkpoint = write_full_export(path, signer, [])
    assert path.read_bytes() == b"" and checkpoint.size == 0 and checkpoint.root == EMPTY_ROOT
    assert verify_export(path, signer.verifier_key).intact


def test_nothing_is_in_place_until_finish(tmp_path, signer):
    path = tmp_path / "audit.jsonl"
    writer = ExportWriter(path, signer)
    writer.write(sample_events(1)[0])
    assert not path.exists() and not (tmp_path / "audit.jsonl.checkpoint").exists()
    writer.finish()
    assert verify_export(path, signer.verifier_key).intact


def test_a_failed_export_leaves_no_file_and_keeps_the_earlier_export(export, signer):
    before = {p.name: p.read_bytes() for p in export.parent.iterdir()}
    with pytest.raises(RuntimeError), ExportWriter(export, signer) as writer:
        writer.write(sample_events(1)[0])
        raise RuntimeError("crash")
    assert {p.name: p.read_bytes() for p in export.parent.iterdir()} == before
    assert verify_export(export, signer.verifier_key).intact


def test_the_origin_must_be_the_key_name(tmp_path, signer):
    with pytest.raises(ValueError, match="key name"):
        ExportWriter(tmp_path / "x.jsonl", signer, origin="another/log")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: {k: v for k, v in e.items() if k != "version"}, 'missing field "version"'),
        (lambda e: {**e, "extra": 1}, 'unexpected field "extra"'),
        (lambda e: {**e, "version": "2"}, 'field "version" must be an integer of at least 1, not a string'),
        (lambda e: {**e, "version": 2}, "its first event has version 2, not 1: an event is missing"),
        (lambda e: {**e, "position": True}, 'field "position" must be a non-negative integer, not a boolean'),
        (lambda e: {**e, "actor": 7}, 'field "actor" must be a string or null, not 7'),
        (lambda e: {**e, "data": []}, 'field "data" must be an object, not a list'),
        (lambda e: {**e, "data": {"ratio": float("nan")}}, "no RFC 8785 form"),
    ],
)
def test_the_writer_refuses_events_the_verifier_would_reject(tmp_path, signer, change, message):
    with ExportWriter(tmp_path / "x.jsonl", signer) as writer:
        with pytest.raises(ValueError, match=message):
            writer.write(change(sample_events(1)[0]))
        writer.write(sample_events(1)[0])
        assert writer.finish().size == 1


def test_the_writer_refuses_events_out_of_order(tmp_path, signer):
    first, second, *_ = sample_events(9)
    with ExportWriter(tmp_path / "x.jsonl", signer) as writer:
        writer.write(second)
        with pytest.raises(ValueError, match="positions go back"):
            writer.write(first)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"position":42,"type":\n', "line 5 (position 42): not valid JSON"),
        (b"\xff\xfe\n", "line 5: not valid UTF-8"),
        (b"[1,2]\n", "line 5: not a JSON object"),
        (b"NaN\n", "line 5: not valid JSON"),
    ],
)
def test_unreadable_lines_are_named(export, signer, raw, message):
    lines = _lines(export)
    lines[4] = raw
    export.write_bytes(b"".join(lines))
    assert _reason(export, signer) == message


def test_a_line_not_in_canonical_form_is_named(export, signer):
    lines = _lines(export)
    lines[4] = json.dumps(json.loads(lines[4]), indent=1).replace("\n", "").encode() + b"\n"
    export.write_bytes(b"".join(lines))
    assert _reason(export, signer) == "line 5 (position 22): not in canonical form (RFC 8785)"


def test_a_missing_field_is_named(export, signer):
    _rewrite_line(export, 3, lambda e: {k: v for k, v in e.items() if k != "version"})
    assert _reason(export, signer) == 'line 3 (position 16): missing field "version"'


def test_a_wrong_type_is_named(export, signer):
    _rewrite_line(export, 3, lambda e: {**e, "timestamp": 1716})
    assert _reason(export, signer) == 'line 3 (position 16): field "timestamp" must be a string, not 1716'


def test_a_version_gap_is_named(export, signer):
    _rewrite_line(export, 17, lambda e: {**e, "version": 4})
    assert _reason(export, signer) == (
        "line 17 (position 58): AccessRequest 6f1c2d3e-4b5a-4c6d-8e9f-000000000000: "
        "version 4 follows version 2: an event is missing"
    )


def test_a_repeated_version_is_named(export, signer):
    _rewrite_line(export, 17, lambda e: {**e, "version": 2})
    assert _reason(export, signer).endswith("version 2 appears twice (line 9 too)")


def test_a_last_line_without_newline_is_a_cut(export, signer):
    export.write_bytes(export.read_bytes()[:-1])
    assert (
        _reason(export, signer) == "line 24 (position 79): the line does not end with a newline: the file was cut off"
    )


def test_a_request_line_in_a_full_export_is_named(tmp_path, export, signer):
    events = sample_events(24)
    write_request_trail(tmp_path / "trail.jsonl", signer, events, request=0)
    lines = _lines(export)
    lines[5] = _lines(tmp_path / "trail.jsonl")[1]
    export.write_bytes(b"".join(lines))
    assert "line 6 (position 34): it has an inclusion proof but line 1 has none" in _reason(export, signer)


def test_a_full_line_in_a_request_export_is_named(tmp_path, export, signer):
    path = tmp_path / "trail.jsonl"
    write_request_trail(path, signer, sample_events(24), request=0)
    lines = _lines(path)
    lines[1] = _lines(export)[8]
    path.write_bytes(b"".join(lines))
    assert _reason(path, signer).startswith("line 2 (position 34): it has no inclusion proof but line 1 has one")


def test_a_request_export_verifies_and_holds_the_full_export_lines(tmp_path, export, signer):
    path = tmp_path / "trail.jsonl"
    assert write_request_trail(path, signer, sample_events(24), request=3) == 3
    full_lines = _lines(export)
    for number, line in enumerate(_lines(path)):
        obj = json.loads(line)
        proof = obj.pop("inclusion_proof")
        assert proof["tree_size"] == 24 and proof["leaf_index"] == 3 + 8 * number
        assert canonical_bytes(obj) + b"\n" == full_lines[proof["leaf_index"]]
    report = verify_export(path, signer.verifier_key)
    assert report.intact and report.events == 3 and report.checkpoint.size == 24


def test_a_request_export_proof_for_another_tree_size_is_named(tmp_path, signer):
    events = sample_events(24)
    path = tmp_path / "trail.jsonl"
    write_request_trail(path, signer, events, request=3)
    (tmp_path / "trail.jsonl.checkpoint").write_text(signed_checkpoint(signer, events[:20]))
    assert _reason(path, signer) == (
        "line 1 (position 19): the inclusion proof is for a tree of 24 events; the checkpoint covers 20"
    )


def test_write_request_export_refuses_a_proof_that_does_not_lead_to_the_checkpoint(tmp_path, signer):
    events = sample_events(8)
    hashes = leaf_hashes(events)
    wrong = InclusionProof(2, 8, tuple(inclusion_proof(hashes, 3)))
    with pytest.raises(ValueError, match="another root"):
        write_request_export(tmp_path / "t.jsonl", [(events[2], wrong)], signed_checkpoint(signer, events))
    assert list(tmp_path.iterdir()) == []
    bad_consistency = ConsistencyProof(4, root(hashes[:3]), 8, ())
    with pytest.raises(ValueError):
        write_request_export(tmp_path / "t.jsonl", [], signed_checkpoint(signer, events), bad_consistency)


def test_since_reports_how_the_log_grew(tmp_path, signer):
    events = sample_events(30)
    old = tmp_path / "old.jsonl"
    write_full_export(old, signer, events[:13])
    new = tmp_path / "new.jsonl"
    write_full_export(new, signer, events)
    report = verify_export(new, signer.verifier_key, (tmp_path / "old.jsonl.checkpoint").read_text())
    assert report.intact and report.grew_from == 13
    assert str(report).endswith("\nthe log grew from 13 to 30 events")
    for since_size in (0, 16, 30):
        write_full_export(old, signer, events[:since_size])
        assert verify_export(new, signer.verifier_key, (tmp_path / "old.jsonl.checkpoint").read_text()).intact


def test_since_with_a_request_export_checks_its_consistency_file(tmp_path, signer):
    events = sample_events(30)
    older_note = signed_checkpoint(signer, events[:11])
    path = tmp_path / "trail.jsonl"
    write_request_trail(path, signer, events, request=5, since_size=11)
    report = verify_export(path, signer.verifier_key, older_note)
    assert report.intact and report.grew_from == 11
    consistency = json.loads((tmp_path / "trail.jsonl.consistency").read_text())
    assert sorted(consistency) == ["hashes", "new_size", "old_root", "old_size"]
    assert (consistency["old_size"], consistency["new_size"]) == (11, 30)


def test_since_with_a_request_export_needs_a_consistency_file(tmp_path, signer):
    events = sample_events(30)
    path = tmp_path / "trail.jsonl"
    write_request_trail(path, signer, events, request=5)
    reason = _reason(path, signer, signed_checkpoint(signer, events[:11]))
    assert reason.startswith(
        "--since: a request export is checked against an older checkpoint with its .consistency file"
    )


def test_since_with_an_older_checkpoint_of_another_log_is_refused(export, signer, tmp_path):
    from transparency_log.note import Signer, generate_signer

    other = Signer.from_text(generate_signer("other.example/log"))
    reason = _reason(export, signer, signed_checkpoint(other, sample_events(3)))
    assert reason.startswith("--since: the older checkpoint: not signed by key audit.example/entitlements+")


def test_usage_errors_raise(export, signer, tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        verify_export(tmp_path / "missing.jsonl", signer.verifier_key)
    with pytest.raises(UsageError, match="bad verifier key"):
        verify_export(export, "not a key")


def test_a_missing_checkpoint_is_broken(export, signer):
    os.remove(str(export) + ".checkpoint")
    assert "is missing, so nothing vouches for the export" in _reason(export, signer)


def test_the_command_line_prints_the_verdict_and_exits_0_1_or_2(export, signer, tmp_path, capsys):
    key_file = tmp_path / "log.pub"
    key_file.write_text(signer.verifier_key + "\n")
    assert main(["verify", str(export), "--key", str(key_file)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("intact: 24 events, tree size 24, root ") and err == ""
    assert main(["verify", str(export), "--key", signer.verifier_key]) == 0
    capsys.readouterr()

    _rewrite_line(export, 3, lambda e: {**e, "actor": "mallory@example.com"})
    assert main(["verify", str(export), "--key", signer.verifier_key]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("broken: line 3 (position 16): its content differs")

    for argv in (
        ["verify", str(tmp_path / "missing.jsonl"), "--key", signer.verifier_key],
        ["verify", str(export), "--key", "garbage"],
        ["verify", str(export), "--key", signer.verifier_key, "--since", str(tmp_path / "missing.checkpoint")],
        ["verify", str(export)],
        ["frobnicate"],
        [],
    ):
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("usage error: ") and err.count("\n") == 1, (argv, err)


def _flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[data.index(b"Z\xc3\xbcrich", 40 * 7)] ^= 0x01  # inside line 8's justification
    path.write_bytes(bytes(data))


def _swap_lines(path) -> None:
    lines = _lines(path)
    lines[3], lines[12] = lines[12], lines[3]
    path.write_bytes(b"".join(lines))


def _drop_line(path) -> None:
    lines = _lines(path)
    del lines[19]
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    "tamper",
    [lambda path: None, _flip_a_byte, _swap_lines, _drop_line, lambda path: _rewrite_line(path, 9, lambda e: {**e, "version": 7})],
    ids=["intact", "flipped byte", "swapped lines", "dropped line", "version gap"],
)
def test_worker_processes_give_the_verdict_of_this_process(export, signer, monkeypatch, tamper):
    monkeypatch.setattr(export_module, "VERIFY_CHUNK", 5)  # several chunks, not aligned with the tree
    untouched = export.read_bytes()
    tamper(export)
    older = signed_checkpoint(signer, sample_events(24)[:10])
    for since in (None, older):
        here = verify_export(export, signer.verifier_key, since, workers=0)
        there = verify_export(export, signer.verifier_key, since, workers=2)
        assert here.intact is (export.read_bytes() == untouched)
        assert (here.intact, str(here)) == (there.intact, str(there))


def test_prepared_lines_are_written_up_to_the_first_out_of_order_which_is_named(tmp_path, signer):
    events = sample_events(6)
    events[3] = {**events[3], "version": events[3]["version"] + 1}
    with ExportWriter(tmp_path / "x.jsonl", signer) as writer:
        with pytest.raises(ValueError, match="^event 4: .* an event is missing"):
            writer.write_prepared(prepare_lines(events, first_index=0))
        checkpoint = writer.finish()
    assert checkpoint.size == 3 and checkpoint.root == root(leaf_hashes(events[:3]))
    assert verify_export(tmp_path / "x.jsonl", signer.verifier_key).intact


def test_prepared_lines_stop_at_an_event_without_a_line_which_is_named(tmp_path, signer):
    events = sample_events(4)
    events[2] = {**events[2], "data": {"ratio": float("nan")}}
    prepared = prepare_lines(events)
    assert len(prepared.keys) == 2 and "no RFC 8785 form" in prepared.problem
    with ExportWriter(tmp_path / "x.jsonl", signer) as writer:
        with pytest.raises(ValueError, match="^event 3: it has no RFC 8785 form"):
            writer.write_prepared(prepared)
        assert writer.finish().size == 2


_LINE_VALUES = st.dictionaries(st.sampled_from(["a", "b", "é", "\U0001f600", "\ue000", "1.5"]), PARSED_VALUES, max_size=4)


@settings(max_examples=500, deadline=None)
@given(_LINE_VALUES, st.sampled_from(["rfc8785", "ascii", "unsorted", "spaced"]))
def test_a_line_is_read_exactly_when_it_is_the_rfc8785_form_of_its_value(value, writer):
    try:
        text = {
            "rfc8785": lambda: rfc8785.dumps(value),
            "ascii": lambda: json.dumps(value, sort_keys=True, separators=(",", ":")).encode(),
            "unsorted": lambda: orjson.dumps(value),
            "spaced": lambda: json.dumps(value, sort_keys=True, ensure_ascii=False).encode(),
        }[writer]()
    except (ValueError, TypeError):  # no form of that kind (a lone surrogate, a big integer...)
        return
    try:
        expected = rfc8785.dumps(json.loads(text)) == text
    except ValueError:
        expected = False
    try:
        _read_line(text + b"\n")
    except _LineProblem:
        read = False
    else:
        read = True
    assert read == expected
