"""The DuckDB extensions the lakehouse needs, in load order (iceberg reads manifests with avro).

One list for the pipeline, the image build and Cube's download mode; a module of its own so that
reading it (at synth time) does not import DuckDB itself.
"""

EXTENSIONS: tuple[str, ...] = ("avro", "httpfs", "iceberg")
