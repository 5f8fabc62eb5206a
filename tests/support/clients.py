"""Clients of a running all-in-one, made exactly as a user makes them."""

from __future__ import annotations

import uuid
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import boto
import boto3
from boto.ec2.regioninfo import RegionInfo
from botocore.config import Config

from tests.support.allinone import AllInOne, parse_novarc


def boto3_ec2(url: str, access: str, secret: str, region: str = "nova") -> object:
    """@return: a boto3 EC2 client for C{url} (no retries: errors show at once)."""
    return boto3.client("ec2", endpoint_url=url, aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name=region,
                        config=Config(retries={"max_attempts": 1}))


def boto2_ec2(url: str, access: str, secret: str, path: str | None = None) -> object:
    """@return: a boto 2 EC2 connection for C{url}."""
    parsed = urlparse(url)
    return boto.connect_ec2(access, secret, is_secure=False,
                            region=RegionInfo(name="nova", endpoint=parsed.hostname),
                            port=parsed.port, path=path or parsed.path)


class Tenant:
    """
    A user of their own, in a project of their own, made with nova-manage.

    @ivar user: the user id.
    @ivar project: the project id.
    @ivar access: the access key as a client sends it (C{access:project}).
    """

    def __init__(self, cloud: AllInOne, role: str | None = None) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.cloud = cloud
        self.user = f"user-{suffix}"
        self.project = f"proj-{suffix}"
        exports = cloud.nova_manage("user", "create", self.user).stdout
        keys = dict(line[len("export "):].split("=", 1) for line in exports.splitlines()
                    if line.startswith("export "))
        self.access_key = keys["EC2_ACCESS_KEY"]
        self.secret = keys["EC2_SECRET_KEY"]
        self.access = f"{self.access_key}:{self.project}"
        cloud.nova_manage("project", "create", self.project, self.user, "a test project")
        if role is not None:
            # 2010 nova's rule: a role counts when held globally and in the project
            cloud.nova_manage("role", "add", self.user, role)
            cloud.nova_manage("role", "add", self.user, role, self.project)

    def boto3(self) -> object:
        return boto3_ec2(self.cloud.ec2_url, self.access, self.secret)

    def boto2(self, path: str | None = None) -> object:
        return boto2_ec2(self.cloud.ec2_url, self.access, self.secret, path)

    def remove(self) -> None:
        self.cloud.nova_manage("project", "delete", self.project, check=False)
        self.cloud.nova_manage("user", "delete", self.user, check=False)


def credentials_env(cloud: AllInOne, tenant: Tenant, folder: Path) -> dict[str, str]:
    """
    Fetch the tenant's credentials zip with nova-manage (a new certificate
    the CA records), unpack it into C{folder}.

    @return: the variables its novarc sets, key paths resolved, as a shell
        that sourced it would have them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    zipped = folder / "nova.zip"
    cloud.nova_manage("project", "zipfile", tenant.project, tenant.user, str(zipped))
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(folder)
    env = parse_novarc((folder / "novarc").read_text())
    known = {"NOVA_KEY_DIR": str(folder)}
    for name, value in env.items():  # in file order, as a shell expands them
        for var, replacement in known.items():
            value = value.replace("${" + var + "}", replacement)
        env[name] = known[name] = value
    return env
