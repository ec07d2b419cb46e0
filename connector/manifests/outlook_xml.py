"""The Outlook add-in's XML manifest (add-in only), which every Outlook client accepts.

Read mode on messages, ReadItem permission, a button on the message read surface
that opens a pinnable task pane. Mailbox 1.1 is the floor; the pane detects
newer APIs (1.5 ItemChanged, 1.9 displayReplyFormAsync, 1.14 getAsFileAsync) at
run time. Add-in commands themselves need 1.3.
"""

from __future__ import annotations

import uuid

from lxml import etree

from connector import page_links
from connector.page_links import Links

OFFICE = "http://schemas.microsoft.com/office/appforoffice/1.1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
BT = "http://schemas.microsoft.com/office/officeappbasictypes/1.0"
MAILAPPOR = "http://schemas.microsoft.com/office/mailappversionoverrides/1.0"
OVERRIDES_1_0 = "http://schemas.microsoft.com/office/mailappversionoverrides"
OVERRIDES_1_1 = "http://schemas.microsoft.com/office/mailappversionoverrides/1.1"

ADDIN_NAME = "Connector"
DESCRIPTION = "See who the sender is in your records, log emails and reply with templates."
ICON_SIZES = (16, 32, 80)
TASKPANE_PATH = "/static/outlook/taskpane.html"


def addin_id(base_url: str) -> str:
    """Stable per deployment: the same public URL gives the same add-in ID."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, base_url.rstrip("/") + "/outlook"))


def _el(
    parent: etree._Element, namespace: str, tag: str, text: str | None = None, **attributes: str
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{tag}")
    for name, value in attributes.items():
        if name == "xsi_type":
            element.set(f"{{{XSI}}}type", value)
        else:
            element.set(name, value)
    if text is not None:
        element.text = text
    return element


def _command_surface(host: etree._Element, ns: str, mobile: bool) -> None:
    factor = _el(host, ns, "MobileFormFactor" if mobile else "DesktopFormFactor")
    if not mobile:
        _el(factor, ns, "FunctionFile", resid="Commands.Url")
    point = _el(
        factor,
        ns,
        "ExtensionPoint",
        xsi_type="MobileMessageReadCommandSurface" if mobile else "MessageReadCommandSurface",
    )
    if mobile:
        group = _el(point, ns, "Group", id="mobileMsgRead")
        _el(group, ns, "Label", resid="GroupLabel")
        control = _el(group, ns, "Control", xsi_type="MobileButton", id="mobileOpenPane")
        _el(control, ns, "Label", resid="TaskpaneButton.Label")
        icon = _el(control, ns, "Icon", xsi_type="bt:MobileIconList")
        for size in (25, 32, 48):
            for scale in (1, 2, 3):
                _el(icon, BT, "Image", size=str(size), scale=str(scale), resid=f"Icon.{size}")
        action = _el(control, ns, "Action", xsi_type="ShowTaskpane")
        _el(action, ns, "SourceLocation", resid="Taskpane.Url")
        return
    tab = _el(point, ns, "OfficeTab", id="TabDefault")
    group = _el(tab, ns, "Group", id="msgReadGroup")
    _el(group, ns, "Label", resid="GroupLabel")
    control = _el(group, ns, "Control", xsi_type="Button", id="msgReadOpenPaneButton")
    _el(control, ns, "Label", resid="TaskpaneButton.Label")
    supertip = _el(control, ns, "Supertip")
    _el(supertip, ns, "Title", resid="TaskpaneButton.Label")
    _el(supertip, ns, "Description", resid="TaskpaneButton.Tooltip")
    icon = _el(control, ns, "Icon")
    for size in ICON_SIZES:
        _el(icon, BT, "Image", size=str(size), resid=f"Icon.{size}")
    action = _el(control, ns, "Action", xsi_type="ShowTaskpane")
    _el(action, ns, "SourceLocation", resid="Taskpane.Url")
    if ns == OVERRIDES_1_1:
        _el(action, ns, "SupportsPinning", "true")


def _overrides(
    parent: etree._Element, ns: str, base: str, ms_client_id: str | None, mobile: bool
) -> etree._Element:
    # Its own default namespace, so that xsi:type names ("MailHost") resolve in it.
    overrides = etree.SubElement(parent, f"{{{ns}}}VersionOverrides", nsmap={None: ns})
    overrides.set(
        f"{{{XSI}}}type",
        "VersionOverridesV1_1" if ns == OVERRIDES_1_1 else "VersionOverridesV1_0",
    )
    requirements = _el(overrides, ns, "Requirements")
    sets = _el(requirements, BT, "Sets", DefaultMinVersion="1.3")
    _el(sets, BT, "Set", Name="Mailbox")
    hosts = _el(overrides, ns, "Hosts")
    host = _el(hosts, ns, "Host", xsi_type="MailHost")
    _command_surface(host, ns, mobile=False)
    if mobile:
        _command_surface(host, ns, mobile=True)
    resources = _el(overrides, ns, "Resources")
    images = _el(resources, BT, "Images")
    sizes = sorted({*ICON_SIZES, *((25, 48) if mobile else ())})
    for size in sizes:
        png = size if size in (16, 32, 64, 80, 128) else 64 if size == 48 else 32
        _el(images, BT, "Image", id=f"Icon.{size}", DefaultValue=f"{base}/static/icon-{png}.png")
    urls = _el(resources, BT, "Urls")
    _el(urls, BT, "Url", id="Taskpane.Url", DefaultValue=base + TASKPANE_PATH)
    _el(urls, BT, "Url", id="Commands.Url", DefaultValue=base + TASKPANE_PATH)
    short = _el(resources, BT, "ShortStrings")
    _el(short, BT, "String", id="GroupLabel", DefaultValue=ADDIN_NAME)
    _el(short, BT, "String", id="TaskpaneButton.Label", DefaultValue="Show in Connector")
    long = _el(resources, BT, "LongStrings")
    _el(
        long,
        BT,
        "String",
        id="TaskpaneButton.Tooltip",
        DefaultValue="Open the sender's contact, company, leads and tickets.",
    )
    if ns == OVERRIDES_1_1 and ms_client_id:
        info = _el(overrides, ns, "WebApplicationInfo")
        _el(info, ns, "Id", ms_client_id)
        host_name = base.split("://", 1)[1]
        _el(info, ns, "Resource", f"api://{host_name}/{ms_client_id}")
        scopes = _el(info, ns, "Scopes")
        _el(scopes, ns, "Scope", "openid")
        _el(scopes, ns, "Scope", "profile")
    return overrides


def outlook_xml_manifest(
    base_url: str,
    ms_client_id: str | None = None,
    version: str = "1.0.0.0",
    links: Links | None = None,
) -> bytes:
    base = base_url.rstrip("/")
    links = links or page_links.links({}, base)
    root = etree.Element(
        f"{{{OFFICE}}}OfficeApp",
        nsmap={None: OFFICE, "xsi": XSI, "bt": BT, "mailappor": MAILAPPOR},
    )
    root.set(f"{{{XSI}}}type", "MailApp")
    _el(root, OFFICE, "Id", addin_id(base))
    _el(root, OFFICE, "Version", version)
    _el(root, OFFICE, "ProviderName", "Connector")
    _el(root, OFFICE, "DefaultLocale", "en-US")
    _el(root, OFFICE, "DisplayName", DefaultValue=ADDIN_NAME)
    _el(root, OFFICE, "Description", DefaultValue=DESCRIPTION)
    _el(root, OFFICE, "IconUrl", DefaultValue=f"{base}/static/icon-64.png")
    _el(root, OFFICE, "HighResolutionIconUrl", DefaultValue=f"{base}/static/icon-128.png")
    _el(root, OFFICE, "SupportUrl", DefaultValue=links.support)
    domains = _el(root, OFFICE, "AppDomains")
    _el(domains, OFFICE, "AppDomain", base)
    hosts = _el(root, OFFICE, "Hosts")
    _el(hosts, OFFICE, "Host", Name="Mailbox")
    requirements = _el(root, OFFICE, "Requirements")
    sets = _el(requirements, OFFICE, "Sets")
    _el(sets, OFFICE, "Set", Name="Mailbox", MinVersion="1.1")
    forms = _el(root, OFFICE, "FormSettings")
    form = _el(forms, OFFICE, "Form", xsi_type="ItemRead")
    desktop = _el(forms[0], OFFICE, "DesktopSettings")
    _el(desktop, OFFICE, "SourceLocation", DefaultValue=base + TASKPANE_PATH)
    _el(desktop, OFFICE, "RequestedHeight", "250")
    del form
    _el(root, OFFICE, "Permissions", "ReadItem")
    rule = _el(root, OFFICE, "Rule", xsi_type="RuleCollection", Mode="Or")
    _el(rule, OFFICE, "Rule", xsi_type="ItemIs", ItemType="Message", FormType="Read")
    _el(root, OFFICE, "DisableEntityHighlighting", "false")
    outer = _overrides(root, OVERRIDES_1_0, base, None, mobile=False)
    _overrides(outer, OVERRIDES_1_1, base, ms_client_id, mobile=True)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
