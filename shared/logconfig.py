"""Log format for every bucketbridge process: one line per event, UTC timestamps."""

from __future__ import annotations

import logging
import time

# Libraries whose INFO lines would drown ours (one line per HTTP request).
NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "werkzeug")


def configure_logging(level: int = logging.INFO) -> None:
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(processName)s %(name)s "
                                  "%(message)s")
    formatter.converter = time.gmtime
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
