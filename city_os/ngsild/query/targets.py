"""Where a q term looks inside an entity: the paths both q engines follow, as data.

Layer: ngsild/ (pure). A q path (``temperature.accuracy``, ``address[city]``, ``label[ja]``)
names an attribute, then sub-attributes or one instance member, then keys inside the value; the
term compares the value members of what the path reaches (docs/storage.md): ``value``,
``object``, ``languageMap`` entries and so on, per kind of comparison. The SQL engine renders
these steps as jsonpath (store/postgres/query_sql.py), the in-process evaluator walks them with
jsonpath's lax semantics (evaluate_q.py): one description, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Final

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import AttrPath, Range, Temporal, Value, ValueList
from city_os.ngsild.query.entity_selection import Expand


class Strings:
    """A step keeping only the strings among the items: ``? (@.type() == "string")``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STRINGS"


ANY: Final = "*"  # a step to every member of an object (jsonpath ``.*``)
STRINGS: Final = Strings()
Step = str | Strings
Target = tuple[Step, ...]

# Members of an attribute instance that a dot path may address; stored under these plain
# names (docs/storage.md), so they are never expanded.
INSTANCE_MEMBERS: Final = frozenset(
    {
        "observedAt",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "unitCode",
        "datasetId",
        "objectType",
        "instanceId",
    }
)

# Where the value of an instance lives, per kind of comparison.
EQUALITY: Final[tuple[Target, ...]] = (
    ("value",),
    ("object",),
    ("objectList",),
    ("vocab",),
    ("languageMap", ANY),
    ("json",),
    ("valueList",),
)
# Relationships (object, objectList) only match == and != (§4.9); VocabProperty alike.
ORDER: Final[tuple[Target, ...]] = (("value",), ("languageMap", ANY), ("json",), ("valueList",))
# Date-time text: a string value, the @value of a typed value ({"@type": "DateTime", …}), lists.
TEMPORAL: Final[tuple[Target, ...]] = (("value", STRINGS), ("value", "@value"), ("valueList",))


def prefix(path: AttrPath, expand: Expand) -> tuple[tuple[str, ...], bool]:
    """The attribute IRI and the sub-attribute IRIs or member a path walks through; True if it
    ends at an instance member (``observedAt``…), after which nothing may follow but keys."""
    steps = [expand(path.names[0])]
    member = False
    for name in path.names[1:]:
        if member:
            raise BadRequestData(f"q: {name!r} cannot follow an attribute's member")
        if name in INSTANCE_MEMBERS:
            member = True
            steps.append(name)
        else:
            steps.append(expand(name))
    return tuple(steps), member


def targets(path: AttrPath, member: bool, defaults: tuple[Target, ...]) -> tuple[Target, ...]:
    """The target values of a path, relative to what its prefix reaches."""
    keys = path.keys
    if member:
        return (keys,)
    if keys:
        found: list[Target] = [("value", *keys), ("json", *keys)]
        if len(keys) == 1:  # a language tag (or * for any language)
            found.append(("languageMap", *keys))
        return tuple(found)
    return defaults


def first_value(value: Value | Range | ValueList) -> Value:
    """The literal whose kind decides where a comparison looks (a range's low, a list's first)."""
    sample = value.low if isinstance(value, Range) else value
    return sample.items[0] if isinstance(sample, ValueList) else sample


def comparison_targets(
    path: AttrPath, member: bool, op: str, value: Value | Range | ValueList
) -> tuple[Target, ...]:
    """Temporal literals look at date-time text, equality at every value member, order
    comparisons at the members that can be ordered."""
    if isinstance(first_value(value), Temporal):
        defaults = TEMPORAL
    elif op in ("==", "!="):
        defaults = EQUALITY
    else:
        defaults = ORDER
    return targets(path, member, defaults)


def mentions_time(value: Value | Range | ValueList) -> bool:
    """Whether any literal is a date/time: then values are compared as instants, with time
    zones (a stored ``+09:00`` date-time against a UTC literal)."""
    if isinstance(value, Range):
        return isinstance(value.low, Temporal)
    if isinstance(value, ValueList):
        return any(isinstance(item, Temporal) for item in value.items)
    return isinstance(value, Temporal)
