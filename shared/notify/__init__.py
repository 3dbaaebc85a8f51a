"""Event-driven import: S3 object-created notifications turned into scans within seconds."""
