"""Parse a PMML document once, safely, keeping each element's line for error messages.

defusedxml refuses DTDs, entity declarations and external references; the size is bounded by
`byom.formats.check_size` before any parsing. Elements are plain ElementTree elements with
namespaces stripped from their tags, so the compiler matches local names only.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder

from byom.errors import InvalidModelError, UnsafeModelError, UnsupportedPmmlError
from byom.formats import check_size

#: Deepest element nesting a document may have (trees are limited to 250 levels, expressions
#: and predicates to `scope.MAX_NESTING`); deeper documents are refused while parsing.
MAX_DEPTH = 1000


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class Document:
    """The parsed tree plus the line of every element."""

    def __init__(self, root: Element, lines: dict[int, int], who: str) -> None:
        self.root = root
        self._lines = lines
        self.who = who

    def line(self, element: Element) -> int | None:
        return self._lines.get(id(element))

    def unsupported(self, element: Element, what: str | None = None) -> UnsupportedPmmlError:
        return UnsupportedPmmlError(what or f"<{element.tag}>", self.line(element), self.who)

    def invalid(self, element: Element, problem: str) -> InvalidModelError:
        line = self.line(element)
        where = f" at line {line}" if line else ""
        return InvalidModelError(f"{self.who}: <{element.tag}>{where} {problem}")


def parse(blob: bytes, who: str = "the PMML model") -> Document:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    check_size(blob)
    lines: dict[int, int] = {}
    depth = [0]

    class _Builder(TreeBuilder):
        def start(self, tag: Any, attrs: Any) -> Element:
            depth[0] += 1
            line = parser.parser.CurrentLineNumber
            if depth[0] > MAX_DEPTH:
                raise _TooDeep(line)
            element = super().start(tag.rsplit("}", 1)[-1], attrs)
            lines[id(element)] = line
            return element

        def end(self, tag: Any) -> Element:
            depth[0] -= 1
            return super().end(tag.rsplit("}", 1)[-1])

    parser = DefusedXMLParser(
        target=_Builder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(blob)
        root = parser.close()
    except DefusedXmlException as exc:
        raise UnsafeModelError(f"{who} uses a forbidden XML feature: {exc}") from exc
    except _TooDeep as exc:
        raise InvalidModelError(
            f"{who}: the element at line {exc.line} is nested deeper than {MAX_DEPTH} levels, "
            "deeper than any model byom evaluates: flatten the document (DerivedFields that "
            "refer to one another instead of nested expressions)"
        ) from None
    except Exception as exc:
        raise InvalidModelError(f"{who} is not well-formed XML: {exc}") from exc
    if root.tag != "PMML":
        raise InvalidModelError(f"{who}: the root element is <{root.tag}>, not <PMML>")
    return Document(root, lines, who)


def child(element: Element, tag: str) -> Element | None:
    for c in element:
        if c.tag == tag:
            return c
    return None


def children(element: Element, tag: str) -> list[Element]:
    return [c for c in element if c.tag == tag]


def text_of(element: Element) -> str:
    return (element.text or "").strip()
