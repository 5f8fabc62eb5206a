"""Unit tests for the wire format (L{nova.rpc.envelope}) and the caller's pending calls."""

from __future__ import annotations

import json

from twisted.internet import defer, task
from twisted.trial import unittest

from nova.exception import NotFound, RemoteError, RPCTimeout
from nova.rpc import envelope
from nova.rpc.envelope import Reply, Request
from nova.rpc.errors import InvalidTopic, MalformedMessage, MessageEncodingError, NotConnected
from nova.rpc.pending import PendingCalls


class RequestTests(unittest.TestCase):
    def test_round_trip(self) -> None:
        request = Request(method="run_instance", args={"instance_id": "i-1", "n": [1, 2]},
                          context={"user_id": "bob"}, msg_id="abc.1", reply_to="reply.x")
        body = envelope.encode_request(request)
        self.assertIsInstance(body, bytes)
        self.assertEqual(json.loads(body), {
            "method": "run_instance", "args": {"instance_id": "i-1", "n": [1, 2]},
            "context": {"user_id": "bob"}, "msg_id": "abc.1", "reply_to": "reply.x"})
        self.assertEqual(envelope.decode_request(body), request)

    def test_cast_has_null_ids(self) -> None:
        body = envelope.encode_request(Request(method="m", args={}))
        self.assertEqual(json.loads(body)["msg_id"], None)
        self.assertEqual(json.loads(body)["reply_to"], None)

    def test_non_ascii_survives_as_ascii_bytes(self) -> None:
        body = envelope.encode_request(Request(method="m", args={"name": "Zoë ☁"}))
        body.decode("ascii")
        self.assertEqual(envelope.decode_request(body).args, {"name": "Zoë ☁"})
        self.assertEqual(envelope.decode_request(body.decode()).args, {"name": "Zoë ☁"})

    def test_unencodable_refused(self) -> None:
        for args in ({"x": object()}, {"x": float("nan")}, {"x": b"bytes"}, {"x": {1, 2}}):
            with self.assertRaises(MessageEncodingError) as caught:
                envelope.encode_request(Request(method="m", args=args))
            self.assertIn("'m'", caught.exception.message)

    def test_malformed(self) -> None:
        cases = [b"\xff", b"not json", b"[]", b"null", b"{}", b'{"method": ""}',
                 b'{"method": 1}', b'{"method": "m", "args": []}',
                 b'{"method": "m", "context": "x"}', b'{"method": "m", "msg_id": 5}',
                 b'{"method": "m", "msg_id": ""}',
                 b'{"method": "m", "reply_to": "' + b"r" * 256 + b'"}',
                 b"[" * 100000]
        for body in cases:
            with self.assertRaises(MalformedMessage, msg=body[:40]):
                envelope.decode_request(body)

    def test_malformed_keeps_reply_address(self) -> None:
        body = json.dumps({"method": "m", "args": 3, "msg_id": "a.1", "reply_to": "reply.y"})
        with self.assertRaises(MalformedMessage) as caught:
            envelope.decode_request(body.encode())
        self.assertEqual((caught.exception.msg_id, caught.exception.reply_to),  # type: ignore[attr-defined]
                         ("a.1", "reply.y"))

    def test_malformed_with_unusable_reply_address(self) -> None:
        body = json.dumps({"method": 1, "msg_id": "a.1", "reply_to": "r" * 256})
        with self.assertRaises(MalformedMessage) as caught:
            envelope.decode_request(body.encode())
        self.assertIsNone(caught.exception.reply_to)  # type: ignore[attr-defined]

    def test_null_args_are_empty(self) -> None:
        self.assertEqual(envelope.decode_request(b'{"method": "m", "args": null}').args, {})


class ReplyTests(unittest.TestCase):
    def test_result_round_trip(self) -> None:
        body = envelope.encode_reply(Reply(msg_id="a.1", result=[1, "x"]))
        self.assertEqual(json.loads(body), {"msg_id": "a.1", "result": [1, "x"]})
        self.assertEqual(envelope.decode_reply(body), Reply(msg_id="a.1", result=[1, "x"]))

    def test_null_result(self) -> None:
        self.assertEqual(envelope.decode_reply(b'{"msg_id": "a", "result": null}'),
                         Reply(msg_id="a", result=None))

    def test_failure_round_trip(self) -> None:
        failure = envelope.failure_to_dict(NotFound("gone"))
        body = envelope.encode_reply(Reply(msg_id="a.1", failure=failure))
        self.assertEqual(json.loads(body), {"msg_id": "a.1", "failure": {
            "type": "NotFound", "message": "gone", "code": "NotFound", "status": 400}})
        self.assertEqual(envelope.decode_reply(body).failure, failure)

    def test_malformed(self) -> None:
        for body in (b"x", b"[]", b'{"result": 1}', b'{"msg_id": 1, "result": 1}',
                     b'{"msg_id": "a"}', b'{"msg_id": "a", "failure": "x"}'):
            with self.assertRaises(MalformedMessage, msg=body):
                envelope.decode_reply(body)


class FailureTests(unittest.TestCase):
    def test_nova_error(self) -> None:
        self.assertEqual(envelope.failure_to_dict(NotConnected("down")), {
            "type": "NotConnected", "message": "down", "code": "Unavailable", "status": 503})

    def test_other_error(self) -> None:
        self.assertEqual(envelope.failure_to_dict(KeyError("k")), {
            "type": "KeyError", "message": "'k'", "code": "InternalError", "status": 500})

    def test_remote_error_keeps_original_type(self) -> None:
        remote = RemoteError("NotFound", "gone", "NotFound", 400)
        self.assertEqual(envelope.failure_to_dict(remote), {
            "type": "NotFound", "message": "gone", "code": "NotFound", "status": 400})

    def test_to_exception(self) -> None:
        error = envelope.failure_to_exception(
            {"type": "NotFound", "message": "gone", "code": "NotFound", "status": 400})
        self.assertEqual((error.remote_type, error.message, error.code, error.status),
                         ("NotFound", "gone", "NotFound", 400))
        self.assertEqual(str(error), "NotFound: gone")

    def test_to_exception_from_junk(self) -> None:
        error = envelope.failure_to_exception({"type": 3, "message": None, "status": "x"})
        self.assertEqual((error.remote_type, error.code, error.status),
                         ("UnknownError", "InternalError", 500))


class TopicTests(unittest.TestCase):
    def test_valid(self) -> None:
        for topic in ("compute", "compute.host-1", "volume.node1.example.com", "a_b:c@d"):
            self.assertEqual(envelope.check_topic(topic), topic)

    def test_invalid(self) -> None:
        for topic in ("", ".x", "a*", "a.#", "a b", "amq.direct", "x" * 201, None, 3):
            self.assertRaises(InvalidTopic, envelope.check_topic, topic)


class PendingCallsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.pending = PendingCalls(self.clock)

    def reply(self, msg_id: str, **fields: object) -> None:
        self.pending.reply_received(json.dumps({"msg_id": msg_id, **fields}).encode())

    def test_ids_are_unique(self) -> None:
        ids = {self.pending.new_id() for _ in range(1000)}
        ids |= {PendingCalls(self.clock).new_id() for _ in range(10)}
        self.assertEqual(len(ids), 1010)

    def test_result(self) -> None:
        d = self.pending.add("a", "topic.m", 10)
        self.reply("a", result={"x": 1})
        self.assertEqual(self.successResultOf(d), {"x": 1})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failure(self) -> None:
        d = self.pending.add("a", "topic.m", 10)
        self.reply("a", failure={"type": "NotFound", "message": "m", "code": "NotFound",
                                 "status": 400})
        self.assertEqual(self.failureResultOf(d, RemoteError).value.remote_type, "NotFound")

    def test_timeout_then_late_reply(self) -> None:
        d = self.pending.add("a", "topic.m", 10)
        self.clock.advance(9.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        failure = self.failureResultOf(d, RPCTimeout)
        self.assertIn("topic.m", failure.value.message)
        self.reply("a", result=1)  # dropped quietly
        self.assertEqual(len(self.pending), 0)

    def test_cancel(self) -> None:
        d = self.pending.add("a", "topic.m", 10)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual((len(self.pending), self.clock.getDelayedCalls()), (0, []))
        self.reply("a", result=1)

    def test_fail_all(self) -> None:
        calls = [self.pending.add(str(n), "t.m", 10) for n in range(3)]
        self.pending.fail_all(NotConnected("gone"))
        for d in calls:
            self.failureResultOf(d, NotConnected)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_malformed_reply_dropped(self) -> None:
        d = self.pending.add("a", "t.m", 10)
        self.pending.reply_received(b"junk")
        self.pending.reply_received(b'{"msg_id": "a"}')
        self.assertNoResult(d)
        self.reply("a", result=2)
        self.assertEqual(self.successResultOf(d), 2)
