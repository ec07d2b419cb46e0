"""Which column of an export holds which field: headers as other systems name them.

A header is compared by its key: lower-cased, without spaces or punctuation ("E-mail 2
Address" is "email2address"). For a field that holds one value, the first non-empty cell
of its columns wins, in the order of the aliases below (Outlook's "Business Phone" before
its "Home Phone"); a field that holds several (addresses, domains) takes every column, in
the file's order. Weak aliases count only when the file has none of the field's others:
Outlook's "Title" is a courtesy title ("Mr.") beside its "Job Title", Salesforce's is the
job title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.strip().lower())


@dataclass(frozen=True)
class FieldSpec:
    name: str
    aliases: tuple[str, ...] = ()
    # Header keys matching this (numbered columns: "E-mail 3 Address", "Email 4").
    pattern: str | None = None
    weak: tuple[str, ...] = ()
    multiple: bool = False


@dataclass(frozen=True)
class KindSpec:
    kind: str
    fields: tuple[FieldSpec, ...]
    # Fields of which a row must have one, said in the error when none maps.
    needs_one_of: tuple[str, ...] = field(default=())

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


CONTACTS = KindSpec(
    "contacts",
    (
        FieldSpec(
            "emails",
            (
                "email",
                "emails",
                "emailaddress",
                "emailaddresses",
                "primaryemail",
                "workemail",
                "businessemail",
                "homeemail",
                "personalemail",
                "otheremail",
                "additionalemailaddresses",
                "emailadresse",
                "courriel",
                "mail",
            ),
            pattern=r"^(e?mail\d+(address|value)?|email\d*address|email\d+value|emailaddress\d+)$",
            multiple=True,
        ),
        FieldSpec("name", ("name", "fullname", "displayname", "contactname", "contact")),
        FieldSpec("first_name", ("firstname", "givenname", "first", "vorname", "prenom")),
        FieldSpec("middle_name", ("middlename", "additionalname")),
        FieldSpec("last_name", ("lastname", "familyname", "surname", "last", "nachname", "nom")),
        FieldSpec(
            "phone",
            (
                "businessphone",
                "workphone",
                "phone",
                "phonenumber",
                "phone1value",
                "telephone",
                "tel",
                "mobilephone",
                "mobile",
                "mobilephonenumber",
                "primaryphone",
                "companymainphone",
                "businessphone2",
                "phone2value",
                "homephone",
                "otherphone",
            ),
        ),
        FieldSpec(
            "job_title",
            (
                "jobtitle",
                "organization1title",
                "organizationtitle",
                "jobposition",
                "position",
                "function",
            ),
            weak=("title",),
        ),
        FieldSpec(
            "company",
            (
                "company",
                "companyname",
                "organization1name",
                "organizationname",
                "organization",
                "accountname",
                "account",
                "associatedcompany",
                "relatedcompany",
                "employer",
                "firma",
            ),
        ),
    ),
    needs_one_of=("emails",),
)

COMPANIES = KindSpec(
    "companies",
    (
        FieldSpec(
            "name",
            (
                "name",
                "companyname",
                "accountname",
                "company",
                "organization",
                "organizationname",
                "displayname",
            ),
        ),
        FieldSpec(
            "domains",
            ("domain", "domains", "companydomainname", "emaildomain", "companydomain"),
            pattern=r"^domain\d+$",
            multiple=True,
        ),
        FieldSpec("website", ("website", "websiteurl", "web", "url", "homepage", "site")),
        FieldSpec(
            "phone",
            ("phone", "phonenumber", "companymainphone", "businessphone", "telephone", "tel"),
        ),
    ),
    needs_one_of=("name", "domains"),
)

LEADS = KindSpec(
    "leads",
    (
        FieldSpec("connector_id", ("connectorid",)),
        FieldSpec(
            "external_id",
            (
                "externalid",
                "id",
                "leadid",
                "opportunityid",
                "dealid",
                "recordid",
                "xmlid",
            ),
        ),
        FieldSpec(
            "title",
            (
                "title",
                "opportunityname",
                "dealname",
                "leadname",
                "opportunity",
                "name",
                "subject",
                "topic",
            ),
        ),
        FieldSpec("description", ("description", "notes", "internalnotes", "dealdescription")),
        FieldSpec("stage", ("stage", "dealstage", "stagename", "status", "leadstatus")),
        FieldSpec(
            "expected_revenue",
            ("expectedrevenue", "amount", "dealamount", "plannedrevenue", "revenue", "value"),
        ),
        FieldSpec("probability", ("probability", "dealprobability", "probabilitypercent")),
        FieldSpec(
            "close_date",
            ("closedate", "expectedclosing", "expectedclosedate", "closingdate", "deadline"),
        ),
        FieldSpec("lost_reason", ("lostreason", "lossreason", "closedlostreason")),
        FieldSpec(
            "contact_email",
            ("contactemail", "email", "emailfrom", "primarycontactemail", "contactemailaddress"),
        ),
        FieldSpec(
            "company",
            ("company", "companyname", "accountname", "account", "associatedcompany"),
        ),
    ),
    needs_one_of=("title",),
)

KINDS: dict[str, KindSpec] = {spec.kind: spec for spec in (CONTACTS, COMPANIES, LEADS)}


@dataclass(frozen=True)
class ColumnMap:
    """field name -> the indexes of the columns that hold it, in the order they count."""

    fields: dict[str, list[int]]
    ignored: list[str]


class MappingError(ValueError):
    """A --map that names no column or no field, or a file without the columns it needs."""


def parse_overrides(pairs: list[str], spec: KindSpec) -> dict[str, str | None]:
    """`--map "Column=field"` pairs as header key -> field (None: ignore that column)."""
    overrides: dict[str, str | None] = {}
    for pair in pairs:
        column, eq, name = pair.rpartition("=")
        if not eq or not column.strip():
            raise MappingError(f'--map {pair!r}: write it as "Column=field".')
        name = name.strip()
        if name and name not in spec.field_names():
            raise MappingError(
                f"--map {pair!r}: {spec.kind} have no field {name!r} "
                f"(fields: {', '.join(spec.field_names())}; an empty field ignores the column)."
            )
        overrides[header_key(column)] = name or None
    return overrides


def map_columns(
    headers: list[str], spec: KindSpec, overrides: dict[str, str | None] | None = None
) -> ColumnMap:
    keys = [header_key(h) for h in headers]
    overrides = overrides or {}
    unknown = [k for k in overrides if k not in keys]
    if unknown:
        raise MappingError(
            f"--map names a column the file does not have ({', '.join(unknown)}); "
            f"its columns: {', '.join(headers)}."
        )
    fields: dict[str, list[int]] = {}
    taken: set[int] = set()
    for index, key in enumerate(keys):
        if key in overrides:
            taken.add(index)
            target = overrides[key]
            if target is not None:
                fields.setdefault(target, []).append(index)
    for spec_field in spec.fields:
        found: list[int] = []
        if spec_field.multiple:
            found = [
                i
                for i, key in enumerate(keys)
                if i not in taken
                and (
                    key in spec_field.aliases
                    or (spec_field.pattern is not None and re.match(spec_field.pattern, key))
                )
            ]
        else:
            for alias in spec_field.aliases:
                found += [i for i, key in enumerate(keys) if key == alias and i not in taken]
        if not found and spec_field.name not in fields:
            for alias in spec_field.weak:
                found += [i for i, key in enumerate(keys) if key == alias and i not in taken]
        taken.update(found)
        if found:
            fields.setdefault(spec_field.name, []).extend(found)
    ignored = [h for i, h in enumerate(headers) if i not in taken and h.strip()]
    if spec.needs_one_of and not any(name in fields for name in spec.needs_one_of):
        wanted = " or ".join(spec.needs_one_of)
        raise MappingError(
            f"No column of the file holds the {spec.kind}' {wanted} (its columns: "
            f'{", ".join(headers)}). Name it with --map "Column={spec.needs_one_of[0]}".'
        )
    return ColumnMap(fields, ignored)
