"""Bootstrap Jobs of the cluster: S3 buckets on MinIO and the Polaris catalog, run from the project image.

``python -m demo.bootstrap buckets`` and ``python -m demo.bootstrap polaris``; both are idempotent and
wait for their dependency. See docs/bootstrap.md.
"""
