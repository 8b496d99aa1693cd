"""The grammar the type selection (§4.17) and scope query (§4.19) languages share.

Pure, no I/O. ``|`` or ``,`` is OR; ``;`` is AND and binds tighter, inside parentheses or bare:
``(A;B)|C``; parentheses may group any expression (``(A|B);C`` means ``(A;C)|(B;C)``).
Subclasses parse one atom and build their AND/OR nodes; syntax errors raise ``BadRequestData``
naming the 1-based position.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

from city_os.errors import BadRequestData
from city_os.ngsild.query.q import check_text

MAX_LENGTH: Final = 4096
MAX_ALTERNATIVES: Final = 256  # a bound on what distributing AND over OR may produce
Atom = TypeVar("Atom")
Conj = TypeVar("Conj")
Expr = TypeVar("Expr")


class SelectionParser(Generic[Atom, Conj, Expr]):
    label = "selection"

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    # -- what subclasses provide
    def atom(self) -> Atom:
        raise NotImplementedError

    def conjoin(self, atoms: list[Atom]) -> Atom | Conj:
        raise NotImplementedError

    def disjoin(self, terms: list[Atom | Conj]) -> Expr:
        raise NotImplementedError

    # -- the shared grammar
    def error(self, message: str) -> BadRequestData:
        return BadRequestData(f"{self.label}: {message} at position {self.i + 1}")

    def found(self) -> str:
        return "end of input" if self.i >= len(self.s) else repr(self.s[self.i])

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def parse(self) -> Atom | Conj | Expr:
        if not self.s:
            raise BadRequestData(f"{self.label}: empty expression")
        if len(self.s) > MAX_LENGTH:
            raise BadRequestData(f"{self.label}: longer than {MAX_LENGTH} characters")
        check_text(self.s, self.label)
        alternatives = self.disjunction()
        if self.i < len(self.s):
            raise self.error(f"unexpected {self.found()}")
        terms = [a[0] if len(a) == 1 else self.conjoin(a) for a in alternatives]
        return terms[0] if len(terms) == 1 else self.disjoin(terms)

    # Expressions are kept as alternatives of conjunctions (disjunctive normal form), so a
    # parenthesised disjunction anywhere, as in ``(A|B);C``, becomes ``(A;C)|(B;C)``.

    def disjunction(self) -> list[list[Atom]]:
        alternatives = self.conjunction()
        while self.peek() in ("|", ","):
            self.i += 1
            alternatives.extend(self.conjunction())
        return alternatives

    def conjunction(self) -> list[list[Atom]]:
        alternatives = self.primary()
        while self.peek() == ";":
            self.i += 1
            right = self.primary()
            alternatives = [left + more for left in alternatives for more in right]
            if len(alternatives) > MAX_ALTERNATIVES:
                raise self.error(f"more than {MAX_ALTERNATIVES} alternatives")
        return alternatives

    def primary(self) -> list[list[Atom]]:
        if self.peek() != "(":
            return [[self.atom()]]
        self.i += 1
        alternatives = self.disjunction()
        if self.peek() != ")":
            raise self.error(f"expected ')', found {self.found()}")
        self.i += 1
        return alternatives
