"""Client IP anonymisation: keep enough for network-level analytics, never the host."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65_536)
def anonymise_ip(raw: str) -> str:
    """Return ``raw`` with its host part zeroed: IPv4 to /24, IPv6 to /48.

    Anything that is not an IP address (a hostname, garbage) becomes ``""`` so that no
    identifying string is ever stored by accident.

    Example:
        >>> anonymise_ip("203.0.113.77")
        '203.0.113.0'
    """
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)
