"""One error hierarchy, split by what the caller should do about it.

- ``UserError``: the person at the command line asked for something malformed or impossible (a
  bad site id, an option out of range, a site that does not exist, a bad setting).  The CLI
  prints it as one line and exits with status 2; nothing was changed.
- ``RetryableError``: transient trouble (S3 or Redis unreachable, throttling, a 5xx, a lease
  lost to a pause); the same work should be tried again later.  Workers retry it.
- ``PermanentError``: retrying the same thing gives the same answer until somebody changes
  something (a bad file, a bucket that is missing or denied, a lost conditional write, an
  unreadable stored object).  Workers report it and move on; the CLI exits with status 1.

Library errors (botocore, redis, dramatiq) are translated into these at the adapters
(``shared.store.s3``, ``shared.fleet``) and never leak past them.  Errors are classified by
type, never by matching message strings.
"""

from __future__ import annotations


class BucketbridgeError(Exception):
    """Base of every error bucketbridge raises on purpose."""


class UserError(BucketbridgeError):
    """A user's mistake: one line, exit status 2, nothing changed."""


class RetryableError(BucketbridgeError):
    """Transient: the same operation may succeed later."""


class PermanentError(BucketbridgeError):
    """Trying again will not help until somebody changes something."""


# -- user ------------------------------------------------------------------------------------


class SettingsError(UserError):
    """A setting in the environment is invalid."""


class SiteNotFound(UserError):
    """No site with that id is registered."""


class SiteExists(UserError):
    """A site with that id is already registered."""


class IsolationError(UserError):
    """A site's locations would break tenant isolation: the store bucket, or a location (or a
    role and external id) another site holds.  Refused where sites are changed (exit status 2)
    and again by the fleet before it acts for the site (the job is refused, not retried)."""


# -- retryable -------------------------------------------------------------------------------


class StorageUnavailable(RetryableError):
    """S3 could not be reached, throttled us, or answered with a server error."""


class RedisUnavailable(RetryableError):
    """Redis could not be reached, or refused a command."""


class QueueUnavailable(RetryableError):
    """The notification queue (SQS) could not be reached, throttled us, or failed."""


class LeaseLost(RetryableError):
    """Our lease on a site expired or was taken; this worker must stop writing now, and the
    work can be done again later under a new lease."""


class SiteBusy(RetryableError):
    """Another holder has the site's lease; try again when it is done."""


# -- permanent -------------------------------------------------------------------------------


class SiteConfigError(PermanentError):
    """A stored site configuration cannot be read or is invalid."""


class SiteIndexBehind(PermanentError):
    """A site's configuration changed but the site index could not follow: the scheduler
    does not see the change until the index is rebuilt (``bucketbridge sites reindex``)."""


class BucketError(PermanentError):
    """A customer bucket is missing or we may not use it."""


class BucketMissing(BucketError):
    """The bucket does not exist."""


class AccessDenied(BucketError):
    """The bucket exists but our credentials may not do what we asked."""


class QueueError(PermanentError):
    """The notification queue is missing, or we may not use it."""


class ObjectMissing(PermanentError):
    """An object we expected is not there."""


class PreconditionFailed(PermanentError):
    """A conditional request lost: the object exists already, or changed under us."""


class EnvironmentRefused(PermanentError):
    """The environment would break bucketbridge's guarantees (a store that ignores conditional
    writes, an evicting Redis, a skewed clock): the fleet's processes refuse to start."""


class BadFile(PermanentError):
    """A whole import file is unusable; it is moved aside with a report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
