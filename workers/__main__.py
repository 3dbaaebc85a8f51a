"""``python -m workers BROKER_MODULE [dramatiq options]``: dramatiq's own CLI, with
bucketbridge's log format (``BUCKETBRIDGE_LOG_FORMAT``) in the main process and, through
``workers.app`` and ``workers.exposition``, in every worker and fork process.
``bucketbridge worker`` execs it."""

from __future__ import annotations

import logging
import sys

from dramatiq.cli import main as dramatiq_main

from shared.logconfig import configure_logging
from shared.settings import Settings


def main() -> int:
    configure_logging(logging.INFO, Settings.from_env().log_format, force=True)
    if "--skip-logging" not in sys.argv:
        sys.argv.append("--skip-logging")  # dramatiq's own format would replace ours
    return int(dramatiq_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
