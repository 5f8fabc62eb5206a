"""
Reading EC2 Query parameters: flat names such as C{KeyName.1} and
C{Filter.1.Value.2} turned into typed values, with EC2's errors for what is
missing or malformed.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from nova.exception import InvalidParameterValue, MissingParameter
from nova.utils.filters import matches

__all__ = ["Params", "matches"]

_INDEXED = re.compile(r"^(\d+)(?:\.(.*))?$")


class Params:
    """
    The parameters of one request, minus those that belong to signing.

    @ivar raw: name to value.
    """

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = dict(raw)

    def get(self, name: str, default: str | None = None) -> str | None:
        """@return: the value of C{name}, or C{default}."""
        return self.raw.get(name, default)

    def require(self, name: str) -> str:
        """
        @return: the value of C{name}.
        @raise MissingParameter: it is absent or empty.
        """
        value = self.raw.get(name)
        if value is None or value == "":
            raise MissingParameter(f"The request must contain the parameter {name}")
        return value

    def get_bool(self, name: str, default: bool = False) -> bool:
        """@return: C{name} as a boolean (C{true}/C{false}, any case)."""
        value = self.raw.get(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise InvalidParameterValue(f"Value ({value}) for parameter {name} is invalid. "
                                    "Expected a boolean.")

    def get_int(self, name: str, default: int | None = None, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        """@return: C{name} as an integer within the given bounds."""
        value = self.raw.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise InvalidParameterValue(
                f"Value ({value}) for parameter {name} is invalid. Expected an integer."
            ) from None
        if (minimum is not None and number < minimum) or \
                (maximum is not None and number > maximum):
            raise InvalidParameterValue(f"Value ({value}) for parameter {name} is out of range.")
        return number

    def get_indexed(self, prefix: str) -> dict[int, dict[str, str]]:
        """
        @return: the members of an indexed structure: C{LaunchPermission.Add.1.Group}
            is C{{1: {"Group": ...}}} for the prefix C{LaunchPermission.Add}
            (a plain C{Prefix.1} is under the key C{""}).
        @raise InvalidParameterValue: a name under the prefix without an index.
        """
        found: dict[int, dict[str, str]] = {}
        start = prefix + "."
        for name, value in self.raw.items():
            if not name.startswith(start):
                continue
            match = _INDEXED.match(name[len(start):])
            if match is None:
                raise InvalidParameterValue(f"The parameter {name} is not recognized")
            found.setdefault(int(match.group(1)), {})[match.group(2) or ""] = value
        return found

    def get_list(self, prefix: str) -> list[str]:
        """@return: the values of C{prefix.1}, C{prefix.2}, ... in index order."""
        indexed = self.get_indexed(prefix)
        values = []
        for index in sorted(indexed):
            entry = indexed[index]
            if "" not in entry:
                raise InvalidParameterValue(f"The parameter {prefix}.{index} is malformed")
            values.append(entry[""])
        return values

    def get_filters(self, allowed: Iterable[str]) -> dict[str, list[str]]:
        """
        @param allowed: the filter names this action understands.
        @return: filter name to the list of accepted values.
        @raise InvalidParameterValue: an unknown filter or one without values.
        """
        allowed = set(allowed)
        filters: dict[str, list[str]] = {}
        indexed = self.get_indexed("Filter")
        for index in sorted(indexed):
            entry = indexed[index]
            name = entry.get("Name")
            if not name:
                raise MissingParameter(f"The request must contain the parameter Filter.{index}.Name")
            if name not in allowed:
                raise InvalidParameterValue(f"The filter '{name}' is invalid")
            values = [entry[k] for k in sorted(
                (k for k in entry if k.startswith("Value.")),
                key=lambda k: int(k.split(".", 1)[1]) if k.split(".", 1)[1].isdigit() else 0)]
            if not values:
                raise InvalidParameterValue(f"The filter '{name}' has no values")
            filters.setdefault(name, []).extend(values)
        return filters
