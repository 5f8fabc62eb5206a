"""
C{nova-manage}: the administrator's script, as in 2010 nova.

    nova-manage user admin|create NAME [ACCESS] [SECRET]
    nova-manage user delete|exports NAME
    nova-manage user list
    nova-manage user modify NAME ACCESS SECRET ADMIN     ('' leaves a field as it is)
    nova-manage project create NAME MANAGER [DESCRIPTION]
    nova-manage project delete NAME
    nova-manage project list [USER]
    nova-manage project add|remove PROJECT USER
    nova-manage project zipfile PROJECT USER [FILE]      (default nova.zip)
    nova-manage project environment PROJECT USER [FILE]  (default novarc)
    nova-manage project quota PROJECT [NAME [VALUE|default]]
    nova-manage role add|remove|has USER ROLE [PROJECT]
    nova-manage network create [CIDR [NUM_NETWORKS [NETWORK_SIZE [VLAN_START]]]]
    nova-manage network list
    nova-manage floating create CIDR|FIRST-LAST [HOST]
    nova-manage floating delete CIDR|FIRST-LAST
    nova-manage floating list [PROJECT]
    nova-manage volume list [PROJECT]
    nova-manage volume delete|reattach VOLUME_ID      (see nova/cmd/manage_volume.py)

Omitted C{network create} arguments come from the C{[network]} section; with
C{manager = flat} the networks are flat ones on C{flat_network_bridge}. The
network, floating and volume commands need only the cloud's Redis, not the
directory; C{volume delete} and C{reattach} may ask a host over the bus.

It acts on the same state as the running cloud: the configuration is
C{--config}, or C{$NOVA_CONFIG}, or the checkout's C{etc/nova.conf};
C{NOVA_STATE_DIR} overrides the state directory as for the services.
Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from twisted.internet import defer, task

from nova.compute.quota import QUOTA_NAMES
from nova.auth.credentials import Endpoints, credentials_zip, novarc
from nova.cmd import manage_volume
from nova.config import load_config
from nova.exception import NovaError
from nova.network.floating_ips import FloatingIpRepository
from nova.network.networks import FLAT, NetworkRepository
from nova.server import NovaServer
from nova.utils.files import write_atomically


class UsageError(Exception):
    """The command line is wrong."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


#: categories that act on the datastore only, without the directory and the CA
DATASTORE_ONLY = frozenset({"network", "floating", "volume"})


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nova-manage",
                     description="Administer users, projects, roles, networks, elastic IPs "
                                 "and volumes.")
    parser.add_argument("--config", help="configuration file")
    categories = parser.add_subparsers(dest="category", required=True, parser_class=_Parser)

    user = categories.add_parser("user", help="users").add_subparsers(dest="command",
                                                                        required=True)
    for name, help_text in (("admin", "create an administrator"), ("create", "create a user")):
        p = user.add_parser(name, help=help_text)
        p.add_argument("name")
        p.add_argument("access", nargs="?")
        p.add_argument("secret", nargs="?")
    user.add_parser("delete", help="delete a user").add_argument("name")
    user.add_parser("exports", help="print the user's keys as shell exports").add_argument("name")
    user.add_parser("list", help="list users")
    p = user.add_parser("modify", help="change keys or the admin flag ('' leaves a field)")
    p.add_argument("name")
    p.add_argument("access")
    p.add_argument("secret")
    p.add_argument("admin", help="T, True, F, False, or ''")

    project = categories.add_parser("project", help="projects").add_subparsers(
        dest="command", required=True)
    p = project.add_parser("create", help="create a project")
    p.add_argument("name")
    p.add_argument("manager")
    p.add_argument("description", nargs="?")
    project.add_parser("delete", help="delete a project").add_argument("name")
    project.add_parser("list", help="list projects").add_argument("user", nargs="?")
    for name in ("add", "remove"):
        p = project.add_parser(name, help=f"{name} a member")
        p.add_argument("project")
        p.add_argument("user")
    for name, default, help_text in (("zipfile", "nova.zip", "write the credentials zip"),
                                     ("environment", "novarc", "write the novarc file")):
        p = project.add_parser(name, help=help_text)
        p.add_argument("project")
        p.add_argument("user")
        p.add_argument("file", nargs="?", default=default)

    p = project.add_parser("quota", help="show a project's quotas and usage, or set one "
                           "(needs the cloud's Redis)")
    p.add_argument("project")
    p.add_argument("name", nargs="?", help="instances, cores or ram_mb")
    p.add_argument("value", nargs="?", help="a number, or 'default'")
    role = categories.add_parser("role", help="roles").add_subparsers(dest="command",
                                                                        required=True)
    for name in ("add", "remove", "has"):
        p = role.add_parser(name, help=f"{name} a global role, or a project role")
        p.add_argument("user")
        p.add_argument("role")
        p.add_argument("project", nargs="?")

    network = categories.add_parser("network", help="fixed networks (needs the cloud's "
                                    "Redis)").add_subparsers(dest="command", required=True)
    p = network.add_parser("create", help="cut a range into project networks "
                           "(defaults: the [network] section)")
    p.add_argument("cidr", nargs="?", help="the range, e.g. 10.0.0.0/8")
    p.add_argument("num_networks", nargs="?", type=_count, help="how many networks")
    p.add_argument("network_size", nargs="?", type=_count, help="addresses per network")
    p.add_argument("vlan_start", nargs="?", type=_count, help="the first VLAN id")
    network.add_parser("list", help="list networks")

    floating = categories.add_parser("floating", help="elastic IPs (needs the cloud's "
                                     "Redis)").add_subparsers(dest="command", required=True)
    p = floating.add_parser("create", help="create elastic IPs")
    p.add_argument("range", help="a CIDR or FIRST-LAST")
    p.add_argument("host", nargs="?", help="the network host they live on")
    floating.add_parser("delete", help="delete elastic IPs no project holds").add_argument(
        "range", help="a CIDR or FIRST-LAST")
    floating.add_parser("list", help="list elastic IPs").add_argument("project", nargs="?")
    manage_volume.add_parser(categories)
    return parser



def _flag(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered == "":
        return None
    if lowered in ("t", "true", "1", "yes"):
        return True
    if lowered in ("f", "false", "0", "no"):
        return False
    raise UsageError(f"nova-manage: admin must be T, True, F, False or '', not {text!r}")


class Commands:
    """
    The commands, over an opened L{NovaServer} (directory and CA only).

    @param out: where results are printed.
    """

    def __init__(self, server: NovaServer, out: Any) -> None:
        self.server = server
        self.out = out

    @property
    def auth(self) -> Any:
        """@return: the server's L{nova.auth.manager.AuthManager}."""
        return self.server.auth

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")

    def _endpoints(self) -> Endpoints:
        return Endpoints(ec2_url=self.server.ec2_url, s3_url=self.server.s3_url,
                         region=self.server.config.region)

    async def run(self, args: argparse.Namespace) -> int:
        handler = getattr(self, f"{args.category}_{args.command}")
        result = await handler(args)
        return 0 if result is None else result

    async def user_admin(self, args: argparse.Namespace) -> None:
        user = await self.auth.create_user(args.name, args.access, args.secret, admin=True)
        self._print_exports(user)

    async def user_create(self, args: argparse.Namespace) -> None:
        user = await self.auth.create_user(args.name, args.access, args.secret)
        self._print_exports(user)

    async def user_delete(self, args: argparse.Namespace) -> None:
        await self.auth.delete_user(args.name)

    async def user_exports(self, args: argparse.Namespace) -> None:
        self._print_exports(await self.auth.get_user(args.name))

    def _print_exports(self, user: Any) -> None:
        self._print(f"export EC2_ACCESS_KEY={user.access}")
        self._print(f"export EC2_SECRET_KEY={user.secret}")

    async def user_list(self, args: argparse.Namespace) -> None:
        for user in await self.auth.list_users():
            self._print(f"{user.id}{'  (admin)' if user.admin else ''}")

    async def user_modify(self, args: argparse.Namespace) -> None:
        await self.auth.modify_user(args.name, access=args.access or None,
                                    secret=args.secret or None, admin=_flag(args.admin))

    async def project_create(self, args: argparse.Namespace) -> None:
        await self.auth.create_project(args.name, args.manager, description=args.description)

    async def project_delete(self, args: argparse.Namespace) -> None:
        await self.auth.delete_project(args.name)

    async def project_list(self, args: argparse.Namespace) -> None:
        for project in await self.auth.list_projects(args.user):
            self._print(project.id)

    async def project_add(self, args: argparse.Namespace) -> None:
        await self.auth.add_to_project(args.user, args.project)

    async def project_remove(self, args: argparse.Namespace) -> None:
        await self.auth.remove_from_project(args.user, args.project)

    async def _user_in_project(self, args: argparse.Namespace) -> tuple[Any, Any]:
        user = await self.auth.get_user(args.user)
        project = await self.auth.get_project(args.project)
        if not user.admin and not project.has_member(user.id):
            raise NovaError(f"user {user.id} is not a member of project {project.id}")
        return user, project

    async def project_zipfile(self, args: argparse.Namespace) -> None:
        user, project = await self._user_in_project(args)
        key_pem, cert_pem = await self.server.run_in_thread(
            self.server.ca.issue_user_certificate, user.id, project.id)
        zipped = credentials_zip(user, project, self._endpoints(), key_pem, cert_pem,
                                 self.server.ca.ca_cert_pem)
        write_atomically(Path(args.file), zipped, mode=0o600)

    async def project_environment(self, args: argparse.Namespace) -> None:
        user, project = await self._user_in_project(args)
        write_atomically(Path(args.file), novarc(user, project, self._endpoints()).encode(),
                         mode=0o600)

    async def project_quota(self, args: argparse.Namespace) -> None:
        project = await self.auth.get_project(args.project)
        await self.server.open_datastore()
        quotas = self.server.instances.quotas
        if args.name is not None:
            if args.value is None:
                raise UsageError("nova-manage project quota: give a VALUE (or 'default')")
            await quotas.set_quota(project.id, args.name, _quota_value(args.value))
        limits = await quotas.get_quotas(project.id)
        used = await quotas.get_usage(project.id)
        used["floating_ips"] = len(await self.server.floating_ips.list_floating_ips(project.id))
        for name in QUOTA_NAMES:
            self._print(f"{name}: {limits[name]} (in use: {used[name]})")

    async def role_add(self, args: argparse.Namespace) -> None:
        await self.auth.add_role(args.user, args.role, args.project)

    async def role_remove(self, args: argparse.Namespace) -> None:
        await self.auth.remove_role(args.user, args.role, args.project)

    async def role_has(self, args: argparse.Namespace) -> int:
        has = await self.auth.has_role(args.user, args.role, args.project)
        self._print("True" if has else "False")
        return 0 if has else 1


    async def _networks(self) -> NetworkRepository:
        await self.server.open_datastore()
        return NetworkRepository(self.server.datastore, self.server.reactor)

    async def _floating(self) -> FloatingIpRepository:
        await self.server.open_datastore()
        return FloatingIpRepository(self.server.datastore, self.server.reactor)

    async def network_create(self, args: argparse.Namespace) -> None:
        conf = self.server.config.network
        flat = conf.manager == FLAT
        made = await (await self._networks()).create_networks(
            args.cidr or conf.fixed_range,
            conf.num_networks if args.num_networks is None else args.num_networks,
            conf.network_size if args.network_size is None else args.network_size,
            None if flat else (conf.vlan_start if args.vlan_start is None else args.vlan_start),
            bridge=conf.flat_network_bridge if flat else None)
        self._print(f"created {len(made)} network(s): {made[0].cidr} .. {made[-1].cidr}")

    async def network_list(self, args: argparse.Namespace) -> None:
        self._print("id\tcidr\tvlan\tbridge\tproject\thost")
        for net in await (await self._networks()).list():
            self._print("\t".join(str(v) for v in (
                net.network_id, net.cidr, "-" if net.vlan is None else net.vlan, net.bridge,
                net.project_id or "-", net.host or "-")))

    async def floating_create(self, args: argparse.Namespace) -> None:
        made = await (await self._floating()).create_floating_ips(args.range, args.host)
        self._print(f"created {len(made)} floating IP(s)")

    async def floating_delete(self, args: argparse.Namespace) -> None:
        count = await (await self._floating()).delete_floating_ips(args.range)
        self._print(f"deleted {count} floating IP(s)")

    async def floating_list(self, args: argparse.Namespace) -> None:
        for ip in await (await self._floating()).list_floating_ips(args.project):
            self._print("\t".join(v or "-" for v in (
                ip.host, ip.address, ip.project_id, ip.instance_id, ip.fixed_address)))


def _quota_value(text: str) -> int | None:
    if text == "default":
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"quota value {text!r} is not a number or 'default'") from None


async def _run(reactor: Any, args: argparse.Namespace, config_path: str | None,
               out: Any) -> int:
    config = load_config(config_path)
    server = NovaServer(reactor, config, serve_directory=False)
    if args.category not in DATASTORE_ONLY:
        await server.open_auth()
    try:
        if args.category == "volume":
            return await manage_volume.VolumeCommands(server, out).run(args)
        return await Commands(server, out).run(args)
    finally:
        await server.close()


def main(argv: Sequence[str], default_config: str | None = None, out: Any = None,
         err: Any = None) -> int:
    """
    Run one command.

    @return: the exit status: 0 done, 1 failed (or C{role has}: no), 2 usage error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = _parser().parse_args(list(argv))
    except UsageError as e:
        err.write(f"{e}\n")
        return 2
    config_path = args.config or os.environ.get("NOVA_CONFIG")
    if config_path is None and default_config and os.path.exists(default_config):
        config_path = default_config
    status: list[int] = []

    async def go(reactor: Any) -> None:
        try:
            status.append(await _run(reactor, args, config_path, out))
        except UsageError as e:
            err.write(f"{e}\n")
            status.append(2)
        except NovaError as e:
            err.write(f"nova-manage: error: {e.message}\n")
            status.append(1)

    def react_main(reactor: Any) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(go(reactor))

    try:
        task.react(react_main)
    except SystemExit:
        pass
    return status[0] if status else 1
