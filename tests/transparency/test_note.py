"""Signed notes: Go's golang.org/x/mod/sumdb/note test vectors, round trips and forgeries."""

from __future__ import annotations

import pytest

from transparency_log.note import (
    KeyTextError,
    NoteError,
    Signer,
    Verifier,
    generate_signer,
    key_id,
    open_note,
    parse_note,
)

# From golang.org/x/mod/sumdb/note/note_test.go.
PETER_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VERIFIER = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIGNATURE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIGNATURE = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_go_verifier_key_parses():
    verifier = Verifier.from_text(PETER_VERIFIER)
    assert (verifier.name, verifier.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert verifier.text == PETER_VERIFIER
    assert key_id(verifier.name, verifier.public_key) == 0xC74F20A3


def test_go_signer_key_gives_the_go_verifier_key():
    signer = Signer.from_text(PETER_SIGNER)
    assert signer.name == "PeterNeumann"
    assert signer.verifier_key == PETER_VERIFIER
    assert signer.text == PETER_SIGNER
    assert "AYEKFALV" not in repr(signer)


def test_signing_gives_the_go_signed_note_byte_for_byte():
    assert Signer.from_text(PETER_SIGNER).sign(TEXT) == TEXT + "\n" + PETER_SIGNATURE


def test_go_notes_open_with_their_keys_and_ignore_other_keys():
    both = TEXT + "\n" + PETER_SIGNATURE + ENOCH_SIGNATURE
    assert open_note(both, Verifier.from_text(PETER_VERIFIER)) == TEXT
    assert open_note(both, Verifier.from_text(ENOCH_VERIFIER)) == TEXT
    enoch_mangled = ENOCH_SIGNATURE[:60] + "ABCD" + ENOCH_SIGNATURE[60:]
    assert open_note(TEXT + "\n" + PETER_SIGNATURE + enoch_mangled, Verifier.from_text(PETER_VERIFIER)) == TEXT


def test_every_part_and_every_mangling_of_the_go_keys_is_refused():
    """As Go's TestNewVerifier and TestNewSigner: every proper substring and every one-byte change."""
    for text, parse in ((PETER_VERIFIER, Verifier.from_text), (PETER_SIGNER, Signer.from_text)):
        for start in range(len(text)):
            for end in range(start + 1, len(text) + 1):
                if (start, end) != (0, len(text)):
                    with pytest.raises(KeyTextError):
                        parse(text[start:end])
        for position in range(len(text)):
            mangled = text[:position] + chr(ord(text[position]) + 1) + text[position + 1 :]
            with pytest.raises(KeyTextError):
                parse(mangled)


def test_go_bad_verifier_keys_are_refused():
    with pytest.raises(KeyTextError):
        Verifier.from_text("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(KeyTextError, match="0x01 and a 32-byte"):
        Verifier.from_text("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIGNATURE[:-1],
        "\x01" + TEXT + "\n" + PETER_SIGNATURE,
        "\udcff" + TEXT + "\n" + PETER_SIGNATURE,  # Go's "\xff": not UTF-8
        TEXT + "\n" + PETER_SIGNATURE.replace("PeterNeumann", "Bad Name")[:-1],
        TEXT + "\n" + PETER_SIGNATURE + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIGNATURE * 101,
        TEXT + "\n" + PETER_SIGNATURE.replace("\u2014", "-"),
        TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",
        TEXT + "\n" + PETER_SIGNATURE.replace("=", ""),
    ],
    ids=[
        "no signatures",
        "blank line only",
        "no final newline",
        "control character",
        "not UTF-8",
        "name with a space",
        "unexpected line",
        "101 signatures",
        "hyphen instead of em dash",
        "signature too short",
        "base64 without padding",
    ],
)
def test_go_malformed_notes_are_refused(note):
    with pytest.raises(NoteError, match="malformed note"):
        open_note(note, Verifier.from_text(PETER_VERIFIER))


def test_a_bad_signature_by_the_expected_key_rejects_the_note():
    note = TEXT + "\n" + PETER_SIGNATURE[:60] + "ABCD" + PETER_SIGNATURE[60:]
    with pytest.raises(NoteError, match=r"signature by PeterNeumann\+c74f20a3 does not match the text"):
        open_note(note, Verifier.from_text(PETER_VERIFIER))


def test_a_note_signed_only_by_other_keys_is_refused_naming_them():
    misnamed = PETER_SIGNATURE.replace("PeterNeumann", "CarmenSandiego")
    with pytest.raises(
        NoteError, match=r"not signed by key PeterNeumann\+c74f20a3: signed only by CarmenSandiego\+c74f20a3"
    ):
        open_note(TEXT + "\n" + misnamed, Verifier.from_text(PETER_VERIFIER))
    with pytest.raises(NoteError, match=r"signed only by EnochRoot\+af0cfe78"):
        open_note(TEXT + "\n" + ENOCH_SIGNATURE, Verifier.from_text(PETER_VERIFIER))


def test_generated_keys_sign_and_open_round_trip():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    verifier = Verifier.from_text(signer.verifier_key)
    note = signer.sign("hello\n\nworld\n")
    assert open_note(note, verifier) == "hello\n\nworld\n"
    assert parse_note(note).signatures[0].key_id == verifier.key_id


def test_another_key_of_the_same_name_does_not_open_the_note():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    impostor = Signer.from_text(generate_signer("audit.example/log"))
    with pytest.raises(NoteError, match="not signed by key audit.example/log"):
        open_note(impostor.sign("hello\n"), signer.verifier)


def test_an_edited_text_does_not_match_its_signature():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    note = signer.sign("size 10\n")
    with pytest.raises(NoteError, match="does not match the text"):
        open_note(note.replace("size 10", "size 11"), signer.verifier)


def test_a_truncated_signature_is_refused():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    note = signer.sign("hello\n")
    with pytest.raises(NoteError):
        open_note(note[:-9] + "\n", signer.verifier)


def test_a_note_without_the_blank_line_is_refused():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    note = signer.sign("hello\n")
    with pytest.raises(NoteError, match="no blank line"):
        open_note(note.replace("\n\n", "\n"), signer.verifier)


def test_only_note_texts_can_be_signed():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    with pytest.raises(NoteError, match="end with a newline"):
        signer.sign("no newline")
    with pytest.raises(NoteError, match="control character"):
        signer.sign("tab\there\n")


@pytest.mark.parametrize("name", ["", "two words", "a+b", "no\u00a0break", "tab\tname"])
def test_key_names_must_be_non_empty_without_spaces_or_plus(name):
    with pytest.raises(KeyTextError):
        generate_signer(name)
