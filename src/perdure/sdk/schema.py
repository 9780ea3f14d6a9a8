"""JSON Schema (draft 2020-12) for handler inputs and outputs, derived from their type hints."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import importlib
import types
import typing
import uuid
from typing import Any, Literal

from perdure.sdk.serde import is_msgspec_struct, is_pydantic_model

__all__ = ["json_schema"]

JsonSchema = dict[str, Any] | bool

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    decimal.Decimal: {"type": "string", "format": "decimal"},
}


def json_schema(
    type_hint: Any, *, mode: Literal["validation", "serialization"] = "validation"
) -> JsonSchema:
    """The JSON Schema of the values a handler accepts (validation) or returns (serialization).

    Dataclasses and TypedDicts become objects listed under ``$defs``; pydantic models and
    msgspec structs use their own libraries' schemas; an unknown hint gives ``True`` (any value).

    Example::

        json_schema(list[int])   # {'type': 'array', 'items': {'type': 'integer'}}
    """
    if is_pydantic_model(type_hint) or _is_container_of(type_hint, is_pydantic_model):
        pydantic = importlib.import_module("pydantic")
        return dict(pydantic.TypeAdapter(type_hint).json_schema(mode=mode))
    if is_msgspec_struct(type_hint) or _is_container_of(type_hint, is_msgspec_struct):
        msgspec = importlib.import_module("msgspec")
        return dict(msgspec.json.schema(type_hint))
    builder = _Builder()
    root = builder.schema(type_hint, root=True)
    if builder.defs and isinstance(root, dict):
        root = {**root, "$defs": dict(sorted(builder.defs.items()))}
    return root


def _is_container_of(tp: Any, predicate: typing.Callable[[Any], bool]) -> bool:
    return any(predicate(a) or _is_container_of(a, predicate) for a in typing.get_args(tp))


class _Builder:
    """Walks one hint; collects named object schemas in ``defs`` so recursion terminates."""

    def __init__(self) -> None:
        self.defs: dict[str, JsonSchema] = {}
        self._root: Any = None

    def schema(self, tp: Any, *, root: bool = False) -> JsonSchema:
        if tp is Any or tp is object:
            return True
        if tp is None:
            tp = type(None)
        scalar = _SCALARS.get(tp)
        if scalar is not None:
            return dict(scalar)
        origin = typing.get_origin(tp)
        if origin is not None:
            return self._generic(tp, origin)
        if isinstance(tp, type):
            return self._class(tp, root=root)
        return True

    def _generic(self, tp: Any, origin: Any) -> JsonSchema:
        args = typing.get_args(tp)
        if origin is typing.Union or origin is types.UnionType:
            return _union([self.schema(a) for a in args])
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin is typing.Annotated:
            return self.schema(args[0])
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.schema(args[0])}
            if not args:
                return {"type": "array"}
            return {
                "type": "array",
                "prefixItems": [self.schema(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if origin in (list, set, frozenset) or _abc(origin, "Sequence", "MutableSequence", "Set"):
            schema: dict[str, Any] = {"type": "array"}
            if args:
                schema["items"] = self.schema(args[0])
            if origin in (set, frozenset) or _abc(origin, "Set"):
                schema["uniqueItems"] = True
            return schema
        if origin is dict or _abc(origin, "Mapping", "MutableMapping"):
            schema = {"type": "object"}
            if len(args) == 2 and args[1] is not Any:
                schema["additionalProperties"] = self.schema(args[1])
            return schema
        return self.schema(origin) if isinstance(origin, type) else True

    def _class(self, cls: type, *, root: bool) -> JsonSchema:
        if cls in (list, tuple, set, frozenset):
            return {"type": "array"}
        if cls is dict:
            return {"type": "object"}
        if issubclass(cls, enum.Enum):
            return {"title": cls.__name__, "enum": [m.value for m in cls]}
        if dataclasses.is_dataclass(cls) or typing.is_typeddict(cls):
            return self._named_object(cls, root=root)
        return True

    def _named_object(self, cls: type, *, root: bool) -> JsonSchema:
        # The root object is written inline (as pydantic does); nested ones go to $defs and are
        # referenced, which is also what lets a recursive type terminate.
        if root:
            self._root = cls
        elif cls is self._root:
            return {"$ref": "#"}
        else:
            ref = {"$ref": f"#/$defs/{cls.__name__}"}
            if cls.__name__ in self.defs:
                return ref
            self.defs[cls.__name__] = True  # placeholder while the fields are walked
        body = self._object_body(cls)
        if root:
            return body
        self.defs[cls.__name__] = body
        return ref

    def _object_body(self, cls: type) -> dict[str, Any]:
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError):
            hints = dict(getattr(cls, "__annotations__", {}))
        properties: dict[str, Any] = {}
        required: list[str] = []
        if dataclasses.is_dataclass(cls):
            for field in dataclasses.fields(cls):
                properties[field.name] = self.schema(hints.get(field.name, Any))
                no_default = field.default is dataclasses.MISSING
                if no_default and field.default_factory is dataclasses.MISSING:
                    required.append(field.name)
        else:
            required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
            for name, hint in hints.items():
                properties[name] = self.schema(hint)
                if name in required_keys:
                    required.append(name)
        body: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": properties}
        if required:
            body["required"] = required
        return body


def _abc(origin: Any, *names: str) -> bool:
    import collections.abc as cabc

    return any(origin is getattr(cabc, n) for n in names)


def _union(arms: list[JsonSchema]) -> JsonSchema:
    if any(a is True for a in arms):
        return True
    simple = [a for a in arms if isinstance(a, dict) and set(a) == {"type"}]
    if len(simple) == len(arms):
        # Optional[int] reads better as {"type": ["integer", "null"]} than as an anyOf.
        types_: list[Any] = []
        for arm in simple:
            assert isinstance(arm, dict)
            types_.append(arm["type"])
        return {"type": types_}
    return {"anyOf": arms}
