"""``bucketbridge listen``: turn S3 object-created events into scans within seconds."""

from __future__ import annotations

import click

from producers.context import AppContext
from producers.service import serve
from shared.errors import UserError
from shared.fleet.notices import Notices
from shared.notify.listener import Listener
from shared.notify.lookup import SiteLookup
from shared.preflight import check_environment
from shared.services import Services
from shared.store.sqs import Queue, make_sqs_client

pass_app = click.make_pass_decorator(AppContext)


def build_listener(svc: Services, queue: Queue) -> Listener:
    settings = svc.settings
    lookup = SiteLookup(svc.store_s3, settings.store_bucket, svc.claims, svc.sites, svc.clock,
                        cache_s=settings.notify_cache_s)
    return Listener(queue, lookup, Notices(svc.redis, settings.notify_pending_ttl_s),
                    svc.publisher.publish, svc.clock, svc.metrics,
                    wait_s=settings.notify_wait_s,
                    visibility_timeout_s=settings.notify_visibility_timeout_s)


def notify_queue(url: str | None, wait_s: int) -> Queue:
    if url is None:
        raise UserError("BUCKETBRIDGE_NOTIFY_QUEUE_URL is not set: name the SQS queue that "
                        "receives the buckets' object-created events")
    return Queue(make_sqs_client(url, wait_s=wait_s), url)


@click.command()
@pass_app
def listen(app: AppContext) -> None:
    """Turn S3 object-created events into scans within seconds."""
    settings = app.settings
    queue = notify_queue(settings.notify_queue_url, settings.notify_wait_s)
    # Before it serves metrics or publishes anything, like the worker and the scheduler.
    check_environment(settings, "listener")
    queue.arn()  # the queue exists and may be read: fail now, in one line, if not
    listener = build_listener(app.services, queue)
    serve(f"listener running on {queue.url}", settings.metrics_port,
          app.services.metrics.registry, listener.run)
