"""
EC2 security group actions: CreateSecurityGroup, DeleteSecurityGroup,
DescribeSecurityGroups, AuthorizeSecurityGroupIngress and
RevokeSecurityGroupIngress (EC2-Classic: ingress rules only, groups named
within the caller's project).

A rule change is written to the datastore first, then applied to the
compute hosts by the injected C{refresh}; when that fails, the datastore
change is undone and the error raised, so that what is stored is what the
hosts enforce.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.logger import Logger

from nova.api.ec2.handler import Action
from nova.api.ec2.params import Params, matches
from nova.api.ec2.security_group_params import PermissionSpec, SourceRef, parse_permissions
from nova.context import RequestContext
from nova.exception import MissingParameter
from nova.network.security_group_records import (
    IngressRule, InvalidGroupNotFound, SecurityGroup, parse_owner)
from nova.network.security_groups import SecurityGroupRepository

log = Logger()

#: applies a project's rules on the compute hosts: C{(context, project_id)}
Refresh = Callable[[RequestContext, str], Awaitable[None]]

GROUP_FILTERS = ("group-name", "group-id", "description", "owner-id")
RULE_FILTERS = ("ip-permission.protocol", "ip-permission.from-port", "ip-permission.to-port",
                "ip-permission.cidr", "ip-permission.group-name", "ip-permission.group-id",
                "ip-permission.user-id")


def describe_group(group: SecurityGroup) -> dict[str, Any]:
    """
    @return: one C{securityGroupInfo} item. Rules with the same protocol and
        ports are one C{ipPermissions} item listing their sources, as EC2
        shows them.
    """
    permissions: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rule in sorted(group.rules, key=IngressRule.sort_key):
        item = permissions.setdefault(
            (rule.protocol, rule.from_port, rule.to_port),
            {"ipProtocol": rule.protocol, "fromPort": rule.from_port, "toPort": rule.to_port,
             "groups": [], "ipRanges": []})
        if rule.cidr is not None:
            item["ipRanges"].append({"cidrIp": rule.cidr})
        else:
            item["groups"].append({"userId": rule.source_project,
                                   "groupId": rule.source_group_id,
                                   "groupName": rule.source_name})
    return {
        "ownerId": group.project_id,
        "groupId": group.group_id,
        "groupName": group.name,
        "groupDescription": group.description,
        "ipPermissions": list(permissions.values()),
        "ipPermissionsEgress": [],
    }


def _rule_fields(rule: IngressRule) -> dict[str, str | None]:
    return {"ip-permission.protocol": rule.protocol,
            "ip-permission.from-port": str(rule.from_port),
            "ip-permission.to-port": str(rule.to_port),
            "ip-permission.cidr": rule.cidr,
            "ip-permission.group-name": rule.source_name,
            "ip-permission.group-id": rule.source_group_id,
            "ip-permission.user-id": rule.source_project}


def _selected(group: SecurityGroup, filters: dict[str, list[str]]) -> bool:
    """Group filters on the group; rule filters must all hold for one of its rules."""
    group_filters = {k: v for k, v in filters.items() if k in GROUP_FILTERS}
    rule_filters = {k: v for k, v in filters.items() if k in RULE_FILTERS}
    if not matches(group_filters, {"group-name": group.name, "group-id": group.group_id,
                                   "description": group.description,
                                   "owner-id": group.project_id}):
        return False
    return not rule_filters or any(matches(rule_filters, _rule_fields(r)) for r in group.rules)


class SecurityGroupController:
    """
    @param repository: the security groups.
    @param refresh: applies a project's rules on its instances' hosts.
    @param clock: the reactor's clock (C{seconds()}).
    """

    def __init__(self, repository: SecurityGroupRepository, refresh: Refresh,
                 clock: Any) -> None:
        self._groups = repository
        self._refresh = refresh
        self._clock = clock

    def actions(self) -> dict[str, Action]:
        """@return: the EC2 actions of security groups."""
        return {
            "CreateSecurityGroup": self.create_security_group,
            "DeleteSecurityGroup": self.delete_security_group,
            "DescribeSecurityGroups": self.describe_security_groups,
            "AuthorizeSecurityGroupIngress": self.authorize_security_group_ingress,
            "RevokeSecurityGroupIngress": self.revoke_security_group_ingress,
        }

    @staticmethod
    def _project(context: RequestContext) -> str:
        return context.project_id or ""

    async def create_security_group(self, context: RequestContext,
                                    params: Params) -> dict[str, Any]:
        """CreateSecurityGroup: a group without rules (nothing may reach its instances)."""
        name = params.require("GroupName")
        description = params.require("GroupDescription")
        group = await self._groups.create(self._project(context), context.user_id, name,
                                          description)
        return {"return": True, "groupId": group.group_id}

    async def delete_security_group(self, context: RequestContext,
                                    params: Params) -> dict[str, Any]:
        """DeleteSecurityGroup by GroupName or GroupId (refused while in use)."""
        name = params.get("GroupName") or None
        group_id = params.get("GroupId") or None
        if name is None and group_id is None:
            raise MissingParameter("The request must contain the parameter GroupName or GroupId")
        if group_id is not None:
            # an admin may delete any project's group by id
            project = None if context.is_admin else self._project(context)
            await self._groups.delete(project, name=name, group_id=group_id)
        else:
            await self._groups.delete(self._project(context), name=name)
        return {"return": True}

    async def describe_security_groups(self, context: RequestContext,
                                       params: Params) -> dict[str, Any]:
        """DescribeSecurityGroups with GroupName.N, GroupId.N and Filter.N (admins: all)."""
        names = params.get_list("GroupName")
        ids = params.get_list("GroupId")
        filters = params.get_filters(GROUP_FILTERS + RULE_FILTERS)
        project = self._project(context)
        # every project has its default group, as in EC2
        await self._groups.ensure_default(project, context.user_id)
        scope = None if context.is_admin else project
        if names or ids:
            found: dict[str, SecurityGroup] = {}
            for group in await self._groups.get_by_names(project, names):
                found.setdefault(group.group_id, group)
            for group_id in ids:
                group = await self._groups.get(scope, group_id=group_id)
                found.setdefault(group.group_id, group)
            groups = list(found.values())
        else:
            groups = await self._groups.list(scope)
        return {"securityGroupInfo": [describe_group(g) for g in groups
                                      if _selected(g, filters)]}

    # -- rules -------------------------------------------------------------------

    async def _target(self, context: RequestContext, params: Params) -> SecurityGroup:
        name = params.get("GroupName") or None
        group_id = params.get("GroupId") or None
        if name is None and group_id is None:
            raise MissingParameter("The request must contain the parameter GroupName or GroupId")
        if group_id is not None:
            scope = None if context.is_admin else self._project(context)
            return await self._groups.get(scope, name=name, group_id=group_id)
        return await self._groups.get(self._project(context), name=name)

    async def _source(self, target: SecurityGroup, ref: SourceRef) -> tuple[str, str]:
        if ref.group_id is not None:
            found = await self._groups.get(None, group_id=ref.group_id)
            if (ref.owner is not None and parse_owner(ref.owner) != found.project_id) or \
                    (ref.name is not None and ref.name != found.name):
                raise InvalidGroupNotFound(
                    f"The security group ID '{ref.group_id}' does not exist")
            return found.project_id, found.name
        assert ref.name is not None
        owner = parse_owner(ref.owner) if ref.owner is not None else target.project_id
        return owner, ref.name

    async def _rules(self, target: SecurityGroup,
                     specs: list[PermissionSpec]) -> list[IngressRule]:
        rules = []
        for spec in specs:
            for cidr in spec.cidrs:
                rules.append(IngressRule(protocol=spec.protocol, from_port=spec.from_port,
                                         to_port=spec.to_port, cidr=cidr))
            for ref in spec.groups:
                project, name = await self._source(target, ref)
                rules.append(IngressRule(protocol=spec.protocol, from_port=spec.from_port,
                                         to_port=spec.to_port, source_project=project,
                                         source_name=name))
        return rules

    async def _change(self, context: RequestContext, params: Params, authorize: bool) -> None:
        # the caller's default group exists, as the target or as a source
        await self._groups.ensure_default(self._project(context), context.user_id)
        target = await self._target(context, params)
        rules = await self._rules(target, parse_permissions(params))
        project, name = target.project_id, target.name
        if authorize:
            await self._groups.authorize(project, name, rules)
        else:
            await self._groups.revoke(project, name, rules)
        try:
            await self._refresh(context, project)
        except BaseException:
            # the hosts did not take it: the datastore must not say they did
            try:
                if authorize:
                    await self._groups.revoke(project, name, rules, ignore_missing=True)
                else:
                    await self._groups.authorize(project, name, rules, ignore_existing=True)
            except Exception:
                log.failure("could not undo a security group change of {project}/{name} "
                            "after its refresh failed", project=project, name=name)
            raise

    async def authorize_security_group_ingress(self, context: RequestContext,
                                               params: Params) -> dict[str, Any]:
        """AuthorizeSecurityGroupIngress: add rules, all or none, then apply them."""
        await self._change(context, params, authorize=True)
        return {"return": True}

    async def revoke_security_group_ingress(self, context: RequestContext,
                                            params: Params) -> dict[str, Any]:
        """RevokeSecurityGroupIngress: remove rules, all or none, then apply that."""
        await self._change(context, params, authorize=False)
        return {"return": True}


__all__ = ["SecurityGroupController", "describe_group", "Refresh"]
