"""The operator role: configured by user ID or by group (`operators` in the server config)."""

from __future__ import annotations

from hpcwaas.auth.identity import Identity
from hpcwaas.settings import OperatorsConfig


def is_operator(config: OperatorsConfig, identity: Identity) -> bool:
    """True if the identity's user ID, or one of its groups, is listed under `operators`."""
    if identity.user_id in config.users:
        return True
    return not identity.groups.isdisjoint(config.groups)
