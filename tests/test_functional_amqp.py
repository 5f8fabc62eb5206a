"""
Functional: the all-in-one on RabbitMQ. Its services consume their topics
on a real broker, and another process reaches them with an RPC call whose
Deferred fires with the reply, the 2010 architecture end to end.
"""

from __future__ import annotations

import os
import subprocess
import uuid

from twisted.internet import reactor
from twisted.trial import unittest

from nova.config import RpcConfig
from nova.context import RequestContext
from nova.exception import RemoteError
from nova.rpc.amqp import AMQPTransport
from tests.support.allinone import ROOT, VENV_BIN, AllInOne
from tests.support.clients import boto3_ec2
from tests.support.images import register_raw_image
from tests.support.s3 import S3User, wait_for


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


class SecondComputeHostTests(unittest.TestCase):
    """
    A second nova-compute process, another host of the same cloud: it shares
    only Redis, RabbitMQ and the directory with the all-in-one, and the
    scheduler hands it work over the bus.
    """
    timeout = 240

    def setUp(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.cloud = AllInOne(
            extra_config=f"[rpc]\ntransport = amqp\nexchange = nova-func-{suffix}\n",
            host=f"first-{suffix}")
        self.addCleanup(self.cloud.remove)
        self.cloud.start()
        self.addCleanup(self.cloud.stop)
        self.second = f"second-{suffix}"
        config = self.cloud.base / "second.conf"
        # the same cloud, but the all-in-one owns the Redis server
        config.write_text(self.cloud.config_path.read_text().replace("spawn = true",
                                                                      "spawn = false"))
        log = self.cloud.base / "second.log"
        env = {k: v for k, v in os.environ.items() if k != "NOVA_STATE_DIR"}
        self.process = subprocess.Popen(
            [str(VENV_BIN / "twistd"), "--nodaemon", "--pidfile=", f"--logfile={log}",
             "nova-compute", "--config", str(config), "--host", self.second],
            cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)
        self.addCleanup(self._stop_second)

    def _stop_second(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def test_instance_placed_on_the_second_host(self) -> None:
        env = self.cloud.admin_env()
        admin = boto3_ec2(self.cloud.ec2_url, env["AWS_ACCESS_KEY_ID"],
                          env["AWS_SECRET_ACCESS_KEY"])

        log = self.cloud.base / "second.log"

        def second_is_up() -> bool:
            self.assertIsNone(self.process.poll(), "the second nova-compute exited")
            # its first heartbeat is written before its queues are bound (a cast
            # to compute.<host> before then is unroutable): wait for both
            ready = log.exists() and f"nova is running on host {self.second}" in \
                log.read_text(errors="replace")
            zones = admin.describe_availability_zones(ZoneNames=["verbose"])
            names = [z["ZoneName"] for z in zones["AvailabilityZones"]]
            return ready and any(self.second in n for n in names)
        wait_for(second_is_up, 60, "the second host's heartbeat and its queues")
        user = S3User(self.cloud)
        self.addCleanup(user.remove)
        image_id = register_raw_image(user, self, public=True)
        [instance] = admin.run_instances(
            ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m1.tiny",
            Placement={"AvailabilityZone": f"nova:{self.second}"})["Instances"]
        instance_id = instance["InstanceId"]

        def state() -> str:
            [r] = admin.describe_instances(InstanceIds=[instance_id])["Reservations"]
            return r["Instances"][0]["State"]["Name"]
        wait_for(lambda: state() == "running", 60, f"{instance_id} running")
        # the console comes back over the bus from the second host's node
        admin.get_console_output(InstanceId=instance_id)
        admin.terminate_instances(InstanceIds=[instance_id])
        wait_for(lambda: state() == "terminated", 60, f"{instance_id} terminated")
