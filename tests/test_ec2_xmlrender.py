"""EC2 XML responses and errors."""

import datetime
from xml.etree import ElementTree

from twisted.trial import unittest

from nova.api.ec2.xmlrender import RenderOnce, format_timestamp, render_error, render_response


class RenderResponseTests(unittest.SynchronousTestCase):
    def test_nested_values(self) -> None:
        body = {"keySet": [{"keyName": "a<b", "keyFingerprint": "1f:2e"},
                           {"keyName": "c", "missing": None}],
                "return": True, "count": 3}
        xml = render_response("DescribeKeyPairs", "req-1", body, "2014-10-01")
        root = ElementTree.fromstring(xml)
        ns = "{http://ec2.amazonaws.com/doc/2014-10-01/}"
        self.assertEqual(root.tag, ns + "DescribeKeyPairsResponse")
        self.assertEqual(root.find(ns + "requestId").text, "req-1")
        items = root.findall(f"{ns}keySet/{ns}item")
        self.assertEqual([i.find(ns + "keyName").text for i in items], ["a<b", "c"])
        self.assertIsNone(items[1].find(ns + "missing"))
        self.assertEqual(root.find(ns + "return").text, "true")
        self.assertEqual(root.find(ns + "count").text, "3")

    def test_untrusted_version_is_not_echoed(self) -> None:
        xml = render_response("DescribeRegions", "r", {}, '"><evil/>')
        self.assertNotIn(b"evil", xml)
        self.assertIn(b"http://ec2.amazonaws.com/doc/2016-11-15/", xml)

    def test_timestamps(self) -> None:
        when = datetime.datetime(2010, 5, 27, 12, 0, 1, 250000, tzinfo=datetime.timezone.utc)
        self.assertEqual(format_timestamp(when), "2010-05-27T12:00:01.250Z")
        self.assertEqual(format_timestamp(when.timestamp()), "2010-05-27T12:00:01.250Z")


class RenderErrorTests(unittest.SynchronousTestCase):
    def test_error_document(self) -> None:
        root = ElementTree.fromstring(render_error("AuthFailure", "no & no", "req-2"))
        self.assertEqual(root.tag, "Response")
        self.assertEqual(root.find("Errors/Error/Code").text, "AuthFailure")
        self.assertEqual(root.find("Errors/Error/Message").text, "no & no")
        self.assertEqual(root.find("RequestID").text, "req-2")


class RenderOnceTests(unittest.TestCase):

    def test_same_xml_as_a_dict_and_kept(self) -> None:
        fields = {"instanceId": "i-1", "tags": [{"key": "a<b"}], "gone": None, "ok": True}
        plain = render_response("X", "r", {"set": [fields]})
        once = RenderOnce(fields)
        self.assertEqual(render_response("X", "r", {"set": [once]}), plain)
        self.assertIsNotNone(once.xml)
        once.xml = "<instanceId>kept</instanceId>"
        self.assertIn(b"<item><instanceId>kept</instanceId></item>",
                      render_response("X", "r", {"set": [once]}))
