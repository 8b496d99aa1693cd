"""Steps of PostgreSQL's jsonpath in lax mode, on decoded JSON (the in-process q evaluator's walk).

Layer: ngsild/ (pure). Lax mode unwraps arrays one level where strict mode would raise: ``[*]``
gives an array's elements or a non-array itself; a member step (``."k"``, ``.*``) on an array
steps into each element that is an object; a filter tests each element of an array; the left
side of a comparison counts an array by its elements. These few rules make "any instance, any
array element" of §4.9 without special cases (evaluate_q.py uses them; targets.py names the
steps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from city_os.ngsild.query import targets

Predicate = Callable[[Any], bool]  # on one element a filter tests


def elements(items: Iterable[Any], each: bool = False) -> list[Any]:
    """``[*]``: the elements of an array, else the item itself (``each``: of every item)."""
    if not each:
        return list(items) if isinstance(items, list) else [items]
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


def step_into(items: Iterable[Any], step: targets.Step) -> list[Any]:
    """A member step (or the strings filter) on every item, arrays unwrapped one level."""
    out: list[Any] = []
    if isinstance(step, targets.Strings):
        for item in items:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, list):
                out.extend(e for e in item if isinstance(e, str))
        return out
    for item in items:
        if isinstance(item, dict):
            _member(item, step, out)
        elif isinstance(item, list):
            for element in item:
                if isinstance(element, dict):
                    _member(element, step, out)
    return out


def _member(obj: dict[str, Any], step: str, out: list[Any]) -> None:
    if step == targets.ANY:
        out.extend(obj.values())
    elif step in obj:
        out.append(obj[step])


def walk(item: Any, target: targets.Target) -> list[Any]:
    """Every value a target path reaches from one item."""
    if len(target) == 1 and isinstance(item, dict):  # the common case: one member
        first = target[0]
        if isinstance(first, str) and first != targets.ANY:
            return [item[first]] if first in item else []
    items = [item]
    for step in target:
        items = step_into(items, step)
    return items


def any_element(items: list[Any], predicate: Predicate) -> bool:
    """``exists(items ? (predicate))``: arrays among the items are tested element-wise."""
    for item in items:
        if isinstance(item, list):
            for element in item:
                if predicate(element):
                    return True
        elif predicate(item):
            return True
    return False


def unwrap(element: Any) -> list[Any]:
    """A comparison's left side: an array element that is an array counts by its elements."""
    return element if isinstance(element, list) else [element]
