"""The part of CEL that KubeRay's CRD rules (``x-kubernetes-validations``) are written in, evaluated
as the API server does when a resource is created.

Understood: ``self`` and its fields (``self.a.b``), ``has(self.a)``, string literals, lists of them,
``==``, ``!=``, ``in``, ``!``, ``&&``, ``||`` and parentheses. A rule that uses ``oldSelf`` is a
transition rule: it compares an update with the stored object and does not apply on create.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Evaluate = Callable[[Any], Any]

_TOKEN = re.compile(r"\s*(?:(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>&&|\|\||==|!=|[!().,\[\]])"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*))")


class UnsupportedRule(ValueError):
    """A rule written in more of CEL than this module understands."""


class _NoSuchField(Exception):
    """A field the rule reads is absent: CEL's evaluation error, which skate does not report."""


def compile_rule(rule: str) -> Callable[[Any], bool] | None:
    """A function that says whether a value passes ``rule``; ``None`` for a transition rule.

    Raises:
        UnsupportedRule: for a rule outside the understood part of CEL.
    """
    tokens = _tokenize(rule)
    if "oldSelf" in tokens:
        return None
    parser = _Parser(tokens, rule)
    evaluate = parser.expression()
    if parser.peek() is not None:
        raise UnsupportedRule(f"unexpected {parser.peek()!r} in CEL rule {rule!r}")

    def passes(value: Any) -> bool:
        try:
            return bool(evaluate(value))
        except _NoSuchField:
            return True

    return passes


def _tokenize(rule: str) -> list[str]:
    tokens, position = [], 0
    while position < len(rule.rstrip()):
        match = _TOKEN.match(rule, position)
        if match is None or match.end() == position:
            raise UnsupportedRule(f"cannot read CEL rule {rule!r} at {rule[position:]!r}")
        tokens.append(match.group(match.lastgroup or 0))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], rule: str) -> None:
        self.tokens, self.rule, self.index = tokens, rule, 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise UnsupportedRule(f"expected {expected or 'more'} in CEL rule {self.rule!r}, got {token!r}")
        self.index += 1
        return token

    def expression(self) -> Evaluate:
        terms = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else lambda value: any(term(value) for term in terms)

    def conjunction(self) -> Evaluate:
        terms = [self.negation()]
        while self.peek() == "&&":
            self.take()
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else lambda value: all(term(value) for term in terms)

    def negation(self) -> Evaluate:
        if self.peek() == "!":
            self.take()
            inner = self.negation()
            return lambda value: not inner(value)
        return self.comparison()

    def comparison(self) -> Evaluate:
        left = self.operand()
        operator = self.peek()
        if operator not in ("==", "!=", "in"):
            return left
        self.take()
        right = self.operand()
        if operator == "in":
            return lambda value: left(value) in right(value)
        if operator == "==":
            return lambda value: left(value) == right(value)
        return lambda value: left(value) != right(value)

    def operand(self) -> Evaluate:
        token = self.take()
        if token == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if token == "[":
            items: list[Evaluate] = []
            while self.peek() != "]":
                if items:
                    self.take(",")
                items.append(self.operand())
            self.take("]")
            return lambda value: [item(value) for item in items]
        if token[0] in "'\"":
            return lambda value: token[1:-1]
        if token == "has":
            self.take("(")
            self.take("self")
            fields = self.fields()
            self.take(")")
            if not fields:
                raise UnsupportedRule(f"has() needs a field in CEL rule {self.rule!r}")
            parent, last = _select(fields[:-1]), fields[-1]
            return lambda value: isinstance(parent(value), dict) and last in parent(value)
        if token == "self":
            return _select(self.fields())
        raise UnsupportedRule(f"unexpected {token!r} in CEL rule {self.rule!r}")

    def fields(self) -> list[str]:
        names = []
        while self.peek() == ".":
            self.take()
            name = self.take()
            if not name.isidentifier():
                raise UnsupportedRule(f"expected a field name after '.' in CEL rule {self.rule!r}, got {name!r}")
            names.append(name)
        return names


def _select(fields: list[str]) -> Evaluate:
    def get(value: Any) -> Any:
        for name in fields:
            if not (isinstance(value, dict) and name in value):
                raise _NoSuchField(name)
            value = value[name]
        return value
    return get
