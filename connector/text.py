"""Text a database can store: the one rule, for request bodies and for parsed mail alike."""

from __future__ import annotations

import re

# Surrogates (a lone "\ud800" in JSON, 8-bit header bytes Python keeps as surrogates, a
# charset like UTF-7 that can encode them) are not characters: neither PostgreSQL nor
# SQLite can store them. NUL cannot go in PostgreSQL's text.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
