"""Client IP anonymisation: keep enough for network-level analytics, never the host."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"((?:{_OCTET}\.){{3}}){_OCTET}")


# Cached: a client sends from few addresses, so most events repeat a recent one.
@lru_cache(maxsize=65_536)
def anonymise_ip(raw: str) -> str:
    """Return ``raw`` with its host part zeroed: IPv4 to /24, IPv6 to /48.

    Anything that is not an IP address (a hostname, garbage) becomes ``""`` so that no
    identifying string is ever stored by accident.

    Example:
        >>> anonymise_ip("203.0.113.77")
        '203.0.113.0'
    """
    # Fast path for the common dotted IPv4 form; everything else goes through ipaddress.
    match = _IPV4.fullmatch(raw)
    if match:
        return match.group(1) + "0"
    return _anonymise_other(raw)


def _anonymise_other(raw: str) -> str:
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)
