"""`waas environments`: list, set-identity, unset-identity (your cluster account on each)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpcwaas.cli.parsing import WaasParser, add_command, add_subcommands

if TYPE_CHECKING:
    from hpcwaas.cli.context import Context

LIST_HEADERS = ("Environment", "Name", "Kind", "Host", "Login", "SSH key ID")
# Kept whole: the environment ID and the SSH key ID are meant to be copied.
WHOLE_COLUMNS = (0, 5)

SET_IDENTITY_DESCRIPTION = """Register your cluster account on an environment.

Workflows deployed on a cluster run their steps over SSH as your own account
there. Register the login and one of your SSH keys (`waas ssh_keys key-gen`;
add its public half to ~/.ssh/authorized_keys on the cluster) once, and
triggers use them by default. The inputs user_id=<login> and vault_id=<key id>
of a trigger still win over these defaults.

Example: waas environments set-identity cluster --login jdoe --key <key id>"""


def fill(group: WaasParser) -> None:
    """Add the subcommands of `environments`."""
    sub = add_subcommands(group)
    add_command(
        sub, "list", ("ls",), "List the environments, with your cluster account on each", run_list
    )
    set_identity = add_command(
        sub,
        "set-identity",
        (),
        "Register the login and SSH key your steps run with on an environment",
        run_set_identity,
        description=SET_IDENTITY_DESCRIPTION,
    )
    set_identity.add_argument("environment", help="the environment ID, as `list` shows it")
    set_identity.add_argument(
        "--login", required=True, metavar="LOGIN", help="your login on the cluster"
    )
    set_identity.add_argument(
        "--key", required=True, metavar="KEY_ID", help="the ID of one of your SSH keys"
    )
    unset_identity = add_command(
        sub,
        "unset-identity",
        (),
        "Forget your cluster account on an environment",
        run_unset_identity,
    )
    unset_identity.add_argument("environment", help="the environment ID")


def run_list(ctx: Context) -> int:
    """`environments list`: a table (IDs never cut) or the JSON array."""
    result = ctx.client().list_environments()
    if ctx.out.json:
        ctx.out.document([e.model_dump(mode="json") for e in result.environments])
        return 0
    if not result.environments:
        ctx.out.line("No environments found.")
        return 0
    rows = [
        [
            e.id,
            e.name,
            e.kind,
            e.host or "",
            e.identity.login if e.identity else "",
            e.identity.key_id if e.identity else "",
        ]
        for e in result.environments
    ]
    ctx.out.table(LIST_HEADERS, rows, WHOLE_COLUMNS)
    return 0


def run_set_identity(ctx: Context) -> int:
    """`environments set-identity <env> --login L --key K`."""
    args = ctx.args
    environment = ctx.client().set_identity(args.environment, args.login, args.key)
    if ctx.out.json:
        ctx.out.document(environment.model_dump(mode="json"))
        return 0
    ctx.out.line(
        f"Environment {environment.id}: steps will run as {args.login} with SSH key {args.key}"
    )
    return 0


def run_unset_identity(ctx: Context) -> int:
    """`environments unset-identity <env>`."""
    environment = ctx.args.environment
    ctx.client().delete_identity(environment)
    if ctx.out.json:
        ctx.out.document({"environment": environment, "identity": None})
        return 0
    ctx.out.line(f"Environment {environment}: no cluster account registered any more")
    return 0
