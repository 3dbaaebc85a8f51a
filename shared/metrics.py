"""Every Prometheus metric bucketbridge exports, defined once, with help text and unit suffix.

Worker processes run in prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` is set
by ``bucketbridge worker`` before any process starts), so counters and histograms are summed
across processes and gauges use an explicit multiprocess mode.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900)

SITE = "site"  # only on the scheduler's bounded ``bucketbridge_site_*`` families
JOB = "job_kind"  # not "job": Prometheus gives that name to the scrape job


class Metrics:
    """The metric objects; build one per process and pass it where work is done.

    No worker metric carries a ``site`` label: a fleet of 100,000 sites would make millions
    of series.  Fleet figures are labelled by job kind, outcome and reason; per-site figures
    live in the status store and the fleet view (``bucketbridge sites list``).  The only
    per-site series are the scheduler's ``bucketbridge_site_*`` families, at most
    ``attention_sites`` each: the sites that need attention most, for alerts that name them.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # The ``*_created`` series of every counter and histogram double the series count and
        # serve no panel or alert.
        disable_created_metrics()
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        # -- import ---------------------------------------------------------------------------
        self.rows_imported = Counter(
            "bucketbridge_import_rows", "Data rows imported into revisions.", registry=r)
        self.rows_rejected = Counter(
            "bucketbridge_import_rows_rejected", "Data rows skipped as invalid, by reason.",
            ["reason"], registry=r)
        self.bytes_read = Counter(
            "bucketbridge_import_read_bytes", "Bytes of import files read (decompressed).",
            registry=r)
        self.files_completed = Counter(
            "bucketbridge_import_files_completed", "Import files finished and moved aside.",
            registry=r)
        self.files_failed = Counter(
            "bucketbridge_import_files_failed", "Import files that could not be imported.",
            registry=r)
        # -- event store ----------------------------------------------------------------------
        self.revisions_written = Counter(
            "bucketbridge_revisions_written", "Revisions created in the event store.",
            ["source"], registry=r)
        # -- export ---------------------------------------------------------------------------
        self.export_revisions = Counter(
            "bucketbridge_export_revisions", "Revisions copied to customers' export buckets.",
            registry=r)
        self.export_bytes = Counter(
            "bucketbridge_export_copied_bytes", "Bytes of revisions copied to export buckets.",
            registry=r)
        self.export_failures = Counter(
            "bucketbridge_export_failures", "Export runs that failed, by reason.",
            ["reason"], registry=r)
        # -- jobs -----------------------------------------------------------------------------
        self.job_duration = Histogram(
            "bucketbridge_job_duration_seconds", "Time a scan or export message took.",
            [JOB, "outcome"], buckets=DURATION_BUCKETS_S, registry=r)
        self.budget_exhausted = Counter(
            "bucketbridge_budget_exhausted", "Jobs that stopped at their budget with work left.",
            [JOB], registry=r)
        self.lease_busy = Counter(
            "bucketbridge_lease_busy", "Messages acked without work because the site's lease "
            "was held.", [JOB], registry=r)
        self.job_errors = Counter(
            "bucketbridge_job_errors", "Jobs that ended in an error, by reason.",
            [JOB, "reason"], registry=r)
        # -- scheduler ------------------------------------------------------------------------
        self.scheduler_published = Counter(
            "bucketbridge_scheduler_published", "Messages the scheduler published.",
            [JOB], registry=r)
        self.scheduler_last_tick = Gauge(
            "bucketbridge_scheduler_last_tick_timestamp_seconds",
            "When the scheduler last completed a tick.", registry=r, multiprocess_mode="max")
        self.queue_messages = Gauge(
            "bucketbridge_queue_messages", "Messages waiting in a broker queue (state: ready, "
            "delayed for a retry, dead-lettered), as the scheduler last read them.",
            ["queue_name", "state"], registry=r, multiprocess_mode="mostrecent")
        # -- the fleet, as the scheduler last read its index and status summary -------------
        self.sites = Gauge(
            "bucketbridge_sites", "Registered sites by state (active, paused, failing, "
            "misconfigured, refused).", ["state"], registry=r, multiprocess_mode="mostrecent")
        self.site_configs_skipped = Counter(
            "bucketbridge_site_configs_skipped", "Site configurations the scheduler could not "
            "read or accept, so skipped (each time it read one).", registry=r)
        self.fleet_import_backlog_files = Gauge(
            "bucketbridge_fleet_import_backlog_files", "Import files waiting, summed over the "
            "sites' last scans.", registry=r, multiprocess_mode="mostrecent")
        self.fleet_export_lag_revisions = Gauge(
            "bucketbridge_fleet_export_lag_revisions", "Revisions not yet exported, summed over "
            "the sites' last export runs.", registry=r, multiprocess_mode="mostrecent")
        # Bounded per-site families: at most ``attention_sites`` series each.
        self.site_import_backlog = Gauge(
            "bucketbridge_site_import_backlog_files", "Import files waiting, for the sites "
            "with the largest backlogs.", [SITE], registry=r, multiprocess_mode="mostrecent")
        self.site_export_lag = Gauge(
            "bucketbridge_site_export_lag_revisions", "Revisions not yet exported, for the "
            "sites furthest behind.", [SITE], registry=r, multiprocess_mode="mostrecent")
        self.site_export_last_success = Gauge(
            "bucketbridge_site_export_last_success_timestamp_seconds", "When the export last "
            "ended without error, for the sites whose last success is oldest.", [SITE],
            registry=r, multiprocess_mode="mostrecent")
        self.site_problem_since = Gauge(
            "bucketbridge_site_problem_since_timestamp_seconds", "Since when a site's job has "
            "ended in a problem (error, bucket_error, blocked, refused, misconfigured, "
            "retrying, budget, busy), for the longest-standing problems.",
            [SITE, JOB, "problem"], registry=r, multiprocess_mode="mostrecent")
        # -- messages (the broker middleware) -------------------------------------------------
        self.messages = Counter(
            "bucketbridge_messages", "Messages processed by the workers.",
            ["queue_name", "actor_name"], registry=r)
        self.message_errors = Counter(
            "bucketbridge_message_errors", "Messages whose actor raised.",
            ["queue_name", "actor_name"], registry=r)
        self.message_retries = Counter(
            "bucketbridge_message_retries", "Messages re-enqueued for a retry.",
            ["queue_name", "actor_name"], registry=r)
        self.message_dead_lettered = Counter(
            "bucketbridge_message_dead_lettered", "Messages that exhausted their retries.",
            ["queue_name", "actor_name"], registry=r)
        self.messages_inprogress = Gauge(
            "bucketbridge_messages_inprogress", "Messages being processed now.",
            ["queue_name", "actor_name"], registry=r, multiprocess_mode="livesum")
        self.message_duration = Histogram(
            "bucketbridge_message_duration_seconds", "Time spent processing a message.",
            ["queue_name", "actor_name"], buckets=DURATION_BUCKETS_S, registry=r)
        # -- notifications (``bucketbridge listen``) -------------------------------------------
        self.notify_messages = Counter(
            "bucketbridge_notify_messages", "Messages the listener received from its queue.",
            registry=r)
        self.notify_events = Counter(
            "bucketbridge_notify_events", "Object-created events the listener read.", registry=r)
        self.notify_matched = Counter(
            "bucketbridge_notify_events_matched", "Events whose key is a file of a site the "
            "listener scans for.", registry=r)
        self.notify_unmatched = Counter(
            "bucketbridge_notify_events_unmatched", "Events for keys no active site imports "
            "(dropped).", registry=r)
        self.notify_malformed = Counter(
            "bucketbridge_notify_messages_malformed", "Messages that are no S3 event the "
            "listener can read (logged and deleted).", registry=r)
        self.notify_scans_published = Counter(
            "bucketbridge_notify_scans_published", "Scan messages the listener published.",
            registry=r)
        self.notify_oldest_age = Gauge(
            "bucketbridge_notify_oldest_message_age_seconds", "Age of the oldest message in the "
            "listener's last receive (0 when the queue was empty).", registry=r,
            multiprocess_mode="max")
        self.notify_last_receive = Gauge(
            "bucketbridge_notify_last_receive_timestamp_seconds", "When the listener last "
            "received from its queue without error.", registry=r, multiprocess_mode="max")
