"""Who is an operator: a user ID or a group listed under `operators`."""

from __future__ import annotations

import pytest

from hpcwaas.auth.identity import Identity
from hpcwaas.auth.operators import is_operator
from hpcwaas.settings import ConfigError, OperatorsConfig, load_settings

CONFIG = OperatorsConfig(users=["root-sub"], groups=["hpc-admins", "ops"])


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (Identity("root-sub"), True),
        (Identity("alice", groups=frozenset({"climate", "ops"})), True),
        (Identity("bob", groups=frozenset({"hpc-admins"})), True),
        (Identity("carol", groups=frozenset({"climate"})), False),
        (Identity("dave"), False),
        # A group named like an operator's user ID is not that user.
        (Identity("erin", groups=frozenset({"root-sub"})), False),
        # Names are compared exactly.
        (Identity("Root-Sub"), False),
        (Identity("frank", groups=frozenset({"OPS"})), False),
    ],
    ids=lambda v: v.user_id if isinstance(v, Identity) else str(v),
)
def test_an_identity_is_an_operator_by_user_id_or_by_group(
    identity: Identity, expected: bool
) -> None:
    assert is_operator(CONFIG, identity) is expected


def test_nobody_is_an_operator_by_default(tmp_path) -> None:
    settings = load_settings(None, data_dir=tmp_path)
    assert settings.operators == OperatorsConfig()
    assert not is_operator(settings.operators, Identity("admin", groups=frozenset({"admin"})))


def test_operators_come_from_the_config_file(tmp_path) -> None:
    path = tmp_path / "hpcwaas.yml"
    path.write_text("operators: {users: [root-sub], groups: [ops]}\n")
    settings = load_settings(path, data_dir=tmp_path)
    assert settings.operators.users == ["root-sub"]
    assert settings.operators.groups == ["ops"]


def test_an_unknown_key_under_operators_is_refused_with_its_name(tmp_path) -> None:
    path = tmp_path / "hpcwaas.yml"
    path.write_text("operators: {user: [root-sub]}\n")
    with pytest.raises(ConfigError, match=r"operators\.user"):
        load_settings(path, data_dir=tmp_path)
