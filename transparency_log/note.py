"""Signed notes (c2sp.org/signed-note) with Ed25519 keys.

Keys are written as Go's ``golang.org/x/mod/sumdb/note`` writes them:

* signer key:   ``PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte Ed25519 seed)>``
* verifier key: ``<name>+<key id>+<base64(0x01 || 32-byte Ed25519 public key)>``

where the key id is 8 lowercase hex digits: the first four bytes, big-endian, of
SHA-256(name || "\\n" || 0x01 || public key). A note is its text (ending in a newline), a blank
line, and one or more lines ``— <key name> <base64(4-byte key id || 64-byte signature)>``, the
signature being Ed25519 over the text's UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
SIGNATURE_LINE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100  # c2sp.org/signed-note: verifiers must accept at least 16
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_CONTROL_CHARACTER_OTHER_THAN_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f]")


class KeyTextError(ValueError):
    """A signer or verifier key text is malformed or inconsistent."""


class NoteError(ValueError):
    """A note is malformed, or not validly signed by the expected key."""


def _decode_base64(text: str) -> bytes:
    """Strict standard base64: the alphabet, the padding, and the one encoding of its bytes."""
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise ValueError(f"not valid base64: {error}") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("not in standard base64 form")
    return data


def check_key_name(name: str) -> None:
    """Raises KeyTextError unless ``name`` is a valid key name: non-empty, with no Unicode
    space, no '+' and no control character."""
    if not name:
        raise KeyTextError("a key name must not be empty")
    if "+" in name or any(character.isspace() or character < " " for character in name):
        raise KeyTextError(f"a key name must not contain '+', spaces or control characters: {name!r}")


def key_id(name: str, public_key: bytes) -> int:
    """The key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _parse_key_material(name: str, key_id_hex: str, encoded: str, what: str) -> tuple[int, bytes]:
    check_key_name(name)
    if not _KEY_ID_HEX.fullmatch(key_id_hex):
        raise KeyTextError(f"the key id of a {what} is 8 lowercase hex digits, not {key_id_hex!r}")
    try:
        material = _decode_base64(encoded)
    except ValueError as error:
        raise KeyTextError(f"the key in a {what} is {error}") from None
    if len(material) != 33 or material[0] != ED25519:
        raise KeyTextError(f"a {what} holds 0x01 and a 32-byte Ed25519 key")
    return int(key_id_hex, 16), material[1:]


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 note verifier key: checks signatures by the key named ``name`` with ``key_id``."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_text(cls, text: str) -> Verifier:
        """Parses ``<name>+<key id>+<base64(0x01 || public key)>``; raises KeyTextError unless
        the text is well formed and its key id is the one its name and key give."""
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise KeyTextError("a verifier key has the form NAME+KEYID+KEY")
        name, key_id_hex, encoded = parts
        declared_id, public_key = _parse_key_material(name, key_id_hex, encoded, "verifier key")
        if key_id(name, public_key) != declared_id:
            raise KeyTextError(f"the key id {key_id_hex} does not belong to the key named {name}")
        return cls(name, declared_id, public_key)

    @property
    def text(self) -> str:
        """The verifier key text, as :meth:`from_text` reads it."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}"

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 note signer key (keep its text secret)."""

    __slots__ = ("_private_key", "verifier")

    def __init__(self, name: str, seed: bytes) -> None:
        check_key_name(name)
        if len(seed) != 32:
            raise KeyTextError("an Ed25519 seed has 32 bytes")
        self._private_key = Ed25519PrivateKey.from_private_bytes(seed)
        public_key = self._private_key.public_key().public_bytes_raw()
        self.verifier = Verifier(name, key_id(name, public_key), public_key)

    @classmethod
    def from_text(cls, text: str) -> Signer:
        """Parses ``PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>``; raises KeyTextError
        unless the text is well formed and its key id is the one its name and key give."""
        parts = text.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyTextError("a signer key has the form PRIVATE+KEY+NAME+KEYID+KEY")
        name, key_id_hex, encoded = parts[2:]
        declared_id, seed = _parse_key_material(name, key_id_hex, encoded, "signer key")
        signer = cls(name, seed)
        if signer.verifier.key_id != declared_id:
            raise KeyTextError(f"the key id {key_id_hex} does not belong to the key named {name}")
        return signer

    @property
    def name(self) -> str:
        """The key name, which signature lines carry."""
        return self.verifier.name

    @property
    def text(self) -> str:
        """The signer key text, as :meth:`from_text` reads it."""
        seed = self._private_key.private_bytes_raw()
        encoded = base64.b64encode(bytes([ED25519]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id:08x}+{encoded}"

    @property
    def verifier_key(self) -> str:
        """The text of the matching verifier key, to publish."""
        return self.verifier.text

    def __repr__(self) -> str:
        return f"Signer({self.verifier})"

    def sign(self, text: str) -> str:
        """The signed note of ``text``: the text, a blank line and this key's signature line.

        Raises NoteError unless ``text`` is a valid note text: non-empty, ending in a newline,
        valid UTF-8 with no control character other than newline.
        """
        _check_note_text(text)
        signature = self._private_key.sign(text.encode("utf-8"))
        encoded = base64.b64encode(self.verifier.key_id.to_bytes(4, "big") + signature).decode("ascii")
        return f"{text}\n{SIGNATURE_LINE_PREFIX}{self.name} {encoded}\n"


def generate_signer(name: str) -> str:
    """The text of a new random Ed25519 signer key named ``name``."""
    check_key_name(name)
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return Signer(name, seed).text


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("malformed note: its text must end with a newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("malformed note: it is not valid UTF-8") from None
    if _CONTROL_CHARACTER_OTHER_THAN_NEWLINE.search(text):
        raise NoteError("malformed note: it holds a control character other than newline")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: the key name, key id and signature bytes it claims."""

    name: str
    key_id: int
    signature: bytes

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}"


@dataclass(frozen=True)
class ParsedNote:
    """A note split into its text and its signature lines, none of them checked yet."""

    text: str
    signatures: tuple[NoteSignature, ...]


def parse_note(note: str) -> ParsedNote:
    """Splits a signed note into its text and signatures, checking its syntax only.

    Raises NoteError unless the note is valid UTF-8 without control characters other than
    newline, its text ends in a newline and is followed by a blank line, and every line after
    the last blank line is a well-formed signature line (at most MAX_SIGNATURES of them).
    """
    _check_note_text(note)
    separator = note.rfind("\n\n")
    if separator < 0:
        raise NoteError("malformed note: no blank line separates the text from the signatures")
    text, signature_block = note[: separator + 1], note[separator + 2 :]
    if not signature_block:
        raise NoteError("malformed note: it has no signature lines")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    signatures = []
    for number, line in enumerate(lines, 1):
        fields = line[len(SIGNATURE_LINE_PREFIX) :].split(" ")
        if not line.startswith(SIGNATURE_LINE_PREFIX) or len(fields) != 2:
            raise NoteError(f"malformed note: signature line {number} is not '\u2014 NAME SIGNATURE'")
        name, encoded = fields
        try:
            check_key_name(name)
            signature = _decode_base64(encoded)
        except ValueError as error:
            raise NoteError(f"malformed note: signature line {number}: {error}") from None
        if len(signature) < 5:
            raise NoteError(f"malformed note: signature line {number} is too short to hold a key id and a signature")
        signatures.append(NoteSignature(name, int.from_bytes(signature[:4], "big"), signature[4:]))
    return ParsedNote(text, tuple(signatures))


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` once a signature by ``verifier``'s key is checked.

    Signatures by other keys (another name or another key id) are ignored. Raises NoteError if
    the note is malformed (see :func:`parse_note`), if a signature claiming ``verifier``'s key
    does not verify, or if there is no signature by that key.
    """
    parsed = parse_note(note)
    message = parsed.text.encode("utf-8")
    signed_by_verifier = False
    for signature in parsed.signatures:
        if signature.name != verifier.name or signature.key_id != verifier.key_id:
            continue
        if not verifier.verifies(message, signature.signature):
            raise NoteError(f"signature by {verifier} does not match the text")
        signed_by_verifier = True
    if not signed_by_verifier:
        others = ", ".join(str(signature) for signature in parsed.signatures)
        raise NoteError(f"not signed by key {verifier}: signed only by {others}")
    return parsed.text
