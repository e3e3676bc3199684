"""Who sees which workflow, and the errors of Catalog.get for every kind of bad workflow ID."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcwaas.catalog import (
    Catalog,
    CatalogError,
    MalformedWorkflowId,
    WorkflowForbidden,
    WorkflowNotFound,
)

OPEN = """\
application: open
environments: [local, hpc1]
expose: [a]
workflows:
  a: {steps: {s: {kind: shell, run: "true"}}}
  hidden: {steps: {s: {kind: shell, run: "true"}}}
"""

CLOSED = """\
application: closed
environments: [hpc1]
expose: [b]
access: {users: [alice], groups: [physics]}
workflows:
  b: {steps: {s: {kind: shell, run: "true"}}}
"""

ENVIRONMENTS = {"local": "Local host", "hpc1": "Cluster", "hpc2": "Other cluster"}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "open.yaml").write_text(OPEN)
    (tmp_path / "closed.yaml").write_text(CLOSED)
    loaded = Catalog.load([tmp_path], ENVIRONMENTS)
    assert loaded.problems == []
    return loaded


def ids(workflows) -> list[str]:
    return [w.id for w in workflows]


def test_empty_access_lists_let_every_user_see_the_exposed_workflows(catalog):
    assert ids(catalog.visible("bob")) == ["open@hpc1@a", "open@local@a"]


def test_listed_user_sees_the_restricted_application(catalog):
    assert ids(catalog.visible("alice")) == ["closed@hpc1@b", "open@hpc1@a", "open@local@a"]


def test_member_of_a_listed_group_sees_the_restricted_application(catalog):
    assert "closed@hpc1@b" in ids(catalog.visible("carol", frozenset({"chemistry", "physics"})))
    assert "closed@hpc1@b" not in ids(catalog.visible("carol", frozenset({"chemistry"})))


def test_unexposed_workflow_is_never_visible(catalog):
    assert not any(w.name == "hidden" for w in catalog.workflows.values())


def test_get_returns_the_deployed_workflow(catalog):
    workflow = catalog.get("closed@hpc1@b", "alice")
    assert (workflow.application.application, workflow.environment, workflow.name) == (
        "closed",
        "hpc1",
        "b",
    )
    assert workflow.environment_name == "Cluster"


@pytest.mark.parametrize(
    "workflow_id",
    ["", "open", "open@local", "open@@a", "@local@a", "open@local@", "a@b@c@d", "a@b@" + "c" * 600],
)
def test_malformed_workflow_id_shows_the_expected_form(catalog, workflow_id):
    with pytest.raises(MalformedWorkflowId) as info:
        catalog.get(workflow_id, "bob")
    assert "<application>@<environment>@<workflow>" in str(info.value)


def test_unknown_application_is_not_found_and_named(catalog):
    with pytest.raises(WorkflowNotFound, match="no application 'nope'"):
        catalog.get("nope@local@a", "bob")


def test_unknown_environment_is_not_found_and_named(catalog):
    with pytest.raises(WorkflowNotFound, match="no environment 'mars'"):
        catalog.get("open@mars@a", "bob")


def test_application_not_deployed_on_a_configured_environment_is_not_found(catalog):
    with pytest.raises(WorkflowNotFound, match="not deployed on environment 'hpc2'"):
        catalog.get("open@hpc2@a", "bob")


def test_unknown_workflow_is_not_found_and_named(catalog):
    with pytest.raises(WorkflowNotFound, match="no exposed workflow 'zzz'"):
        catalog.get("open@local@zzz", "bob")


def test_defined_but_unexposed_workflow_looks_unknown(catalog):
    with pytest.raises(WorkflowNotFound) as hidden:
        catalog.get("open@local@hidden", "bob")
    with pytest.raises(WorkflowNotFound) as unknown:
        catalog.get("open@local@zzz", "bob")
    assert str(hidden.value).replace("hidden", "zzz") == str(unknown.value)


def test_user_outside_the_access_list_is_forbidden(catalog):
    with pytest.raises(WorkflowForbidden, match="not authorized"):
        catalog.get("closed@hpc1@b", "bob")


def test_group_member_may_get_the_restricted_workflow(catalog):
    assert catalog.get("closed@hpc1@b", "carol", frozenset({"physics"})).name == "b"


def test_catalog_errors_share_a_base_class():
    for error in (MalformedWorkflowId, WorkflowNotFound, WorkflowForbidden):
        assert issubclass(error, CatalogError)


def test_by_id_ignores_access_but_not_exposure(catalog):
    assert catalog.by_id("closed@hpc1@b") is not None
    assert catalog.by_id("open@local@hidden") is None
