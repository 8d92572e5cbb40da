"""IANA's special-purpose address registries as an explicit table, for deciding which
addresses a catalog's photo link may reach.

Python's ``is_global``/``is_private`` follow the registry of the Python release and leave
gaps that matter here (``192.0.0.0/24`` holds Oracle Cloud's metadata address
``192.0.0.192``; ``100.100.100.200`` is Alibaba's, inside CGNAT; ``fd00:ec2::254`` is AWS's,
inside ULA). So the table is ours: each range is ``LOCAL`` (a shop's own network, allowed
only with ``BANANAFLOW_REFERENCE_ALLOW_PRIVATE=1``) or ``NEVER`` (metadata services,
link-local, documentation, benchmarking, multicast, reserved: refused in every mode).
An IPv6 address outside ``2000::/3`` (global unicast) is never allowed.

Sources: https://www.iana.org/assignments/iana-ipv4-special-registry/ and
https://www.iana.org/assignments/iana-ipv6-special-registry/ (2024 revisions), plus the
cloud providers' documented metadata endpoints.
"""
from __future__ import annotations

import ipaddress
from typing import Final, Literal

__all__ = ["LOCAL", "METADATA", "NEVER", "SPECIAL_RANGES", "Kind", "classify"]

Kind = Literal["local", "never", "public"]
LOCAL: Final = "local"
NEVER: Final = "never"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata and host-agent endpoints: refused even where their surrounding range is
#: allowed (private mode) or public (Azure's WireServer is a public address).
METADATA: Final[tuple[Network, ...]] = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, DigitalOcean
    "169.254.170.2/32",  # AWS ECS task metadata
    "169.254.170.23/32",  # AWS EKS pod identity
    "100.100.100.200/32",  # Alibaba Cloud
    "192.0.0.192/32",  # Oracle Cloud
    "168.63.129.16/32",  # Azure WireServer
    "fd00:ec2::/32",  # AWS IPv6 IMDS (fd00:ec2::254), DNS and NTP
    "fd20:ce::254/128",  # GCP IPv6 metadata
))

#: (range, kind), most specific concerns first; ``classify`` takes the first match.
SPECIAL_RANGES: Final[tuple[tuple[Network, Kind], ...]] = (
    *((net, "never") for net in METADATA),
    # IPv4 (iana-ipv4-special-registry)
    (ipaddress.ip_network("0.0.0.0/8"), "never"),  # "this network"
    (ipaddress.ip_network("10.0.0.0/8"), "local"),  # private-use
    (ipaddress.ip_network("100.64.0.0/10"), "local"),  # shared address space (CGNAT)
    (ipaddress.ip_network("127.0.0.0/8"), "local"),  # loopback
    (ipaddress.ip_network("169.254.0.0/16"), "never"),  # link-local
    (ipaddress.ip_network("172.16.0.0/12"), "local"),  # private-use
    (ipaddress.ip_network("192.0.0.0/24"), "never"),  # IETF protocol assignments
    (ipaddress.ip_network("192.0.2.0/24"), "never"),  # documentation (TEST-NET-1)
    (ipaddress.ip_network("192.31.196.0/24"), "never"),  # AS112-v4
    (ipaddress.ip_network("192.52.193.0/24"), "never"),  # AMT
    (ipaddress.ip_network("192.88.99.0/24"), "never"),  # deprecated 6to4 relay anycast
    (ipaddress.ip_network("192.168.0.0/16"), "local"),  # private-use
    (ipaddress.ip_network("192.175.48.0/24"), "never"),  # direct delegation AS112
    (ipaddress.ip_network("198.18.0.0/15"), "never"),  # benchmarking
    (ipaddress.ip_network("198.51.100.0/24"), "never"),  # documentation (TEST-NET-2)
    (ipaddress.ip_network("203.0.113.0/24"), "never"),  # documentation (TEST-NET-3)
    (ipaddress.ip_network("224.0.0.0/4"), "never"),  # multicast
    (ipaddress.ip_network("240.0.0.0/4"), "never"),  # reserved, limited broadcast included
    # IPv6 (iana-ipv6-special-registry); wrappers of IPv4 are unwrapped by the caller first
    (ipaddress.ip_network("::1/128"), "local"),  # loopback
    (ipaddress.ip_network("::/128"), "never"),  # unspecified
    (ipaddress.ip_network("100::/64"), "never"),  # discard-only
    (ipaddress.ip_network("100:0:0:1::/64"), "never"),  # dummy prefix
    (ipaddress.ip_network("2001::/23"), "never"),  # IETF protocol assignments (Teredo unwrapped first)
    (ipaddress.ip_network("2001:db8::/32"), "never"),  # documentation
    (ipaddress.ip_network("3fff::/20"), "never"),  # documentation
    (ipaddress.ip_network("5f00::/16"), "never"),  # SRv6 SIDs
    (ipaddress.ip_network("fc00::/7"), "local"),  # unique-local
    (ipaddress.ip_network("fe80::/10"), "never"),  # link-local unicast
    (ipaddress.ip_network("fec0::/10"), "local"),  # deprecated site-local
    (ipaddress.ip_network("ff00::/8"), "never"),  # multicast
)
_GLOBAL_UNICAST_V6: Final = ipaddress.ip_network("2000::/3")


def classify(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Kind:
    """``never``, ``local`` or ``public`` for one address (IPv4 wrappers not unwrapped here)."""
    for network, kind in SPECIAL_RANGES:
        if address.version == network.version and address in network:
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "never"
    return "public"
