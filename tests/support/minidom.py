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


def manifest_document(bundler_version: str) -> tuple[Document, Any, Callable[..., Any]]:
    """
    @return: a new manifest document as euca2ools starts one (C{<manifest>} with
        C{<version>} and C{<bundler>}), its root, and its L{element_adder}.
    """
    doc = Document()
    root = doc.createElement("manifest")
    doc.appendChild(root)
    add = element_adder(doc)
    add(root, "version", "2007-10-10")
    bundler = add(root, "bundler")
    for tag, text in (("name", "euca-tools"), ("version", bundler_version),
                      ("release", "31337")):
        add(bundler, tag, text)
    return doc, root, add
