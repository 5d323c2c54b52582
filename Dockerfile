# The project image: runs the bootstrap Jobs (python -m demo.bootstrap ...), the Dagster processes
# (webserver, daemon, code server) and dbt. Build from the repository root:
#   docker build -t floe-demo:dev .
# Not built on the development machines (no Docker there); tests/bootstrap/test_dockerfile.py checks
# what can be checked without building it.

# The OpenTelemetry Node SDK that Cube preloads (demo/cube/otel), installed from its lock in a Node
# stage of the Node that cubejs/cube:v1.7.43 most likely runs (24.21.0; the SDK needs >= 22.15, met by
# every Node 22.18-24.21 Cube's Dockerfiles pinned: tests/semantic/test_cube_tracing.py). Pure
# JavaScript: the folder is copied into the Python image below and, at run time, by the Cube pods'
# init container into the emptyDir Cube reads (constructs/cube.py). devDependencies (the test-only
# Node runtime) are left out.
FROM node:24.21.0-bookworm-slim AS cube-otel
WORKDIR /opt/floe/cube-otel
COPY demo/cube/otel/package.json demo/cube/otel/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY demo/cube/otel/tracing.js ./

FROM python:3.11.14-slim-bookworm

# HOME=/tmp: the only writable path at run time is /tmp (an emptyDir; read-only root filesystem),
# and tools that cache under ~ (DuckDB, dbt, pip) must write there.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    UV_PROJECT_ENVIRONMENT=/opt/floe/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PATH=/opt/floe/venv/bin:$PATH

# uv, pinned, from PyPI.
RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /opt/floe/app

# Dependencies first (exactly the lock's versions, no dev group), so code changes reuse this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# The code: the demo package, including the dbt project under demo/.
COPY demo/ ./demo/

# DuckDB extensions from the duckdb-extension-* wheels, into a fixed directory that Cube's init
# container copies (demo/bootstrap/image.py: DUCKDB_EXTENSION_DIR).
RUN python -m demo.bootstrap duckdb-extensions --directory /opt/floe/duckdb-extensions

# The OpenTelemetry SDK for Cube (demo/bootstrap/image.py: CUBE_OTEL_DIR), from the stage above.
COPY --from=cube-otel /opt/floe/cube-otel /opt/floe/cube-otel

# The dbt manifest Dagster loads at import (demo/orchestration/dbt.py, target/dagster), parsed now:
# the app directory is read-only at run time. dbt runs write under DBT_TARGET_PATH (/tmp) instead.
# Parsed with the pods' dbt target (constructs/dagster.py sets the same): dbt's partial-parse check
# includes the target, and a pod's first build reuses this parse only if nothing dbt hashes differs
# (tests/contract/test_dbt_first_build_in_a_pod.py runs a new pod's first parse and reads dbt's log).
ENV FLOE_PIPELINE_DBT_TARGET=cluster
RUN python -c "from demo.orchestration.dbt import dbt_project, ensure_manifest; ensure_manifest(dbt_project())"

# Non-root user with fixed ids (demo/bootstrap/image.py: IMAGE_UID / IMAGE_GID); pods set
# runAsUser/runAsGroup/fsGroup to the same numbers.
RUN groupadd --gid 10100 floe \
 && useradd --uid 10100 --gid 10100 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin floe

# Everything that writes at run time writes under /tmp: dbt's target/ and logs/ (DBT_TARGET_PATH,
# DBT_LOG_PATH are dbt-core's env vars for --target-path/--log-path), DuckDB's extension directory
# for the pipeline is the pre-installed one (LakehouseSettings.duckdb_extension_directory).
ENV DBT_TARGET_PATH=/tmp/dbt/target \
    DBT_LOG_PATH=/tmp/dbt/logs \
    FLOE_DUCKDB_EXTENSION_DIRECTORY=/opt/floe/duckdb-extensions

USER 10100:10100

CMD ["python", "-m", "demo.bootstrap", "--help"]
