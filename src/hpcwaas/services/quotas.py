"""Per-user limits on what a user may start or hold, checked before anything is recorded.

Each check raises a refusal (services/errors.py) whose message names the `limits.*` config
key, says where the user stands, and what they can do about it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from hpcwaas.services.errors import Conflict, LimitExceeded
from hpcwaas.services.ratelimit import TriggerRateLimiter
from hpcwaas.settings import Limits
from hpcwaas.store import executions as execution_store
from hpcwaas.store import keys as key_records

# The wait suggested to a user with too many unfinished executions: executions take minutes.
RUNNING_RETRY_AFTER_SECONDS = 30


def check_trigger_rate(limiter: TriggerRateLimiter, user_id: str) -> None:
    """LimitExceeded (with the wait) when the user triggered too often in the last minute."""
    wait = limiter.acquire(user_id)
    if wait:
        raise LimitExceeded(
            f"too many triggers: at most {limiter.per_minute} per minute "
            f"(limits.max_triggers_per_minute); try again in {wait} s",
            retry_after=wait,
        )


async def check_running_executions(conn: AsyncConnection, limits: Limits, user_id: str) -> None:
    """LimitExceeded when the user already has the allowed number of unfinished executions."""
    limit = limits.max_running_executions_per_user
    running = await execution_store.count_unfinished(conn, user_id)
    if running >= limit:
        raise LimitExceeded(
            f"you have {running} executions PENDING, RUNNING or CANCELLING and the limit is "
            f"{limit} (limits.max_running_executions_per_user): wait for one to end, or cancel "
            "one with `waas executions cancel <id>` (DELETE /executions/{id})",
            retry_after=RUNNING_RETRY_AFTER_SECONDS,
        )


async def check_ssh_key_count(conn: AsyncConnection, limits: Limits, user_id: str) -> None:
    """Conflict when the user already holds the allowed number of SSH keys."""
    limit = limits.max_ssh_keys_per_user
    held = await key_records.count_keys(conn, user_id)
    if held >= limit:
        raise Conflict(
            f"you have {held} SSH keys and the limit is {limit} (limits.max_ssh_keys_per_user): "
            "delete one you no longer use with `waas ssh_keys delete <id>` "
            "(DELETE /ssh_keys/{id}), then try again",
        )
