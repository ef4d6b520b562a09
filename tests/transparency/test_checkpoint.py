"""Checkpoints (c2sp.org/tlog-checkpoint): strict parsing, and signing with the origin as key name."""

from __future__ import annotations

import base64

import pytest

from transparency_log.checkpoint import Checkpoint, CheckpointError, read_checkpoint, sign_checkpoint
from transparency_log.note import NoteError, Signer, generate_signer

C2SP_EXAMPLE = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = bytes(range(32))
ROOT_TEXT = base64.b64encode(ROOT).decode()


def test_the_c2sp_example_parses_and_formats_back():
    checkpoint = Checkpoint.parse(C2SP_EXAMPLE)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.format() == C2SP_EXAMPLE


def test_extension_lines_are_kept():
    text = f"log\n0\n{ROOT_TEXT}\nfirst extension\nsecond\n"
    checkpoint = Checkpoint.parse(text)
    assert checkpoint.extensions == ("first extension", "second")
    assert checkpoint.format() == text


@pytest.mark.parametrize(
    "text",
    [
        f"log\n01\n{ROOT_TEXT}\n",
        f"log\n-1\n{ROOT_TEXT}\n",
        f"log\n+1\n{ROOT_TEXT}\n",
        f"log\n 1\n{ROOT_TEXT}\n",
        f"log\n\u0661\n{ROOT_TEXT}\n",
        f"log\n{'9' * 21}\n{ROOT_TEXT}\n",
        f"log\n\n{ROOT_TEXT}\n",
        f"log\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"log\n1\n{ROOT_TEXT.rstrip('=')}\n",
        f"log\n1\n{ROOT_TEXT[:-2]}B=\n",
        f"log\n1\n{ROOT_TEXT}",
        f"\n1\n{ROOT_TEXT}\n",
        "log\n1\n",
        f"log\n1\n{ROOT_TEXT}\n\n",
        f"log\n1\n{ROOT_TEXT}\nextension\n\n",
    ],
    ids=[
        "leading zero",
        "negative size",
        "plus sign",
        "space",
        "non-ASCII digit",
        "size beyond uint64",
        "no size",
        "31-byte root",
        "root without padding",
        "root in non-canonical base64",
        "no final newline",
        "empty origin",
        "no root",
        "empty extension",
        "empty extension after another",
    ],
)
def test_malformed_checkpoints_are_refused(text):
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_a_checkpoint_can_only_be_built_valid():
    with pytest.raises(CheckpointError):
        Checkpoint("", 1, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint("log", -1, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint("log", 1, ROOT[:5])
    with pytest.raises(CheckpointError):
        Checkpoint("log", 1, ROOT, ("two\nlines",))


def test_signed_checkpoints_read_back_with_the_verifier_key():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    checkpoint = Checkpoint("audit.example/log", 7, ROOT)
    assert read_checkpoint(sign_checkpoint(checkpoint, signer), signer.verifier) == checkpoint


def test_the_origin_is_the_key_name():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    with pytest.raises(CheckpointError, match="is not the key name"):
        sign_checkpoint(Checkpoint("another.example/log", 7, ROOT), signer)
    note = signer.sign(Checkpoint("another.example/log", 7, ROOT).format())
    with pytest.raises(CheckpointError, match="origin 'another.example/log' is not the key name"):
        read_checkpoint(note, signer.verifier)


def test_a_checkpoint_signed_by_another_key_is_refused():
    signer = Signer.from_text(generate_signer("audit.example/log"))
    other = Signer.from_text(generate_signer("audit.example/log"))
    with pytest.raises(NoteError, match="not signed by key"):
        read_checkpoint(sign_checkpoint(Checkpoint("audit.example/log", 7, ROOT), other), signer.verifier)
