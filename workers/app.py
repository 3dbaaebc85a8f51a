"""The worker processes' entry module: ``dramatiq workers.app`` (run by ``bucketbridge worker``).

dramatiq imports this module in every worker process; it builds the clients once, sets the
process's broker and registers the actors.  Nothing else imports it.
"""

from __future__ import annotations

import dramatiq

from shared.logconfig import configure_logging
from shared.services import Services
from shared.settings import Settings
from workers.runtime import Runtime

configure_logging()
runtime = Runtime.build(Services.build(Settings.from_env()))
broker = runtime.broker
dramatiq.set_broker(broker)
