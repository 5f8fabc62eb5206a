"""
Functional: key pairs, regions and zones on a running all-in-one, through
boto3, boto 2 and awscli, as a user drives them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid

from botocore.exceptions import ClientError
from boto.exception import EC2ResponseError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.trial import unittest

from tests.support.allinone import VENV_BIN, shared
from tests.support.clients import Tenant


def _name(prefix: str = "key") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Boto3KeyPairTests(unittest.TestCase):
    """The key pair lifecycle with boto3, in a project of its own."""

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = Tenant(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.ec2 = self.tenant.boto3()

    def error_code(self, call, **kwargs) -> str:
        with self.assertRaises(ClientError) as caught:
            call(**kwargs)
        return caught.exception.response["Error"]["Code"]

    def test_lifecycle(self) -> None:
        name = _name()
        created = self.ec2.create_key_pair(KeyName=name)
        self.assertEqual(created["KeyName"], name)
        self.assertIn("BEGIN RSA PRIVATE KEY", created["KeyMaterial"])
        self.assertTrue(created["KeyPairId"].startswith("key-"))
        # the fingerprint is the SHA-1 of the DER private key, as EC2 makes it
        key = serialization.load_pem_private_key(created["KeyMaterial"].encode(), None)
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        digest = hashlib.sha1(der).hexdigest()
        self.assertEqual(created["KeyFingerprint"],
                         ":".join(digest[i:i + 2] for i in range(0, 40, 2)))

        described = self.ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
        self.assertEqual([(k["KeyName"], k["KeyFingerprint"]) for k in described],
                         [(name, created["KeyFingerprint"])])
        self.assertEqual(self.error_code(self.ec2.create_key_pair, KeyName=name),
                         "InvalidKeyPair.Duplicate")
        self.ec2.delete_key_pair(KeyName=name)
        self.assertEqual(self.error_code(self.ec2.describe_key_pairs, KeyNames=[name]),
                         "InvalidKeyPair.NotFound")
        # deleting what is gone is not an error, as on EC2
        self.ec2.delete_key_pair(KeyName=name)

    def test_ed25519(self) -> None:
        name = _name()
        created = self.ec2.create_key_pair(KeyName=name, KeyType="ed25519")
        self.assertIn("OPENSSH PRIVATE KEY", created["KeyMaterial"])
        [described] = self.ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
        self.assertEqual(described["KeyType"], "ed25519")

    def test_import_and_filters(self) -> None:
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_public = rsa_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                       serialization.PublicFormat.OpenSSH)
        ed_public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        a, b = _name("web"), _name("db")
        imported = self.ec2.import_key_pair(KeyName=a, PublicKeyMaterial=rsa_public)
        self.ec2.import_key_pair(KeyName=b, PublicKeyMaterial=ed_public)
        # imported RSA keys: MD5 of the DER public key
        der = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        md5 = hashlib.md5(der).hexdigest()
        self.assertEqual(imported["KeyFingerprint"],
                         ":".join(md5[i:i + 2] for i in range(0, 32, 2)))

        def names(**kwargs) -> list[str]:
            return sorted(k["KeyName"] for k in self.ec2.describe_key_pairs(**kwargs)["KeyPairs"])

        self.assertEqual(names(), sorted([a, b]))
        self.assertEqual(names(Filters=[{"Name": "key-name", "Values": ["web-*"]}]), [a])
        self.assertEqual(names(Filters=[{"Name": "fingerprint",
                                         "Values": [imported["KeyFingerprint"]]}]), [a])
        self.assertEqual(names(KeyPairIds=[imported["KeyPairId"]]), [a])
        self.assertEqual(self.error_code(self.ec2.describe_key_pairs,
                                         Filters=[{"Name": "colour", "Values": ["red"]}]),
                         "InvalidParameterValue")

    def test_import_bad_material(self) -> None:
        for material in (b"not a key", b"ssh-dss AAAAB3NzaC1kc3MAAACBAP", b"\x00\xff" * 10):
            self.assertEqual(self.error_code(self.ec2.import_key_pair, KeyName=_name(),
                                             PublicKeyMaterial=material),
                             "InvalidKey.Format")
        self.assertEqual(self.ec2.describe_key_pairs()["KeyPairs"], [])

    def test_invalid_names(self) -> None:
        self.assertEqual(self.error_code(self.ec2.create_key_pair, KeyName="x" * 256),
                         "InvalidParameterValue")
        self.assertEqual(self.error_code(self.ec2.create_key_pair, KeyName="caf\u00e9"),
                         "InvalidParameterValue")

    def test_regions_and_zones(self) -> None:
        regions = self.ec2.describe_regions()["Regions"]
        self.assertEqual([r["RegionName"] for r in regions], ["nova"])
        self.assertEqual(regions[0]["Endpoint"], self.cloud.ec2_url)
        zones = self.ec2.describe_availability_zones()["AvailabilityZones"]
        self.assertEqual([(z["ZoneName"], z["State"]) for z in zones], [("nova", "available")])

    def test_unsupported_action(self) -> None:
        # a real EC2 action this cloud does not have (no VPCs) says it is absent
        self.assertEqual(self.error_code(self.ec2.describe_vpcs), "UnsupportedOperation")


class ProjectIsolationTests(unittest.TestCase):
    """Key pairs belong to a project; other projects neither see nor reach them."""

    def setUp(self) -> None:
        self.cloud = shared()
        self.a = Tenant(self.cloud)
        self.addCleanup(self.a.remove)
        self.b = Tenant(self.cloud)
        self.addCleanup(self.b.remove)

    def test_other_project_cannot_see_key_pairs(self) -> None:
        name = _name()
        self.a.boto3().create_key_pair(KeyName=name)
        self.assertEqual(self.b.boto3().describe_key_pairs()["KeyPairs"], [])
        with self.assertRaises(ClientError) as caught:
            self.b.boto3().describe_key_pairs(KeyNames=[name])
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidKeyPair.NotFound")
        # the same name is free in another project
        self.b.boto3().create_key_pair(KeyName=name)

    def test_user_outside_project_is_refused(self) -> None:
        from tests.support.clients import boto3_ec2
        intruder = boto3_ec2(self.cloud.ec2_url, f"{self.b.access_key}:{self.a.project}",
                             self.b.secret)
        with self.assertRaises(ClientError) as caught:
            intruder.describe_key_pairs()
        self.assertEqual(caught.exception.response["Error"]["Code"], "AuthFailure")
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 401)

    def test_wrong_secret(self) -> None:
        from tests.support.clients import boto3_ec2
        forger = boto3_ec2(self.cloud.ec2_url, self.a.access, self.a.secret + "x")
        with self.assertRaises(ClientError) as caught:
            forger.describe_key_pairs()
        self.assertEqual(caught.exception.response["Error"]["Code"], "SignatureDoesNotMatch")

    def test_unknown_access_key(self) -> None:
        from tests.support.clients import boto3_ec2
        stranger = boto3_ec2(self.cloud.ec2_url, "no-such-key", "secret")
        with self.assertRaises(ClientError) as caught:
            stranger.describe_regions()
        self.assertEqual(caught.exception.response["Error"]["Code"], "AuthFailure")


class Boto2Tests(unittest.TestCase):
    """boto 2.49, SigV2 (HmacSHA256), as euca2ools-era scripts use it."""

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = Tenant(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.ec2 = self.tenant.boto2()

    def test_lifecycle(self) -> None:
        name = _name()
        key = self.ec2.create_key_pair(name)
        self.assertIn("BEGIN RSA PRIVATE KEY", key.material)
        self.assertEqual([k.name for k in self.ec2.get_all_key_pairs()], [name])
        self.assertEqual(self.ec2.get_key_pair(name).fingerprint, key.fingerprint)
        with self.assertRaises(EC2ResponseError) as caught:
            self.ec2.create_key_pair(name)
        self.assertEqual(caught.exception.error_code, "InvalidKeyPair.Duplicate")
        self.assertTrue(self.ec2.delete_key_pair(name))
        self.assertEqual(self.ec2.get_all_key_pairs(), [])

    def test_import(self) -> None:
        public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        key = self.ec2.import_key_pair(_name(), public)
        self.assertTrue(key.fingerprint)

    def test_regions_and_zones(self) -> None:
        self.assertEqual([r.name for r in self.ec2.get_all_regions()], ["nova"])
        self.assertEqual([z.name for z in self.ec2.get_all_zones()], ["nova"])


class AwsCliTests(unittest.TestCase):
    """awscli after `source novarc`: the variables the novarc exports are enough."""

    def test_describe_regions(self) -> None:
        cloud = shared()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(cloud.admin_env())
        env["HOME"] = self.mktemp()  # no ~/.aws of the machine's
        result = subprocess.run([str(VENV_BIN / "aws"), "ec2", "describe-regions",
                                 "--output", "text"], env=env, capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("nova", result.stdout)
        self.assertIn(cloud.ec2_url, result.stdout)

    def test_novarc_sourced_by_a_shell(self) -> None:
        """The novarc works as a user uses it: sourced by bash, from anywhere."""
        cloud = shared()
        script = (f"source {cloud.novarc_path} && cd / && "
                  f"{VENV_BIN / 'aws'} ec2 describe-availability-zones --output text && "
                  "test -f \"$EC2_PRIVATE_KEY\" && test -f \"$NOVA_CERT\" && test -f \"$EC2_CERT\"")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["HOME"] = self.mktemp()
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("available", result.stdout)


