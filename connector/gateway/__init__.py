"""The SMTP side of the mail gateway (`connector mail-gateway`): an aiosmtpd server that
refuses unknown recipients at RCPT, stores each accepted message durably, then queues the
job that routes it."""
