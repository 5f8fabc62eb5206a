"""
Functional: the all-in-one on RabbitMQ. Its services consume their topics
on a real broker, and another process reaches them with an RPC call whose
Deferred fires with the reply, the 2010 architecture end to end.
"""

from __future__ import annotations

import uuid

from twisted.internet import reactor
from twisted.trial import unittest

from nova.config import RpcConfig
from nova.context import RequestContext
from nova.exception import RemoteError
from nova.rpc.amqp import AMQPTransport
from tests.support.allinone import AllInOne
from tests.support.clients import boto3_ec2


class AmqpAllInOneTests(unittest.TestCase):
    timeout = 180

    def setUp(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.exchange = f"nova-func-{suffix}"
        self.cloud = AllInOne(
            extra_config=f"[rpc]\ntransport = amqp\nexchange = {self.exchange}\n",
            host=f"amqp-{suffix}")
        self.addCleanup(self.cloud.remove)
        self.cloud.start()
        self.addCleanup(self.cloud.stop)

    async def test_rpc_between_processes(self) -> None:
        rpc = AMQPTransport(reactor, RpcConfig(transport="amqp", exchange=self.exchange,
                                               call_timeout=30))
        await rpc.start()
        self.addCleanup(rpc.stop)
        reply = await rpc.call(f"cloud.{self.cloud.host}", "ping", {},
                               RequestContext.system())
        self.assertEqual((reply["host"], reply["binary"]), (self.cloud.host, "nova-api"))
        # only exposed methods can be called, and the failure comes back structured
        with self.assertRaises(RemoteError) as caught:
            await rpc.call(f"cloud.{self.cloud.host}", "capacity", {}, RequestContext.system())
        self.assertEqual(caught.exception.code, "InvalidAction")

    def test_api_works_over_amqp(self) -> None:
        env = self.cloud.admin_env()
        ec2 = boto3_ec2(self.cloud.ec2_url, env["AWS_ACCESS_KEY_ID"],
                        env["AWS_SECRET_ACCESS_KEY"])
        zones = ec2.describe_availability_zones()["AvailabilityZones"]
        self.assertEqual([z["ZoneName"] for z in zones], ["nova"])
