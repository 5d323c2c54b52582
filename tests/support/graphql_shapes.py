"""Check a recorded GraphQL response against the upstream schema and the document that asked for it:
every key is a selected field of the concrete type (``__typename`` picks it for unions and
interfaces), non-null fields are present, enums hold one of their values, and nothing else is there.
So a stand-in's recorded answer has exactly the shape the real server would give."""

from __future__ import annotations

from typing import Any

import graphql
from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
)


def check_response(schema: GraphQLSchema, document: str, data: dict[str, Any]) -> None:
    """Raise AssertionError naming the path where ``data`` (a response's ``data``) leaves the shape."""
    operation = graphql.parse(document).definitions[0]
    assert graphql.validate(schema, graphql.parse(document)) == [], "the document itself is invalid"
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    _object(schema, root, operation.selection_set, data, "data")


def _fields(schema: GraphQLSchema, concrete: GraphQLObjectType, selections: SelectionSetNode) -> dict[str, FieldNode]:
    picked: dict[str, FieldNode] = {}
    for node in selections.selections:
        if isinstance(node, FieldNode):
            picked[(node.alias or node.name).value] = node
        elif isinstance(node, InlineFragmentNode):
            condition = schema.get_type(node.type_condition.name.value) if node.type_condition else concrete
            if condition is concrete or (is_abstract_type(condition) and schema.is_sub_type(condition, concrete)):
                picked.update(_fields(schema, concrete, node.selection_set))
    return picked


def _object(schema: GraphQLSchema, kind: Any, selections: SelectionSetNode, value: Any, path: str) -> None:
    named = get_named_type(kind)
    assert isinstance(value, dict), f"{path}: expected an object of {named}, got {value!r}"
    if is_abstract_type(named):
        concrete = schema.get_type(value.get("__typename", ""))
        assert isinstance(concrete, GraphQLObjectType) and schema.is_sub_type(named, concrete), \
            f"{path}: __typename {value.get('__typename')!r} is not a {named}"
    else:
        concrete = named
    picked = _fields(schema, concrete, selections)
    extra = set(value) - set(picked)
    assert not extra, f"{path}: {sorted(extra)} not selected for {concrete}"
    for key, node in picked.items():
        name = node.name.value
        if name == "__typename":
            assert value.get(key, concrete.name) == concrete.name, f"{path}.__typename"
            continue
        field = concrete.fields.get(name)
        assert field is not None, f"{path}: {concrete} has no field {name}"
        assert key in value or not isinstance(field.type, GraphQLNonNull), f"{path}: non-null {name} missing"
        if key in value:
            _value(schema, field.type, node, value[key], f"{path}.{key}")


def _value(schema: GraphQLSchema, kind: Any, node: FieldNode, value: Any, path: str) -> None:
    if isinstance(kind, GraphQLNonNull):
        assert value is not None, f"{path}: null for non-null {kind}"
        kind = kind.of_type
    if value is None:
        return
    if isinstance(kind, GraphQLList):
        assert isinstance(value, list), f"{path}: expected a list"
        for i, item in enumerate(value):
            _value(schema, kind.of_type, node, item, f"{path}[{i}]")
        return
    if node.selection_set is not None:
        _object(schema, kind, node.selection_set, value, path)
    elif isinstance(kind, GraphQLEnumType):
        assert value in kind.values, f"{path}: {value!r} is not a {kind} ({sorted(kind.values)})"
