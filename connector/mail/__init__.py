"""Mail that reaches records by itself: organization mail domains, team aliases (sales@,
support@), the messages that came in through them, mailboxes polled over IMAP, and the mail
the connector sends (acknowledgments).

This package is the domain: what is stored and how a message finds its record. Receiving
(the SMTP gateway, `connector/gateway`), polling (`connector/providers/mail`) and sending are
above it, and the jobs that run the pipeline live in `connector/jobs`.
"""
