"""dramatiq middleware: what every message shares (metrics, dead-letter notes, graceful
shutdown), so the jobs stay about the domain."""
