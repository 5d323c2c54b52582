"""Where Dagster keeps run logs, the same in the cluster (MinIO) and locally (SeaweedFS).

With the default run launcher a run executes in the user-code pod; the webserver, another pod,
shows its stdout/stderr. ``LocalComputeLogManager`` writes them under the running pod's own /tmp, so
the UI had nothing to show. ``S3ComputeLogManager`` (dagster-aws 0.29.27,
``dagster_aws/s3/compute_log_manager.py``) stages each capture under ``local_dir``, uploads it to
``s3://<bucket>/<prefix>/...`` (also every ``upload_interval`` seconds while a step runs) and reads
it back from S3 when the file is not local, which is what the webserver does.

Its config has no credential fields: it calls ``boto3.resource("s3", endpoint_url=...)``, so boto3's
own environment variables carry them (:data:`S3_ENV`), set from Secrets in the cluster and from the
local lakehouse's keys by ``python -m demo.local``. dagster.yaml therefore holds no secret.
"""

from __future__ import annotations

from typing import Any

#: The variables boto3 reads for the compute log manager's client (botocore ``credentials.py``
#: ``EnvProvider.ACCESS_KEY``/``SECRET_KEY``, ``configprovider.py`` ``region``).
S3_ENV = {
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "region": "AWS_DEFAULT_REGION",
}
#: Key prefix of the compute logs in their bucket.
COMPUTE_LOG_PREFIX = "compute-logs"
#: Seconds between uploads of a running step's partial logs (None: only when the step ends).
UPLOAD_INTERVAL_SECONDS = 30


def s3_compute_logs(
    *, bucket: str, endpoint_url: str | dict[str, str], use_ssl: bool, region: str, local_dir: str
) -> dict[str, Any]:
    """The ``compute_logs`` section of dagster.yaml (``endpoint_url`` may be ``{"env": NAME}``)."""
    return {
        "module": "dagster_aws.s3.compute_log_manager",
        "class": "S3ComputeLogManager",
        "config": {
            "bucket": bucket,
            "prefix": COMPUTE_LOG_PREFIX,
            "endpoint_url": endpoint_url,
            "use_ssl": use_ssl,
            # Only used to build the console URL of a log file; the client's region is S3_ENV's.
            "region": region,
            "local_dir": local_dir,
            "skip_empty_files": True,
            "upload_interval": UPLOAD_INTERVAL_SECONDS,
        },
    }
