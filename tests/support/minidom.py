"""Writing XML the way euca2ools did (xml.dom.minidom), for manifest tests."""

from __future__ import annotations

from typing import Any, Callable
from xml.dom.minidom import Document


def element_adder(doc: Document) -> Callable[..., Any]:
    """
    @return: C{add(parent, tag, text=None, **attributes)}, which appends a new
        element of C{doc} to C{parent} and returns it.
    """
    def add(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
        elem = doc.createElement(tag)
        for name, value in attrs.items():
            elem.setAttribute(name, value)
        if text is not None:
            elem.appendChild(doc.createTextNode(text))
        parent.appendChild(elem)
        return elem
    return add
