"""Trigger inputs: types, coercion from strings, constraints, defaults, every problem at once."""

from __future__ import annotations

import pytest

from hpcwaas.catalog import CatalogError, InputValidationError, WorkflowSpec, validate_inputs


def workflow(**inputs: dict) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {"inputs": inputs, "steps": {"s": {"kind": "shell", "run": "true"}}}
    )


def one(declaration: dict, value):
    """Validate one input `x` and return its typed value."""
    return validate_inputs(workflow(x=declaration), {"x": value})["x"]


def problems(spec: WorkflowSpec, raw) -> list[str]:
    with pytest.raises(InputValidationError) as info:
        validate_inputs(spec, raw)
    return info.value.problems


def problem(declaration: dict, value) -> str:
    [found] = problems(workflow(x=declaration), {"x": value})
    assert found.startswith("input 'x': ")
    return found


# --- defaults and required --------------------------------------------------------------------


def test_defaults_fill_in_missing_inputs():
    spec = workflow(n={"type": "integer", "default": 3}, tags={"type": "list", "default": ["a"]})
    assert validate_inputs(spec, {}) == {"n": 3, "tags": ["a"]}


def test_default_lists_are_copied_not_shared():
    spec = workflow(tags={"type": "list", "default": ["a"]})
    validate_inputs(spec, {})["tags"].append("b")
    assert validate_inputs(spec, {}) == {"tags": ["a"]}


def test_input_without_default_is_required():
    spec = workflow(name={"type": "string", "description": "Who to greet"})
    assert spec.inputs["name"].required is True
    assert problems(spec, {}) == ["missing required input 'name' of type string (Who to greet)"]


def test_optional_input_without_default_is_none():
    spec = workflow(name={"type": "string", "required": False})
    assert validate_inputs(spec, {}) == {"name": None}


def test_given_value_overrides_the_default():
    assert one({"type": "integer", "default": 3}, 5) == 5


# --- unknown and reserved ---------------------------------------------------------------------


def test_unknown_input_lists_the_declared_names():
    spec = workflow(a={"type": "string", "default": ""}, b={"type": "string", "default": ""})
    [found] = problems(spec, {"c": "1"})
    assert "unknown input 'c'" in found and "declares a, b" in found and "user_id" in found


def test_reserved_inputs_pass_through_as_strings_when_not_declared():
    result = validate_inputs(workflow(), {"user_id": "jdoe", "vault_id": 42})
    assert result == {"user_id": "jdoe", "vault_id": "42"}


def test_reserved_inputs_are_not_added_when_not_given():
    assert validate_inputs(workflow(), {}) == {}


def test_reserved_input_must_be_a_string():
    assert "expected a string" in problems(workflow(), {"user_id": ["x"]})[0]


def test_declared_reserved_input_follows_its_declaration():
    spec = workflow(user_id={"type": "string", "pattern": "[a-z]+"})
    assert "does not match" in problems(spec, {"user_id": "Bad!"})[0]


def test_custom_reserved_names():
    assert validate_inputs(workflow(), {"account": "x"}, reserved=frozenset({"account"})) == {
        "account": "x"
    }


# --- integers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "typed"), [(3, 3), ("3", 3), (" -7 ", -7), ("+2", 2), (4.0, 4)])
def test_integer_accepts_numbers_and_integer_strings(raw, typed):
    value = one({"type": "integer"}, raw)
    assert value == typed and type(value) is int


@pytest.mark.parametrize(
    "raw", [True, False, "true", "3.5", 3.5, "1_000", "0x10", "", "three", None, [1]]
)
def test_integer_rejects_booleans_fractions_and_words(raw):
    assert "expected an integer" in problem({"type": "integer"}, raw)


def test_integer_range():
    spec = {"type": "integer", "minimum": 1, "maximum": 8}
    assert one(spec, "1") == 1 and one(spec, 8) == 8
    assert "below the minimum 1" in problem(spec, 0)
    assert "above the maximum 8" in problem(spec, "9")


def test_huge_integer_strings_are_refused():
    assert "expected an integer" in problem({"type": "integer"}, "9" * 5000)


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "typed"), [(2.5, 2.5), ("2.5", 2.5), ("1e3", 1000.0), (3, 3), ("3", 3), (".5", 0.5)]
)
def test_number_accepts_ints_floats_and_numeric_strings(raw, typed):
    assert one({"type": "number"}, raw) == typed


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-Infinity", float("nan"), float("inf")])
def test_number_rejects_nan_and_infinity(raw):
    assert "number" in problem({"type": "number"}, raw)


@pytest.mark.parametrize("raw", [True, "abc", "1,5", None])
def test_number_rejects_booleans_and_words(raw):
    assert "expected a number" in problem({"type": "number"}, raw)


def test_number_range():
    assert "below the minimum 0.5" in problem({"type": "number", "minimum": 0.5}, "0.1")


# --- booleans ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "typed"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("Yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
    ],
)
def test_boolean_accepts_booleans_and_their_string_forms(raw, typed):
    assert one({"type": "boolean"}, raw) is typed


@pytest.mark.parametrize("raw", [1, 0, "on", "y", "", None])
def test_boolean_rejects_other_values(raw):
    assert "expected a boolean" in problem({"type": "boolean"}, raw)


# --- strings ----------------------------------------------------------------------------------


def test_string_keeps_the_value_exactly():
    assert one({"type": "string"}, "  spaced  ") == "  spaced  "


@pytest.mark.parametrize("raw", [3, True, None, ["a"], {"a": 1}])
def test_string_rejects_other_json_types(raw):
    assert "expected a string" in problem({"type": "string"}, raw)


def test_string_rejects_nul_characters():
    assert "NUL" in problem({"type": "string"}, "a\x00b")


@pytest.mark.parametrize("raw", ["\ud800", "a\udfffb", "\udbff\udc00"[::-1]])
def test_string_rejects_lone_surrogates_naming_the_code_point(raw):
    found = problem({"type": "string"}, raw)
    assert "lone UTF-16 surrogate (U+D" in found
    found.encode("utf-8")  # the detail itself is valid text


def test_a_string_that_is_no_text_is_refused_in_every_kind_of_input():
    for declaration in (
        {"type": "path"},
        {"type": "ssh_key"},
        {"type": "list", "items": "string"},
    ):
        value = ["\ud800"] if declaration["type"] == "list" else "\ud800"
        assert "surrogate" in problem(declaration, value)
    [found] = problems(workflow(), {"user_id": "\ud800"})
    assert "surrogate" in found


@pytest.mark.parametrize(
    "declaration", [{"type": "integer"}, {"type": "enum", "values": ["a"]}, {"type": "boolean"}]
)
def test_a_lone_surrogate_is_shown_escaped_in_other_problems(declaration):
    found = problem(declaration, "\ud800")
    assert "\\ud800" in found
    found.encode("utf-8")


def test_string_pattern_must_match_the_whole_value():
    spec = {"type": "string", "pattern": "[a-z]+"}
    assert one(spec, "abc") == "abc"
    assert "does not match the pattern [a-z]+" in problem(spec, "abc1")


def test_string_length_limits_count_characters():
    spec = {"type": "string", "min_length": 2, "max_length": 3}
    assert one(spec, "été") == "été"
    assert "too short" in problem(spec, "a")
    assert "too long: 4 characters, at most 3" in problem(spec, "abcd")


def test_value_larger_than_the_byte_limit_is_too_long():
    spec = workflow(x={"type": "string"})
    [found] = problems(spec, {"x": "é" * 40000})
    assert "too long: 80000 bytes" in found
    with pytest.raises(InputValidationError, match="bytes, at most 10"):
        validate_inputs(spec, {"x": "a" * 11}, max_value_bytes=10)


# --- enums ------------------------------------------------------------------------------------


def test_enum_accepts_one_of_its_values():
    assert one({"type": "enum", "values": ["fast", "accurate"]}, "fast") == "fast"


def test_enum_rejects_others_and_lists_the_allowed_values():
    found = problem({"type": "enum", "values": ["fast", "accurate"]}, "Fast")
    assert 'not one of the allowed values: "fast", "accurate"' in found


def test_enum_of_numbers_accepts_numbers_given_as_strings():
    spec = {"type": "enum", "values": [1, 2, 4.5]}
    assert one(spec, "2") == 2 and one(spec, "4.5") == 4.5 and one(spec, 4.5) == 4.5


def test_enum_does_not_take_true_for_1():
    assert "not one of the allowed values" in problem({"type": "enum", "values": [1, 2]}, True)


def test_enum_of_strings_does_not_take_a_number():
    assert "not one of" in problem({"type": "enum", "values": ["1", "2"]}, 1)


# --- lists ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "typed"),
    [
        (["a", "b"], ["a", "b"]),
        ('["a", "b,c"]', ["a", "b,c"]),
        ("a,b", ["a", "b"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("one", ["one"]),
        ("", []),
    ],
)
def test_list_of_strings_from_json_arrays_json_strings_and_commas(raw, typed):
    assert one({"type": "list"}, raw) == typed


def test_list_items_are_coerced_to_their_type():
    assert one({"type": "list", "items": "integer"}, "1, 2,3") == [1, 2, 3]
    assert one({"type": "list", "items": "boolean"}, ["yes", False]) == [True, False]
    assert one({"type": "list", "items": "number"}, "[1.5, 2]") == [1.5, 2]


def test_list_item_problems_name_the_item():
    assert "item 1: expected an integer" in problem({"type": "list", "items": "integer"}, "1,x")
    assert "item 0: expected a string" in problem({"type": "list"}, [3])


def test_list_length_limits_count_items():
    spec = {"type": "list", "min_length": 1, "max_length": 2}
    assert "too few items: 0" in problem(spec, [])
    assert "too many items: 3" in problem(spec, "a,b,c")


def test_list_item_constraints():
    assert "above the maximum 5" in problem(
        {"type": "list", "items": "integer", "maximum": 5}, [1, 6]
    )
    assert "does not match" in problem({"type": "list", "pattern": "[a-z]"}, ["a", "bb"])


def test_list_rejects_other_json_types_and_broken_json():
    assert "expected a list" in problem({"type": "list"}, 3)
    assert "not valid JSON" in problem({"type": "list"}, '["a", ')


# --- all at once ------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once():
    spec = workflow(
        n={"type": "integer", "minimum": 1},
        mode={"type": "enum", "values": ["a"]},
        name={"type": "string"},
        flag={"type": "boolean", "default": False},
    )
    found = problems(spec, {"n": "0", "mode": "b", "flag": "maybe", "extra": 1})
    assert len(found) == 5
    joined = "\n".join(found)
    for needle in (
        "'n'",
        "'mode'",
        "'flag'",
        "unknown input 'extra'",
        "missing required input 'name'",
    ):
        assert needle in joined


def test_each_problem_names_the_input_it_concerns():
    spec = workflow(n={"type": "integer", "maximum": 8}, name={"type": "string"})
    with pytest.raises(InputValidationError) as info:
        validate_inputs(spec, {"n": 9, "extra": 1})
    about = dict(zip(info.value.inputs, info.value.problems, strict=True))
    assert about["n"] == "input 'n': 9 is above the maximum 8"
    assert about["extra"].startswith("unknown input 'extra'")
    assert about["name"].startswith("missing required input 'name'")


def test_a_problem_with_the_whole_inputs_names_no_input():
    with pytest.raises(InputValidationError) as info:
        validate_inputs(workflow(), ["not", "an", "object"])  # type: ignore[arg-type]
    assert info.value.inputs == [None]


def test_error_message_joins_the_problems():
    spec = workflow(a={"type": "integer"}, b={"type": "integer"})
    with pytest.raises(InputValidationError) as info:
        validate_inputs(spec, {})
    error = info.value
    assert isinstance(error, CatalogError)
    assert str(error) == "; ".join(error.problems) and len(error.problems) == 2


def test_too_many_inputs_is_reported_alone():
    found = problems(workflow(), {f"i{n}": "x" for n in range(101)})
    assert found == ["too many inputs: 101 given, at most 100 (limits.max_inputs)"]


def test_inputs_must_be_a_mapping():
    assert "must be an object" in problems(workflow(), ["a"])[0]
