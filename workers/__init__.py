"""The worker fleet: what runs inside the workers.

``app`` is the worker processes' entry module (``dramatiq workers.app``); ``runtime`` assembles
the services, broker and actors; ``broker`` sets up dramatiq's broker, retries and actors;
``jobs`` holds the actors' work (``scan``, ``export``, and the ``base`` they share: lease,
errors, status); ``middleware`` what every message shares (metrics, dead-letter notes,
graceful shutdown); ``exposition`` serves a pod's metrics.
"""
