"""One error hierarchy, split by what the caller should do about it.

``RetryableError``: transient trouble (S3 or Redis unreachable, throttling, a 5xx); the same work
should be tried again later.  ``PermanentError``: retrying the same thing gives the same answer
(a bad file, a bucket that is missing or denied, bad configuration); report it and move on.
Library errors are translated into these at the adapters and never leak past them.
"""

from __future__ import annotations


class BucketbridgeError(Exception):
    """Base of every error bucketbridge raises on purpose."""


class RetryableError(BucketbridgeError):
    """Transient: the same operation may succeed later."""


class PermanentError(BucketbridgeError):
    """Trying again will not help until somebody changes something."""


# -- retryable -------------------------------------------------------------------------------


class StorageUnavailable(RetryableError):
    """S3 could not be reached, throttled us, or answered with a server error."""


class RedisUnavailable(RetryableError):
    """Redis could not be reached."""


# -- permanent -------------------------------------------------------------------------------


class ConfigError(PermanentError):
    """A setting or a site configuration is invalid."""


class UsageError(PermanentError):
    """A user asked for something malformed (bad site id, bad option value)."""


class SiteNotFound(PermanentError):
    """No site with that id is registered."""


class SiteExists(PermanentError):
    """A site with that id is already registered."""


class BucketError(PermanentError):
    """A customer bucket is missing or we may not use it."""


class BucketMissing(BucketError):
    """The bucket does not exist."""


class AccessDenied(BucketError):
    """The bucket exists but our credentials may not do what we asked."""


class ObjectMissing(PermanentError):
    """An object we expected is not there."""


class PreconditionFailed(PermanentError):
    """A conditional request lost: the object exists already, or changed under us."""


class BadFile(PermanentError):
    """A whole import file is unusable; it is moved aside with a report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LeaseLost(PermanentError):
    """Our lease on a site expired or was taken; this worker must stop writing."""
