"""Chunked AES-256-GCM for backup streams, keys separate from the app's (BACKUP_ENCRYPTION_KEYS).

Format: b"LNBK1" | key-id length (1 byte) | key id | chunks. A chunk is its ciphertext length
(4 bytes, big endian) | nonce (12 random bytes) | ciphertext + tag. Each chunk's associated data
binds the header, its index and whether it is the last one, so chunks cannot be altered,
reordered, dropped or the stream truncated without a failed tag. Nothing is released in
plaintext before its chunk authenticates.
"""

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.crypto import _parse_keys

MAGIC = b"LNBK1"
NONCE_BYTES = 12
TAG_BYTES = 16
CHUNK_BYTES = 1024 * 1024


class BackupDecryptionError(Exception):
    """The backup was altered or truncated, or its key is not configured."""


def backup_keys(raw: str | None = None) -> list[tuple[str, bytes]]:
    """The backup keys, parsed like the app's ENCRYPTION_KEYS but never the same setting."""
    raw = settings.BACKUP_ENCRYPTION_KEYS if raw is None else raw
    if not (raw or "").strip(" ,"):
        raise ImproperlyConfigured("BACKUP_ENCRYPTION_KEYS is empty: backups are never written unencrypted.")
    try:
        return list(_parse_keys(raw))
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"BACKUP_{exc}") from exc


def _associated(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if final else 0)


class EncryptingReader:
    """A file-like `read(n)` over the encrypted form of `source` (any object with `read`)."""

    def __init__(self, source, *, chunk_bytes: int = CHUNK_BYTES):
        key_id, key = backup_keys()[0]
        self.key_id = key_id
        self._aes = AESGCM(key)
        self._source = source
        self._chunk = chunk_bytes
        self._header = MAGIC + bytes([len(key_id)]) + key_id.encode()
        self._buffer = bytearray(self._header)
        self._index = 0
        self._pending = self._read_full()
        self._done = False

    def _read_full(self) -> bytes:
        parts, size = [], 0
        while size < self._chunk:
            data = self._source.read(self._chunk - size)
            if not data:
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def _seal_next(self) -> None:
        current = self._pending
        following = self._read_full() if current else b""
        final = not following
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aes.encrypt(nonce, current, _associated(self._header, self._index, final))
        self._buffer += struct.pack(">I", len(sealed)) + nonce + sealed
        self._index += 1
        self._pending = following
        self._done = final

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._seal_next()
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _read_exact(stream, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        data = stream.read(size - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def decrypt_stream(stream):
    """Yield the plaintext chunk by chunk; raise BackupDecryptionError on any alteration."""
    magic = _read_exact(stream, len(MAGIC) + 1)
    if len(magic) != len(MAGIC) + 1 or magic[: len(MAGIC)] != MAGIC:
        raise BackupDecryptionError("not a LoyalNest backup")
    key_id = _read_exact(stream, magic[-1]).decode(errors="replace")
    key = dict(backup_keys()).get(key_id)
    if key is None:
        raise BackupDecryptionError(f"backup key {key_id!r} is not configured")
    aes = AESGCM(key)
    header = magic + key_id.encode()
    index = 0
    while True:
        length_bytes = _read_exact(stream, 4)
        if len(length_bytes) != 4:
            raise BackupDecryptionError("backup is truncated")
        (length,) = struct.unpack(">I", length_bytes)
        nonce = _read_exact(stream, NONCE_BYTES)
        sealed = _read_exact(stream, length)
        if len(nonce) != NONCE_BYTES or len(sealed) != length or length < TAG_BYTES:
            raise BackupDecryptionError("backup is truncated")
        for final in (False, True):
            try:
                plaintext = aes.decrypt(nonce, sealed, _associated(header, index, final))
                break
            except InvalidTag:
                continue
        else:
            raise BackupDecryptionError("backup failed authentication (GCM tag)")
        yield plaintext
        index += 1
        if final:
            if stream.read(1):
                raise BackupDecryptionError("data after the last chunk")
            return


def encrypt_bytes(data: bytes) -> bytes:
    import io

    return EncryptingReader(io.BytesIO(data)).read()


def decrypt_bytes(data: bytes) -> bytes:
    import io

    return b"".join(decrypt_stream(io.BytesIO(data)))
