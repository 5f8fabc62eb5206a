"""EC2 filter values: C{*} matches any run, C{?} one character, a backslash escapes."""

from __future__ import annotations

import re
from typing import Mapping


def wildcard(pattern: str) -> re.Pattern[str]:
    """
    @param pattern: an EC2 filter value.
    @return: a regex matching exactly the strings the pattern matches (use C{match}).
    """
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def matches(filters: Mapping[str, list[str]], fields: Mapping[str, str | None]) -> bool:
    """
    @return: whether a resource with C{fields} passes every filter (a filter
        passes when any of its values matches).
    """
    for name, patterns in filters.items():
        value = fields.get(name)
        if value is None or not any(wildcard(p).match(value) for p in patterns):
            return False
    return True
