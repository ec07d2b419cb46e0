"""Mail servers: sending what the connector writes itself (acknowledgments; later messages
from records) through the SMTP server of CONNECTOR_SMTP_URL (`smtp`), DKIM-signed when a key
is set (`dkim`); a local sink that catches it all on a developer's machine (`sink`); and
polling team mailboxes over IMAP (`imap`)."""
