"""bucketbridge's domain core and adapters, shared by the workers and the producers."""
