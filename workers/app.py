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

settings = Settings.from_env()
# dramatiq pointed this process's stderr at its log pipe: log there, in our format.
configure_logging(log_format=settings.log_format, force=True)
runtime = Runtime.build(Services.build(settings))
broker = runtime.broker
dramatiq.set_broker(broker)
