"""Catalog reload: the swap, the watcher's change detection, definitions kept for executions."""

from __future__ import annotations

import os
from pathlib import Path

from hpcwaas.catalog.catalog import Catalog
from hpcwaas.catalog.live import LiveCatalog

LOCAL = {"local": "Local host"}


def _app(name: str, command: str) -> str:
    return f"""\
application: {name}
environments: [local]
expose: [wf]
workflows:
  wf:
    steps:
      only: {{kind: shell, run: {command}}}
"""


def _live(directory: Path) -> LiveCatalog:
    return LiveCatalog(lambda: Catalog.load([directory], LOCAL), [directory])


def test_reload_swaps_in_added_changed_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_app("a", "echo one"))
    live = _live(tmp_path)
    assert set(live.current.workflows) == {"a@local@wf"}
    (tmp_path / "b.yaml").write_text(_app("b", "echo two"))
    (tmp_path / "a.yaml").write_text(_app("a", "echo changed"))
    live.reload()
    assert set(live.current.workflows) == {"a@local@wf", "b@local@wf"}
    assert live.current.workflows["a@local@wf"].spec.steps["only"].run == "echo changed"  # type: ignore[union-attr]
    (tmp_path / "b.yaml").unlink()
    live.reload()
    assert set(live.current.workflows) == {"a@local@wf"}


def test_an_invalid_file_is_refused_and_the_others_are_still_served(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_app("a", "echo one"))
    (tmp_path / "broken.yaml").write_text("application: [\n")
    live = _live(tmp_path)
    assert set(live.current.workflows) == {"a@local@wf"}
    assert list(live.current.refused) == [tmp_path / "broken.yaml"]
    assert str(live.current.refused[tmp_path / "broken.yaml"][0]).startswith(
        f"{tmp_path / 'broken.yaml'}:"
    )


def test_changed_sees_an_added_a_modified_and_a_removed_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(_app("a", "echo one"))
    live = _live(tmp_path)
    assert not live.changed()
    (tmp_path / "b.yml").write_text(_app("b", "echo b"))
    assert live.changed()
    live.reload()
    assert not live.changed()
    path.write_text(_app("a", "echo two"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert live.changed()
    live.reload()
    (tmp_path / "b.yml").unlink()
    assert live.changed()


def test_files_the_loader_ignores_do_not_count_as_changes(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_app("a", "echo one"))
    live = _live(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".a.yaml.swp").write_text("editor state")
    assert not live.changed()


def test_an_execution_keeps_the_definition_it_was_triggered_with(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(_app("a", "echo one"))
    live = _live(tmp_path)
    old = live.current.workflows["a@local@wf"]
    path.write_text(_app("a", "echo two"))
    live.reload(in_use={("a@local@wf", old.digest)})
    new = live.current.workflows["a@local@wf"]
    assert new.digest != old.digest
    assert live.definition("a@local@wf", old.digest) is old
    assert live.definition("a@local@wf", new.digest) is new
    # Removed from the catalog: still there for the execution that uses it.
    path.unlink()
    live.reload(in_use={("a@local@wf", old.digest)})
    assert live.by_id("a@local@wf") is None
    assert live.definition("a@local@wf", old.digest) is old


def test_definitions_no_execution_uses_are_dropped_after_the_next_reload(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(_app("a", "echo one"))
    live = _live(tmp_path)
    first = live.current.workflows["a@local@wf"]
    path.write_text(_app("a", "echo two"))
    live.reload()
    # Kept one reload: a trigger may have read the previous catalog while it was swapped.
    assert live.definition("a@local@wf", first.digest) is first
    path.write_text(_app("a", "echo three"))
    live.reload()
    assert live.definition("a@local@wf", first.digest) is None
