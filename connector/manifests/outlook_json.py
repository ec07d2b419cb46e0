"""The Outlook add-in's unified (JSON) manifest, for deployment from the Microsoft 365 admin center.

The same add-in as the XML manifest: a read-mode button that opens the pinnable
task pane, Mailbox 1.3 for commands, read access to the open item.
"""

from __future__ import annotations

from typing import Any

from connector import page_links
from connector.manifests.outlook_xml import ADDIN_NAME, DESCRIPTION, TASKPANE_PATH, addin_id
from connector.page_links import Links

MANIFEST_VERSION = "1.24"
SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.schema.json"
)


def outlook_json_manifest(
    base_url: str,
    ms_client_id: str | None = None,
    version: str = "1.0.0",
    links: Links | None = None,
) -> dict[str, Any]:
    base = base_url.rstrip("/")
    links = links or page_links.links({}, base)
    host = base.split("://", 1)[1].split("/", 1)[0]
    icons = [{"size": size, "url": f"{base}/static/icon-{size}.png"} for size in (16, 32, 80)]
    manifest: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": addin_id(base),
        "developer": {
            "name": "Connector",
            "websiteUrl": links.support,
            "privacyUrl": links.privacy,
            "termsOfUseUrl": links.terms,
        },
        "name": {"short": ADDIN_NAME, "full": f"{ADDIN_NAME} for Outlook"},
        "description": {"short": DESCRIPTION[:80], "full": DESCRIPTION},
        # Paths inside the app package, which holds these two files beside the manifest.
        "icons": {"outline": "icon-outline.png", "color": "icon-color.png"},
        "accentColor": "#0F6CBD",
        "validDomains": [host],
        "authorization": {
            "permissions": {
                "resourceSpecific": [{"name": "MailboxItem.Read.User", "type": "Delegated"}]
            }
        },
        "extensions": [
            {
                "requirements": {
                    "scopes": ["mail"],
                    "capabilities": [{"name": "Mailbox", "minVersion": "1.3"}],
                },
                "runtimes": [
                    {
                        "requirements": {
                            "capabilities": [{"name": "Mailbox", "minVersion": "1.3"}]
                        },
                        "id": "TaskPaneRuntime",
                        "type": "general",
                        "code": {"page": base + TASKPANE_PATH},
                        "lifetime": "short",
                        "actions": [
                            {
                                "id": "OpenTaskPane",
                                "type": "openPage",
                                "pinnable": True,
                                "view": "connectorPane",
                            }
                        ],
                    }
                ],
                "ribbons": [
                    {
                        "contexts": ["mailRead"],
                        "tabs": [
                            {
                                "builtInTabId": "TabDefault",
                                "groups": [
                                    {
                                        "id": "msgReadGroup",
                                        "label": ADDIN_NAME,
                                        "icons": icons,
                                        "controls": [
                                            {
                                                "id": "msgReadOpenPaneButton",
                                                "type": "button",
                                                "label": "Show in Connector",
                                                "icons": icons,
                                                "supertip": {
                                                    "title": "Show in Connector",
                                                    "description": "Open the sender's contact, "
                                                    "company, leads and tickets.",
                                                },
                                                "actionId": "OpenTaskPane",
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    if ms_client_id:
        manifest["webApplicationInfo"] = {
            "id": ms_client_id,
            "resource": f"api://{host}/{ms_client_id}",
        }
    return manifest
