"""S1–S8 — staff screens: security settings, MFA, audit trail, break-glass, attachments."""
