"""
C{nova-bundle-image}: its command line, environment and progress report
(unit), and the upload (and registration) against a running all-in-one
(functional), driven through C{bin/nova-bundle-image} as a user runs it.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from twisted.trial import unittest

from nova.cmd import bundle_image
from nova.crypto import CertificateAuthority
from nova.image import bundle
from nova.image.bundle import testing
from nova.image.bundle.progress import ProgressBar
from tests.support.allinone import ROOT, shared
from tests.support.clients import Tenant, credentials_env

TOOL = str(ROOT / "bin" / "nova-bundle-image")
FINAL_STATES = ("available", "failed", "invalid", "error", "deregistered")


class ProgressBarTests(unittest.TestCase):

    def test_not_a_tty_one_line_per_stage(self) -> None:
        stream = io.StringIO()
        bar = ProgressBar(stream)
        self.assertFalse(bar.interactive)
        for done in range(0, 101, 10):
            bar.update("bundle", done, 100)
        bar.finish("bundle", "3 parts")
        self.assertEqual(stream.getvalue(), "bundle: 3 parts\n")

    def test_terminal_bar(self) -> None:
        stream = io.StringIO()
        bar = ProgressBar(stream, interactive=True)
        bar.update("upload", 0, 4 << 20)
        bar.update("upload", 1, 4 << 20)    # same percentage: not redrawn
        bar.update("upload", 2 << 20, 4 << 20)
        bar.finish("upload", "done")
        lines = stream.getvalue().split("\r")
        self.assertEqual(len(lines), 3)
        self.assertIn("[" + "#" * 15 + "." * 15 + "]  50%", lines[2])
        self.assertTrue(stream.getvalue().endswith("\nupload: done\n"))


class CommandLineTests(unittest.TestCase):

    def setUp(self) -> None:
        self.creds = testing.shared_credentials()
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        files = {"EC2_CERT": self.creds.user_cert_pem, "EC2_PRIVATE_KEY": self.creds.user_key_pem,
                 "NOVA_CERT": self.creds.cloud_cert_pem}
        self.environ = {"EC2_URL": "http://127.0.0.1:9/services/Cloud",
                        "S3_URL": "http://127.0.0.1:9", "EC2_ACCESS_KEY": "key:proj",
                        "EC2_SECRET_KEY": "secret", "AWS_DEFAULT_REGION": "nova"}
        for name, text in files.items():
            (self.dir / name).write_text(text)
            self.environ[name] = str(self.dir / name)
        self.image = self.dir / "disk.img"
        self.image.write_bytes(os.urandom(5000))

    def run_main(self, *argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = bundle_image.main(list(argv), environ=environ or self.environ,
                                   stdout=out, stderr=err)
        return status, out.getvalue(), err.getvalue()

    def assertOneLineError(self, result: tuple[int, str, str], words: str) -> None:
        status, out, err = result
        self.assertEqual(status, 1)
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("nova-bundle-image: "), err)
        self.assertIn(words, err)

    def test_usage_errors(self) -> None:
        self.assertOneLineError(self.run_main(), "-i/--image")
        self.assertOneLineError(self.run_main("-i", str(self.image), "--image-type", "disk"),
                                "invalid choice")

    def test_missing_environment(self) -> None:
        for name in ("EC2_CERT", "S3_URL", "EC2_SECRET_KEY", "NOVA_CERT"):
            environ = {k: v for k, v in self.environ.items() if k != name}
            self.assertOneLineError(self.run_main("-i", str(self.image), environ=environ),
                                    f"{name} is not set: source your novarc")

    def test_ec2_url_needed_only_to_register(self) -> None:
        environ = {k: v for k, v in self.environ.items() if k != "EC2_URL"}
        self.assertOneLineError(self.run_main("-i", str(self.image), environ=environ),
                                "EC2_URL is not set")

    def test_unreadable_certificate(self) -> None:
        environ = dict(self.environ, EC2_CERT=str(self.dir / "nope.pem"))
        self.assertOneLineError(self.run_main("-i", str(self.image), environ=environ),
                                "cannot read EC2_CERT")

    def test_no_image(self) -> None:
        self.assertOneLineError(self.run_main("-i", str(self.dir / "none.img")), "is not a file")

    def test_bad_kernel_id(self) -> None:
        self.assertOneLineError(
            self.run_main("-i", str(self.image), "--kernel-id", "aki 1", "--no-register"),
            "bad kernel_id")

    def test_unreachable_object_store(self) -> None:
        """The bundle is made (and kept in --work-dir); the upload fails in one line."""
        work = self.dir / "work"
        status, out, err = self.run_main("-i", str(self.image), "--no-register",
                                         "--work-dir", str(work))
        progress, error = err.splitlines()
        self.assertEqual(progress, "bundle: disk.img, 0.0 MiB in 1 part(s)")
        self.assertOneLineError((status, out, error + "\n"), "checking bucket proj-images failed")
        self.assertEqual(sorted(p.name for p in work.iterdir()),
                         ["disk.img.manifest.xml", "disk.img.part.0"])

    def test_default_bucket(self) -> None:
        self.assertEqual(bundle_image.default_bucket("ab12:My_Project"), "my-project-images")
        self.assertEqual(bundle_image.default_bucket("ab12"), "nova-images")


class FunctionalTests(unittest.TestCase):
    """The upload half (and the registration, once RegisterImage exists)."""

    def setUp(self) -> None:
        self.cloud = shared()
        self.tenant = Tenant(self.cloud)
        self.addCleanup(self.tenant.remove)
        self.dir = Path(self.mktemp()).resolve()
        env = credentials_env(self.cloud, self.tenant, self.dir / "creds")
        self.env = env
        self.s3 = boto3.client(
            "s3", endpoint_url=env["S3_URL"], aws_access_key_id=env["EC2_ACCESS_KEY"],
            aws_secret_access_key=env["EC2_SECRET_KEY"], region_name=env["AWS_DEFAULT_REGION"],
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        self.bucket = f"bundles-{uuid.uuid4().hex[:12]}"
        self.addCleanup(self.empty_bucket)
        self.image = self.dir / "disk.img"
        with open(self.image, "wb") as f:
            f.write(bytes(510) + b"\x55\xaa")  # an MBR signature: a disk to the registrar
            f.write(os.urandom(11 << 20))
            f.seek(12 << 20)
            f.write(os.urandom(1 << 20))   # 13 MiB, 12 of them random: 2 parts
        self.image_bytes = self.image.read_bytes()

    def empty_bucket(self) -> None:
        try:
            listing = self.s3.list_objects_v2(Bucket=self.bucket)
        except self.s3.exceptions.NoSuchBucket:
            return
        for item in listing.get("Contents", []):
            self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])
        self.s3.delete_bucket(Bucket=self.bucket)

    def run_tool(self, *argv: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EC2_"))}
        environ.update(self.env)
        return subprocess.run([TOOL, "-i", str(self.image), "--bucket", self.bucket, *argv],
                              env=environ, capture_output=True, text=True, timeout=120)

    def test_upload_no_register(self) -> None:
        result = self.run_tool("--no-register", "--prefix", "tiny")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, f"MANIFEST\t{self.bucket}/tiny.manifest.xml\n")
        self.assertIn("bundle: disk.img", result.stderr)   # not a tty: one line per stage
        self.assertIn("upload: ", result.stderr)
        keys = sorted(item["Key"] for item in
                      self.s3.list_objects_v2(Bucket=self.bucket)["Contents"])
        manifest = bundle.parse_manifest(
            self.s3.get_object(Bucket=self.bucket, Key="tiny.manifest.xml")["Body"].read())
        self.assertEqual(len(manifest.parts), 2)
        self.assertEqual(keys, sorted(["tiny.manifest.xml",
                                       *bundle.part_keys(manifest, "tiny.manifest.xml")]))
        # the cloud can open it: the user's certificate is on record, the key is the CA's
        ca = CertificateAuthority(self.cloud.state_dir / "CA")
        bundle.verify_signature(manifest, ca.user_certificates(self.tenant.user))
        paths = []
        for key in bundle.part_keys(manifest, "tiny.manifest.xml"):
            path = self.dir / key
            path.write_bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            paths.append(str(path))
        size, sha256 = bundle.unbundle(manifest, paths, ca, str(self.dir / "out.img"))
        self.assertEqual((size, sha256), (len(self.image_bytes),
                                          hashlib.sha256(self.image_bytes).hexdigest()))

    def test_register(self) -> None:
        result = self.run_tool("--name", "bundled")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("IMAGE\tami-"), result.stdout)
        image_id = result.stdout.split("\t")[1].strip()
        ec2 = self.tenant.boto3()
        self.addCleanup(ec2.deregister_image, ImageId=image_id)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while True:
            image = ec2.describe_images(ImageIds=[image_id])["Images"][0]  # type: ignore[attr-defined]
            # (2010 nova also showed its steps: downloading, decrypting, untarring)
            if image["State"] in FINAL_STATES or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(image["State"], "available", image.get("StateReason"))
        self.assertEqual(image["ImageLocation"], f"{self.bucket}/disk.img.manifest.xml")
