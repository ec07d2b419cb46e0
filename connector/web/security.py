"""What browsers get from us, in one place: security headers, cookie flags and error pages.

Every response passes through one `after_request` hook, so a page added later, an error
page or a static file gets the same headers without asking for them:

- `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on everything. A
  record link carries its signed token in the query string; with no referrer, no request
  the page makes, and no link followed from it, can hand that URL on.
- `Strict-Transport-Security` when the public URL is https.
- A Content-Security-Policy chosen by what the response is: our server-rendered pages run
  no script at all and may not be framed; the Outlook task pane (and the last page of its
  sign-in dialog) run their own scripts and Office.js, and only Office's hosts may frame
  the pane and the dialog's pages (`frame-ancestors` cannot be set from a <meta> tag, so
  it has to be a header).
  Other responses (JSON, scripts, images) get the strictest policy, which only matters if
  a browser is tricked into rendering one as a document.

Errors: the API (/api/) and the Gmail add-on (/gmail/, which answers cards) keep their
JSON errors; any other route, where a person with a browser lands, gets a plain HTML page
with the right status and no details of what went wrong inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from flask import Flask, Response, g, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.http import HTTP_STATUS_CODES

from connector.errors import ServiceError

# The origins Office frames add-ins from: Outlook on the web (work and consumer accounts),
# the new Outlook for Windows (outlook.office.com, moving to outlook.cloud.microsoft) and
# Office on the web. Classic desktop Outlook hosts the pane top-level, with no ancestor.
# CONNECTOR_OFFICE_FRAME_ANCESTORS (space- or comma-separated) replaces the list.
DEFAULT_OFFICE_FRAME_ANCESTORS = (
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "https://outlook.live.com",
    "https://outlook.cloud.microsoft",
    "https://*.office.com",
    "https://*.officeapps.live.com",
)

OFFICE_JS = "https://appsforoffice.microsoft.com"

# Server-rendered pages (templates/): inline styles, our images, forms posting back here;
# no script, no plugin, no <base>.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'"
)
# The task pane (static/outlook/taskpane.html): the same policy as its <meta> tag, which
# stays so that the pane is protected however it is served.
TASKPANE_POLICY = (
    f"default-src 'self'; script-src 'self' {OFFICE_JS}; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' https://login.microsoftonline.com; "
    "frame-src https://login.microsoftonline.com"
)
# The sign-in dialog's last page hands the pane its key through Office.js (messageParent).
DIALOG_SCRIPT_POLICY = f"default-src 'self'; script-src 'self' {OFFICE_JS}; base-uri 'none'"
# Anything that is not a page.
NOT_A_PAGE_POLICY = "default-src 'none'"

HSTS = "max-age=31536000"

# Routes whose clients read JSON (or cards): their errors stay in the API's error shape.
JSON_PREFIXES = ("/api/", "/gmail/")


def office_dialog(*, scripts: bool = False) -> None:
    """Mark this request's page as part of the Outlook sign-in dialog: Office may frame it
    (Office on the web can show dialogs in a frame), and with `scripts` it runs Office.js."""
    g.connector_office_dialog = True
    if scripts:
        g.connector_page_policy = DIALOG_SCRIPT_POLICY


def wants_json() -> bool:
    """Whether this request's errors are JSON: the API and the add-on, or a client that
    asks for JSON rather than HTML."""
    path = request.path
    if path.startswith(JSON_PREFIXES) or path.rstrip("/") in ("/api", "/gmail"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_page(
    status: int, title: str, message: str, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """The HTML page a browser gets for an error; the security headers come from the hook."""
    body = render_template("page.html", title=title, message=message, links=[], error=True)
    response = Response(body, status=status, mimetype="text/html")
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value  # Allow on a 405, WWW-Authenticate on a 401
    response.headers["Cache-Control"] = "no-store"
    return response


def _http_error_page(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500 and not isinstance(error, ServiceUnavailable):
        # Never show what went wrong inside: the log has it (Flask logs before this runs).
        # A 503 says only that a dependency is away and when to try again.
        message = "Something went wrong on our side. It has been logged; try again later."
    else:
        message = error.description or error.name
    headers = [] if isinstance(error, InternalServerError) else error.get_headers()
    return error_page(status, error.name, message, headers)


def _service_error_page(error: ServiceError) -> Response:
    title = HTTP_STATUS_CODES.get(error.status_code, "Error")
    return error_page(error.status_code, title, error.message)


def _negotiated(
    json_handler: Callable[[Any], ResponseReturnValue] | None,
    html_handler: Callable[[Any], Response],
) -> Callable[[Any], ResponseReturnValue]:
    def handle(error: Any) -> ResponseReturnValue:
        if json_handler is not None and wants_json():
            return json_handler(error)
        return html_handler(error)

    return handle


def _frame_ancestors(configured: str) -> str:
    return " ".join(configured.replace(",", " ").split() or DEFAULT_OFFICE_FRAME_ANCESTORS)


def _policy(response: Response, office_ancestors: str) -> tuple[str, bool]:
    """The response's Content-Security-Policy, and whether it denies all framing."""
    if response.mimetype != "text/html":
        return f"{NOT_A_PAGE_POLICY}; frame-ancestors 'none'", True
    if request.path.startswith("/static/outlook/"):
        return f"{TASKPANE_POLICY}; frame-ancestors {office_ancestors}", False
    base = g.get("connector_page_policy", PAGE_POLICY)
    if g.get("connector_office_dialog"):
        return f"{base}; frame-ancestors {office_ancestors}", False
    return f"{base}; frame-ancestors 'none'", True


def init_app(app: Flask) -> None:
    """Call after every other init_app: it wraps the JSON error handlers they registered."""
    production = app.config["ENV_NAME"] == "production"
    # The session cookie carries the sign-in flow's browser binding and, after sign-in,
    # the user: never readable by script, never sent cross-site on a subrequest (sign-in
    # callbacks are top-level GET navigations, which Lax allows), https-only in production.
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    if production:
        app.config["SESSION_COOKIE_SECURE"] = True
    office = _frame_ancestors(app.config["OFFICE_FRAME_ANCESTORS"])
    # Browsers heed HSTS only over https; the public URL says whether we are there.
    https = str(app.config["PUBLIC_URL"]).lower().startswith("https://")

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if "Content-Security-Policy" not in headers:
            policy, framing_denied = _policy(response, office)
            headers["Content-Security-Policy"] = policy
            if framing_denied and response.mimetype == "text/html":
                headers.setdefault("X-Frame-Options", "DENY")  # for browsers before CSP 2
        return response

    handlers = app.error_handler_spec.setdefault(None, {}).setdefault(None, {})

    def json_handler(error: type[Exception]) -> Callable[[Any], ResponseReturnValue] | None:
        # Flask's spec may hold async handlers too; the JSON ones registered before this
        # (flask-smorest's Api, connector.web.handlers) are plain functions.
        return cast(Callable[[Any], ResponseReturnValue] | None, handlers.get(error))

    app.register_error_handler(
        HTTPException, _negotiated(json_handler(HTTPException), _http_error_page)
    )
    app.register_error_handler(
        ServiceError, _negotiated(json_handler(ServiceError), _service_error_page)
    )
