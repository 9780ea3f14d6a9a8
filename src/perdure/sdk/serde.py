"""Serdes chosen from type hints: JSON, typed JSON (dataclasses, ...), pydantic, msgspec, bytes."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import importlib
import json
import sys
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from perdure.sdk.serde_protocol import Serde

__all__ = [
    "BytesSerde",
    "JsonSerde",
    "MsgspecSerde",
    "PydanticSerde",
    "Serde",
    "SerdeError",
    "TypedJsonSerde",
    "serde_for",
]


class SerdeError(ValueError):
    """Bytes that do not decode into the expected type, or a value that cannot be encoded.

    The endpoint turns this into a terminal failure with HTTP status 400 when it happens to
    a handler's input: retrying the same bytes could never succeed.

    Example::

        try:
            TypedJsonSerde(int).deserialize(b'"seven"')
        except SerdeError as e:
            print(e)   # at $: expected an integer, got "seven"
    """


# -- encoding ---------------------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    """Teach ``json.dumps`` the types handlers commonly return."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # Shallow on purpose: json.dumps recurses and calls us again for nested values, which
        # avoids the deep copy that dataclasses.asdict makes.
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime.datetime | datetime.date | datetime.time):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID | decimal.Decimal):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, bytes):
        raise TypeError(
            "bytes cannot be written as JSON; annotate the handler with `-> bytes` to send raw "
            "bytes, or encode them (e.g. base64) into a string"
        )
    dump = getattr(obj, "model_dump", None)  # a pydantic model nested in plain data
    if callable(dump):
        return dump(mode="json")
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(obj, msgspec.Struct):
        return msgspec.to_builtins(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(obj: Any) -> bytes:
    try:
        # allow_nan=False: NaN and Infinity are not JSON, and other languages' parsers reject them.
        text = json.dumps(obj, default=_json_default, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerdeError(f"cannot encode {type(obj).__name__} as JSON: {exc}") from exc
    return text.encode("utf-8")


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerdeError(f"the payload is not valid JSON: {exc}") from exc


# -- plain serdes -----------------------------------------------------------------------------


class JsonSerde:
    """JSON without a schema: ``dict``, ``list``, ``str``, numbers, ``bool`` and ``None``.

    Empty bytes stand for ``None`` both ways, as in Restate's SDKs, so a handler that returns
    nothing answers with an empty body.

    Example::

        JsonSerde().serialize({"a": 1})   # b'{"a":1}'
        JsonSerde().deserialize(b"")      # None
    """

    def serialize(self, obj: Any) -> bytes:
        """Encode ``obj`` as compact UTF-8 JSON; ``None`` becomes empty bytes."""
        return b"" if obj is None else _dumps(obj)

    def deserialize(self, data: bytes) -> Any:
        """Decode JSON; empty bytes become ``None``."""
        return None if not data else _loads(data)


class BytesSerde:
    """Raw bytes, untouched: for handlers annotated ``bytes``.

    Example::

        BytesSerde().serialize(b"\\x00\\x01")   # b'\\x00\\x01'
    """

    def serialize(self, obj: bytes | None) -> bytes:
        """Return ``obj`` itself (``None`` becomes empty bytes)."""
        if obj is None:
            return b""
        if not isinstance(obj, bytes | bytearray | memoryview):
            raise SerdeError(f"expected bytes, got {type(obj).__name__}")
        return bytes(obj)

    def deserialize(self, data: bytes) -> bytes:
        """Return ``data`` itself."""
        return bytes(data)


class TypedJsonSerde:
    """JSON checked against a type hint and turned into that type.

    Understands ``str``, ``int``, ``float``, ``bool``, ``None``, ``list``/``tuple``/``set``,
    ``dict``, ``Optional``/``Union``, ``Literal``, enums, dataclasses, ``TypedDict``,
    ``datetime``/``date``/``time``, ``UUID`` and ``Decimal``, nested in any way. Unknown object
    keys are ignored, so an older handler still accepts input from a newer caller.

    Example::

        @dataclass
        class Order:
            id: int
            items: list[str]

        TypedJsonSerde(Order).deserialize(b'{"id": 1, "items": ["a"]}')   # Order(id=1, items=['a'])
    """

    def __init__(self, type_hint: Any) -> None:
        self.type_hint = type_hint

    def serialize(self, obj: Any) -> bytes:
        """Encode ``obj`` as JSON; ``None`` becomes empty bytes."""
        return b"" if obj is None else _dumps(obj)

    def deserialize(self, data: bytes) -> Any:
        """Decode and check JSON; empty bytes are ``None`` when the hint allows it."""
        if not data:
            if accepts_none(self.type_hint):
                return None
            raise SerdeError(
                f"expected a JSON value of type {_type_name(self.type_hint)}, got an empty payload"
            )
        return convert(self.type_hint, _loads(data))


class PydanticSerde:
    """JSON validated by pydantic, for hints that are (or contain) pydantic models.

    Needs ``pydantic`` installed; Perdure does not depend on it.

    Example::

        class User(BaseModel):
            name: str

        PydanticSerde(User).deserialize(b'{"name": "ada"}')   # User(name='ada')
    """

    def __init__(self, type_hint: Any) -> None:
        # An optional dependency, only reached when a hint names a model; imported by name so
        # that type checking passes with and without it installed.
        pydantic = importlib.import_module("pydantic")
        self.type_hint = type_hint
        self._adapter = pydantic.TypeAdapter(type_hint)
        self._validation_error: type[Exception] = pydantic.ValidationError

    def serialize(self, obj: Any) -> bytes:
        """Encode with pydantic; ``None`` becomes empty bytes."""
        if obj is None:
            return b""
        try:
            return bytes(self._adapter.dump_json(obj))
        except Exception as exc:  # pydantic raises several unrelated types here
            raise SerdeError(f"cannot encode {type(obj).__name__}: {exc}") from exc

    def deserialize(self, data: bytes) -> Any:
        """Validate with pydantic; empty bytes are ``None`` when the hint allows it."""
        if not data and accepts_none(self.type_hint):
            return None
        try:
            return self._adapter.validate_json(data)
        except self._validation_error as exc:
            raise SerdeError(str(exc)) from exc

    def json_schema(self, mode: str = "validation") -> Any:
        """The JSON Schema pydantic derives for the hint."""
        return self._adapter.json_schema(mode=mode)


class MsgspecSerde:
    """JSON decoded by msgspec, for hints that are (or contain) ``msgspec.Struct`` types.

    Needs ``msgspec`` installed; Perdure does not depend on it.

    Example::

        class Point(msgspec.Struct):
            x: int
            y: int

        MsgspecSerde(Point).deserialize(b'{"x": 1, "y": 2}')   # Point(x=1, y=2)
    """

    def __init__(self, type_hint: Any) -> None:
        msgspec = importlib.import_module("msgspec")  # optional, as for pydantic above
        self.type_hint = type_hint
        self._msgspec = msgspec
        self._decoder = msgspec.json.Decoder(type_hint)
        self._encoder = msgspec.json.Encoder()

    def serialize(self, obj: Any) -> bytes:
        """Encode with msgspec; ``None`` becomes empty bytes."""
        if obj is None:
            return b""
        try:
            return bytes(self._encoder.encode(obj))
        except (TypeError, ValueError) as exc:
            raise SerdeError(f"cannot encode {type(obj).__name__}: {exc}") from exc

    def deserialize(self, data: bytes) -> Any:
        """Decode and validate with msgspec; empty bytes are ``None`` when the hint allows it."""
        if not data and accepts_none(self.type_hint):
            return None
        try:
            return self._decoder.decode(data)
        except self._msgspec.DecodeError as exc:
            raise SerdeError(str(exc)) from exc

    def json_schema(self, mode: str = "validation") -> Any:
        """The JSON Schema msgspec derives for the hint."""
        return self._msgspec.json.schema(self.type_hint)


# -- choosing a serde -------------------------------------------------------------------------


def serde_for(type_hint: Any) -> Serde[Any]:
    """The serde Perdure uses for a handler parameter or return value annotated ``type_hint``.

    ``bytes`` gets :class:`BytesSerde`; hints naming pydantic models or msgspec structs get
    :class:`PydanticSerde` / :class:`MsgspecSerde`; ``Any`` (or no hint) gets
    :class:`JsonSerde`; every other hint gets :class:`TypedJsonSerde`.

    Example::

        serde_for(int).deserialize(b"42")   # 42
        serde_for(bytes)                    # BytesSerde()
    """
    if type_hint is Any or type_hint is None or type_hint is object:
        return JsonSerde()
    core = _strip_optional(type_hint)
    if core is bytes or core is bytearray:
        return BytesSerde()
    if _mentions(type_hint, _is_pydantic_model):
        return PydanticSerde(type_hint)
    if _mentions(type_hint, _is_msgspec_struct):
        return MsgspecSerde(type_hint)
    return TypedJsonSerde(type_hint)


def _is_pydantic_model(tp: Any) -> bool:
    # Looking in sys.modules rather than importing: if the hint is a pydantic model, pydantic
    # is already loaded, and users without pydantic never pay for its import.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _is_msgspec_struct(tp: Any) -> bool:
    msgspec = sys.modules.get("msgspec")
    return msgspec is not None and isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def is_pydantic_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic model class (False when pydantic is not loaded)."""
    return _is_pydantic_model(tp)


def is_msgspec_struct(tp: Any) -> bool:
    """Whether ``tp`` is a ``msgspec.Struct`` subclass (False when msgspec is not loaded)."""
    return _is_msgspec_struct(tp)


def _mentions(
    tp: Any, predicate: Callable[[Any], bool], _seen: frozenset[int] = frozenset()
) -> bool:
    if predicate(tp):
        return True
    if id(tp) in _seen:
        return False
    return any(_mentions(arg, predicate, _seen | {id(tp)}) for arg in typing.get_args(tp))


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is types.UnionType


def _strip_optional(tp: Any) -> Any:
    """``Optional[X]`` -> ``X``; anything else unchanged."""
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def accepts_none(tp: Any) -> bool:
    """Whether ``None`` (an empty payload) is a valid value of the hint ``tp``."""
    if tp is Any or tp is None or tp is type(None) or tp is object:
        return True
    if _is_union(tp):
        return any(accepts_none(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is typing.Literal:
        return None in typing.get_args(tp)
    return False


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


# -- JSON value -> typed value ----------------------------------------------------------------


def convert(type_hint: Any, value: Any, path: str = "$") -> Any:
    """Check a decoded JSON ``value`` against ``type_hint`` and build the typed value.

    Raises :class:`SerdeError` naming the JSON path of the first mismatch.

    Example::

        convert(list[int], [1, 2])      # [1, 2]
        convert(list[int], [1, "x"])    # SerdeError: at $[1]: expected an integer, got "x"
    """
    if type_hint is Any or type_hint is object:
        return value
    if type_hint is None or type_hint is type(None):
        if value is None:
            return None
        raise _mismatch(path, "null", value)
    if isinstance(type_hint, typing.TypeVar):
        return value
    if type_hint is typing.LiteralString:
        type_hint = str
    origin = typing.get_origin(type_hint)
    if origin is not None:
        return _convert_generic(type_hint, origin, value, path)
    if isinstance(type_hint, type):
        return _convert_class(type_hint, value, path)
    return value  # an annotation we do not understand: keep the JSON value as it is


def _mismatch(path: str, expected: str, value: Any) -> SerdeError:
    shown = json.dumps(value) if not isinstance(value, dict | list) else type(value).__name__
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return SerdeError(f"at {path}: expected {expected}, got {shown}")


_SCALARS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    bool: ("a boolean", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _convert_class(cls: type, value: Any, path: str) -> Any:
    scalar = _SCALARS.get(cls)
    if scalar is not None:
        expected, check = scalar
        if not check(value):
            raise _mismatch(path, expected, value)
        return float(value) if cls is float else value
    if dataclasses.is_dataclass(cls):
        return _convert_dataclass(cls, value, path)
    if typing.is_typeddict(cls):
        return _convert_typeddict(cls, value, path)
    if issubclass(cls, enum.Enum):
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(json.dumps(m.value, default=str) for m in cls)
            raise _mismatch(path, f"one of {allowed}", value) from None
    if cls in (list, tuple, set, frozenset, dict):
        return _convert_generic(cls, cls, value, path)
    parser = _STRING_PARSERS.get(cls)
    if parser is not None:
        return _parse_string(cls, parser, value, path)
    return value


def _parse_date(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


_STRING_PARSERS: dict[type, Callable[[str], Any]] = {
    datetime.datetime: datetime.datetime.fromisoformat,
    datetime.date: _parse_date,
    datetime.time: datetime.time.fromisoformat,
    uuid.UUID: uuid.UUID,
    decimal.Decimal: decimal.Decimal,
}


def _parse_string(cls: type, parser: Callable[[str], Any], value: Any, path: str) -> Any:
    if cls is decimal.Decimal and isinstance(value, int | float) and not isinstance(value, bool):
        return decimal.Decimal(str(value))
    if not isinstance(value, str):
        raise _mismatch(path, f"a {cls.__name__} string", value)
    try:
        return parser(value)
    except (ValueError, decimal.InvalidOperation):
        raise _mismatch(path, f"a {cls.__name__} string", value) from None


def _convert_generic(tp: Any, origin: Any, value: Any, path: str) -> Any:
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _convert_union(tp, args, value, path)
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _mismatch(path, "one of " + ", ".join(json.dumps(a) for a in args), value)
    if origin is typing.Annotated:
        return convert(args[0], value, path)
    if origin in (list, set, frozenset) or _is_abc(origin, "Sequence", "MutableSequence", "Set"):
        if not isinstance(value, list):
            raise _mismatch(path, "an array", value)
        item = args[0] if args else Any
        items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if origin is frozenset:
            return frozenset(items)
        if origin is set or _is_abc(origin, "Set"):
            return set(items)
        return items
    if origin is tuple:
        return _convert_tuple(args, value, path)
    if origin is dict or _is_abc(origin, "Mapping", "MutableMapping"):
        if not isinstance(value, dict):
            raise _mismatch(path, "an object", value)
        val_type = args[1] if len(args) == 2 else Any
        return {k: convert(val_type, v, f"{path}.{k}") for k, v in value.items()}
    return convert(origin, value, path) if isinstance(origin, type) else value


def _is_abc(origin: Any, *names: str) -> bool:
    import collections.abc as cabc

    return any(origin is getattr(cabc, n) for n in names)


def _convert_union(tp: Any, args: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None and type(None) in args:
        return None
    # Exact scalar arms first, so Union[int, str] keeps 1 as 1 and "1" as "1".
    errors: list[str] = []
    for arm in sorted(args, key=lambda a: 0 if a in _SCALARS else 1):
        if arm is type(None):
            continue
        try:
            return convert(arm, value, path)
        except SerdeError as exc:
            errors.append(str(exc))
    raise SerdeError(f"at {path}: no member of {_type_name(tp)} fits: " + "; ".join(errors))


def _convert_tuple(args: tuple[Any, ...], value: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise _mismatch(path, "an array", value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if not args:
        return tuple(value)
    if len(value) != len(args):
        raise SerdeError(f"at {path}: expected an array of {len(args)} items, got {len(value)}")
    pairs = enumerate(zip(args, value, strict=True))
    return tuple(convert(a, v, f"{path}[{i}]") for i, (a, v) in pairs)


def _convert_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise _mismatch(path, f"an object ({cls.__name__})", value)
    hints = _resolved_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name in value:
            hint = hints.get(field.name, Any)
            kwargs[field.name] = convert(hint, value[field.name], f"{path}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SerdeError(f"at {path}: missing required field {field.name!r} of {cls.__name__}")
    return cls(**kwargs)


def _convert_typeddict(cls: type, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _mismatch(path, f"an object ({cls.__name__})", value)
    hints = _resolved_hints(cls)
    required: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
    for key in sorted(required):
        if key not in value:
            raise SerdeError(f"at {path}: missing required key {key!r} of {cls.__name__}")
    return {k: convert(hints[k], v, f"{path}.{k}") if k in hints else v for k, v in value.items()}


def _resolved_hints(cls: type) -> Mapping[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError):
        # A forward reference we cannot resolve: fall back to the raw annotations.
        return typing.cast(Mapping[str, Any], getattr(cls, "__annotations__", {}))
