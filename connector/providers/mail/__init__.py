"""Mail servers: SMTP sending, DKIM, IMAP polling."""
