"""IP allow-lists from settings: parsing and membership, nothing else."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` → networks; raises ValueError naming the bad item."""
    networks: list[Network] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def within(address: str | None, networks: Iterable[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
