"""
Functional: multipart uploads on the running all-in-one: create, upload
parts, UploadPartCopy, list parts and uploads, complete (ETag md5-of-md5s-N,
the part rules), abort; and objects over 200 MB sent by boto3's transfer
manager and by `aws s3 cp`, each in several parts, and read back.
"""

from __future__ import annotations

import os
import shutil

from boto3.s3.transfer import TransferConfig

from tests.support.s3 import MIB, S3Case, file_md5, multipart_etag, write_file

PART = 5 * MIB  # the smallest part but the last


class MultipartTests(S3Case):
    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()
        self.parts = [os.urandom(PART), os.urandom(PART), b"tail" * 1000]

    def start(self, key: str = "mp", **kwargs) -> str:
        return self.s3.create_multipart_upload(Bucket=self.b, Key=key, **kwargs)["UploadId"]

    def upload(self, upload_id: str, number: int, body: bytes, key: str = "mp") -> str:
        return self.s3.upload_part(Bucket=self.b, Key=key, UploadId=upload_id,
                                   PartNumber=number, Body=body)["ETag"]

    def complete(self, upload_id: str, parts: list[tuple[int, str]], key: str = "mp") -> dict:
        return self.s3.complete_multipart_upload(
            Bucket=self.b, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})

    def test_upload(self) -> None:
        upload_id = self.start(ContentType="application/x-test", Metadata={"kind": "parts"})
        # out of order, and one part sent twice: the last one counts
        etags = {3: self.upload(upload_id, 3, self.parts[2]),
                 1: self.upload(upload_id, 1, b"replaced below" * 10)}
        etags[1] = self.upload(upload_id, 1, self.parts[0])
        etags[2] = self.upload(upload_id, 2, self.parts[1])
        listed = self.s3.list_parts(Bucket=self.b, Key="mp", UploadId=upload_id)
        self.assertEqual([(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]],
                         [(n, etags[n], len(self.parts[n - 1])) for n in (1, 2, 3)])
        page = self.s3.list_parts(Bucket=self.b, Key="mp", UploadId=upload_id, MaxParts=2)
        self.assertTrue(page["IsTruncated"])
        self.assertEqual(page["NextPartNumberMarker"], 2)
        rest = self.s3.list_parts(Bucket=self.b, Key="mp", UploadId=upload_id,
                                  PartNumberMarker=2)
        self.assertEqual([p["PartNumber"] for p in rest["Parts"]], [3])
        # not visible until complete
        self.assertCode("404", self.s3.head_object, Bucket=self.b, Key="mp")
        done = self.complete(upload_id, sorted(etags.items()))
        expected = multipart_etag(self.parts)
        self.assertEqual(done["ETag"], f'"{expected}"')
        self.assertEqual((done["Bucket"], done["Key"]), (self.b, "mp"))
        got = self.s3.get_object(Bucket=self.b, Key="mp")
        self.assertEqual(got["ETag"], f'"{expected}"')
        self.assertEqual(got["ContentType"], "application/x-test")
        self.assertEqual(got["Metadata"], {"kind": "parts"})
        self.assertEqual(got["Body"].read(), b"".join(self.parts))
        ranged = self.s3.get_object(Bucket=self.b, Key="mp", Range=f"bytes={PART - 2}-{PART + 1}")
        self.assertEqual(ranged["Body"].read(), (self.parts[0] + self.parts[1])[PART - 2:PART + 2])
        self.assertCode("NoSuchUpload", self.s3.list_parts, Bucket=self.b, Key="mp",
                        UploadId=upload_id)
        self.assertNotIn("Uploads", self.s3.list_multipart_uploads(Bucket=self.b))

    def test_subset_of_parts(self) -> None:
        upload_id = self.start()
        first = self.upload(upload_id, 1, self.parts[0])
        self.upload(upload_id, 2, self.parts[1])
        last = self.upload(upload_id, 3, self.parts[2])
        self.complete(upload_id, [(1, first), (3, last)])
        body = self.s3.get_object(Bucket=self.b, Key="mp")["Body"].read()
        self.assertEqual(body, self.parts[0] + self.parts[2])

    def test_part_rules(self) -> None:
        upload_id = self.start()
        small = self.upload(upload_id, 1, b"too small")
        big = self.upload(upload_id, 2, self.parts[1])
        last = self.upload(upload_id, 3, self.parts[2])
        self.assertCode("EntityTooSmall", self.complete, upload_id, [(1, small), (2, big)])
        self.assertCode("InvalidPartOrder", self.complete, upload_id, [(3, last), (2, big)])
        self.assertCode("InvalidPart", self.complete, upload_id,
                        [(2, big), (3, '"00000000000000000000000000000000"')])
        self.assertCode("InvalidPart", self.complete, upload_id, [(2, big), (4, last)])
        self.assertCode("MalformedXML", self.complete, upload_id, [])
        self.assertCode("InvalidArgument", self.s3.upload_part, Bucket=self.b, Key="mp",
                        UploadId=upload_id, PartNumber=10001, Body=b"x")
        # the upload survives refused completions
        self.complete(upload_id, [(2, big), (3, last)])
        self.assertEqual(self.s3.get_object(Bucket=self.b, Key="mp")["Body"].read(),
                         self.parts[1] + self.parts[2])

    def test_upload_part_copy(self) -> None:
        source = self.parts[0] + self.parts[1]
        self.s3.put_object(Bucket=self.b, Key="source", Body=source)
        upload_id = self.start("assembled")
        copied = self.s3.upload_part_copy(Bucket=self.b, Key="assembled", UploadId=upload_id,
                                          PartNumber=1, CopySource={"Bucket": self.b,
                                                                    "Key": "source"},
                                          CopySourceRange=f"bytes={PART}-{2 * PART - 1}")
        whole = self.s3.upload_part_copy(Bucket=self.b, Key="assembled", UploadId=upload_id,
                                         PartNumber=2, CopySource={"Bucket": self.b,
                                                                   "Key": "source"})
        tail = self.upload(upload_id, 3, self.parts[2], key="assembled")
        self.assertCode("InvalidRange", self.s3.upload_part_copy, Bucket=self.b,
                        Key="assembled", UploadId=upload_id, PartNumber=4,
                        CopySource={"Bucket": self.b, "Key": "source"},
                        CopySourceRange=f"bytes=0-{3 * PART}")
        done = self.complete(upload_id, [(1, copied["CopyPartResult"]["ETag"]),
                                         (2, whole["CopyPartResult"]["ETag"]), (3, tail)],
                             key="assembled")
        expected = [self.parts[1], source, self.parts[2]]
        self.assertEqual(done["ETag"], f'"{multipart_etag(expected)}"')
        self.assertEqual(self.s3.get_object(Bucket=self.b, Key="assembled")["Body"].read(),
                         b"".join(expected))

    def test_list_uploads_and_abort(self) -> None:
        ids = {key: self.start(key) for key in ("x/one", "x/two", "y")}
        second = self.start("x/one")
        listed = self.s3.list_multipart_uploads(Bucket=self.b)
        self.assertEqual([(u["Key"], u["UploadId"]) for u in listed["Uploads"]][:2],
                         [("x/one", ids["x/one"]), ("x/one", second)])
        self.assertEqual(sorted(u["Key"] for u in listed["Uploads"]),
                         ["x/one", "x/one", "x/two", "y"])
        prefixed = self.s3.list_multipart_uploads(Bucket=self.b, Prefix="x/t")
        self.assertEqual([u["UploadId"] for u in prefixed["Uploads"]], [ids["x/two"]])
        self.upload(ids["y"], 1, b"part of y", key="y")
        self.s3.abort_multipart_upload(Bucket=self.b, Key="y", UploadId=ids["y"])
        self.assertCode("NoSuchUpload", self.s3.list_parts, Bucket=self.b, Key="y",
                        UploadId=ids["y"])
        self.assertCode("NoSuchUpload", self.upload, ids["y"], 2, b"late", "y")
        self.assertCode("NoSuchUpload", self.s3.abort_multipart_upload, Bucket=self.b,
                        Key="y", UploadId=ids["y"])
        self.assertCode("NoSuchUpload", self.complete, "no-such-upload", [(1, '"x"')])
        self.assertNotIn("y", [u["Key"] for u in
                               self.s3.list_multipart_uploads(Bucket=self.b)["Uploads"]])
        self.assertCode("404", self.s3.head_object, Bucket=self.b, Key="y")

    def test_other_project_cannot_touch_upload(self) -> None:
        upload_id = self.start()
        self.assertCode("AccessDenied", self.bob.s3.upload_part, Bucket=self.b, Key="mp",
                        UploadId=upload_id, PartNumber=1, Body=b"intruder")
        self.assertCode("AccessDenied", self.bob.s3.abort_multipart_upload, Bucket=self.b,
                        Key="mp", UploadId=upload_id)
        self.assertCode("AccessDenied", self.bob.s3.list_multipart_uploads, Bucket=self.b)


class LargeObjectTests(S3Case):
    """Objects over 200 MB, in many parts, written and read back in full."""

    SIZE = 200 * MIB + 12345

    def setUp(self) -> None:
        super().setUp()
        self.b = self.bucket()
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.source = os.path.join(self.dir, "source.bin")
        self.addCleanup(self._remove_files)
        self.md5 = write_file(self.source, self.SIZE, seed=os.urandom(8))

    def _remove_files(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def parts_of(self, chunk: int) -> list[bytes]:
        parts = []
        with open(self.source, "rb") as f:
            while piece := f.read(chunk):
                parts.append(piece)
        return parts

    def test_boto3_transfer_manager(self) -> None:
        chunk = 16 * MIB
        config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=chunk,
                                max_concurrency=4)
        self.s3.upload_file(self.source, self.b, "big/boto3.bin", Config=config)
        head = self.s3.head_object(Bucket=self.b, Key="big/boto3.bin")
        self.assertEqual(head["ContentLength"], self.SIZE)
        self.assertEqual(head["ETag"], f'"{multipart_etag(self.parts_of(chunk))}"')
        self.assertTrue(head["ETag"].endswith(f'-{-(-self.SIZE // chunk)}"'))
        target = os.path.join(self.dir, "back.bin")
        self.s3.download_file(self.b, "big/boto3.bin", target, Config=config)
        self.assertEqual(file_md5(target), self.md5)

    def test_awscli_cp(self) -> None:
        home = os.path.join(self.dir, "home")
        self.alice.aws(home, "s3", "cp", self.source, f"s3://{self.b}/big/cli.bin")
        head = self.s3.head_object(Bucket=self.b, Key="big/cli.bin")
        self.assertEqual(head["ContentLength"], self.SIZE)
        # awscli's default part size is 8 MiB
        self.assertEqual(head["ETag"], f'"{multipart_etag(self.parts_of(8 * MIB))}"')
        target = os.path.join(self.dir, "back.bin")
        self.alice.aws(home, "s3", "cp", f"s3://{self.b}/big/cli.bin", target)
        self.assertEqual(file_md5(target), self.md5)
