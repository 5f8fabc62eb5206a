"""
The ranged GET the image registrar reads an object's first bytes with
(L{ObjectStoreClient.get_object_range}), on a memory reactor.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.objectstore import errors
from tests.test_objectstore_client import Harness


class RangeTests(unittest.TestCase):

    def setUp(self) -> None:
        self.h = Harness()

    def test_partial_content(self) -> None:
        d = self.h.call(self.h.client.get_object_range("b", "k", 0, 4, expected_etag="e1"))
        protocol, transport = self.h.accept()
        _, _, headers = self.h.received(transport)
        self.assertEqual((headers["range"], headers["if-match"]), ("bytes=0-3", '"e1"'))
        self.h.answer(protocol, "206 Partial Content", {"Content-Range": "bytes 0-3/10"},
                      b"QFI\xfb")
        self.assertEqual(self.successResultOf(d), b"QFI\xfb")

    def test_past_the_end_is_empty(self) -> None:
        d = self.h.call(self.h.client.get_object_range("b", "k", 100, 4))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "416 Requested Range Not Satisfiable", {}, b"<Error/>")
        self.assertEqual(self.successResultOf(d), b"")

    def test_small_whole_object(self) -> None:
        d = self.h.call(self.h.client.get_object_range("b", "k", 0, 100))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "200 OK", {}, b"short")
        self.assertEqual(self.successResultOf(d), b"short")

    def test_range_ignored_for_a_large_object(self) -> None:
        d = self.h.call(self.h.client.get_object_range("b", "k", 0, 4))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "200 OK", {}, b"x" * 10, length=10 ** 9)
        self.assertIsInstance(self.failureResultOf(d).value, errors.InvalidRange)

    def test_errors(self) -> None:
        d = self.h.call(self.h.client.get_object_range("b", "k", 0, 4, expected_etag="e1"))
        protocol, _ = self.h.accept()
        self.h.answer(protocol, "412 Precondition Failed", {},
                      b"<Error><Code>PreconditionFailed</Code></Error>")
        self.assertIsInstance(self.failureResultOf(d).value, errors.PreconditionFailed)
        bad = self.h.call(self.h.client.get_object_range("b", "k", 0, 0))
        self.assertIsInstance(self.failureResultOf(bad).value, ValueError)
