"""
A user's credentials for one project: the C{novarc} shell file and the zip
that carries it with the user's certificate and the cloud's CA, as 2010
nova's C{get_credentials} made them, plus the variables boto3 and awscli read.
"""

from __future__ import annotations

import io
import shlex
import zipfile
from urllib.parse import urlsplit

import attr

from nova.auth.models import Project, User


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Endpoints:
    """The URLs written into credentials."""

    ec2_url: str
    s3_url: str
    region: str


def access_key_for(user: User, project: Project) -> str:
    """@return: the access key a client sends for C{user} acting in C{project}."""
    return f"{user.access}:{project.id}"


def novarc(user: User, project: Project, endpoints: Endpoints, key_dir: str | None = None) -> str:
    """
    @param key_dir: where pk.pem, cert.pem and cacert.pem are; by default the
        directory the novarc itself is in, found when it is sourced.
    @return: the text of the novarc file.
    """
    q = shlex.quote
    access = access_key_for(user, project)
    if key_dir is None:
        locate = 'NOVA_KEY_DIR=$(cd "$(dirname "${BASH_SOURCE:-$0}")" && pwd)'
    else:
        locate = f"NOVA_KEY_DIR={q(key_dir)}"
    return "\n".join([
        f"# nova credentials: user {user.id}, project {project.id}",
        locate,
        f"export EC2_ACCESS_KEY={q(access)}",
        f"export EC2_SECRET_KEY={q(user.secret)}",
        f"export EC2_URL={q(endpoints.ec2_url)}",
        f"export S3_URL={q(endpoints.s3_url)}",
        "export EC2_USER_ID=42  # nova does not use it; euca2ools wants one",
        'export EC2_PRIVATE_KEY="${NOVA_KEY_DIR}/pk.pem"',
        'export EC2_CERT="${NOVA_KEY_DIR}/cert.pem"',
        'export NOVA_CERT="${NOVA_KEY_DIR}/cacert.pem"',
        'export EUCALYPTUS_CERT="${NOVA_CERT}"',
        "# boto3 and awscli",
        f"export AWS_ACCESS_KEY_ID={q(access)}",
        f"export AWS_SECRET_ACCESS_KEY={q(user.secret)}",
        f"export AWS_DEFAULT_REGION={q(endpoints.region)}",
        f"export AWS_ENDPOINT_URL_EC2={q(endpoints.ec2_url)}",
        f"export AWS_ENDPOINT_URL_S3={q(endpoints.s3_url)}",
        'alias ec2-bundle-image="ec2-bundle-image --cert ${EC2_CERT} --privatekey '
        '${EC2_PRIVATE_KEY} --user 42 --ec2cert ${NOVA_CERT}"',
        'alias ec2-upload-bundle="ec2-upload-bundle -a ${EC2_ACCESS_KEY} -s ${EC2_SECRET_KEY} '
        '--url ${S3_URL} --ec2cert ${NOVA_CERT}"',
        "",
    ])


def s3cmd_config(user: User, project: Project, endpoints: Endpoints) -> str:
    """@return: an s3cmd configuration file for the object store (path-style addressing)."""
    host = urlsplit(endpoints.s3_url)
    return "\n".join([
        "[default]",
        f"access_key = {access_key_for(user, project)}",
        f"secret_key = {user.secret}",
        f"host_base = {host.netloc}",
        f"host_bucket = {host.netloc}",
        f"use_https = {'True' if host.scheme == 'https' else 'False'}",
        f"bucket_location = {endpoints.region}",
        "signature_v2 = False",
        "",
    ])


def credentials_zip(user: User, project: Project, endpoints: Endpoints, private_key_pem: str,
                    cert_pem: str, ca_cert_pem: str) -> bytes:
    """@return: the bytes of the credentials zip (novarc, pk.pem, cert.pem, cacert.pem)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("novarc", novarc(user, project, endpoints))
        _private(archive, "pk.pem", private_key_pem)
        archive.writestr("cert.pem", cert_pem)
        archive.writestr("cacert.pem", ca_cert_pem)
    return buffer.getvalue()


def _private(archive: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o600 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)
