"""The Gmail add-on's deployment descriptor (for `gcloud workspace-add-ons deployments create`)."""

from __future__ import annotations

from typing import Any

ADDON_NAME = "Connector"

# The fewest scopes that work: who the user is, running in Gmail, reading the open
# message (metadata for the card, raw when logging) and writing reply drafts.
GMAIL_SCOPES = [
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/gmail.addons.execute",
    "https://www.googleapis.com/auth/gmail.addons.current.message.readonly",
    "https://www.googleapis.com/auth/gmail.addons.current.action.compose",
]


def gmail_deployment(base_url: str, name: str = ADDON_NAME) -> dict[str, Any]:
    base = base_url.rstrip("/")
    return {
        "oauthScopes": GMAIL_SCOPES,
        "addOns": {
            "common": {
                "name": name,
                "logoUrl": f"{base}/static/logo.png",
                "layoutProperties": {"primaryColor": "#0f62fe"},
                "homepageTrigger": {"runFunction": f"{base}/gmail/homepage"},
                "universalActions": [
                    {"label": "Search", "runFunction": f"{base}/gmail/actions/universal_search"},
                    {
                        "label": "Settings",
                        "runFunction": f"{base}/gmail/actions/universal_settings",
                    },
                ],
                "openLinkUrlPrefixes": [f"{base}/"],
            },
            "gmail": {
                "contextualTriggers": [
                    {"unconditional": {}, "onTriggerFunction": f"{base}/gmail/message"}
                ],
                "composeTrigger": {
                    "actions": [
                        {"label": "Insert a template", "runFunction": f"{base}/gmail/compose"}
                    ],
                    "draftAccess": "METADATA",
                },
            },
            "httpOptions": {
                "authorizationHeader": "SYSTEM_ID_TOKEN",
                "granularOauthPermissionSupport": "OPT_IN",
            },
        },
    }
