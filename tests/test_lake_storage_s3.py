"""CRYPTOLAKE_STORAGE=lake on an ``s3://`` root, against moto's S3-compatible server (one per module).

The pipeline's tables land in the bucket with the same values as a DuckDB run; two processes write
disjoint partitions of one table at once and both land; and the safety those concurrent commits rely
on is pinned: deltalake PUTs every log entry with ``If-None-Match: *`` (the server refuses a second
writer of the same version), so no DynamoDB locking provider is needed (docs/adr/0006-lake-storage.md).
"""

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import httpx
import polars as pl
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError
from dagster import materialize
from deltalake import DeltaTable, write_deltalake
from distributed_stack import BUCKET, MotoS3Server
from distributed_stack import S3_KEY_ID as KEY_ID
from distributed_stack import S3_REGION as REGION
from distributed_stack import S3_SECRET as SECRET
from test_lake_storage import _assert_every_partition_complete, _writer

from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.quality.catalog import MEDALLION_CHECKS
from cryptolake_assets.silver.ohlcv import silver_ohlcv
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, as_utc, connect_duckdb
from resources.lake import DeltaLake
from resources.lake_io import CryptoLakeLakeIOManager


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free 127.0.0.1 port with the bucket ``cryptolake`` (tests/distributed_stack.py)."""
    server = MotoS3Server().start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def _s3(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION
    )


def _options(endpoint: str) -> dict[str, str]:
    # No AWS_S3_ALLOW_UNSAFE_RENAME and no locking provider: commits are conditional PUTs.
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }


def _checks_of(*keys: str):
    return [c for c in MEDALLION_CHECKS if {k.asset_key.to_user_string() for k in c.check_keys} & set(keys)]


@pytest.mark.slow
def test_lake_mode_on_s3_stores_the_duckdb_values_in_the_bucket(tmp_path, s3_endpoint):
    root = f"s3://{BUCKET}/lake-{uuid.uuid4().hex[:8]}"
    options = _options(s3_endpoint)
    lake = DeltaLake(
        root=root,
        storage_options={"AWS_ENDPOINT_URL": s3_endpoint, "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true"},
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    clients = {
        "binance": BinanceClient(source="simulated", simulation_seed=7),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }
    assets = [bronze_klines, silver_ohlcv, *_checks_of("bronze/klines", "silver/ohlcv")]
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-02-01|BTCUSDT", ASSET_PARTITION_RANGE_END_TAG: "2024-02-02|ETHUSDT"}
    on_s3 = materialize(assets, resources={"io_manager": CryptoLakeLakeIOManager(lake=lake), **clients}, tags=tags)
    assert on_s3.success
    duckdb_path = tmp_path / "c.duckdb"
    local = materialize(
        assets, resources={"io_manager": CryptoLakeDuckDBIOManager(database=str(duckdb_path)), **clients}, tags=tags
    )
    assert local.success

    def outcomes(result):
        return sorted(
            (e.asset_key.to_user_string(), e.check_name, e.partition, e.passed)
            for e in result.get_asset_check_evaluations()
        )

    assert outcomes(on_s3) == outcomes(local)
    assert len(outcomes(on_s3)) > 10
    # A re-run of one partition: one more commit on each table, values unchanged.
    assert materialize(
        assets,
        resources={"io_manager": CryptoLakeLakeIOManager(lake=lake), **clients},
        partition_key="2024-02-01|BTCUSDT",
    ).success
    with connect_duckdb(str(duckdb_path), read_only=True) as connection:
        for schema, table, key in (
            ("bronze", "klines", ["symbol", "open_time"]),
            ("silver", "ohlcv", ["symbol", "open_time"]),
        ):
            ours = as_utc(connection.sql(f"select * from {schema}.{table}").pl()).drop("ingested_at", strict=False)
            uri = f"{root}/{schema}/{table}"
            assert DeltaTable(uri, storage_options=options).version() == 1
            theirs = pl.read_delta(uri, storage_options=options).drop("ingested_at", strict=False)
            assert len(ours) == 4 * 24
            assert theirs.columns == ours.columns
            assert theirs.sort(key).equals(ours.sort(key)), table
    listing = _s3(s3_endpoint).list_objects_v2(
        Bucket=BUCKET, Prefix=root.split("/", 3)[3] + "/bronze/klines/_delta_log/"
    )
    assert {o["Key"].rsplit("/", 1)[-1] for o in listing["Contents"]} >= {
        "00000000000000000000.json",
        "00000000000000000001.json",
    }


class _RecordingProxy(BaseHTTPRequestHandler):
    """Forwards every request to moto; records the precondition headers of log-entry PUTs."""

    upstream = ""
    commits: list[tuple[str, str | None]] = []

    def log_message(self, *args):  # quiet
        pass

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.command == "PUT" and "/_delta_log/" in self.path and self.path.endswith(".json"):
            self.commits.append((self.path.rsplit("/", 1)[-1], self.headers.get("If-None-Match")))
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        reply = httpx.request(self.command, self.upstream + self.path, headers=headers, content=body)
        self.send_response(reply.status_code)
        for name, value in reply.headers.items():
            if name.lower() not in ("transfer-encoding", "content-length", "connection", "content-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


def test_every_commit_is_a_conditional_put_that_the_server_enforces(s3_endpoint):
    _RecordingProxy.upstream, _RecordingProxy.commits = s3_endpoint, []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        options = _options(f"http://127.0.0.1:{proxy.server_address[1]}")
        uri = f"s3://{BUCKET}/conditional-{uuid.uuid4().hex[:8]}"
        write_deltalake(uri, pa.table({"a": [0]}), storage_options=options)
        write_deltalake(uri, pa.table({"a": [1]}), mode="append", storage_options=options)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert _RecordingProxy.commits == [("00000000000000000000.json", "*"), ("00000000000000000001.json", "*")]
    # The server refuses the second creator of an existing log entry (what makes the PUT atomic).
    key = uri.split("/", 3)[3] + "/_delta_log/00000000000000000001.json"
    with pytest.raises(ClientError, match="PreconditionFailed"):
        _s3(s3_endpoint).put_object(Bucket=BUCKET, Key=key, Body=b"{}", IfNoneMatch="*")


@pytest.mark.slow
def test_two_processes_writing_disjoint_partitions_on_s3_both_land(s3_endpoint):
    root = f"s3://{BUCKET}/concurrent-{uuid.uuid4().hex[:8]}"
    options = _options(s3_endpoint)
    rounds, rows = 6, 500
    writers = {s: _writer(root, s, rounds, rows, options) for s in ("BTCUSDT", "ETHUSDT")}
    outputs = {s: w.communicate(timeout=300) for s, w in writers.items()}
    for symbol, writer in writers.items():
        assert writer.returncode == 0, outputs[symbol][1]
    uri = f"{root}/gold/t"
    table = _assert_every_partition_complete(uri, rows, options)
    assert table.group_by("date", "symbol").agg(pl.col("round").first()).sort("symbol", "date")["round"].to_list() == [
        3,
        4,
        5,
        3,
        4,
        5,
    ]
    assert DeltaTable(uri, storage_options=options).version() == 2 * rounds - 1
