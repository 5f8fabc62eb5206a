"""
The iptables side of L{nova.network.host.NetworkHost}: elastic IPs' NAT,
the metadata redirect and instances' filter chains.

Every change is one C{iptables-restore --noflush} transaction per table,
computed from what C{iptables-save} shows now (see
L{nova.network.linux_net_iptables.restore_input}), so that any number of
chains change at once and a restarted nova picks up what it wrote before.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from twisted.internet import defer

from nova.network import linux_net as ln
from nova.network import linux_net_ebtables as ebt
from nova.network import linux_net_iptables as ipt
from nova.utils.process import CommandFailed
from nova.utils.validate import InvalidIdentifier

__all__ = ["FirewallMixin"]

_INSTANCE_PREFIX = "nova-i-"


class FirewallMixin:
    """
    NAT and filter operations of a network host. The host class provides
    C{_run}, C{_locked} and C{_public} (its public interface or C{None}).
    """

    # what the host class provides
    _public: str | None
    _run: Callable[..., Awaitable[Any]]
    _locked: Callable[..., Awaitable[Any]]

    async def _saved(self, table: str, dialect: ipt.Dialect = ipt.IPTABLES
                     ) -> ipt.SavedTable | None:
        saved = await self._run(dialect.save_argv(table))
        return ipt.parse_save(saved.stdout.decode("utf-8", "replace")).get(table)

    async def _apply_table(self, table: str, write: Mapping[str, Sequence[Sequence[str]]],
                           delete: Iterable[str] = (), *,
                           exclusive_prefix: str | None = None,
                           dialect: ipt.Dialect = ipt.IPTABLES) -> None:
        """
        One transaction on C{table} (of iptables, or of ebtables for
        L{ebt.EBTABLES}): write and delete object chains.

        @param exclusive_prefix: also delete every existing chain with this
            prefix that is not written.
        """
        await self._restore(table, await self._saved(table, dialect), write, delete,
                            exclusive_prefix=exclusive_prefix, dialect=dialect)

    async def _restore(self, table: str, current: ipt.SavedTable | None,
                       write: Mapping[str, Sequence[Sequence[str]]], delete: Iterable[str], *,
                       exclusive_prefix: str | None, dialect: ipt.Dialect) -> None:
        """L{_apply_table} on what C{current} shows the table holds."""
        delete = set(delete)
        if exclusive_prefix is not None and current is not None:
            delete |= {name for name in current.chains
                       if name.startswith(exclusive_prefix) and name not in write}
        text = ipt.restore_input(table, current, write=write, delete=delete, dialect=dialect)
        if text.strip() == f"*{table}\nCOMMIT":
            return  # nothing of nova's here, nothing to do
        await self._run(dialect.restore_argv(), input=text.encode("ascii"))

    # -- floating IPs ------------------------------------------------------

    async def ensure_floating_ip(self, floating_ip: str, fixed_ip: str) -> None:
        """
        Put C{floating_ip} on the public interface and NAT it to C{fixed_ip}.

        @raise InvalidIdentifier: when the host has no public interface.
        """
        dnat, snat = ipt.floating_chains(floating_ip)
        if self._public is None:
            raise InvalidIdentifier("this network host has no public_interface")
        await self._locked(self._ensure_floating, floating_ip, fixed_ip, dnat, snat)

    async def _ensure_floating(self, floating_ip: str, fixed_ip: str, dnat: str,
                               snat: str) -> None:
        await self._run(ln.address_replace(f"{floating_ip}/32", self._public))  # type: ignore
        await self._apply_table("nat", {dnat: ipt.floating_dnat_rules(floating_ip, fixed_ip),
                                        snat: ipt.floating_snat_rules(floating_ip, fixed_ip)})

    async def remove_floating_ip(self, floating_ip: str) -> None:
        """Remove the floating IP's NAT chains and address (absent ones are skipped)."""
        chains = ipt.floating_chains(floating_ip)
        await self._locked(self._remove_floating, floating_ip, chains)

    async def _remove_floating(self, floating_ip: str, chains: tuple[str, str]) -> None:
        await self._apply_table("nat", {}, chains)
        if self._public is not None:
            result = await self._run(ln.address_delete(f"{floating_ip}/32", self._public),
                                     check=False)
            if result.exit_code != 0 and b"Cannot assign" not in result.stderr:
                raise CommandFailed(result)

    # -- the metadata redirect ---------------------------------------------

    async def ensure_metadata_redirect(self, port: int, *,
                                       dnat_to: tuple[str, int] | None = None) -> None:
        """
        Send guests' C{169.254.169.254:80} to the metadata service: the
        chain C{nova-metadata} (nat), reached from C{nova-PREROUTING}.
        Rewritten as given each time (idempotent).

        @param port: the local port a metadata proxy listens on inside this
            host (C{REDIRECT}); ignored with C{dnat_to}.
        @param dnat_to: C{(address, port)} of nova-api's metadata service
            (C{DNAT}, for a host in the root namespace).
        @raise InvalidIdentifier: for a bad port or address.
        """
        rules = ipt.metadata_redirect_rules(port, dnat_to=dnat_to)
        await self._locked(self._apply_table, "nat", {ipt.METADATA_CHAIN: rules})

    async def remove_metadata_redirect(self) -> None:
        """Remove the metadata redirect (absent: nothing to do)."""
        await self._locked(self._apply_table, "nat", {}, [ipt.METADATA_CHAIN])

    # -- instance filters --------------------------------------------------

    async def apply_instance_filters(self, filters: Mapping[str, ipt.InstanceFilter], *,
                                     remove: Iterable[str] = (),
                                     exclusive: bool = False) -> None:
        """
        (Re)write the filter chains C{nova-<instance id>} of any number of
        instances and remove others, in one C{iptables-restore}, then
        their ebtables chains (the frames' check of an instance with a tap
        and a MAC: L{nova.network.linux_net_ebtables}) in one
        C{ebtables-restore}.

        Each chain is reached from C{nova-FORWARD} (traffic routed or
        bridged to the guest) and C{nova-OUTPUT} (traffic this host sends
        it, such as SSH from inside the host's namespace).

        @param filters: instance id to its L{InstanceFilter}.
        @param remove: instance ids whose chains go (absent ones are ignored).
        @param exclusive: also remove every other instance chain on this
            host (a reconcile after a restart).
        @raise InvalidIdentifier: for a bad instance id or filter; then
            nothing is changed.
        """
        write: dict[str, list[list[str]]] = {}
        l2_write: dict[str, list[list[str]]] = {}
        for instance_id, spec in filters.items():
            if not isinstance(spec, ipt.InstanceFilter):
                raise InvalidIdentifier(f"not an InstanceFilter for {instance_id}: {spec!r}")
            chain = ipt.instance_chain(instance_id)
            write[chain] = spec.chain_rules()
            if spec.tap is not None and spec.mac is not None:
                l2_write[chain] = ebt.l2_filter_rules(spec.tap, spec.mac, spec.fixed_ip)
        delete = [ipt.instance_chain(instance_id) for instance_id in remove]
        # an instance written without a MAC loses any ebtables chain it had
        l2_delete = delete + [chain for chain in write if chain not in l2_write]
        await self._locked(self._apply_filters, write, delete, l2_write, l2_delete, exclusive)

    async def _apply_filters(self, write: dict[str, list[list[str]]], delete: list[str],
                             l2_write: dict[str, list[list[str]]], l2_delete: list[str],
                             exclusive: bool) -> None:
        # The frames' check follows the IP filter in a second transaction
        # (ebtables has its own): a failure there fails the whole call, and
        # a plug that fails is undone by its caller before the guest exists.
        prefix = _INSTANCE_PREFIX if exclusive else None
        # both tables are read at once (two processes): a security-group
        # change waits for one save, not two
        ip_now, frames_now = await defer.gatherResults([
            defer.Deferred.fromCoroutine(self._saved("filter")),
            defer.Deferred.fromCoroutine(self._saved("filter", ebt.EBTABLES))],
            consumeErrors=True).addErrback(lambda f: f.value.subFailure)
        await self._restore("filter", ip_now, write, delete, exclusive_prefix=prefix,
                            dialect=ipt.IPTABLES)
        await self._restore("filter", frames_now, l2_write, l2_delete, exclusive_prefix=prefix,
                            dialect=ebt.EBTABLES)

    async def instance_filters(self) -> list[str]:
        """@return: the instance ids that have a filter chain on this host."""
        table = await self._locked(self._saved, "filter")
        names = table.chains if table is not None else ()
        # the chain is "nova-" and the instance id
        return sorted(name[len("nova-"):] for name in names
                      if name.startswith(_INSTANCE_PREFIX))

    async def ensure_instance_filter(self, instance_id: str, fixed_ip: str,
                                     rules: Iterable[ipt.SecurityRule], *,
                                     dhcp_server: str | None = None,
                                     project_cidr: str | None = None) -> None:
        """(Re)write one instance's filter chain (see L{apply_instance_filters})."""
        await self.apply_instance_filters({instance_id: ipt.InstanceFilter(
            fixed_ip, tuple(rules), dhcp_server, project_cidr)})

    async def remove_instance_filter(self, instance_id: str) -> None:
        """Remove the instance's filter chain (absent: nothing to do)."""
        await self.apply_instance_filters({}, remove=[instance_id])
