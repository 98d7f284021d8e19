"""The same publish-and-read path against a local S3-compatible server (moto's server mode).

Proves an ``s3://`` lake root works without code changes: only the resource's configuration
(endpoint, region, credentials) differs from a local path.
"""

import boto3
import polars as pl
import pytest
from dagster import materialize
from deltalake import DeltaTable
from distributed_stack import S3_KEY_ID as KEY_ID
from distributed_stack import S3_SECRET as SECRET
from distributed_stack import MotoS3Server

from cryptolake_assets.api.lake_reader import LakeReader
from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.silver.ohlcv import silver_ohlcv
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, as_utc, connect_duckdb
from resources.lake import DeltaLake


@pytest.fixture
def s3_endpoint():
    """moto's S3 server on a free 127.0.0.1 port with the bucket ``cryptolake`` (tests/distributed_stack.py)."""
    server = MotoS3Server().start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def test_s3_lake_publishes_and_reads_back(tmp_path, s3_endpoint):
    options = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        # moto has no DynamoDB lock here; a single writer per table (the pipeline) makes this safe.
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    lake = DeltaLake(
        root="s3://cryptolake/lake", storage_options=options, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )
    resources = {
        "io_manager": CryptoLakeDuckDBIOManager(database=str(tmp_path / "c.duckdb"), lake=lake),
        "binance": BinanceClient(source="simulated", simulation_seed=7),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-02-01|BTCUSDT", ASSET_PARTITION_RANGE_END_TAG: "2024-02-02|ETHUSDT"}
    assert materialize([bronze_klines, silver_ohlcv], resources=resources, tags=tags).success
    # Rewrite one partition: a second commit replacing exactly that slice.
    assert materialize([bronze_klines, silver_ohlcv], resources=resources, partition_key="2024-02-01|BTCUSDT").success
    read_options = {**options, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    uri = "s3://cryptolake/lake/silver/ohlcv"
    assert DeltaTable(uri, storage_options=read_options).version() == 1
    theirs = pl.read_delta(uri, storage_options=read_options)
    with connect_duckdb(str(tmp_path / "c.duckdb"), read_only=True) as con:
        ours = as_utc(con.sql("select * from silver.ohlcv").pl())
    assert len(ours) == 4 * 24
    key = ["symbol", "open_time"]
    assert theirs.select(ours.columns).sort(key).equals(ours.sort(key))
    # The read API's reader (Polars' native scan of the version's files) reads the bucket too.
    version, served = LakeReader("s3://cryptolake/lake", storage_options=read_options).snapshot("silver", "ohlcv")
    assert version == 1
    assert served.columns == theirs.columns
    assert served.select(ours.columns).sort(key).equals(ours.sort(key))
    # The objects really are in the bucket (not on a local path).
    listing = boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="us-east-1"
    ).list_objects_v2(Bucket="cryptolake", Prefix="lake/silver/ohlcv/_delta_log/")
    assert {o["Key"].rsplit("/", 1)[-1] for o in listing["Contents"]} >= {
        "00000000000000000000.json",
        "00000000000000000001.json",
    }
