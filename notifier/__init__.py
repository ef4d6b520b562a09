"""The notifier projection: events -> the numbered emails, the outbox and the SMTP sender."""
