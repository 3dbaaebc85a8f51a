"""``bucketbridge sites notifications SITE [--apply] [--queue-policy]``: the bucket notification
set-up that lets a site's uploads be imported within seconds (``bucketbridge listen``)."""

from __future__ import annotations

import click
import orjson

from producers.context import AppContext
from producers.siteprobe import reachable
from shared.errors import UserError
from shared.formats.names import validate_site_id
from shared.notify.setup import merged, queue_arn_of, queue_configuration, queue_policy
from shared.settings import Settings
from shared.store.notifyconfig import read_notifications, write_notifications
from shared.store.sqs import Queue, make_sqs_client

pass_app = click.make_pass_decorator(AppContext)


def _queue_arn(settings: Settings) -> str:
    url = settings.notify_queue_url
    if url is None:
        raise UserError("BUCKETBRIDGE_NOTIFY_QUEUE_URL is not set: name the SQS queue the "
                        "listener reads")
    return queue_arn_of(url) or Queue(make_sqs_client(url), url).arn()


def _print(doc: object) -> None:
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


@click.command("notifications")
@click.argument("site")
@click.option("--apply", "apply_", is_flag=True, help="Add it to the bucket's notification "
              "configuration with the site's access, keeping what else is there.")
@click.option("--queue-policy", "queue_policy_", is_flag=True,
              help="Print the queue's access policy that lets S3 send the bucket's events "
                   "instead.")
@pass_app
def notifications(app: AppContext, site: str, apply_: bool, queue_policy_: bool) -> None:
    """The bucket notification set-up for fast import."""
    svc = app.services
    config = svc.sites.get(validate_site_id(site))
    arn = _queue_arn(app.settings)
    if queue_policy_:
        _print(queue_policy(arn, [config.import_bucket]))
        return
    rule = queue_configuration(config, arn)
    if not apply_:
        _print({"QueueConfigurations": [rule]})
        return
    s3 = reachable(svc.access, config)
    bucket = config.import_bucket
    write_notifications(s3, bucket, merged(read_notifications(s3, bucket), rule))
    click.echo(f"s3://{bucket} now sends the object-created events of "
               f"{config.pattern.list_prefix}* to {arn} (configuration {rule['Id']})", err=True)
