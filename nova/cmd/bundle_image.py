"""
C{nova-bundle-image}: bundle an image file the way euca2ools does, upload
the bundle to the object store and register it, for users without euca2ools.

    nova-bundle-image -i FILE [--prefix P] [--bucket B] [--kernel-id aki-..]
        [--ramdisk-id ari-..] [--image-type machine|kernel|ramdisk]
        [--arch x86_64] [--name N] [--no-register] [--work-dir D]

The credentials come from the environment a sourced C{novarc} sets:
C{EC2_URL}, C{S3_URL}, C{EC2_ACCESS_KEY}, C{EC2_SECRET_KEY}, C{EC2_CERT},
C{EC2_PRIVATE_KEY}, C{NOVA_CERT} and C{AWS_DEFAULT_REGION}. Uploads use
boto3 (path-style addressing, SigV4); RegisterImage uses boto3 too. On
success it prints C{IMAGE<tab><id>} (with C{--no-register}:
C{MANIFEST<tab><bucket>/<prefix>.manifest.xml}); errors are one line on
stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import attr

from nova.exception import NovaError
from nova.image.bundle import IMAGE_TYPES, make_bundle
from nova.image.bundle.progress import ProgressBar

PROG = "nova-bundle-image"
_MIB = 1024 * 1024


class CommandError(Exception):
    """Something the user must fix; reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Bundle, upload and register an image"
                     " (credentials from a sourced novarc).")
    parser.add_argument("-i", "--image", required=True, help="the image file")
    parser.add_argument("--prefix", help="bundle name (default: the file's name)")
    parser.add_argument("--bucket", help="bucket to upload to (default: <project>-images,"
                        " created if missing)")
    parser.add_argument("--kernel-id", help="default kernel, aki-...")
    parser.add_argument("--ramdisk-id", help="default ramdisk, ari-...")
    parser.add_argument("--image-type", choices=IMAGE_TYPES, default="machine")
    parser.add_argument("--arch", default="x86_64", help="architecture (default x86_64)")
    parser.add_argument("--name", help="image name for RegisterImage (default: the prefix)")
    parser.add_argument("--no-register", action="store_true",
                        help="upload only; print the manifest location")
    parser.add_argument("--work-dir", help="where to write (and keep) the bundle"
                        " (default: a temporary directory, removed afterwards)")
    return parser


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Settings:
    """What the novarc environment provides."""

    ec2_url: str | None
    s3_url: str
    access: str
    secret: str
    region: str
    user_cert_pem: str
    user_key_pem: str
    cloud_cert_pem: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], need_ec2: bool) -> "Settings":
        """@raise CommandError: a variable is missing or names an unreadable file."""
        def need(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise CommandError(f"{name} is not set: source your novarc first")
            return value

        def read(name: str) -> str:
            path = need(name)
            try:
                with open(path, encoding="ascii") as f:
                    return f.read()
            except (OSError, UnicodeDecodeError) as problem:
                raise CommandError(f"cannot read {name} ({path}): {problem}") from None

        return cls(ec2_url=need("EC2_URL") if need_ec2 else environ.get("EC2_URL"),
                   s3_url=need("S3_URL"), access=need("EC2_ACCESS_KEY"),
                   secret=need("EC2_SECRET_KEY"),
                   region=environ.get("AWS_DEFAULT_REGION", "").strip() or "nova",
                   user_cert_pem=read("EC2_CERT"), user_key_pem=read("EC2_PRIVATE_KEY"),
                   cloud_cert_pem=read("NOVA_CERT"))


def default_bucket(access: str) -> str:
    """@return: C{<project>-images} for an access key C{key:project}, as a bucket name."""
    project = access.rpartition(":")[2] if ":" in access else ""
    name = re.sub(r"[^a-z0-9-]+", "-", project.lower()).strip("-")[:50]
    return f"{name}-images" if name else "nova-images"


def _boto_error(action: str, problem: Exception) -> CommandError:
    response = getattr(problem, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return CommandError(f"{action} failed: {error.get('Code')}: {error.get('Message', '')}")
    return CommandError(f"{action} failed: {problem}")


def _clients(settings: Settings) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config
    session = boto3.session.Session(aws_access_key_id=settings.access,
                                    aws_secret_access_key=settings.secret,
                                    region_name=settings.region)
    s3 = session.client("s3", endpoint_url=settings.s3_url, config=Config(
        signature_version="s3v4", s3={"addressing_style": "path"},
        retries={"max_attempts": 2}))
    ec2 = None
    if settings.ec2_url:
        ec2 = session.client("ec2", endpoint_url=settings.ec2_url,
                             config=Config(retries={"max_attempts": 1}))
    return s3, ec2


def _ensure_bucket(s3: Any, bucket: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as problem:
        code = str(problem.response.get("Error", {}).get("Code"))
        if code in ("403", "AccessDenied"):
            raise CommandError(f"bucket {bucket} belongs to someone else:"
                               " choose another with --bucket") from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise _boto_error(f"checking bucket {bucket}", problem) from None
    except BotoCoreError as problem:
        raise _boto_error(f"checking bucket {bucket}", problem) from None
    try:
        s3.create_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as problem:
        raise _boto_error(f"creating bucket {bucket}", problem) from None


def upload(s3: Any, bucket: str, paths: Sequence[str], progress: ProgressBar) -> None:
    """Upload the files (the parts, then the manifest) under their names."""
    from boto3.exceptions import S3UploadFailedError
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError
    _ensure_bucket(s3, bucket)
    total = sum(os.path.getsize(path) for path in paths)
    done = [0]

    def sent(count: int) -> None:
        done[0] += count
        progress.update("upload", done[0], total)

    # one PUT per file: parts are 10 MiB, the size euca2ools uploads whole
    config = TransferConfig(multipart_threshold=1 << 40, use_threads=False)
    for path in paths:
        key = os.path.basename(path)
        try:
            s3.upload_file(path, bucket, key, Callback=sent, Config=config)
        except (ClientError, BotoCoreError, S3UploadFailedError) as problem:
            raise _boto_error(f"uploading {key}", problem) from None
    progress.finish("upload", f"{len(paths)} objects, {total / _MIB:.1f} MiB to {bucket}")


def register(ec2: Any, location: str, name: str) -> str:
    """@return: the id RegisterImage gave the image."""
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        return str(ec2.register_image(ImageLocation=location, Name=name)["ImageId"])
    except (ClientError, BotoCoreError) as problem:
        raise _boto_error("RegisterImage", problem) from None


def run(args: argparse.Namespace, settings: Settings, stdout: TextIO,
        progress: ProgressBar) -> None:
    """Bundle, upload and (unless told not to) register."""
    if not os.path.isfile(args.image):
        raise CommandError(f"{args.image} is not a file")
    prefix = args.prefix or os.path.basename(args.image)
    bucket = args.bucket or default_bucket(settings.access)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="nova-bundle-")
    os.makedirs(work_dir, exist_ok=True)
    try:
        manifest_path, parts = make_bundle(
            args.image, work_dir, prefix, user_cert_pem=settings.user_cert_pem,
            user_key_pem=settings.user_key_pem, cloud_cert_pem=settings.cloud_cert_pem,
            image_type=args.image_type, arch=args.arch, kernel_id=args.kernel_id,
            ramdisk_id=args.ramdisk_id, progress=progress.update)
        size = os.path.getsize(args.image)
        progress.finish("bundle", f"{os.path.basename(args.image)}, {size / _MIB:.1f} MiB"
                        f" in {len(parts)} part(s)")
        s3, ec2 = _clients(settings)
        upload(s3, bucket, [*parts, manifest_path], progress)
        location = f"{bucket}/{os.path.basename(manifest_path)}"
        if args.no_register:
            stdout.write(f"MANIFEST\t{location}\n")
            return
        stdout.write(f"IMAGE\t{register(ec2, location, args.name or prefix)}\n")
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """
    @param argv: the arguments (default: C{sys.argv[1:]}).
    @param environ: the environment (default: C{os.environ}).
    @return: the exit status: 0, or 1 after one line on stderr.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
        settings = Settings.from_environ(os.environ if environ is None else environ,
                                         need_ec2=not args.no_register)
        run(args, settings, stdout, ProgressBar(stderr))
    except CommandError as problem:
        stderr.write(f"{PROG}: {problem}\n")
        return 1
    except NovaError as problem:
        stderr.write(f"{PROG}: {problem}\n")
        return 1
    except OSError as problem:
        stderr.write(f"{PROG}: {problem.strerror or problem}"
                     f"{': ' + problem.filename if problem.filename else ''}\n")
        return 1
    except KeyboardInterrupt:
        stderr.write(f"{PROG}: interrupted\n")
        return 1
    return 0
