"""
The object store's name rules (buckets, keys, upload ids, part numbers,
ACLs), its file layout (hash-named files that no key can steer) and the
on-disk object format.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from twisted.trial import unittest

from nova.objectstore import errors
from nova.objectstore.interfaces import ObjectInfo, Owner
from nova.objectstore.store import names
from nova.objectstore.store.layout import Layout
from nova.objectstore.store.objectfile import (DATA_OFFSET, CorruptObjectFile, encode_header,
                                               info_from_header, needed_offset, object_header,
                                               read_header)

GOOD_BUCKETS = ["abc", "my-bucket", "my.bucket.1", "a" * 63, "0bucket9", "a-b.c-d", "123"]
BAD_BUCKETS = ["ab", "a" * 64, "ABC", "Abc", "-abc", "abc-", ".abc", "abc.", "a..b", "a_b",
               "a b", "", "192.168.1.1", "10.0.0.255", "xn--abc", "sthree-x", "abc-s3alias",
               "abc--ol-s3", "b\u00fccket", "abc/def", "abc\x00", 42]


class BucketNameTests(unittest.TestCase):
    def test_good(self) -> None:
        for name in GOOD_BUCKETS:
            self.assertEqual(names.check_bucket_name(name), name)
            self.assertTrue(names.is_bucket_name(name))

    def test_bad(self) -> None:
        for name in BAD_BUCKETS:
            self.assertRaises(errors.InvalidBucketName, names.check_bucket_name, name)
            self.assertFalse(names.is_bucket_name(name), name)

    def test_error_code(self) -> None:
        e = self.assertRaises(errors.InvalidBucketName, names.check_bucket_name, "UP")
        self.assertEqual((e.code, e.status), ("InvalidBucketName", 400))


class KeyTests(unittest.TestCase):
    def test_lengths_in_bytes(self) -> None:
        for key in ["x" * 1024, "\u00e9" * 512, "\u20ac" * 341, "\U0001f600" * 256]:
            self.assertTrue(len(names.key_bytes(key)) <= 1024)
        for key in ["x" * 1025, "\u00e9" * 513, "\u20ac" * 342, "\U0001f600" * 257]:
            e = self.assertRaises(errors.KeyTooLongError, names.check_key, key)
            self.assertEqual(e.status, 400)
            self.assertFalse(names.is_key(key))

    def test_not_keys(self) -> None:
        for key in ["", "\udc80", None, b"bytes"]:
            self.assertRaises(errors.InvalidArgument, names.check_key, key)

    def test_any_utf8(self) -> None:
        for key in ["../../etc/passwd", "a\x00b", "\n", "\ufffe", "\U0010ffff"]:
            self.assertEqual(names.check_key(key), key)

    def test_digest(self) -> None:
        self.assertEqual(names.object_digest("bkt", "k"),
                         hashlib.sha256(b"bkt\x00k").hexdigest())
        # the separator keeps (bucket, key) pairs apart
        self.assertNotEqual(names.object_digest("abc", "d"), names.object_digest("ab", "cd"))


class LayoutTests(unittest.TestCase):
    def test_object_paths_stay_inside(self) -> None:
        layout = Layout(Path("/srv/store"))
        for key in ["../../etc/passwd", "/abs", "a\x00b", "x" * 1024, ".."]:
            path = layout.object_path("bkt", key)
            digest = names.object_digest("bkt", key)
            self.assertEqual(path, Path("/srv/store/objects") / digest[:2] / digest)

    def test_upload_paths(self) -> None:
        layout = Layout(Path("/srv/store"))
        upload_id = names.new_upload_id()
        self.assertTrue(names.is_upload_id(upload_id))
        self.assertEqual(layout.part_path(upload_id, 7),
                         Path("/srv/store/uploads") / upload_id / "00007")
        for bad in ["../x", "0" * 31, "G" * 32, "0" * 32 + "/..", ""]:
            self.assertFalse(names.is_upload_id(bad))
            self.assertRaises(ValueError, layout.upload_dir, bad)
        self.assertRaises(errors.InvalidBucketName, layout.bucket_path, "../etc")

    def test_upload_ids_differ(self) -> None:
        self.assertEqual(len({names.new_upload_id() for _ in range(1000)}), 1000)


class OtherRulesTests(unittest.TestCase):
    def test_part_numbers(self) -> None:
        for good in [1, 2, 9999, 10000]:
            self.assertEqual(names.check_part_number(good), good)
        for bad in [0, -1, 10001, True, "1", 1.0]:
            self.assertRaises(errors.InvalidArgument, names.check_part_number, bad)

    def test_acls(self) -> None:
        for acl in ["private", "public-read", "public-read-write", "authenticated-read"]:
            self.assertEqual(names.check_acl(acl), acl)
        for bad in ["", "Private", "bucket-owner-full-control", None]:
            self.assertRaises(errors.InvalidArgument, names.check_acl, bad)

    def test_etags(self) -> None:
        self.assertEqual(names.normalise_etag(' "ABC" '), "abc")


class ObjectFileTests(unittest.TestCase):
    def info(self, **kw: object) -> ObjectInfo:
        values: dict[str, object] = dict(
            bucket="bkt", key="k\x00\u00e9", size=5, etag="e" * 32, last_modified=1.5,
            content_type="text/plain", headers={"cache-control": "no"},
            metadata={"a": "\u2603"}, owner=Owner(project_id="p", display_name="p"),
            acl="public-read")
        values.update(kw)
        return ObjectInfo(**values)  # type: ignore[arg-type]

    def write(self, raw: bytes) -> int:
        path = self.mktemp()
        Path(path).write_bytes(raw)
        fd = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        return fd

    def test_round_trip(self) -> None:
        info = self.info()
        head = encode_header(object_header(info, "f" * 64), DATA_OFFSET)
        fd = self.write(head.ljust(DATA_OFFSET, b"\0") + b"hello")
        header, offset, size = read_header(fd)
        self.assertEqual((offset, size, header["sha256"]), (DATA_OFFSET, 5, "f" * 64))
        self.assertEqual(info_from_header(header), info)

    def test_big_header(self) -> None:
        info = self.info(metadata={"m": "x" * 10000})
        header = object_header(info)
        self.assertRaises(ValueError, encode_header, header, DATA_OFFSET)
        offset = needed_offset(len(encode_header(header, 1 << 20)) - 20)
        self.assertEqual(offset % DATA_OFFSET, 0)
        fd = self.write(encode_header(header, offset).ljust(offset, b"\0") + b"12345")
        self.assertEqual(info_from_header(read_header(fd)[0]), info)

    def test_corrupt(self) -> None:
        good = encode_header(object_header(self.info()), DATA_OFFSET)
        for raw in [b"", b"short", b"notnova!" + good[8:], good[:30],
                    good[:20] + b"{" * (len(good) - 20)]:
            self.assertRaises(CorruptObjectFile, read_header, self.write(raw))
        self.assertRaises(CorruptObjectFile, info_from_header, {"kind": "part"})
        self.assertRaises(CorruptObjectFile, info_from_header, {"kind": "object"})
        self.assertEqual(CorruptObjectFile.status, 500)
