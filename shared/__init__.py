"""bucketbridge's domain core and adapters, shared by the workers and the producers.

One concept per package, with the allowed imports checked by import-linter (``pyproject.toml``)::

    imports/  exports/  filetools/     the product: CSV import, export, receivers' file tools
          |        |         |          (independent of each other)
    store/   fleet/                    the adapters: the store bucket (S3), the fleet (Redis,
          |        |                    dramatiq); each translates its library's errors
    formats/                           pure: file formats, key naming, names, time, streams

Beside them, small and cross-cutting: ``errors`` (user / retryable / permanent), ``settings``
(parsed once), ``clock`` (injected), ``metrics`` (every name, once), ``logconfig``; and
``services``, the process wiring that only entry points import.
"""
