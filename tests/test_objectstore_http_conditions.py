"""
Range headers and conditional requests, as S3 reads them: pure functions.
"""

from __future__ import annotations

from twisted.trial import unittest

from nova.objectstore.errors import (InvalidArgument, InvalidRange, NotModified,
                                     PreconditionFailed)
from nova.objectstore.http.conditionals import (check_conditions, check_copy_conditions,
                                                etag_matches)
from nova.objectstore.http.errors import fields_of
from nova.objectstore.http.ranges import content_range, parse_copy_range, parse_range

ETAG = "9e107d9d372bb6826bd81d3542a419d6"
#: Wed, 21 Oct 2015 07:28:00 GMT
MODIFIED = 1445412480.25
BEFORE = "Wed, 21 Oct 2015 07:27:59 GMT"
SAME = "Wed, 21 Oct 2015 07:28:00 GMT"
AFTER = "Wed, 21 Oct 2015 07:28:01 GMT"


class RangeTests(unittest.TestCase):
    def test_closed_open_and_suffix_ranges(self) -> None:
        self.assertEqual(parse_range("bytes=0-9", 100), (0, 9))
        self.assertEqual(parse_range("bytes=90-", 100), (90, 99))
        self.assertEqual(parse_range("bytes=-10", 100), (90, 99))
        self.assertEqual(parse_range("bytes=99-99", 100), (99, 99))

    def test_past_the_end_is_cut(self) -> None:
        self.assertEqual(parse_range("bytes=50-1000", 100), (50, 99))
        self.assertEqual(parse_range("bytes=-1000", 100), (0, 99))

    def test_no_or_unreadable_header_means_whole_object(self) -> None:
        for header in (None, "", "bytes=", "bytes=-", "items=0-1", "bytes=0-1,5-6",
                       "bytes=9-2", "bytes=a-b"):
            self.assertIsNone(parse_range(header, 100), header)

    def test_unsatisfiable(self) -> None:
        for header, size in (("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100),
                             ("bytes=0-", 0), ("bytes=-5", 0)):
            error = self.assertRaises(InvalidRange, parse_range, header, size)
            self.assertEqual(error.status, 416)
            self.assertEqual(fields_of(error)["ActualObjectSize"], str(size))
            self.assertEqual(fields_of(error)["RangeRequested"], header)

    def test_content_range(self) -> None:
        self.assertEqual(content_range(0, 9, 100), "bytes 0-9/100")

    def test_copy_source_range(self) -> None:
        self.assertEqual(parse_copy_range("bytes=0-4", 10), (0, 4))
        self.assertRaises(InvalidArgument, parse_copy_range, "bytes=0-", 10)
        self.assertRaises(InvalidArgument, parse_copy_range, "bytes=5-4", 10)
        self.assertRaises(InvalidRange, parse_copy_range, "bytes=5-10", 10)


class EtagMatchTests(unittest.TestCase):
    def test_forms(self) -> None:
        self.assertTrue(etag_matches(f'"{ETAG}"', ETAG))
        self.assertTrue(etag_matches(ETAG, ETAG))
        self.assertTrue(etag_matches("*", ETAG))
        self.assertTrue(etag_matches(f'"other", W/"{ETAG}"', ETAG))
        self.assertFalse(etag_matches('"other"', ETAG))


def check(**headers: str) -> None:
    check_conditions({k.replace("_", "-"): v for k, v in headers.items()}, ETAG, MODIFIED)


class ConditionTests(unittest.TestCase):
    def test_none(self) -> None:
        check()

    def test_if_match(self) -> None:
        check(if_match=f'"{ETAG}"')
        error = self.assertRaises(PreconditionFailed, check, if_match='"nope"')
        self.assertEqual((error.status, fields_of(error)["Condition"]), (412, "If-Match"))

    def test_if_none_match(self) -> None:
        check(if_none_match='"nope"')
        self.assertEqual(self.assertRaises(NotModified, check, if_none_match=f'"{ETAG}"').status,
                         304)

    def test_if_modified_since_at_second_resolution(self) -> None:
        check(if_modified_since=BEFORE)
        self.assertRaises(NotModified, check, if_modified_since=SAME)
        self.assertRaises(NotModified, check, if_modified_since=AFTER)

    def test_if_unmodified_since(self) -> None:
        check(if_unmodified_since=SAME)
        check(if_unmodified_since=AFTER)
        self.assertRaises(PreconditionFailed, check, if_unmodified_since=BEFORE)

    def test_if_match_true_overrides_if_unmodified_since_false(self) -> None:
        check(if_match=ETAG, if_unmodified_since=BEFORE)

    def test_if_none_match_false_and_if_modified_since_true_is_not_modified(self) -> None:
        self.assertRaises(NotModified, check, if_none_match=ETAG, if_modified_since=BEFORE)

    def test_if_none_match_true_overrides_if_modified_since_false(self) -> None:
        check(if_none_match='"nope"', if_modified_since=AFTER)

    def test_412_wins_over_304(self) -> None:
        self.assertRaises(PreconditionFailed, check, if_match='"nope"',
                          if_none_match=f'"{ETAG}"')

    def test_unreadable_dates_are_ignored(self) -> None:
        check(if_modified_since="yesterday", if_unmodified_since="garbage")


def check_copy(**headers: str) -> None:
    check_copy_conditions({"x-amz-copy-source-" + k.replace("_", "-"): v
                           for k, v in headers.items()}, ETAG, MODIFIED)


class CopyConditionTests(unittest.TestCase):
    def test_all_failures_are_412(self) -> None:
        for headers in ({"if_match": '"nope"'}, {"if_none_match": ETAG},
                        {"if_modified_since": AFTER}, {"if_unmodified_since": BEFORE}):
            self.assertRaises(PreconditionFailed, check_copy, **headers)

    def test_combinations_as_s3_documents_them(self) -> None:
        check_copy(if_match=ETAG, if_unmodified_since=BEFORE)
        self.assertRaises(PreconditionFailed, check_copy, if_none_match=ETAG,
                          if_modified_since=BEFORE)
        check_copy(if_none_match='"nope"', if_modified_since=BEFORE)
