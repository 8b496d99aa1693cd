"""The platform's VAPID key pair in PostgreSQL (Web Push, RFC 8292).

Layer: store/. One row, created by whichever process asks first (``ON CONFLICT DO NOTHING`` then
read back), so every API and notifier replica signs with the same key and advertises the same
public key to browsers.
"""

from __future__ import annotations

import asyncpg

from city_os.notifier.channels.webpush import generate_vapid_key

_CLAIM = """
INSERT INTO cityos.webpush_vapid (id, private_pem) VALUES (1, $1) ON CONFLICT (id) DO NOTHING"""
_READ = "SELECT private_pem FROM cityos.webpush_vapid WHERE id = 1"


async def vapid_private_key(pool: asyncpg.Pool) -> bytes:
    """The shared VAPID private key (PKCS#8 PEM), generated on first use."""
    async with pool.acquire() as conn:
        pem = await conn.fetchval(_READ)
        if pem is None:
            await conn.execute(_CLAIM, generate_vapid_key().decode("ascii"))
            pem = await conn.fetchval(_READ)
    assert isinstance(pem, str)
    return pem.encode("ascii")
