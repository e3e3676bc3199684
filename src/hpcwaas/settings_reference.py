"""Generate docs/config-reference.md from the server's Settings model.

``python -m hpcwaas.settings_reference`` writes the reference; ``--check`` exits 1 when the
checked-in file differs from what the model gives. Every key is listed with its dotted path,
type, default (never a secret's value), environment variable and description.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from hpcwaas import settings as settings_module
from hpcwaas.settings import Settings

REFERENCE_PATH = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"
OUT_OF_DATE = "docs/config-reference.md is out of date: run python -m hpcwaas.settings_reference"

# The keys of the original HPCWaaS API's configuration file.
ORIGINAL_KEYS = frozenset(
    {
        "listen_address",
        "auth",
        "auth.auth_type",
        "auth.basic_auth",
        "auth.basic_auth.accounts",
        "auth.basic_auth.accounts[].username",
        "auth.basic_auth.accounts[].password",
        "auth.auth_url",
        "auth.token_url",
        "auth.user_info_url",
        "auth.redirect_url",
        "auth.scopes",
        "auth.session_duration",
        "auth.client_id",
        "auth.client_secret",
        "vault_config",
        "vault_config.address",
        "vault_config.role_id",
        "vault_config.secret_id",
        "vault_config.is_secret_wrapped",
        "alien_config",
    }
)

# Defaults that depend on the machine: described rather than computed.
_FACTORY_TEXT: dict[Callable[..., Any], str] = {
    settings_module._default_data_dir: (
        "the user data directory (`~/.local/share/hpcwaas` on Linux)"
    ),
}
_PACKAGE_DIR = Path(settings_module.__file__).parent


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    env: str
    description: str
    original: bool


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_args(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return typing.get_args(annotation)
    return None


def _type_name(annotation: Any) -> str:
    annotation = _strip_annotated(annotation)
    if annotation is type(None):
        return "None"
    members = _union_args(annotation)
    if members is not None:
        return " | ".join(_type_name(m) for m in members)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return str(getattr(annotation, "__name__", annotation))


def _constraints(field: FieldInfo) -> str:
    words: list[str] = []
    for item in field.metadata:
        if isinstance(item, annotated_types.Gt):
            words.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            words.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Lt):
            words.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.Le):
            words.append(f"<= {item.le}")
        elif isinstance(item, annotated_types.MinLen):
            words.append(f"at least {item.min_length} item(s)")
    return f" ({', '.join(words)})" if words else ""


def _non_none(annotation: Any) -> list[Any]:
    annotation = _strip_annotated(annotation)
    members = _union_args(annotation)
    if members is None:
        return [annotation]
    return [_strip_annotated(m) for m in members if m is not type(None)]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class of a field typed ``Model`` or ``Model | None``."""
    members = _non_none(annotation)
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], BaseModel):
        return members[0]
    return None


def _item_models(annotation: Any, container: type) -> list[type[BaseModel]]:
    """The model classes of the values of a ``list[...]`` or ``dict[str, ...]`` field."""
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) is not container:
        return []
    args = typing.get_args(annotation)
    if not args:
        return []
    members = _non_none(args[-1])
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def _is_secret(annotation: Any) -> bool:
    return any(m is SecretStr for m in _non_none(annotation))


def _is_complex(annotation: Any) -> bool:
    members = _non_none(annotation)
    return any(
        typing.get_origin(m) in (list, dict, set, tuple)
        or (isinstance(m, type) and issubclass(m, BaseModel))
        for m in members
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Path):
        try:
            return "<hpcwaas package>/" + str(value.relative_to(_PACKAGE_DIR))
        except ValueError:
            return str(value)
    return value


def _default(field: FieldInfo, annotation: Any) -> str:
    if field.is_required():
        return "required"
    if _is_secret(annotation):
        return "(secret)"
    if field.default_factory is not None:
        if field.default_factory in _FACTORY_TEXT:
            return _FACTORY_TEXT[field.default_factory]
        value = field.get_default(call_default_factory=True, validated_data={})
    else:
        value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel) and _model_of(annotation) is not None:
        return "(section: see its keys)"
    return "`" + json.dumps(_jsonable(value), sort_keys=False) + "`"


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _walk(
    model: type[BaseModel], prefix: str, env_prefix: str | None, delimiter: str
) -> Iterator[Row]:
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = f"{prefix}{name}"
        annotation = field.annotation
        section = _model_of(annotation)
        if env_prefix is None:
            env = "— (inside its parent's JSON)"
        else:
            env = f"`{env_prefix}{name.upper()}`" + (" (JSON)" if _is_complex(annotation) else "")
        description = " ".join((field.description or "").split())
        if not description and section is not None:
            description = _doc(section)
        yield Row(
            key=key,
            type=_type_name(annotation) + _constraints(field),
            default=_default(field, annotation),
            env=env,
            description=description,
            original=key in ORIGINAL_KEYS,
        )
        child_env = None if env_prefix is None else f"{env_prefix}{name.upper()}{delimiter}"
        if section is not None:
            yield from _walk(section, f"{key}.", child_env, delimiter)
            continue
        for item in _item_models(annotation, list):
            yield from _walk(item, f"{key}[].", None, delimiter)
        dict_items = _item_models(annotation, dict)
        for item in dict_items:
            kind = item.model_fields.get("kind")
            description = _doc(item)
            if len(dict_items) > 1 and kind is not None:
                kind_value = kind.default
                if kind_value is PydanticUndefined:
                    kind_value = typing.get_args(_strip_annotated(kind.annotation))[0]
                item_key = f"{key}.<{kind_value}>"
                description = f"An entry with `kind: {kind_value}`. {description}".strip()
            else:
                item_key = f"{key}.<name>"
            yield Row(
                key=item_key,
                type=item.__name__,
                default="—",
                env="— (an entry of the map's JSON)",
                description=description,
                original=False,
            )
            yield from _walk(item, f"{item_key}.", None, delimiter)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def generate(settings_cls: type[Settings] = Settings) -> str:
    """The Markdown reference of ``settings_cls``, the same text for the same model."""
    config = settings_cls.model_config
    env_prefix = str(config.get("env_prefix") or "").upper()
    delimiter = str(config.get("env_nested_delimiter") or "__")
    rows = list(_walk(settings_cls, "", env_prefix, delimiter))
    rows.append(
        Row(
            key="alien_config",
            type="any",
            default="—",
            env="—",
            description="Ignored, with a warning in the log (hpcwaas runs workflows itself).",
            original=True,
        )
    )
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m hpcwaas.settings_reference` from the Settings model"
        " (src/hpcwaas/settings.py): do not edit by hand. -->",
        "",
        "Every key of the `hpcwaas-api --config FILE` YAML file. Nested keys are joined by"
        " `.`; `[]` is an item of a list; `<local>` and `<slurm>` stand for the name of an"
        " entry of the `environments` map of that `kind`. Each key"
        f" with an environment variable can also be set by it (`{env_prefix}` and the key,"
        f" nested keys joined by `{delimiter}`; lists, maps and sections as JSON). Precedence:"
        " command-line option > environment variable > file > default. Keys marked"
        " *original* are those of the original HPCWaaS API. Secrets never show a value.",
        "",
        "| Key | Type | Default | Environment variable | Description | Origin |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            f"`{row.key}`",
            f"`{row.type}`",
            row.default,
            row.env,
            row.description,
            "original" if row.original else "",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hpcwaas.settings_reference",
        description="Write docs/config-reference.md from the Settings model.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file is not what the model gives"
    )
    parser.add_argument("--output", type=Path, default=REFERENCE_PATH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    text = generate()
    path: Path = args.output
    if args.check:
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            print(OUT_OF_DATE, file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
