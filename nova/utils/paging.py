"""
EC2 NextTokens for listings ordered by (time, id): an opaque, URL-safe
encoding of the position to resume after, shared by every paged Describe.
"""

from __future__ import annotations

import base64
import binascii
import json

from nova.exception import InvalidParameterValue


class InvalidPaginationToken(InvalidParameterValue):
    """A NextToken this cloud did not hand out."""

    code = "InvalidPaginationToken"


def encode_token(score: float, member: str) -> str:
    """@return: a NextToken that resumes after the item at (C{score}, C{member})."""
    raw = json.dumps([score, member], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_token(token: str) -> tuple[float, str]:
    """
    @return: the position an L{encode_token} token names.
    @raise InvalidPaginationToken: not one of ours.
    """
    try:
        score, member = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if not isinstance(member, str) or isinstance(score, bool):
            raise ValueError(member)
        return float(score), member
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise InvalidPaginationToken(f"Invalid NextToken '{token}'") from None
