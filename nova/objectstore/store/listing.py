"""
One page of a bucket listing (ListObjects v1 and v2) over the L{ObjectIndex}.

The walk reads keys in byte order from the first one after the marker, in
batches. With a delimiter, the keys that roll up into one common prefix are
skipped, not read: after the first key of a rolled-up range, the next batch
starts just past every string with that prefix (C{"(" + prefix + b"\\xff"}:
no UTF-8 string holds the byte 0xff, so every key starting with the prefix
sorts before it). A page is thus a handful of round trips whatever the size
of the bucket or of the rolled-up ranges.

Python compares C{str} by code point, which is UTF-8 byte order, so the
comparisons here agree with the datastore's order.
"""

from __future__ import annotations

from nova.objectstore import errors
from nova.objectstore.interfaces import Listing
from nova.objectstore.store.index import ObjectIndex

#: the most keys one round trip fetches
MAX_BATCH = 1001

#: the first batch when a delimiter may roll many keys into one entry
MIN_ROLLUP_BATCH = 32


def past(prefix: str) -> bytes:
    """@return: an exclusive lex bound just after every string that starts with C{prefix}."""
    return b"(" + prefix.encode("utf-8") + b"\xff"


def _start(prefix: str, delimiter: str, after: str) -> bytes:
    """@return: the lower bound where the page begins."""
    if not after or after < prefix:
        return b"[" + prefix.encode("utf-8") if prefix else b"-"
    if delimiter and after.startswith(prefix):
        cut = after.find(delimiter, len(prefix))
        if cut >= 0:
            # the marker is in (or is) a rolled-up prefix: that prefix was
            # listed already, so is everything that rolls up into it
            return past(after[:cut + len(delimiter)])
    return b"(" + after.encode("utf-8")


async def list_page(index: ObjectIndex, bucket: str, prefix: str = "", delimiter: str = "",
                    after: str = "", max_keys: int = 1000) -> Listing:
    """
    @param index: the bucket's index.
    @param bucket: the bucket (which the caller checked exists).
    @param prefix: only keys starting with it.
    @param delimiter: roll keys up at the first C{delimiter} after C{prefix}.
    @param after: only keys (and common prefixes) after it: v1's marker, v2's
        start-after or continuation token.
    @param max_keys: the most entries (keys plus common prefixes) on the page.
    @return: the page.
    @raise InvalidArgument: a negative C{max_keys}.
    """
    if max_keys < 0:
        raise errors.InvalidArgument("max-keys must not be negative")
    if max_keys == 0:
        return Listing(contents=(), common_prefixes=(), is_truncated=False, next_marker=None)
    end: str | bytes = past(prefix) if prefix else b"+"
    start = _start(prefix, delimiter, after)
    names: list[str] = []
    prefixes: list[str] = []
    last: str | None = None
    truncated = False
    rolling: str | None = None  # the common prefix the walk is inside of
    # With a delimiter, batches start small and double while no range is
    # skipped: reading keys that will be rolled up and dropped costs far more
    # (decoding them) than another round trip does.
    batch_size = MIN_ROLLUP_BATCH
    while not truncated:
        want = max_keys - len(names) - len(prefixes) + 1  # one more tells truncation
        if delimiter:
            want = min(want, batch_size)
        want = min(want, MAX_BATCH)
        batch = await index.keys_between(bucket, start, end, want)
        for key in batch:
            if rolling is not None and key.startswith(rolling):
                continue
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            entry = key[:cut + len(delimiter)] if cut >= 0 else key
            if len(names) + len(prefixes) == max_keys:
                truncated = True
                break
            if cut >= 0:
                rolling = entry
                prefixes.append(entry)
            else:
                names.append(key)
            last = entry
        if truncated or len(batch) < want:
            break
        tail = batch[-1]
        if rolling is not None and tail.startswith(rolling):
            start = past(rolling)
            batch_size = MIN_ROLLUP_BATCH
        else:
            start = b"(" + tail.encode("utf-8")
            batch_size = min(batch_size * 2, MAX_BATCH)
    contents = tuple(info for info in await index.summaries(bucket, names) if info is not None)
    return Listing(contents=contents, common_prefixes=tuple(prefixes),
                   is_truncated=truncated, next_marker=last if truncated else None)

