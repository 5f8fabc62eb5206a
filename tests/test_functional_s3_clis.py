"""
Functional: the object store through the command-line tools users run:
awscli (`aws s3 ...` and `aws s3api ...`, configured only by the novarc's
variables) and Debian's s3cmd (with a config file, Signature V2 and V4).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request

from tests.support.s3 import MIB, S3Case, bucket_name, file_md5, md5_hex, write_file


class CliCase(S3Case):
    def setUp(self) -> None:
        super().setUp()
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.home = os.path.join(self.dir, "home")

    def local(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def keys(self, bucket: str) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


class AwsS3Tests(CliCase):
    """`aws s3`: mb, ls, cp, sync (both ways, --delete), rm, rb, presign."""

    def aws(self, *args: str, check: bool = True):
        return self.alice.aws(self.home, *args, check=check)

    def test_bucket_commands(self) -> None:
        name = bucket_name()
        self.addCleanup(self.alice.purge, name)
        self.aws("s3", "mb", f"s3://{name}")
        self.assertIn(name, self.aws("s3", "ls").stdout)
        self.aws("s3", "cp", self.local("a.txt", b"aaa"), f"s3://{name}/a.txt")
        refused = self.aws("s3", "rb", f"s3://{name}", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("BucketNotEmpty", refused.stderr)
        self.aws("s3", "rb", f"s3://{name}", "--force")
        self.assertNotIn(name, [b["Name"] for b in self.s3.list_buckets()["Buckets"]])

    def test_cp_ls_rm(self) -> None:
        b = self.bucket()
        data = os.urandom(300 * 1024)
        self.aws("s3", "cp", self.local("file.bin", data), f"s3://{b}/dir/file.bin",
                 "--content-type", "application/x-test", "--metadata", "colour=green")
        head = self.s3.head_object(Bucket=b, Key="dir/file.bin")
        self.assertEqual((head["ContentType"], head["Metadata"], head["ETag"]),
                         ("application/x-test", {"colour": "green"}, f'"{md5_hex(data)}"'))
        listing = self.aws("s3", "ls", f"s3://{b}/dir/").stdout
        self.assertIn("file.bin", listing)
        self.assertIn(str(len(data)), listing)
        self.assertIn("PRE dir/", self.aws("s3", "ls", f"s3://{b}").stdout)
        back = os.path.join(self.dir, "back.bin")
        self.aws("s3", "cp", f"s3://{b}/dir/file.bin", back)
        self.assertEqual(file_md5(back), md5_hex(data))
        self.aws("s3", "cp", f"s3://{b}/dir/file.bin", f"s3://{b}/copy.bin")
        self.assertEqual(self.keys(b), ["copy.bin", "dir/file.bin"])
        self.aws("s3", "rm", f"s3://{b}/copy.bin")
        self.aws("s3", "rm", f"s3://{b}/dir/", "--recursive")
        self.assertEqual(self.keys(b), [])

    def test_sync(self) -> None:
        b = self.bucket()
        tree = {"one.txt": b"1", "sub/two.txt": b"22", "sub/deeper/three.txt": b"333",
                "\u00fcnicode name.txt": b"u"}
        source = os.path.join(self.dir, "tree")
        an_hour_ago = time.time() - 3600  # files older than their upload, as usual
        for name, data in tree.items():
            path = self.local(os.path.join("tree", name), data)
            os.utime(path, (an_hour_ago, an_hour_ago))
        self.aws("s3", "sync", source, f"s3://{b}/backup")
        self.assertEqual(self.keys(b), sorted((f"backup/{n}" for n in tree), key=str.encode))
        # a second sync sends nothing; a change and a removal are synced
        self.assertEqual(self.aws("s3", "sync", source, f"s3://{b}/backup").stdout.strip(), "")
        os.unlink(os.path.join(source, "one.txt"))
        self.local("tree/sub/two.txt", b"changed!")
        self.aws("s3", "sync", source, f"s3://{b}/backup", "--delete")
        self.assertNotIn("backup/one.txt", self.keys(b))
        self.assertEqual(self.s3.get_object(Bucket=b, Key="backup/sub/two.txt")["Body"].read(),
                         b"changed!")
        restored = os.path.join(self.dir, "restored")
        self.aws("s3", "sync", f"s3://{b}/backup", restored)
        with open(os.path.join(restored, "sub", "deeper", "three.txt"), "rb") as f:
            self.assertEqual(f.read(), b"333")
        self.assertFalse(os.path.exists(os.path.join(restored, "one.txt")))

    def test_presign(self) -> None:
        b = self.bucket()
        self.s3.put_object(Bucket=b, Key="p", Body=b"shared with a link")
        url = self.aws("s3", "presign", f"s3://{b}/p", "--expires-in", "300").stdout.strip()
        with urllib.request.urlopen(url) as answer:
            self.assertEqual(answer.read(), b"shared with a link")


class AwsS3ApiTests(CliCase):
    """`aws s3api`: the low-level calls and their JSON."""

    def api(self, *args: str) -> dict:
        out = self.alice.aws(self.home, "s3api", *args, "--output", "json").stdout
        return json.loads(out) if out.strip() else {}

    def test_objects(self) -> None:
        b = self.bucket()
        body = self.local("body.txt", b"0123456789")
        put = self.api("put-object", "--bucket", b, "--key", "k", "--body", body,
                       "--metadata", "a=1", "--cache-control", "no-store")
        self.assertEqual(put["ETag"], f'"{md5_hex(b"0123456789")}"')
        head = self.api("head-object", "--bucket", b, "--key", "k")
        self.assertEqual((head["Metadata"], head["CacheControl"], head["ContentLength"]),
                         ({"a": "1"}, "no-store", 10))
        out = os.path.join(self.dir, "range.txt")
        got = self.api("get-object", "--bucket", b, "--key", "k", "--range", "bytes=2-4", out)
        self.assertEqual(got["ContentRange"], "bytes 2-4/10")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"234")
        listed = self.api("list-objects-v2", "--bucket", b, "--no-paginate")
        self.assertEqual((listed["KeyCount"], listed["Contents"][0]["Key"]), (1, "k"))
        location = self.api("get-bucket-location", "--bucket", b)
        self.assertIn("LocationConstraint", location)
        self.api("delete-object", "--bucket", b, "--key", "k")
        self.assertEqual(self.keys(b), [])

    def test_multipart(self) -> None:
        b = self.bucket()
        first = self.local("p1", os.urandom(5 * MIB))
        second = self.local("p2", b"end")
        upload = self.api("create-multipart-upload", "--bucket", b, "--key", "mp")["UploadId"]
        etags = [self.api("upload-part", "--bucket", b, "--key", "mp", "--upload-id", upload,
                          "--part-number", str(n), "--body", path)["ETag"]
                 for n, path in ((1, first), (2, second))]
        parts = self.api("list-parts", "--bucket", b, "--key", "mp", "--upload-id", upload)
        self.assertEqual([p["ETag"] for p in parts["Parts"]], etags)
        uploads = self.api("list-multipart-uploads", "--bucket", b)
        self.assertEqual([u["UploadId"] for u in uploads["Uploads"]], [upload])
        done = self.api("complete-multipart-upload", "--bucket", b, "--key", "mp",
                        "--upload-id", upload, "--multipart-upload", json.dumps(
                            {"Parts": [{"PartNumber": n + 1, "ETag": e}
                                       for n, e in enumerate(etags)]}))
        self.assertTrue(done["ETag"].endswith('-2"'))
        self.assertEqual(self.s3.head_object(Bucket=b, Key="mp")["ContentLength"],
                         5 * MIB + 3)

    def test_error_exit(self) -> None:
        theirs = bucket_name()
        self.bob.s3.create_bucket(Bucket=theirs)
        self.addCleanup(self.bob.purge, theirs)
        result = self.alice.aws(self.home, "s3api", "list-objects-v2", "--bucket", theirs,
                                check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("AccessDenied", result.stderr)


class S3cmdTests(CliCase):
    """Debian's s3cmd 2.3 with Signature V2 (its classic mode) and V4."""

    def run_through(self, signature_v2: bool) -> None:
        def s3cmd(*args: str, check: bool = True):
            return self.alice.s3cmd(self.home, *args, signature_v2=signature_v2, check=check)

        name = bucket_name("s3cmd")
        self.addCleanup(self.alice.purge, name)
        s3cmd("mb", f"s3://{name}")
        self.assertIn(f"s3://{name}", s3cmd("ls").stdout)
        small = self.local("small.txt", b"small file\n")
        big = os.path.join(self.dir, "big.bin")
        big_md5 = write_file(big, 12 * MIB)
        s3cmd("put", small, f"s3://{name}/docs/small.txt", "--mime-type=text/plain",
              "--add-header=x-amz-meta-origin:s3cmd")
        s3cmd("put", big, f"s3://{name}/big.bin", "--multipart-chunk-size-mb=5")
        self.assertTrue(self.s3.head_object(Bucket=name, Key="big.bin")["ETag"]
                        .endswith('-3"'))
        listing = s3cmd("ls", "--recursive", f"s3://{name}").stdout
        self.assertIn(f"s3://{name}/docs/small.txt", listing)
        self.assertIn(f"s3://{name}/big.bin", listing)
        self.assertIn("DIR", s3cmd("ls", f"s3://{name}").stdout)
        info = s3cmd("info", f"s3://{name}/docs/small.txt").stdout
        self.assertIn("text/plain", info)
        self.assertIn(md5_hex(b"small file\n"), info)
        back = os.path.join(self.dir, "big.back")
        s3cmd("get", f"s3://{name}/big.bin", back)
        self.assertEqual(file_md5(back), big_md5)
        public = f"{self.alice.endpoint}/{name}/docs/small.txt"
        with self.assertRaises(urllib.error.HTTPError):
            urllib.request.urlopen(public)
        s3cmd("setacl", "--acl-public", f"s3://{name}/docs/small.txt")
        with urllib.request.urlopen(public) as answer:
            self.assertEqual(answer.read(), b"small file\n")
        s3cmd("setacl", "--acl-private", f"s3://{name}/docs/small.txt")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(public)
        self.assertEqual(caught.exception.code, 403)
        s3cmd("put", "--acl-public", small, f"s3://{name}/open.txt")
        with urllib.request.urlopen(f"{self.alice.endpoint}/{name}/open.txt") as answer:
            self.assertEqual(answer.read(), b"small file\n")
        s3cmd("sync", os.path.join(self.dir, "small.txt"), f"s3://{name}/synced/")
        self.assertIn("synced/small.txt", self.keys(name))
        s3cmd("del", f"s3://{name}/docs/small.txt")
        s3cmd("del", "--recursive", "--force", f"s3://{name}")
        s3cmd("rb", f"s3://{name}")
        self.assertNotIn(name, [b["Name"] for b in self.s3.list_buckets()["Buckets"]])

    def test_signature_v2(self) -> None:
        self.run_through(signature_v2=True)

    def test_signature_v4(self) -> None:
        self.run_through(signature_v2=False)
