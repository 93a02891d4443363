"""Secrets of API keys, session tokens and controller tokens: how one is made and the
form it is stored in (only its hash is kept)."""

import hashlib
import secrets
import string

# Base62: letters and digits.
_SECRET_ALPHABET = string.ascii_letters + string.digits


def secret_hash(secret: str) -> str:
    """The stored form of an API key or controller token (SHA-256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_generate(*, prefix: str) -> str:
    """A new random secret: the prefix, a dash and 40 base62 characters (~238 bits)."""
    return prefix + "-" + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
