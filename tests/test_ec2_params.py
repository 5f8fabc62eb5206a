"""Reading EC2 Query parameters."""

from twisted.trial import unittest

from nova.api.ec2.params import Params, matches
from nova.exception import InvalidParameterValue, MissingParameter


class ParamsTests(unittest.SynchronousTestCase):
    def test_require(self) -> None:
        params = Params({"KeyName": "k", "Empty": ""})
        self.assertEqual(params.require("KeyName"), "k")
        self.assertRaises(MissingParameter, params.require, "Empty")
        self.assertRaises(MissingParameter, params.require, "Other")

    def test_lists_in_index_order(self) -> None:
        params = Params({"KeyName.10": "ten", "KeyName.2": "two", "KeyName.1": "one"})
        self.assertEqual(params.get_list("KeyName"), ["one", "two", "ten"])
        self.assertEqual(params.get_list("Other"), [])

    def test_malformed_list(self) -> None:
        self.assertRaises(InvalidParameterValue, Params({"KeyName.x": "a"}).get_list, "KeyName")

    def test_filters(self) -> None:
        params = Params({"Filter.1.Name": "key-name", "Filter.1.Value.1": "a",
                         "Filter.1.Value.2": "b*", "Filter.2.Name": "fingerprint",
                         "Filter.2.Value.1": "f"})
        filters = params.get_filters(["key-name", "fingerprint"])
        self.assertEqual(filters, {"key-name": ["a", "b*"], "fingerprint": ["f"]})

    def test_unknown_filter(self) -> None:
        params = Params({"Filter.1.Name": "colour", "Filter.1.Value.1": "red"})
        self.assertRaises(InvalidParameterValue, params.get_filters, ["key-name"])

    def test_filter_without_values(self) -> None:
        params = Params({"Filter.1.Name": "key-name"})
        self.assertRaises(InvalidParameterValue, params.get_filters, ["key-name"])

    def test_bool_and_int(self) -> None:
        params = Params({"B": "TRUE", "N": "7", "X": "seven"})
        self.assertIs(params.get_bool("B"), True)
        self.assertIs(params.get_bool("None", default=False), False)
        self.assertEqual(params.get_int("N", minimum=1, maximum=10), 7)
        self.assertRaises(InvalidParameterValue, params.get_int, "X")
        self.assertRaises(InvalidParameterValue, params.get_int, "N", maximum=5)
        self.assertRaises(InvalidParameterValue, params.get_bool, "X")


class MatchesTests(unittest.SynchronousTestCase):
    def test_wildcards(self) -> None:
        self.assertTrue(matches({"key-name": ["web-*"]}, {"key-name": "web-1"}))
        self.assertTrue(matches({"key-name": ["web-?"]}, {"key-name": "web-1"}))
        self.assertFalse(matches({"key-name": ["web-?"]}, {"key-name": "web-10"}))
        self.assertTrue(matches({"key-name": ["a", "b"]}, {"key-name": "b"}))
        self.assertTrue(matches({"key-name": [r"a\*"]}, {"key-name": "a*"}))
        self.assertFalse(matches({"key-name": [r"a\*"]}, {"key-name": "ab"}))
        self.assertFalse(matches({"fingerprint": ["x"]}, {"key-name": "x"}))

    def test_all_filters_must_match(self) -> None:
        fields = {"key-name": "a", "fingerprint": "f"}
        self.assertTrue(matches({"key-name": ["a"], "fingerprint": ["f"]}, fields))
        self.assertFalse(matches({"key-name": ["a"], "fingerprint": ["g"]}, fields))
