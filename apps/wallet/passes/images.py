"""Pass images: a solid square in the merchant's colour (Wallet requires icon.png). Written
with zlib so no imaging library is needed; cached per colour and size."""

import struct
import zlib
from functools import lru_cache


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=256)
def solid_png(color: str, width: int, height: int) -> bytes:
    """A `width`×`height` PNG of one `#rrggbb` colour."""
    rgb = bytes.fromhex(color.lstrip("#"))
    row = b"\x00" + rgb * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * height))
        + _chunk(b"IEND", b"")
    )


def pass_images(color: str) -> dict[str, bytes]:
    """The icon and logo files of a store card, at 1x and 2x."""
    return {
        "icon.png": solid_png(color, 29, 29),
        "icon@2x.png": solid_png(color, 58, 58),
        "logo.png": solid_png(color, 50, 50),
        "logo@2x.png": solid_png(color, 100, 100),
    }
