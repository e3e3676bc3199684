"""Request dependencies: the runtime and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hpcwaas.auth.identity import Identity
from hpcwaas.auth.operators import is_operator
from hpcwaas.auth.throttle import client_address
from hpcwaas.server.problems import ApiProblem
from hpcwaas.services.ratelimit import TriggerRateLimiter
from hpcwaas.services.runtime import Runtime

# The dependencies are `async def` though they do not await: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop per dependency and request.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_current_user(request: Request) -> Identity:
    # The runtime straight from the app, not through RuntimeDep: one dependency fewer for
    # FastAPI to solve on every authenticated request.
    runtime: Runtime = request.app.state.runtime
    return await runtime.authenticator.authenticate(
        request.headers.get("authorization"), request_address(request)
    )


def request_address(request: Request) -> str:
    """The client address failed credential checks count against (auth/throttle.py)."""
    # The peer as uvicorn sees it: behind a proxy, the X-Forwarded-For of a trusted one.
    return client_address(request.client.host if request.client else None)


CurrentUser = Annotated[Identity, Depends(get_current_user)]

OPERATORS_ONLY = (
    "only operators may do this: an administrator lists operators under the `operators` "
    "config key (operators.users by user ID, operators.groups by group)"
)


async def get_operator(user: CurrentUser, runtime: RuntimeDep) -> Identity:
    """The caller if they are an operator, else a 403 naming the `operators` config key."""
    if not is_operator(runtime.settings.operators, user):
        raise ApiProblem(403, OPERATORS_ONLY)
    return user


OperatorUser = Annotated[Identity, Depends(get_operator)]


async def get_trigger_limiter(request: Request) -> TriggerRateLimiter:
    limiter: TriggerRateLimiter = request.app.state.trigger_limiter
    return limiter


TriggerLimiterDep = Annotated[TriggerRateLimiter, Depends(get_trigger_limiter)]


def page_size(limit: int | None, runtime: Runtime, default: int) -> int:
    """A page size within the configured maximum, or a 400 that says the allowed range."""
    maximum = runtime.settings.limits.max_page_size
    if limit is None:
        return min(default, maximum)
    if not 1 <= limit <= maximum:
        raise ApiProblem(
            400, f"limit must be between 1 and {maximum} (limits.max_page_size), got {limit}"
        )
    return limit
