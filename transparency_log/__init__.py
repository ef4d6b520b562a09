"""Offline verifier (and writer) of the audit export: a log's events as canonical JSON lines,
an RFC 9162 Merkle tree over them, and a C2SP signed checkpoint of its root.

It imports only the standard library, ``cryptography`` (Ed25519), ``orjson`` (fast JSON) and
``rfc8785`` (the reference canonical form), so an auditor can verify an export in a virtualenv
holding nothing else::

    python -m transparency_log verify FILE --key KEY [--since OLD.checkpoint]
"""
