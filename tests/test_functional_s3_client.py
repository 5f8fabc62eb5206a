"""
Functional: nova's own S3 client (L{nova.objectstore.client}) against the
running all-in-one's object store, on the real reactor: what the compute
node (image download) and the cloud controller (bundle manifests) will do.
"""

from __future__ import annotations

import os
import shutil

from twisted.internet import defer

from nova.objectstore import errors
from nova.objectstore.client import ObjectStoreClient, ObjectStoreUnavailable, RemoteS3Error
from tests.support.allinone import free_port
from tests.support.s3 import MIB, REGION, S3Case, bucket_name, file_md5, write_file


class ClientTests(S3Case):
    def setUp(self) -> None:
        super().setUp()
        from twisted.internet import reactor
        self.reactor = reactor
        self.client = self.make(self.alice.access, self.alice.secret)
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.addCleanup(shutil.rmtree, self.dir, True)

    def make(self, access: str, secret: str, endpoint: str | None = None) -> ObjectStoreClient:
        client = ObjectStoreClient(self.reactor, endpoint or self.alice.endpoint, access,
                                   secret, REGION, timeout=30)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(client.close()))
        return client

    async def test_round_trip_through_files(self) -> None:
        name = bucket_name("client")
        await self.client.create_bucket(name)
        self.addCleanup(self.alice.purge, name)
        with self.assertRaises(errors.BucketAlreadyOwnedByYou):
            await self.client.create_bucket(name)
        source = os.path.join(self.dir, "image.raw")
        md5 = write_file(source, 24 * MIB + 7)
        etag = await self.client.put_object_from_file(name, "images/disk \u00e9.raw", source,
                                                      content_type="application/x-raw",
                                                      metadata={"arch": "x86_64"})
        self.assertEqual(etag, md5)
        head = await self.client.head_object(name, "images/disk \u00e9.raw")
        self.assertEqual((head.size, head.etag, head.content_type, head.metadata),
                         (24 * MIB + 7, md5, "application/x-raw", {"arch": "x86_64"}))
        target = os.path.join(self.dir, "cache", "disk")
        os.makedirs(os.path.dirname(target))
        fetched = await self.client.get_object_to_file(name, "images/disk \u00e9.raw", target,
                                                       expected_etag=md5)
        self.assertEqual(fetched.etag, md5)
        self.assertEqual(file_md5(target), md5)
        self.assertEqual(os.listdir(os.path.dirname(target)), ["disk"])
        # another version than the one expected: refused, the cached file kept
        with self.assertRaises(errors.PreconditionFailed):
            await self.client.get_object_to_file(name, "images/disk \u00e9.raw", target,
                                                 expected_etag="0" * 32)
        self.assertEqual(file_md5(target), md5)
        self.assertEqual(os.listdir(os.path.dirname(target)), ["disk"])

    async def test_manifest_bytes_and_listing(self) -> None:
        name = self.bucket("client")
        manifest = b"<manifest><image><parts count='3'/></image></manifest>"
        self.s3.put_object(Bucket=name, Key="bundle/image.manifest.xml", Body=manifest)
        for i in range(3):
            self.s3.put_object(Bucket=name, Key=f"bundle/image.part.{i}", Body=b"p" * i)
        self.s3.put_object(Bucket=name, Key="other", Body=b"o")
        got = await self.client.get_object_bytes(name, "bundle/image.manifest.xml", 64 * 1024)
        self.assertEqual(got, manifest)
        with self.assertRaises(errors.EntityTooLarge):
            await self.client.get_object_bytes(name, "bundle/image.manifest.xml", 10)
        listing = await self.client.list_objects(name, prefix="bundle/", page_size=2)
        self.assertEqual([o.key for o in listing.objects],
                         ["bundle/image.manifest.xml", "bundle/image.part.0",
                          "bundle/image.part.1", "bundle/image.part.2"])
        self.assertEqual([o.size for o in listing.objects][1:], [0, 1, 2])
        rolled = await self.client.list_objects(name, delimiter="/")
        self.assertEqual(([o.key for o in rolled.objects], rolled.common_prefixes),
                         (["other"], ("bundle/",)))

    async def test_multipart_object_download(self) -> None:
        name = self.bucket("client")
        parts = [os.urandom(5 * MIB), b"end"]
        upload = self.s3.create_multipart_upload(Bucket=name, Key="mp")["UploadId"]
        etags = [self.s3.upload_part(Bucket=name, Key="mp", UploadId=upload, PartNumber=n + 1,
                                     Body=p)["ETag"] for n, p in enumerate(parts)]
        self.s3.complete_multipart_upload(Bucket=name, Key="mp", UploadId=upload,
                                          MultipartUpload={"Parts": [
                                              {"PartNumber": n + 1, "ETag": e}
                                              for n, e in enumerate(etags)]})
        target = os.path.join(self.dir, "mp")
        head = await self.client.get_object_to_file(name, "mp", target)
        self.assertTrue(head.etag.endswith("-2"))
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"".join(parts))

    async def test_errors(self) -> None:
        name = self.bucket("client")
        with self.assertRaises(errors.NoSuchKey) as caught:
            await self.client.get_object_bytes(name, "missing", 100)
        self.assertEqual((caught.exception.code, caught.exception.status), ("NoSuchKey", 404))
        with self.assertRaises(errors.NoSuchKey):
            await self.client.head_object(name, "missing")
        with self.assertRaises(errors.NoSuchBucket):
            await self.client.list_objects(name + "-none")
        target = os.path.join(self.dir, "never")
        with self.assertRaises(errors.NoSuchKey):
            await self.client.get_object_to_file(name, "missing", target)
        self.assertEqual(os.listdir(self.dir), [])
        self.s3.put_object(Bucket=name, Key="k", Body=b"x")
        await self.client.delete_object(name, "k")
        await self.client.delete_object(name, "k")
        with self.assertRaises(errors.NoSuchKey):
            await self.client.head_object(name, "k")

    async def test_other_project(self) -> None:
        name = self.bucket("client")
        intruder = self.make(self.bob.access, self.bob.secret)
        with self.assertRaises(errors.AccessDenied):
            await intruder.get_object_bytes(name, "anything", 100)
        with self.assertRaises(errors.BucketAlreadyExists):
            await intruder.create_bucket(name)

    async def test_bad_credentials(self) -> None:
        forger = self.make(self.alice.access, "wrong secret")
        with self.assertRaises(RemoteS3Error) as caught:
            await forger.list_objects(self.bucket("client"))
        self.assertEqual((caught.exception.code, caught.exception.status),
                         ("SignatureDoesNotMatch", 403))

    async def test_unreachable(self) -> None:
        nowhere = self.make(self.alice.access, self.alice.secret,
                            endpoint=f"http://127.0.0.1:{free_port()}")
        with self.assertRaises(ObjectStoreUnavailable):
            await nowhere.head_object("b", "k")
