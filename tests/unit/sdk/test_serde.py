"""Serdes chosen from type hints: round trips, and clear errors for input that does not fit."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Any, Literal, Optional, TypedDict

import pytest

from perdure.sdk.serde import (
    BytesSerde,
    JsonSerde,
    MsgspecSerde,
    PydanticSerde,
    SerdeError,
    TypedJsonSerde,
    serde_for,
)
from perdure.sdk.serde_protocol import Serde


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Item:
    sku: str
    quantity: int = 1


@dataclasses.dataclass
class Order:
    id: int
    items: list[Item]
    color: Color
    note: str | None = None
    tags: set[str] = dataclasses.field(default_factory=set)


class Movie(TypedDict):
    title: str
    year: int


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)


def test_every_serde_writes_none_as_an_empty_payload() -> None:
    serdes: list[Serde[Any]] = [JsonSerde(), BytesSerde(), TypedJsonSerde(int), serde_for(Order)]
    for serde in serdes:
        assert serde.serialize(None) == b""


def test_json_round_trips_plain_values_compactly() -> None:
    serde = JsonSerde()
    assert serde.serialize({"a": [1, 2.5, "x", None, True]}) == b'{"a":[1,2.5,"x",null,true]}'
    assert serde.deserialize(b'{"a": 1}') == {"a": 1}


def test_empty_payload_and_none_are_the_same_value() -> None:
    assert JsonSerde().serialize(None) == b""
    assert JsonSerde().deserialize(b"") is None
    assert TypedJsonSerde(Optional[int]).deserialize(b"") is None  # noqa: UP045 - both spellings
    assert TypedJsonSerde(int | None).deserialize(b"null") is None


def test_json_writes_unicode_as_utf8() -> None:
    data = JsonSerde().serialize("héllo")
    assert JsonSerde().deserialize(data) == "héllo"


def test_json_refuses_nan_because_other_languages_cannot_read_it() -> None:
    with pytest.raises(SerdeError, match="cannot encode float"):
        JsonSerde().serialize(float("nan"))


def test_json_names_the_type_it_cannot_encode() -> None:
    with pytest.raises(SerdeError, match="object is not JSON serialisable"):
        JsonSerde().serialize(object())


def test_invalid_json_is_a_serde_error() -> None:
    with pytest.raises(SerdeError, match="not valid JSON"):
        JsonSerde().deserialize(b"{nope")
    with pytest.raises(SerdeError, match="not valid JSON"):
        TypedJsonSerde(int).deserialize(b"\xff\xfe")


def test_bytes_pass_through_untouched() -> None:
    serde = BytesSerde()
    assert serde.serialize(b"\x00\xff") == b"\x00\xff"
    assert serde.deserialize(b"\x00\xff") == b"\x00\xff"
    assert serde.serialize(None) == b""
    with pytest.raises(SerdeError, match="expected bytes"):
        serde.serialize("text")  # type: ignore[arg-type]


def test_typed_json_builds_nested_dataclasses_enums_and_sets() -> None:
    serde = serde_for(Order)
    order = serde.deserialize(
        b'{"id": 7, "items": [{"sku": "a"}, {"sku": "b", "quantity": 3}], "color": "blue",'
        b' "tags": ["x"], "unknown": "ignored"}'
    )
    assert order == Order(7, [Item("a"), Item("b", 3)], Color.BLUE, None, {"x"})
    assert serde.deserialize(serde.serialize(order)) == order


def test_typed_json_handles_recursive_dataclasses() -> None:
    tree = Node(1, [Node(2), Node(3, [Node(4)])])
    serde = serde_for(Node)
    assert serde.deserialize(serde.serialize(tree)) == tree


def test_typed_json_checks_typeddicts() -> None:
    serde = serde_for(Movie)
    assert serde.deserialize(b'{"title": "Up", "year": 2009}') == {"title": "Up", "year": 2009}
    with pytest.raises(SerdeError, match="missing required key 'year' of Movie"):
        serde.deserialize(b'{"title": "Up"}')


@pytest.mark.parametrize(
    ("hint", "payload", "message"),
    [
        (int, b'"seven"', 'at \\$: expected an integer, got "seven"'),
        (int, b"true", "expected an integer, got true"),
        (str, b"1", "expected a string, got 1"),
        (bool, b"0", "expected a boolean, got 0"),
        (list[int], b'[1, "x"]', 'at \\$\\[1\\]: expected an integer, got "x"'),
        (dict[str, int], b'{"a": "b"}', "at \\$.a: expected an integer"),
        (Order, b'{"items": []}', "missing required field 'id' of Order"),
        (Order, b'{"id": 1, "items": [{"sku": 5}], "color": "red"}', "at \\$.items\\[0\\].sku"),
        (Order, b'{"id": 1, "items": [], "color": "green"}', 'one of "red", "blue"'),
        (Literal["a", "b"], b'"c"', 'one of "a", "b"'),
        (tuple[int, str], b"[1]", "expected an array of 2 items, got 1"),
        (int | str, b"[]", "no member of int \\| str fits"),
        (int, b"", "expected a JSON value of type int, got an empty payload"),
        (Item, b"null", "expected an object \\(Item\\), got null"),
    ],
)
def test_typed_json_says_where_the_input_does_not_fit(
    hint: Any, payload: bytes, message: str
) -> None:
    with pytest.raises(SerdeError, match=message):
        TypedJsonSerde(hint).deserialize(payload)


def test_typed_json_keeps_union_members_apart() -> None:
    serde = TypedJsonSerde(int | str)
    assert serde.deserialize(b"1") == 1
    assert serde.deserialize(b'"1"') == "1"


def test_floats_accept_integers() -> None:
    value = TypedJsonSerde(float).deserialize(b"3")
    assert value == 3.0
    assert isinstance(value, float)


def test_typed_json_converts_strings_into_rich_scalars() -> None:
    @dataclasses.dataclass
    class Booking:
        at: datetime.datetime
        day: datetime.date
        id: uuid.UUID
        price: decimal.Decimal

    booking = Booking(
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        datetime.date(2026, 1, 2),
        uuid.UUID(int=7),
        decimal.Decimal("9.99"),
    )
    serde = TypedJsonSerde(Booking)
    assert serde.deserialize(serde.serialize(booking)) == booking
    with pytest.raises(SerdeError, match="expected a UUID string"):
        TypedJsonSerde(uuid.UUID).deserialize(b'"not-a-uuid"')


def test_serde_for_picks_by_hint() -> None:
    assert isinstance(serde_for(bytes), BytesSerde)
    assert isinstance(serde_for(Optional[bytes]), BytesSerde)  # noqa: UP045
    assert isinstance(serde_for(Any), JsonSerde)
    assert isinstance(serde_for(int), TypedJsonSerde)
    assert isinstance(serde_for(list[Item]), TypedJsonSerde)


def test_bytes_inside_json_explain_the_way_out() -> None:
    with pytest.raises(SerdeError, match="annotate the handler with `-> bytes`"):
        JsonSerde().serialize({"blob": b"\x00"})


# -- optional libraries -------------------------------------------------------------------------


def test_pydantic_models_are_validated_by_pydantic() -> None:
    pydantic = pytest.importorskip("pydantic")

    class User(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str
        age: int

    serde = serde_for(User)
    assert isinstance(serde, PydanticSerde)
    user = serde.deserialize(b'{"name": "ada", "age": 36}')
    assert user == User(name="ada", age=36)
    assert serde.deserialize(serde.serialize(user)) == user
    with pytest.raises(SerdeError, match="age"):
        serde.deserialize(b'{"name": "ada", "age": "old"}')
    assert isinstance(serde_for(list[User]), PydanticSerde)
    assert serde_for(Optional[User]).deserialize(b"") is None  # noqa: UP045


def test_msgspec_structs_are_decoded_by_msgspec() -> None:
    msgspec = pytest.importorskip("msgspec")

    class Point(msgspec.Struct):  # type: ignore[name-defined,misc]
        x: int
        y: int

    serde = serde_for(Point)
    assert isinstance(serde, MsgspecSerde)
    point = serde.deserialize(b'{"x": 1, "y": 2}')
    assert point == Point(1, 2)
    assert serde.deserialize(serde.serialize(point)) == point
    with pytest.raises(SerdeError, match="Expected `int`"):
        serde.deserialize(b'{"x": "1", "y": 2}')
