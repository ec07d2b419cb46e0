"""Whether a failed request to a provider could have reached it.

A send that failed before any byte left this machine did nothing; one that failed
later may have been carried out (the answer was lost, not the request). Only the first
may be reported as "nothing was sent"; the second must be reported as unconfirmed, or
the user sends the same email twice.
"""

from __future__ import annotations

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

# Connection refused, a name that does not resolve, a connect timeout: no request was made.
_BEFORE_ANY_REQUEST = (NewConnectionError, ConnectTimeoutError)


def never_reached(error: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server."""
    if isinstance(error, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        # The TLS handshake comes before the request.
        return True
    if isinstance(error, requests.ConnectionError) and error.args:
        reason = getattr(error.args[0], "reason", error.args[0])
        return isinstance(reason, _BEFORE_ANY_REQUEST)
    return False
