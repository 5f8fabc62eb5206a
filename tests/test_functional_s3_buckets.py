"""
Functional: buckets on the running all-in-one's object store, with boto3 and
boto 2.49, as two users in two projects.
"""

from __future__ import annotations

from boto.exception import S3CreateError, S3ResponseError
from botocore.exceptions import ClientError

from tests.support.s3 import REGION, S3Case, bucket_name, error_code

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def grants(acl: dict) -> set[tuple[str, str]]:
    """@return: (grantee, permission) pairs: a canonical id or a group URI."""
    found = set()
    for grant in acl["Grants"]:
        grantee = grant["Grantee"]
        found.add((grantee.get("ID") or grantee.get("URI"), grant["Permission"]))
    return found


class BucketLifecycleTests(S3Case):
    """Create, list, head, delete; the errors S3 answers with."""

    def test_lifecycle(self) -> None:
        name = bucket_name()
        created = self.s3.create_bucket(Bucket=name)
        self.assertEqual(created["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.addCleanup(self.alice.purge, name)
        listed = self.s3.list_buckets()
        self.assertIn(name, [b["Name"] for b in listed["Buckets"]])
        self.assertEqual(listed["Owner"]["DisplayName"], self.alice.project)
        self.assertTrue(listed["Owner"]["ID"])
        head = self.s3.head_bucket(Bucket=name)
        self.assertEqual(head["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.s3.delete_bucket(Bucket=name)
        self.assertNotIn(name, [b["Name"] for b in self.s3.list_buckets()["Buckets"]])
        self.assertCode("404", self.s3.head_bucket, Bucket=name)
        self.assertCode("NoSuchBucket", self.s3.delete_bucket, Bucket=name)
        self.assertCode("NoSuchBucket", self.s3.list_objects_v2, Bucket=name)

    def test_create_with_location_constraint(self) -> None:
        name = bucket_name()
        self.s3.create_bucket(Bucket=name,
                              CreateBucketConfiguration={"LocationConstraint": REGION})
        self.addCleanup(self.alice.purge, name)
        location = self.s3.get_bucket_location(Bucket=name)
        self.assertEqual(location["LocationConstraint"], REGION)

    def test_already_owned_by_you(self) -> None:
        name = self.bucket()
        self.assertCode("BucketAlreadyOwnedByYou", self.s3.create_bucket, Bucket=name)

    def test_already_exists(self) -> None:
        name = self.bucket()
        self.assertCode("BucketAlreadyExists", self.bob.s3.create_bucket, Bucket=name)

    def test_delete_not_empty(self) -> None:
        name = self.bucket()
        self.s3.put_object(Bucket=name, Key="k", Body=b"x")
        self.assertCode("BucketNotEmpty", self.s3.delete_bucket, Bucket=name)
        self.s3.delete_object(Bucket=name, Key="k")
        self.s3.delete_bucket(Bucket=name)

    def test_delete_with_upload_in_progress(self) -> None:
        name = self.bucket()
        self.s3.create_multipart_upload(Bucket=name, Key="big")
        self.assertCode("BucketNotEmpty", self.s3.delete_bucket, Bucket=name)

    def test_invalid_names(self) -> None:
        for name in ("ab", "a" * 64, "Upper-case", "under_score", "-dash-first",
                     "dash-last-", "two..dots", "192.168.1.10", "x"):
            self.assertEqual(error_code(self.s3.create_bucket, Bucket=name),
                             "InvalidBucketName", name)

    def test_listing_is_per_project(self) -> None:
        mine = self.bucket()
        theirs = bucket_name()
        self.bob.s3.create_bucket(Bucket=theirs)
        self.addCleanup(self.bob.purge, theirs)
        alice_sees = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
        bob_sees = [b["Name"] for b in self.bob.s3.list_buckets()["Buckets"]]
        self.assertIn(mine, alice_sees)
        self.assertNotIn(theirs, alice_sees)
        self.assertIn(theirs, bob_sees)
        self.assertNotIn(mine, bob_sees)
        self.assertEqual(alice_sees, sorted(alice_sees))


class OtherProjectTests(S3Case):
    """A bucket belongs to the project that made it; others get AccessDenied."""

    def test_access_refused(self) -> None:
        name = self.bucket()
        self.s3.put_object(Bucket=name, Key="secret", Body=b"alice's")
        bob = self.bob.s3
        self.assertCode("403", bob.head_bucket, Bucket=name)
        self.assertCode("AccessDenied", bob.list_objects_v2, Bucket=name)
        self.assertCode("AccessDenied", bob.list_objects, Bucket=name)
        self.assertCode("AccessDenied", bob.get_object, Bucket=name, Key="secret")
        self.assertCode("403", bob.head_object, Bucket=name, Key="secret")
        self.assertCode("AccessDenied", bob.put_object, Bucket=name, Key="intruder", Body=b"x")
        self.assertCode("AccessDenied", bob.delete_object, Bucket=name, Key="secret")
        self.assertCode("AccessDenied", bob.delete_bucket, Bucket=name)
        self.assertCode("AccessDenied", bob.get_bucket_acl, Bucket=name)
        self.assertCode("AccessDenied", bob.put_bucket_acl, Bucket=name, ACL="public-read")
        self.assertCode("AccessDenied", bob.get_object_acl, Bucket=name, Key="secret")
        self.assertCode("AccessDenied", bob.create_multipart_upload, Bucket=name, Key="m")
        self.assertCode("AccessDenied", bob.copy_object, Bucket=name, Key="copy",
                        CopySource={"Bucket": name, "Key": "secret"})
        # nothing changed
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=name)["Contents"]]
        self.assertEqual(keys, ["secret"])
        self.assertEqual(self.s3.get_object(Bucket=name, Key="secret")["Body"].read(),
                         b"alice's")

    def test_copy_from_other_project_refused(self) -> None:
        source = self.bucket()
        self.s3.put_object(Bucket=source, Key="secret", Body=b"alice's")
        target = bucket_name()
        self.bob.s3.create_bucket(Bucket=target)
        self.addCleanup(self.bob.purge, target)
        self.assertCode("AccessDenied", self.bob.s3.copy_object, Bucket=target, Key="stolen",
                        CopySource={"Bucket": source, "Key": "secret"})
        self.assertNotIn("Contents", self.bob.s3.list_objects_v2(Bucket=target))

    def test_user_outside_the_project_refused(self) -> None:
        """bob's own key, naming alice's project: not a member, refused."""
        from tests.support.s3 import boto3_s3
        name = self.bucket()
        intruder = boto3_s3(self.alice.endpoint, f"{self.bob.access_key}:{self.alice.project}",
                            self.bob.secret)
        try:
            intruder.list_objects_v2(Bucket=name)
        except ClientError as e:
            self.assertIn(e.response["Error"]["Code"], ("AccessDenied", "InvalidAccessKeyId"))
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 403)
        else:
            self.fail("a user outside the project listed its bucket")


class BucketAclTests(S3Case):
    """Canned ACLs, with the owner's canonical id and display name."""

    def owner(self) -> dict:
        return self.s3.list_buckets()["Owner"]

    def test_canned_acls(self) -> None:
        owner = self.owner()
        expected = {
            "private": set(),
            "public-read": {(ALL_USERS, "READ")},
            "public-read-write": {(ALL_USERS, "READ"), (ALL_USERS, "WRITE")},
            "authenticated-read": {(AUTHENTICATED_USERS, "READ")},
        }
        for acl, extra in expected.items():
            name = self.bucket(acl=acl)
            got = self.s3.get_bucket_acl(Bucket=name)
            self.assertEqual(got["Owner"], owner, acl)
            self.assertEqual(grants(got), {(owner["ID"], "FULL_CONTROL")} | extra, acl)

    def test_put_bucket_acl(self) -> None:
        owner = self.owner()
        name = self.bucket()
        self.s3.put_bucket_acl(Bucket=name, ACL="public-read")
        self.assertEqual(grants(self.s3.get_bucket_acl(Bucket=name)),
                         {(owner["ID"], "FULL_CONTROL"), (ALL_USERS, "READ")})
        self.s3.put_bucket_acl(Bucket=name, ACL="private")
        self.assertEqual(grants(self.s3.get_bucket_acl(Bucket=name)),
                         {(owner["ID"], "FULL_CONTROL")})

    def test_owners_differ_between_projects(self) -> None:
        self.assertNotEqual(self.owner()["ID"], self.bob.s3.list_buckets()["Owner"]["ID"])

    def test_public_read_bucket_listing_is_anonymous(self) -> None:
        import urllib.request
        name = self.bucket(acl="public-read")
        self.s3.put_object(Bucket=name, Key="open", Body=b"o")
        with urllib.request.urlopen(f"{self.alice.endpoint}/{name}?list-type=2") as answer:
            body = answer.read()
        self.assertIn(b"<Key>open</Key>", body)


class Boto2BucketTests(S3Case):
    """boto 2.49 (SigV2, path style), as euca2ools-era tools use the store."""

    def test_lifecycle(self) -> None:
        conn = self.alice.boto2_s3()
        name = bucket_name()
        bucket = conn.create_bucket(name)
        self.addCleanup(self.alice.purge, name)
        self.assertIn(name, [b.name for b in conn.get_all_buckets()])
        self.assertIsNotNone(conn.lookup(name))
        with self.assertRaises(S3CreateError) as caught:
            self.bob.boto2_s3().create_bucket(name)
        self.assertEqual(caught.exception.error_code, "BucketAlreadyExists")
        key = bucket.new_key("hello.txt")
        key.set_contents_from_string("hello", headers={"Content-Type": "text/plain"})
        with self.assertRaises(S3ResponseError) as caught:
            conn.delete_bucket(name)
        self.assertEqual(caught.exception.error_code, "BucketNotEmpty")
        bucket.delete_key("hello.txt")
        conn.delete_bucket(name)
        self.assertIsNone(conn.lookup(name))

    def test_acl(self) -> None:
        conn = self.alice.boto2_s3()
        name = self.bucket()
        bucket = conn.get_bucket(name)
        bucket.set_canned_acl("public-read")
        policy = bucket.get_acl()
        self.assertEqual(policy.owner.display_name, self.alice.project)
        self.assertIn((ALL_USERS, "READ"), {(g.uri, g.permission) for g in policy.acl.grants})
        self.assertEqual(bucket.get_location(), REGION)
