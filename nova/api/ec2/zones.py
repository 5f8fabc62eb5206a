"""EC2 DescribeRegions and DescribeAvailabilityZones."""

from __future__ import annotations

from typing import Any

from nova.api.ec2.params import Params, matches
from nova.api.ec2.xmlrender import format_timestamp
from nova.context import RequestContext
from nova.datastore.records import Service
from nova.datastore.repositories import ServiceRepository
from nova.exception import InvalidParameterValue


class ZoneController:
    """
    Regions come from configuration; zones come from the services' live
    heartbeats, as in 2011 nova: a zone exists while some service reports in it.

    @param region: this cloud's region name.
    @param ec2_url: the endpoint clients use for the region.
    @param down_time: seconds after which a silent service counts as down.
    """

    def __init__(self, services: ServiceRepository, region: str, ec2_url: str,
                 down_time: float) -> None:
        self._services = services
        self._region = region
        self._ec2_url = ec2_url
        self._down_time = down_time

    async def describe_regions(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """DescribeRegions: the one region this cloud is."""
        names = params.get_list("RegionName")
        filters = params.get_filters(("region-name", "endpoint"))
        for name in names:
            if name != self._region:
                raise InvalidParameterValue(f"Invalid region: {name}")
        regions = [{"regionName": self._region, "regionEndpoint": self._ec2_url,
                    "optInStatus": "opt-in-not-required"}]
        regions = [r for r in regions
                   if matches(filters, {"region-name": r["regionName"],
                                        "endpoint": r["regionEndpoint"]})]
        return {"regionInfo": regions}

    async def describe_availability_zones(self, context: RequestContext,
                                          params: Params) -> dict[str, Any]:
        """
        DescribeAvailabilityZones. An admin who names the zone C{verbose} gets
        every host and service under its zone, with C{:-)} for a live service
        and C{XXX} for a silent one, as 2010 nova printed them.
        """
        names = params.get_list("ZoneName")
        filters = params.get_filters(("zone-name", "state", "region-name", "zone-id"))
        services = await self._services.list()
        verbose = context.is_admin and "verbose" in names
        zones: dict[str, list[Service]] = {}
        for service in services:
            zones.setdefault(service.zone, []).append(service)
        items: list[dict[str, Any]] = []
        for zone in sorted(zones):
            alive = any(self._services.is_up(s, self._down_time) and not s.disabled
                        for s in zones[zone])
            item = {"zoneName": zone, "zoneState": "available" if alive else "unavailable",
                    "regionName": self._region, "zoneId": zone, "zoneType": "availability-zone",
                    "messageSet": []}
            wanted = [n for n in names if n != "verbose"]
            if wanted and zone not in wanted:
                continue
            if not matches(filters, {"zone-name": zone, "state": item["zoneState"],
                                     "region-name": self._region, "zone-id": zone}):
                continue
            items.append(item)
            if verbose:
                items.extend(self._verbose_lines(zones[zone]))
        return {"availabilityZoneInfo": items}

    def _verbose_lines(self, services: list[Service]) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        by_host: dict[str, list[Service]] = {}
        for service in services:
            by_host.setdefault(service.host, []).append(service)
        for host in sorted(by_host):
            lines.append({"zoneName": f"|- {host}", "zoneState": ""})
            for service in sorted(by_host[host], key=lambda s: s.binary):
                alive = ":-)" if self._services.is_up(service, self._down_time) else "XXX"
                enabled = "disabled" if service.disabled else "enabled"
                lines.append({"zoneName": f"| |- {service.binary}",
                              "zoneState": f"{enabled} {alive} "
                                           f"{format_timestamp(service.updated_at)}"})
        return lines
