"""`waas ssh_keys`: key-gen, list, delete."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hpcwaas.cli.parsing import WaasParser, add_command, add_subcommands, metadata_pairs

if TYPE_CHECKING:
    from hpcwaas.cli.context import Context

# api.models.SSHKeyType's values, spelled out so that `waas` starts without importing pydantic.
KEY_TYPES = ("rsa", "rsa4096", "ed25519")

KEY_GEN_DESCRIPTION = """Generate a new SSH key pair.

The private key stays in the service's key store; only the public key and a
random key ID come back, and you will not see them again. Add the public key
to ~/.ssh/authorized_keys on the clusters where your workflows run.

--type picks the key: rsa (RSA 2048, as the original service makes), rsa4096,
or ed25519 (short keys; needs OpenSSH 6.5 or later on the clusters)."""


def fill(group: WaasParser) -> None:
    """Add the subcommands of `ssh_keys`."""
    sub = add_subcommands(group)
    gen = add_command(
        sub,
        "key-gen",
        ("gen", "gen-key", "g"),
        "Generate a new SSH key pair",
        run_key_gen,
        description=KEY_GEN_DESCRIPTION,
    )
    gen.add_argument(
        "-m",
        "--metadata",
        type=metadata_pairs,
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="metadata stored with the key (repeatable; split on commas only when the "
        "argument holds two or more '=')",
    )
    gen.add_argument(
        "--type",
        dest="key_type",
        choices=KEY_TYPES,
        default=None,  # not sent then: the server makes RSA 2048, as the original's does
        help="key type: rsa (RSA 2048, the default), rsa4096 or ed25519",
    )
    add_command(sub, "list", ("ls",), "List your SSH keys (public halves)", run_list)
    delete = add_command(sub, "delete", (), "Delete SSH keys", run_delete)
    delete.add_argument("key_ids", nargs="+", metavar="key-id")


def run_key_gen(ctx: Context) -> int:
    """`ssh_keys key-gen [-m k=v]... [--type T]`: the original's five INFO lines, or JSON."""
    key = ctx.client().create_ssh_key(dict(ctx.args.metadata), ctx.args.key_type)
    out = ctx.out
    if out.json:
        out.document({"id": key.id, "public_key": key.public_key})
        return 0
    prefix = out.paint("INFO", "cyan")
    for text in (
        "Below is your newly generated SSH public key.",
        # The original said "you will not see it again": the public key can be listed.
        "You can list it again later with `waas ssh_keys list`; its private key is never shown.",
        "You are responsible for adding it to the authorized_keys file "
        "on the systems you want to run your workflows.",
        f"SSH key ID:     {key.id}",
        # The key arrives as an authorized_keys line, newline included.
        f"SSH Public key: {key.public_key.rstrip()}",
    ):
        out.line(prefix, ": ", text)
    return 0


def run_list(ctx: Context) -> int:
    """`ssh_keys list`: every page of your keys."""
    from hpcwaas.cli.output import rfc3339

    client = ctx.client()
    keys = []
    cursor: str | None = None
    while True:
        page = client.list_ssh_keys(cursor=cursor)
        keys.extend(page.ssh_keys)
        cursor = page.next_cursor
        if not cursor:
            break
    if ctx.out.json:
        ctx.out.document([k.model_dump(mode="json") for k in keys])
        return 0
    if not keys:
        ctx.out.line("No SSH keys found.")
        return 0
    rows = [
        [
            k.id,
            k.key_type,
            k.fingerprint,
            rfc3339(k.created_at),
            json.dumps(k.metadata) if k.metadata else "",
        ]
        for k in keys
    ]
    ctx.out.table(["SSH Key ID", "Type", "Fingerprint", "Created", "Metadata"], rows, (0, 2))
    return 0


def run_delete(ctx: Context) -> int:
    """`ssh_keys delete <id>...`: one line per key, exit 1 if any failed."""
    from hpcwaas.client.errors import HpcwaasError

    deleted: list[str] = []
    failed: list[dict[str, str]] = []
    for key_id in ctx.args.key_ids:
        try:
            ctx.client().delete_ssh_key(key_id)
        except HpcwaasError as exc:
            failed.append({"id": key_id, "error": str(exc)})
            ctx.out.note(f'Failed to delete SSH key "{key_id}": {exc}')
            continue
        deleted.append(key_id)
        ctx.out.line(f'Deleted SSH key "{key_id}"')
    if ctx.out.json:
        ctx.out.document({"deleted": deleted, "failed": failed})
    return 1 if failed else 0
