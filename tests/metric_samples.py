"""Every metric ``shared.metrics.Metrics`` defines, each given one sample, for tests that look
at what the code can expose (names, labels, exposition text)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from shared.metrics import Metrics


def metric_objects(metrics: Metrics) -> dict[str, MetricWrapperBase]:
    return {attr: value for attr, value in vars(metrics).items()
            if isinstance(value, MetricWrapperBase)}


def touch_every_metric(metrics: Metrics) -> None:
    """Give every metric one child with sample label values, so each one has samples."""
    objects = metric_objects(metrics)
    assert objects, "shared.metrics.Metrics defines no metric"
    for attr, metric in objects.items():
        # prometheus-client keeps label names private; they are what .labels() expects.
        names = metric._labelnames
        child = metric.labels(**{n: f"sample-{n}" for n in names}) if names else metric
        if isinstance(metric, Counter):
            child.inc()
        elif isinstance(metric, Gauge):
            child.set(1)
        elif isinstance(metric, Histogram):
            child.observe(0.5)
        else:
            raise AssertionError(f"Metrics.{attr} is a {type(metric).__name__}: teach "
                                 "tests/metric_samples.py its rules")


def sampled_metrics() -> Metrics:
    metrics = Metrics(CollectorRegistry())
    touch_every_metric(metrics)
    return metrics
