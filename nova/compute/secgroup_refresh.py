"""
Applying a security-group change on the compute hosts: every live compute
host rewrites its instances' filter chains and answers once they are in
place, so that AuthorizeSecurityGroupIngress returns when the rule holds.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from nova.context import RequestContext
from nova.exception import NovaError

COMPUTE_BINARY = "nova-compute"


class RefreshFailed(NovaError):
    """A compute host could not apply the security groups (the change is undone)."""

    code = "InternalError"
    status = 500


class SecurityGroupRefresher:
    """
    @param services: the service records (which compute hosts are alive).
    @param compute: L{nova.compute.rpcapi.ComputeAPI}.
    @param down_time: a host silent for longer is down: it rebuilds its
        chains from Redis when it comes back (L{ComputeManager.reconcile}).
    @param timeout: how long one host may take, in seconds.
    """

    def __init__(self, services: Any, compute: Any, down_time: float,
                 timeout: float = 30.0) -> None:
        self._services = services
        self._compute = compute
        self._down_time = down_time
        self._timeout = timeout

    async def __call__(self, context: RequestContext, project_id: str | None) -> None:
        """
        Refresh every live compute host (a group of one project can be the
        source of another project's rules, so all of them), in parallel.

        @raise RefreshFailed: a host failed or did not answer in time.
        """
        hosts = sorted({s.host for s in await self._services.list()
                        if s.binary == COMPUTE_BINARY
                        and self._services.is_up(s, self._down_time)})
        calls = [defer.Deferred.fromCoroutine(
            self._compute.refresh_security_groups(context, host, timeout=self._timeout))
            for host in hosts]
        results = await defer.DeferredList(calls, consumeErrors=True)
        failed = [(host, result) for host, (ok, result) in zip(hosts, results) if not ok]
        if failed:
            host, failure = failed[0]
            raise RefreshFailed(f"compute host {host} could not apply the security groups: "
                                f"{failure.getErrorMessage()}")
