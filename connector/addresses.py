"""Email addresses and domains: normalising them, and telling free-mail from company domains."""

from __future__ import annotations

import functools
import re
from email.utils import parseaddr
from importlib import resources


def normalize_email(value: str) -> str | None:
    """The bare, lower-cased address in `value` ("Ann <Ann@X.com>" or "ann@x.com"), or None."""
    _name, address = parseaddr(value.strip())
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or " " in address or domain.startswith("."):
        return None
    # RFC 5321's limits: 254 characters in all, 64 before the @, 63 in a domain's label.
    if len(address) > 254 or len(local) > 64 or any(len(p) > 63 for p in domain.split(".")):
        return None
    return address


def display_name(value: str) -> str:
    """The name in "Bob Smith <bob@x.com>" ("" when there is none, or it is the address)."""
    name, address = parseaddr(value.strip())
    name = " ".join(name.split())
    return "" if not name or name.lower() == address.lower() or "@" in name else name


def name_from_address(address: str) -> str:
    """A guess at a person's name from an address: "ana.lima@x" is "Ana Lima"; digits and
    punctuation are no part of a name ("bobsmith1987@x" is "Bobsmith")."""
    local = address.partition("@")[0].partition("+")[0]
    words = re.split(r"[._\-\d]+", local)
    return " ".join(word.capitalize() for word in words if word)


def normalize_domain(value: str) -> str | None:
    domain = value.strip().lower().removeprefix("@").removeprefix("www.").rstrip(".")
    if "://" in domain:
        domain = domain.split("://", 1)[1].split("/", 1)[0]
    if "." not in domain or " " in domain or "@" in domain or domain.startswith("."):
        return None
    return domain


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


@functools.cache
def _bundled_free_mail_domains() -> frozenset[str]:
    text = resources.files("connector").joinpath("free_mail_domains.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


class FreeMailDomains:
    def __init__(self, extra: frozenset[str] = frozenset()) -> None:
        self.domains = _bundled_free_mail_domains() | extra

    def __contains__(self, domain: object) -> bool:
        return isinstance(domain, str) and domain.lower() in self.domains


def company_name_from_domain(domain: str) -> str:
    """A first guess at a company's name from its domain: "acme-labs.co.uk" -> "Acme Labs"."""
    label = domain.split(".")[0]
    return " ".join(part.capitalize() for part in label.replace("_", "-").split("-") if part)
