"""data.binance.vision dumps: verified against their .CHECKSUM before use (CHECKSUM without a
trailing newline in the 2020 files), ms timestamps up to 2024 and µs from 2025 (close_time = open +
interval − 1 µs), normalised in kline_format so archive and REST give identical bronze rows. A
tampered zip or a wrong CHECKSUM is refused; 404 = not published (REST fills in); an unreachable
host falls back to REST with a warning."""

import datetime as dt
import hashlib
import io
import json
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path

import httpx
import polars as pl
import pytest

from resources.binance import BinanceClient
from resources.binance_archive import (
    ArchiveChecksumError,
    ArchiveFormatError,
    BinanceArchiveClient,
    dump_frame,
    dump_rows,
    fetch_klines_archive_first,
    parse_checksum,
    read_verified_file,
    verify_dump,
)
from resources.kline_format import bronze_klines_frame
from resources.simulated.archive_server import SimulatedArchiveServer, checksum_text, dump_csv, zip_bytes
from resources.simulated.binance_exchange import SimulatedBinanceExchange

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
VISION = REALDATA / "binance_vision"
LOSTLEAF = VISION / "lostleaf_binance_datatool"
TOMMY = VISION / "tommy-ca_binance_datatool"
REST_CAPTURE = REALDATA / "binance_rest_json" / "algo-one_binance-data-downloader" / "BTCUSDT-1h-2024-01-15.klines.json"
MONTHLY_1H = VISION / "breaded-xyz_alphakit" / "BTCUSDT-1h" / "BTCUSDT-1h-2020-01.csv"
INGESTED = dt.datetime(2026, 5, 10, tzinfo=dt.UTC)
KLINE_COLUMNS = [
    "date",
    "symbol",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_asset_volume",
    "number_of_trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
    "interval",
]


def _real(path: Path) -> Path:
    if not REALDATA.exists():
        pytest.skip(f"real data folder {REALDATA} is absent")
    return path


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_real_millisecond_daily_zip_verifies_and_parses_exactly():
    dump = read_verified_file(_real(LOSTLEAF / "BTCUSDT-1m-2020-01-01.zip"))
    assert dump.sha256 == "dd579c62368ded93d3f01a1904575b932279e32936e181c062763e605793c1c2"
    frame = dump_frame(dump, symbol="BTCUSDT", interval="1m", ingested_at=INGESTED)
    assert len(frame) == 1440 and frame["date"].unique().to_list() == [dt.date(2020, 1, 1)]
    first, last = frame.row(0, named=True), frame.row(-1, named=True)
    assert (first["open_time"], first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        1577836800000,
        "7195.24000000",
        "7196.25000000",
        "7183.14000000",
        "7186.68000000",
        "51.64281200",
    )
    assert (first["close_time"], first["quote_asset_volume"], first["number_of_trades"], first["ignore"]) == (
        1577836859999,
        "371233.51835535",
        493,
        "0",
    )
    assert (last["open_time"], last["close"], last["taker_buy_quote_volume"]) == (
        1577923140000,
        "7200.85000000",
        "80840.43400023",
    )
    assert first["source"] == f"archive:BTCUSDT-1m-2020-01-01.zip:{dump.sha256}"


def test_real_microsecond_daily_zip_is_normalised_to_milliseconds():
    dump = read_verified_file(_real(TOMMY / "BTCUSDT-1h-2026-05-08.zip"))
    assert dump.sha256 == "0cef4d20388635c1cac914a52a012bc07cc83d7dfe4d7ec1d30cb15edf28ab53"
    frame = dump_frame(dump, symbol="BTCUSDT", interval="1h", ingested_at=INGESTED)
    assert len(frame) == 24
    assert frame["open_time"].to_list() == [1778198400000 + 3_600_000 * n for n in range(24)]
    assert (frame["close_time"] - frame["open_time"]).unique().to_list() == [3_599_999]
    first, last = frame.row(0, named=True), frame.row(-1, named=True)
    assert (first["open"], first["close"], first["number_of_trades"]) == ("80006.00000000", "79831.99000000", 67626)
    assert (last["open_time"], last["close_time"], last["close"]) == (1778281200000, 1778284799999, "80193.17000000")
    day2 = dump_frame(
        read_verified_file(TOMMY / "BTCUSDT-1h-2026-05-09.zip"), symbol="BTCUSDT", interval="1h", ingested_at=INGESTED
    )
    assert day2.row(0, named=True)["open"] == "80193.18000000" and day2["date"].unique().to_list() == [
        dt.date(2026, 5, 9)
    ]


@pytest.mark.parametrize(
    "path",
    ["lostleaf_binance_datatool/BTCUSDT-1m-2020-01-01.zip", "tommy-ca_binance_datatool/BTCUSDT-1h-2026-05-08.zip"],
)
def test_column_wise_dump_frame_equals_the_row_by_row_bronze_frame(path):
    """The archive's columnar path gives exactly the rows of the one row-wise kline path (ms and µs dumps)."""
    dump = read_verified_file(_real(VISION / path))
    row_wise = bronze_klines_frame(
        dump_rows(dump), symbol="BTCUSDT", interval="1m", source=dump.provenance, ingested_at=INGESTED
    )
    columnar = dump_frame(dump, symbol="BTCUSDT", interval="1m", ingested_at=INGESTED)
    assert columnar.schema == row_wise.schema
    assert columnar.rows() == row_wise.rows()


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (
            b"1577836800000,1.0,1.0,1.0,1.0,1.0,1577836859.5,1.0,3,1.0,1.0,0\n",
            "kline #0 field close_time='1577836859.5' is not an integer",
        ),
        (b"1577836800000,1.0,1.0,1.0,1.0,1.0,1577836859999,1.0,3,1.0,1.0\n", "kline #0 has 11 fields, expected 12"),
    ],
)
def test_malformed_dump_rows_are_refused_with_the_row_and_field_named(csv, message):
    zipped = zip_bytes("BTCUSDT-1m-2020-01-01.csv", csv)
    dump = verify_dump(zipped, checksum_text(zipped, "BTCUSDT-1m-2020-01-01.zip"), "BTCUSDT-1m-2020-01-01.zip")
    with pytest.raises(ArchiveFormatError, match=message.replace(".", "\\.").replace("#", "\\#")):
        dump_frame(dump, symbol="BTCUSDT", interval="1m", ingested_at=INGESTED)


def test_two_real_dumps_agree_sixty_minutes_make_the_hour():
    """The 1m daily zip of 2020-01-01 aggregates exactly to the first bar of the 1h monthly dump."""
    minutes = dump_frame(
        read_verified_file(_real(LOSTLEAF / "BTCUSDT-1m-2020-01-01.zip")),
        symbol="BTCUSDT",
        interval="1m",
        ingested_at=INGESTED,
    ).head(60)
    hour = MONTHLY_1H.read_text().splitlines()[0].split(",")
    dec = lambda column: [Decimal(v) for v in minutes[column].to_list()]  # noqa: E731
    assert int(hour[0]) == minutes["open_time"][0] and int(hour[6]) == minutes["close_time"][-1]
    assert Decimal(hour[1]) == dec("open")[0] and Decimal(hour[4]) == dec("close")[-1]
    assert Decimal(hour[2]) == max(dec("high")) and Decimal(hour[3]) == min(dec("low"))
    assert Decimal(hour[5]) == sum(dec("volume")) and int(hour[8]) == minutes["number_of_trades"].sum()


def test_checksum_parsing_accepts_both_line_endings_and_refuses_other_files():
    digest = "ab" * 32
    assert parse_checksum(f"{digest}  X-1h-2024-01.zip", "X-1h-2024-01.zip") == digest
    assert parse_checksum(f"{digest.upper()} *X-1h-2024-01.zip\n", "X-1h-2024-01.zip") == digest
    with pytest.raises(ArchiveChecksumError, match="lists another file"):
        parse_checksum(f"{digest}  Y-1h-2024-01.zip\n", "X-1h-2024-01.zip")
    with pytest.raises(ArchiveChecksumError, match="not a sha256sum line"):
        parse_checksum("<html>503</html>", "X-1h-2024-01.zip")


def test_tampered_real_zip_is_refused_before_it_is_opened(tmp_path):
    source = _real(LOSTLEAF / "BTCUSDT-1m-2020-01-02.zip")
    copy = tmp_path / source.name
    shutil.copyfile(source.with_name(source.name + ".CHECKSUM"), tmp_path / (source.name + ".CHECKSUM"))
    content = bytearray(source.read_bytes())
    content[len(content) // 2] ^= 0x01
    copy.write_bytes(bytes(content))
    with pytest.raises(ArchiveChecksumError, match="does not match the published 66c701b3") as raised:
        read_verified_file(copy)
    assert "refused" in str(raised.value)
    (tmp_path / (source.name + ".CHECKSUM")).unlink()
    with pytest.raises(ArchiveChecksumError, match="refusing an unverified dump"):
        read_verified_file(copy)


def _serve(files: dict[str, bytes], requests: list | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if requests is not None:
            requests.append(request.url.path)
        body = files.get(request.url.path)
        return (
            httpx.Response(200, content=body)
            if body is not None
            else httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>")
        )

    return httpx.MockTransport(handler)


def _rest_capture() -> list[list]:
    return json.loads(_real(REST_CAPTURE).read_text())


@pytest.mark.parametrize("microseconds", [False, True])
def test_real_rest_capture_and_the_same_candles_as_a_dump_give_identical_bronze_rows(microseconds):
    rows = _rest_capture()
    rest = bronze_klines_frame(rows, symbol="BTCUSDT", interval="1h", source="binance", ingested_at=INGESTED)
    name = "BTCUSDT-1h-2024-01-15.zip"
    content = zip_bytes("BTCUSDT-1h-2024-01-15.csv", dump_csv(rows, microseconds=microseconds))
    path = "/data/spot/daily/klines/BTCUSDT/1h/" + name
    files = {path: content, path + ".CHECKSUM": checksum_text(content, name).rstrip("\n").encode()}
    archive = BinanceArchiveClient().with_transport(_serve(files), clock=lambda: _utc(2024, 1, 20))
    dump = archive.download(path.lstrip("/"))
    frame = dump_frame(dump, symbol="BTCUSDT", interval="1h", ingested_at=INGESTED)
    assert len(frame) == 24
    assert frame.select(KLINE_COLUMNS).equals(rest.select(KLINE_COLUMNS))
    raw = zipfile.ZipFile(io.BytesIO(content)).read("BTCUSDT-1h-2024-01-15.csv").decode().splitlines()[0].split(",")
    assert raw[0] == ("1705276800000000" if microseconds else "1705276800000")


def test_simulated_archive_serves_microsecond_dumps_equal_to_simulated_rest():
    now = _utc(2025, 3, 10, 12)
    server = SimulatedArchiveServer(clock=lambda: now)
    archive = BinanceArchiveClient().with_transport(httpx.MockTransport(server.handle_request), clock=lambda: now)
    rest = BinanceClient().with_transport(
        httpx.MockTransport(SimulatedBinanceExchange(clock=lambda: now).handle_request), clock=lambda: now
    )
    start, end = _utc(2024, 11, 20), _utc(2025, 3, 10)
    result = fetch_klines_archive_first(rest, archive, "ETHUSDT", start, end)
    only_rest = rest.fetch_klines("ETHUSDT", start, end)
    assert result.frame.select(KLINE_COLUMNS).equals(only_rest.select(KLINE_COLUMNS))
    assert result.archive_files == ["ETHUSDT-1h-2024-12.zip", "ETHUSDT-1h-2025-01.zip", "ETHUSDT-1h-2025-02.zip"] + [
        f"ETHUSDT-1h-2025-03-0{day}.zip" for day in range(1, 10)
    ]
    assert result.rest_ranges == [(start, _utc(2024, 12, 1))]
    sources = result.frame.group_by("source").len().sort("source")
    assert sources.filter(pl.col("source") == "binance")["len"].to_list() == [11 * 24]
    assert sources.filter(pl.col("source").str.starts_with("archive:ETHUSDT-1h-2025-01.zip:"))["len"].to_list() == [
        31 * 24
    ]
    january = server.zip_for("monthly", "ETHUSDT", "1h", "2025-01")
    first_line = zipfile.ZipFile(io.BytesIO(january)).read("ETHUSDT-1h-2025-01.csv").decode().splitlines()[0].split(",")
    assert first_line[0] == "1735689600000000" and first_line[6] == "1735693199999999"
    december = server.zip_for("monthly", "ETHUSDT", "1h", "2024-12")
    assert (
        zipfile.ZipFile(io.BytesIO(december)).read("ETHUSDT-1h-2024-12.csv").decode().split(",")[0] == "1733011200000"
    )


def test_plan_uses_whole_past_months_and_closed_days_of_the_current_month():
    archive = BinanceArchiveClient().with_transport(clock=lambda: _utc(2025, 3, 4, 8))
    labels = [label for label, _ in archive.plan(_utc(2025, 1, 15), _utc(2025, 3, 5))]
    assert labels == ["2025-02", "2025-03-01", "2025-03-02", "2025-03-03"]
    assert archive.dump_path("btcusdt", "2025-02") == "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2025-02.zip"
    assert archive.dump_path("BTCUSDT", "2025-03-01") == "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-03-01.zip"


def test_wrong_checksum_from_the_server_is_refused_and_nothing_is_returned():
    now = _utc(2025, 3, 10, 12)
    server = SimulatedArchiveServer(clock=lambda: now)

    def tampering(request: httpx.Request) -> httpx.Response:
        response = server.handle_request(request)
        if request.url.path.endswith("2025-01.zip"):
            return httpx.Response(200, content=response.content[:-1] + bytes([response.content[-1] ^ 0xFF]))
        return response

    archive = BinanceArchiveClient().with_transport(httpx.MockTransport(tampering), clock=lambda: now)
    rest = BinanceClient().with_transport(
        httpx.MockTransport(SimulatedBinanceExchange(clock=lambda: now).handle_request), clock=lambda: now
    )
    with pytest.raises(ArchiveChecksumError, match="BTCUSDT-1h-2025-01.zip: SHA-256 .* does not match"):
        fetch_klines_archive_first(rest, archive, "BTCUSDT", _utc(2024, 12, 1), _utc(2025, 2, 1))
    assert rest.request_count == 0  # refused before anything was combined or fetched


def test_not_published_months_are_fetched_over_rest():
    now = _utc(2025, 3, 10, 12)
    requests: list[str] = []
    archive = BinanceArchiveClient().with_transport(_serve({}, requests), clock=lambda: now)
    rest = BinanceClient().with_transport(
        httpx.MockTransport(SimulatedBinanceExchange(clock=lambda: now).handle_request), clock=lambda: now
    )
    result = fetch_klines_archive_first(rest, archive, "BTCUSDT", _utc(2025, 1, 1), _utc(2025, 3, 1))
    assert requests == [
        "/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2025-01.zip.CHECKSUM",
        "/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2025-02.zip.CHECKSUM",
    ]
    assert result.archive_files == [] and result.rest_ranges == [(_utc(2025, 1, 1), _utc(2025, 3, 1))]
    expected = rest.fetch_klines("BTCUSDT", _utc(2025, 1, 1), _utc(2025, 3, 1))
    assert result.frame.select(KLINE_COLUMNS).equals(expected.select(KLINE_COLUMNS)) and len(expected) > 1000
    assert result.frame["source"].unique().to_list() == ["binance"]


def test_unreachable_archive_warns_and_falls_back_to_rest():
    now = _utc(2025, 3, 10, 12)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    sleeps: list[float] = []
    warnings: list[str] = []
    archive = BinanceArchiveClient(max_retries=1).with_transport(
        httpx.MockTransport(refuse), sleep=sleeps.append, clock=lambda: now
    )
    rest = BinanceClient().with_transport(
        httpx.MockTransport(SimulatedBinanceExchange(clock=lambda: now).handle_request), clock=lambda: now
    )
    result = fetch_klines_archive_first(
        rest, archive, "BTCUSDT", _utc(2025, 1, 1), _utc(2025, 2, 1), warn=warnings.append
    )
    expected = rest.fetch_klines("BTCUSDT", _utc(2025, 1, 1), _utc(2025, 2, 1))
    assert result.frame.select(KLINE_COLUMNS).equals(expected.select(KLINE_COLUMNS))
    assert len(warnings) == 1 and "archive unreachable, using REST" in warnings[0]
    assert len(sleeps) == 1 and archive.stats()["requests"] == 2


def test_verify_dump_round_trip():
    content = zip_bytes("A-1h-2024-01.csv", b"1,2,3,4,5,6,7,8,9,10,11,0\n")
    dump = verify_dump(content, checksum_text(content, "A-1h-2024-01.zip"), "A-1h-2024-01.zip")
    assert dump.sha256 == hashlib.sha256(content).hexdigest() and dump.provenance.startswith(
        "archive:A-1h-2024-01.zip:"
    )


def test_ranges_without_a_whole_past_month_or_a_disabled_archive_use_rest_only():
    now = _utc(2025, 3, 10, 12)
    requests: list[str] = []
    rest = BinanceClient().with_transport(
        httpx.MockTransport(SimulatedBinanceExchange(clock=lambda: now).handle_request), clock=lambda: now
    )
    archive = BinanceArchiveClient().with_transport(_serve({}, requests), clock=lambda: now)
    short = fetch_klines_archive_first(rest, archive, "BTCUSDT", _utc(2025, 3, 1), _utc(2025, 3, 9))
    disabled = fetch_klines_archive_first(
        rest,
        BinanceArchiveClient(enabled=False).with_transport(_serve({}, requests)),
        "BTCUSDT",
        _utc(2025, 1, 1),
        _utc(2025, 3, 1),
    )
    assert (
        requests == [] and short.archive_files == [] and disabled.rest_ranges == [(_utc(2025, 1, 1), _utc(2025, 3, 1))]
    )
    expected = rest.fetch_klines("BTCUSDT", _utc(2025, 3, 1), _utc(2025, 3, 9))
    assert (
        short.frame.select(KLINE_COLUMNS).equals(expected.select(KLINE_COLUMNS)) and short.frame["date"].n_unique() == 8
    )
