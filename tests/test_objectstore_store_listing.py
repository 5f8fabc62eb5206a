"""
Listing a bucket (L{FilesystemObjectStore.list_objects}): a table of cases
(prefix, delimiter, marker, max-keys, UTF-8 byte order), paging checked
against a brute-force model, and a 100,000-key bucket listed page by page.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.trial import unittest

from nova.objectstore import errors
from nova.objectstore.interfaces import ObjectInfo
from nova.objectstore.store.index import ObjectIndex
from tests.test_objectstore_store_harness import (OWNER, MemoryStoreHarness, RedisStoreHarness,
                                                  StoreHarness)

KEYS = ["a", "a/1", "a/2/x", "a/2/y", "a/3", "ab", "b", "b/", "b//c", "c\u00e9",
        "c\U0001f600", "cz", "d\x00", "d/e"]

E, S, D = "c\u00e9", "c\U0001f600", "d\x00"
ALL = ["a", "a/1", "a/2/x", "a/2/y", "a/3", "ab", "b", "b/", "b//c", "cz", E, S, D, "d/e"]

#: (prefix, delimiter, after, max_keys) -> (keys, common prefixes, is_truncated, next_marker)
CASES: list[tuple[tuple[str, str, str, int], tuple[list[str], list[str], bool, str | None]]] = [
    (("", "", "", 1000), (ALL, [], False, None)),
    (("", "/", "", 1000), (["a", "ab", "b", "cz", E, S, D], ["a/", "b/", "d/"], False, None)),
    (("a/", "/", "", 1000), (["a/1", "a/3"], ["a/2/"], False, None)),
    (("a", "/", "", 1000), (["a", "ab"], ["a/"], False, None)),
    (("", "/", "", 2), (["a"], ["a/"], True, "a/")),
    (("", "/", "a/", 2), (["ab", "b"], [], True, "b")),
    (("", "/", "a/2/x", 3), (["ab", "b"], ["b/"], True, "b/")),
    (("", "", "b", 3), (["b/", "b//c", "cz"], [], True, "cz")),
    (("b/", "/", "", 10), (["b/"], ["b//"], False, None)),
    (("c", "", "", 10), (["cz", E, S], [], False, None)),
    ((E, "", "", 10), ([E], [], False, None)),
    (("", "", E, 2), ([S, D], [], True, D)),
    (("zzz", "", "", 10), ([], [], False, None)),
    (("", "", "d/e", 10), ([], [], False, None)),
    (("", "/", "", 0), ([], [], False, None)),
    (("a/", "/", "0", 10), (["a/1", "a/3"], ["a/2/"], False, None)),
    (("", "2/", "", 20), ([k for k in ALL if "2/" not in k], ["a/2/"], False, None)),
    (("", "", "", 1), (["a"], [], True, "a")),
    (("a/", "", "a/2/x", 10), (["a/2/y", "a/3"], [], False, None)),
    (("", "\x00", "", 20), ([k for k in ALL if k != D], [D], False, None)),
    (("a/2/", "/", "a/2/x", 10), (["a/2/y"], [], False, None)),
    (("", "/", "b/", 10), (["cz", E, S, D], ["d/"], False, None)),
]


def model(keys: list[str], prefix: str, delimiter: str, after: str,
          max_keys: int) -> tuple[list[str], list[str], bool, str | None]:
    """The listing, by brute force over every key."""
    if max_keys == 0:
        return [], [], False, None  # as S3 answers max-keys=0: nothing, not truncated
    entries: list[tuple[str, bool]] = []
    for key in sorted(keys, key=lambda k: k.encode("utf-8")):
        if not key.startswith(prefix) or key <= after:
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = (key[:cut + len(delimiter)], True) if cut >= 0 else (key, False)
        if entry[0] <= after or (entries and entries[-1] == entry):
            continue
        entries.append(entry)
    page = entries[:max_keys]
    truncated = len(entries) > max_keys
    return ([e for e, rolled in page if not rolled], [e for e, rolled in page if rolled],
            truncated, page[-1][0] if truncated and page else None)


class ListingContractMixin:
    """Listing: what every datastore gives."""

    store: Any
    assertEqual: Any
    assertTrue: Any

    async def fill(self, keys: list[str]) -> None:
        await self.store.create_bucket("bkt", OWNER)
        for key in keys:
            await self.put("bkt", key, key.encode("utf-8"))  # type: ignore[attr-defined]

    async def listing(self, *args: Any) -> tuple[list[str], list[str], bool, str | None]:
        page = await self.store.list_objects("bkt", *args)
        return ([i.key for i in page.contents], list(page.common_prefixes),
                page.is_truncated, page.next_marker)

    async def test_table(self) -> None:
        await self.fill(KEYS)
        for args, expected in CASES:
            got = await self.listing(*args)
            self.assertEqual(got, expected, f"list_objects{args!r}")
            self.assertEqual(model(KEYS, *args), expected, f"model{args!r}")

    async def test_contents_carry_summaries(self) -> None:
        await self.fill(["x", "y/z"])
        page = await self.store.list_objects("bkt")
        head = await self.store.head_object("bkt", "y/z")
        self.assertEqual([(i.key, i.size, i.etag, i.last_modified, i.owner)
                          for i in page.contents],
                         [("x", 1, (await self.store.head_object("bkt", "x")).etag,
                           head.last_modified, OWNER),
                          ("y/z", 3, head.etag, head.last_modified, OWNER)])

    async def test_paging_matches_model(self) -> None:
        rng = random.Random(7)
        alphabet = ["a", "b", "/", "-", "\u00e9", "\U0001f600", "\x00"]
        keys = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
                       for _ in range(60)})
        await self.fill(keys)
        for prefix in ["", "a", "a/", "b/"]:
            for delimiter in ["", "/", "\u00e9"]:
                for max_keys in [1, 3, 1000]:
                    after, pages = "", 0
                    seen: list[str] = []
                    while True:
                        got = await self.listing(prefix, delimiter, after, max_keys)
                        self.assertEqual(got, model(keys, prefix, delimiter, after, max_keys))
                        seen += got[0] + got[1]
                        pages += 1
                        if not got[2]:
                            break
                        after = got[3]
                    whole = model(keys, prefix, delimiter, "", 10 ** 6)
                    self.assertEqual(sorted(seen), sorted(whole[0] + whole[1]))

    async def test_errors(self) -> None:
        await self.fill(["k"])
        await self.assertFails(errors.NoSuchBucket,  # type: ignore[attr-defined]
                               self.store.list_objects("nope"))
        await self.assertFails(errors.InvalidArgument,  # type: ignore[attr-defined]
                               self.store.list_objects("bkt", max_keys=-1))


class MemoryListingTests(MemoryStoreHarness, ListingContractMixin, unittest.TestCase):
    """Listing, in memory; and a bucket of 100,000 keys."""

    async def fill_index(self, keys: list[str]) -> None:
        """Index C{keys} directly (listing reads only the index): no 100,000 files."""
        await self.store.create_bucket("big", OWNER)
        index = ObjectIndex(self.datastore)
        for i in range(0, len(keys), 5000):
            await index.put_many("big", [
                ObjectInfo(bucket="big", key=k, size=len(k), etag="0" * 32,
                           last_modified=1.0, owner=OWNER) for k in keys[i:i + 5000]])

    async def test_100000_keys_page_by_page(self) -> None:
        keys = [f"photos/{i // 1000:03d}/img{i:06d}.jpg" for i in range(100_000)]
        random.Random(1).shuffle(keys)
        await self.fill_index(keys)
        keys.sort()
        after, pages, seen = "", 0, []
        while True:
            page = await self.store.list_objects("big", after=after, max_keys=1000)
            seen.extend(i.key for i in page.contents)
            pages += 1
            if not page.is_truncated:
                break
            self.assertEqual(page.next_marker, seen[-1])
            after = page.next_marker
        self.assertEqual(seen, keys)
        self.assertEqual(pages, 100)
        # with a prefix, from the middle
        page = await self.store.list_objects("big", prefix="photos/050/", after=keys[50_500],
                                             max_keys=1000)
        self.assertEqual([i.key for i in page.contents], keys[50_501:51_000])
        self.assertFalse(page.is_truncated)

    async def test_100000_keys_rolled_up_cheaply(self) -> None:
        keys = [f"photos/{i // 1000:03d}/img{i:06d}.jpg" for i in range(100_000)]
        await self.fill_index(keys)
        calls = []
        real = self.datastore.zrangebylex

        async def counting(*args: Any, **kw: Any) -> Any:
            calls.append(args)
            return await real(*args, **kw)

        self.datastore.zrangebylex = counting  # type: ignore[method-assign]
        page = await self.store.list_objects("big", prefix="photos/", delimiter="/")
        self.assertEqual(list(page.common_prefixes), [f"photos/{g:03d}/" for g in range(100)])
        self.assertEqual((page.contents, page.is_truncated), ((), False))
        # each rolled-up range of 1,000 keys costs one read, not 1,000 keys read
        self.assertTrue(len(calls) <= 101, len(calls))
        calls.clear()
        page = await self.store.list_objects("big", prefix="photos/", delimiter="/",
                                             after="photos/010/", max_keys=5)
        self.assertEqual(list(page.common_prefixes), [f"photos/{g:03d}/" for g in range(11, 16)])
        self.assertEqual((page.is_truncated, page.next_marker), (True, "photos/015/"))
        self.assertTrue(len(calls) <= 7, len(calls))


class RedisListingTests(RedisStoreHarness, ListingContractMixin, unittest.TestCase):
    """Listing, on Redis."""


del StoreHarness
