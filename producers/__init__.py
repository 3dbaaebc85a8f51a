"""What publishes messages and talks to operators: the scheduler and the ``bucketbridge`` CLI."""
