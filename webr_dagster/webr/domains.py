"""Registrable domains ("eTLD+1") from the public suffix list, offline.

``news.bbc.co.uk`` and ``www.bbc.co.uk`` both belong to ``bbc.co.uk``: grouping
pages by registrable domain instead of by host puts a site's subdomains in one
partition. The public suffix list is the snapshot bundled with tldextract: no
download, no cache file, so results do not change with the network or between
machines with the same tldextract version.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import tldextract

# suffix_list_urls=(): never fetch the list; cache_dir=None: never read or write
# a cache, so the bundled snapshot is what is used.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=65536)
def registrable_domain(host: str, private_suffixes: bool = True) -> str:
    """The registrable domain of ``host``, lower-case, or the host itself when it
    has none (an IP address, ``localhost``, a one-label name, a public suffix).

    With ``private_suffixes`` (the default) the private section of the list
    counts too, so ``alice.github.io`` and ``bob.github.io`` stay apart instead of
    both becoming ``github.io``. A name under a suffix the list does not know
    (``printer.office.lan``) falls back to its last two labels, as the list's
    default rule ``*`` says.
    """
    name = (host or "").strip().lower().rstrip(".")
    if not name or _is_ip(name):
        return name
    if ":" in name:  # host:port
        name = name.rsplit(":", 1)[0]
    labels = name.split(".")
    if len(labels) < 2:
        return name
    parts = _EXTRACT(name, include_psl_private_domains=private_suffixes)
    if parts.suffix:
        if not parts.domain:  # the name is itself a public suffix
            return name
        return f"{parts.domain}.{parts.suffix}"
    return ".".join(labels[-2:])
