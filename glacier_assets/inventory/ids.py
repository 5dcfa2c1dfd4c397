"""Glacier ids become partition keys and file names: only ids matching a known pattern pass."""

from __future__ import annotations

import re

from ..constants import PARTITION_FORBIDDEN, RGI6_ID_PATTERN


class InvalidGlacierId(ValueError):
    """A glacier id that cannot be used as a partition key and file name."""


def validate_glacier_id(glacier_id: object, pattern: str = RGI6_ID_PATTERN) -> str:
    """Return the id unchanged if it matches `pattern` (anchored) and is safe as a file name."""
    if not isinstance(glacier_id, str) or not glacier_id:
        raise InvalidGlacierId(f"glacier id {glacier_id!r} is empty or not text")
    if PARTITION_FORBIDDEN.search(glacier_id) or glacier_id in {".", ".."}:
        raise InvalidGlacierId(
            f"glacier id {glacier_id!r} contains characters not allowed in partition keys or file names"
        )
    if not re.fullmatch(pattern, glacier_id):
        raise InvalidGlacierId(f"glacier id {glacier_id!r} does not match the id pattern {pattern!r}")
    return glacier_id
