#!/usr/bin/env python3
"""The InfluxDB Python clients, as shipped on PyPI, against a running agora.

The v1 client (`influxdb` 5.3.2) writes points with `write_points` and reads them back with
`query()` in every InfluxQL form Grafana's InfluxDB data source and Telegraf use; the v2 client
(`influxdb-client`) checks `ping()`, `health()` and `ready()`. Every expected value is worked
out by hand from the points written here. Run by scripts/influx-clients.sh, which starts agora
and sets AGORA_URL and AGORA_TOKEN (an admin token). Exits 1 naming each mismatch.
"""

import json
import math
import os
import sys
import urllib.parse
import urllib.request
import warnings

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient as V2Client

URL = os.environ["AGORA_URL"]
TOKEN = os.environ["AGORA_TOKEN"]
HOST = urllib.parse.urlparse(URL).hostname
PORT = urllib.parse.urlparse(URL).port

# 2026-01-01T00:00:00Z.
T = 1767225600
T_MS = T * 1000
MIN_MS = 60_000

failures = []


def check(name, got, want):
    if got != want:
        failures.append(f"{name}: got {got!r}, want {want!r}")


def check_numbers(name, got, want, tol=1e-9):
    """Lists of numbers or None, compared to `tol`."""
    ok = len(got) == len(want) and all(
        (g is None and w is None)
        or (g is not None and w is not None and math.isclose(g, w, rel_tol=0, abs_tol=tol))
        for g, w in zip(got, want)
    )
    if not ok:
        failures.append(f"{name}: got {got!r}, want {want!r}")


def api(path, body):
    """POST JSON to agora's own API with the admin token."""
    req = urllib.request.Request(
        URL + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 201, (path, r.status)


def time_filter(a_min, b_min):
    """Grafana's $timeFilter for minutes a to b after T, both included."""
    return f"time >= {T_MS + a_min * MIN_MS}ms and time <= {T_MS + b_min * MIN_MS}ms"


def at(minute):
    return T_MS + minute * MIN_MS


def main():
    api("/api/v1/communes", {"insee": "13001", "name": "Aix-en-Provence"})
    for site, lat, lon in [("hotel-de-ville", 43.5299, 5.4474), ("la-rotonde", 43.5263, 5.4446)]:
        api("/api/v1/sites", {"id": site, "commune": "13001", "name": site, "lat": lat, "lon": lon})

    # The token as the password, as Grafana's and Telegraf's v1 settings send it.
    c = InfluxDBClient(host=HOST, port=PORT, username="grafana", password=TOKEN, database="telegraf")
    check("ping() version", c.ping(), "1.8.10")
    # Telegraf's v1 output creates its database first (a POST with q in the URL).
    c.create_database("telegraf")

    def p(kind, device, site, t, **fields):
        return {"measurement": kind, "tags": {"device": device, "site": site}, "time": t, "fields": fields}

    # Minute by minute from T: aq-1 10 (0 s), 20 (30 s), 30 (1 min), 50 (4 min);
    # aq-2 40 (0 s), 60 (5 min); aq-3 7 (10 min); n-1 60 dB then 70 dB.
    points = [
        p("air_quality", "aq-1", "hotel-de-ville", T, pm10=10.0, no2=5.0),
        p("air_quality", "aq-1", "hotel-de-ville", T + 30, pm10=20.0),
        p("air_quality", "aq-1", "hotel-de-ville", T + 60, pm10=30.0),
        p("air_quality", "aq-1", "hotel-de-ville", T + 240, pm10=50.0),
        p("air_quality", "aq-2", "hotel-de-ville", T, pm10=40.0),
        p("air_quality", "aq-2", "hotel-de-ville", T + 300, pm10=60.0),
        p("air_quality", "aq-3", "la-rotonde", T + 600, pm10=7.0),
        p("noise", "n-1", "la-rotonde", T, laeq=60.0),
        p("noise", "n-1", "la-rotonde", T + 30, laeq=70.0),
    ]
    check("write_points", c.write_points(points, time_precision="s"), True)

    # Metadata, as Grafana's query editor and template variables ask.
    check("SHOW DATABASES", c.get_list_database(), [{"name": "agora"}])
    check(
        "SHOW MEASUREMENTS",
        list(c.query("SHOW MEASUREMENTS").get_points()),
        [{"name": "air_quality"}, {"name": "noise"}],
    )
    check(
        "SHOW TAG KEYS",
        list(c.query('SHOW TAG KEYS FROM "air_quality"').get_points(measurement="air_quality")),
        [{"tagKey": "commune"}, {"tagKey": "device"}, {"tagKey": "site"}],
    )
    check(
        "SHOW TAG VALUES WITH KEY",
        list(c.query('SHOW TAG VALUES WITH KEY = "device"').get_points(measurement="air_quality")),
        [{"key": "device", "value": v} for v in ["aq-1", "aq-2", "aq-3"]],
    )
    check(
        "SHOW TAG VALUES WHERE",
        [
            x["value"]
            for x in c.query(
                'SHOW TAG VALUES FROM "air_quality" WITH KEY = "device" WHERE "site"::tag = \'hotel-de-ville\''
            ).get_points()
        ],
        ["aq-1", "aq-2"],
    )
    fields = c.query("SHOW FIELD KEYS")
    check(
        "SHOW FIELD KEYS air_quality",
        list(fields.get_points(measurement="air_quality")),
        [{"fieldKey": "no2", "fieldType": "float"}, {"fieldKey": "pm10", "fieldType": "float"}],
    )
    check("SHOW FIELD KEYS noise", list(fields.get_points(measurement="noise")), [{"fieldKey": "laeq", "fieldType": "float"}])
    check(
        "SHOW RETENTION POLICIES",
        c.get_list_retention_policies(),
        [{"name": "autogen", "duration": "0s", "shardGroupDuration": "168h0m0s", "replicaN": 1, "default": True}],
    )

    # Means in one-minute buckets over minutes 0 to 5: minute 0 is (10 + 20 + 40) / 3, minutes 2
    # and 3 have no point.
    def mean_q(fill):
        return f'SELECT mean("pm10") FROM "air_quality" WHERE {time_filter(0, 5)} GROUP BY time(1m) fill({fill})'

    rs = c.query(mean_q("null"), epoch="ms")
    pts = list(rs.get_points())
    check("fill(null) times", [x["time"] for x in pts], [at(m) for m in range(6)])
    check_numbers("fill(null) means", [x["mean"] for x in pts], [70 / 3, 30, None, None, 50, 60])
    pts = list(c.query(mean_q("none"), epoch="ms").get_points())
    check("fill(none) times", [x["time"] for x in pts], [at(0), at(1), at(4), at(5)])
    check_numbers("fill(none) means", [x["mean"] for x in pts], [70 / 3, 30, 50, 60])
    pts = list(c.query(mean_q("0"), epoch="ms").get_points())
    check_numbers("fill(0) means", [x["mean"] for x in pts], [70 / 3, 30, 0, 0, 50, 60])
    # The same through POST (q stays in the URL with this client).
    pts = list(c.query(mean_q("none"), epoch="ms", method="POST").get_points())
    check_numbers("POST fill(none) means", [x["mean"] for x in pts], [70 / 3, 30, 50, 60])
    # Without epoch, RFC 3339 times.
    pts = list(c.query(mean_q("none")).get_points())
    check("RFC 3339 times", pts[0]["time"], "2026-01-01T00:00:00Z")
    check("RFC 3339 times", pts[3]["time"], "2026-01-01T00:05:00Z")
    pts = list(c.query(mean_q("none"), epoch="s").get_points())
    check("epoch=s", pts[0]["time"], T)

    # Each function in five-minute buckets per device, fill(0). Minutes 0–4: aq-1 has 10 20 30
    # 50, aq-2 40; minute 5: aq-2 60, aq-1 nothing.
    want = {
        "mean": ([27.5, 0], [40, 60]),
        "min": ([10, 0], [40, 60]),
        "max": ([50, 0], [40, 60]),
        "sum": ([110, 0], [40, 60]),
        "count": ([4, 0], [1, 1]),
        "first": ([10, 0], [40, 60]),
        "last": ([50, 0], [40, 60]),
    }
    for fn, (aq1, aq2) in want.items():
        q = (
            f'SELECT {fn}("pm10") FROM "air_quality" WHERE {time_filter(0, 5)} '
            'GROUP BY time(5m), "device" fill(0)'
        )
        rs = c.query(q, epoch="ms")
        check(f"{fn} series", [k for k in rs.keys()], [("air_quality", {"device": "aq-1"}), ("air_quality", {"device": "aq-2"})])
        got1 = list(rs.get_points(tags={"device": "aq-1"}))
        got2 = list(rs.get_points(tags={"device": "aq-2"}))
        check(f"{fn} times", [x["time"] for x in got1], [at(0), at(5)])
        check_numbers(f"{fn} aq-1", [x[fn] for x in got1], aq1)
        check_numbers(f"{fn} aq-2", [x[fn] for x in got2], aq2)
    # Counts are integers.
    rs = c.query(f'SELECT count("pm10") FROM "air_quality" WHERE {time_filter(0, 10)}', epoch="ms")
    check("count is an integer", list(rs.get_points()), [{"time": T_MS, "count": 7}])
    # A bucket without points counts 0 of them, as InfluxDB answers, whatever the fill.
    q = f'SELECT count("pm10") FROM "air_quality" WHERE {time_filter(0, 5)} GROUP BY time(1m)'
    check("count of empty buckets", [x["count"] for x in c.query(q).get_points()], [3, 1, 0, 0, 1, 1])

    # A tag filter and a template variable's regex.
    q = (
        f'SELECT mean("pm10") FROM "air_quality" WHERE "device"::tag =~ /^(aq-1|aq-3)$/ AND '
        f"{time_filter(0, 10)} GROUP BY time(10m) fill(none)"
    )
    check_numbers("regex filter", [x["mean"] for x in c.query(q).get_points()], [27.5, 7])

    # Sound levels: the energy mean of 60 dB and 70 dB is 10·log10((10^6 + 10^7) / 2) = 67.40 dB.
    q = f'SELECT mean("laeq") FROM "noise" WHERE {time_filter(0, 5)} GROUP BY time(1m) fill(none)'
    check_numbers("energy mean", [x["mean"] for x in c.query(q).get_points()], [10 * math.log10((1e6 + 1e7) / 2)])

    # Raw points.
    q = f'SELECT "pm10" FROM "air_quality" WHERE "device" = \'aq-1\' AND {time_filter(0, 10)}'
    check(
        "raw points",
        list(c.query(q).get_points()),
        [
            {"time": "2026-01-01T00:00:00Z", "pm10": 10.0},
            {"time": "2026-01-01T00:00:30Z", "pm10": 20.0},
            {"time": "2026-01-01T00:01:00Z", "pm10": 30.0},
            {"time": "2026-01-01T00:04:00Z", "pm10": 50.0},
        ],
    )

    # Two statements: two result sets.
    results = c.query(
        f'SELECT max("pm10") FROM "air_quality" WHERE {time_filter(0, 10)}; '
        f'SELECT min("pm10") FROM "air_quality" WHERE {time_filter(0, 10)}',
        epoch="ms",
    )
    check("two statements", [list(r.get_points()) for r in results], [[{"time": T_MS, "max": 60.0}], [{"time": T_MS, "min": 7.0}]])

    # chunked=true: the one-line answer is read as one chunk.
    check("chunked", [list(r.get_points()) for r in c.query("SHOW DATABASES", chunked=True)], [[{"name": "agora"}]])

    # Errors: a statement error (HTTP 200, error in the result), a parse error (400), a wrong
    # password (401).
    try:
        c.query(f'SELECT derivative(mean("pm10"), 1s) FROM "air_quality" WHERE {time_filter(0, 5)} GROUP BY time(1m)')
        failures.append("unsupported function: no error raised")
    except InfluxDBClientError as e:
        if "unsupported function derivative()" not in str(e):
            failures.append(f"unsupported function: {e}")
    try:
        c.query("SELECT mean(pm10) FROM")
        failures.append("parse error: no error raised")
    except InfluxDBClientError as e:
        check("parse error code", e.code, 400)
        if "error parsing query: found EOF" not in str(e):
            failures.append(f"parse error: {e}")
    # Limits: a parse error naming the cap on fields, a statement error naming the cap on values
    # (65 values in each of 99,985 hours: over two million).
    try:
        c.query("SELECT " + ", ".join(['mean("pm10")'] * 65) + ' FROM "air_quality"', method="POST")
        failures.append("65 fields: no error raised")
    except InfluxDBClientError as e:
        check("65 fields code", e.code, 400)
        if "at most 64 fields in a SELECT" not in str(e):
            failures.append(f"65 fields: {e}")
    try:
        means = ", ".join(['mean("pm10")'] * 64)
        c.query(
            f'SELECT {means} FROM "air_quality" WHERE time >= {T_MS - 4166 * 86_400_000}ms and '
            f"time <= {at(10)}ms GROUP BY time(1h) fill(0)",
            method="POST",
        )
        failures.append("two million values: no error raised")
    except InfluxDBClientError as e:
        if "more than 2000000 values in all" not in str(e):
            failures.append(f"two million values: {e}")
    try:
        InfluxDBClient(host=HOST, port=PORT, database="telegraf").query("SHOW DATABASES")
        failures.append("root:root: no error raised")
    except InfluxDBClientError as e:
        check("wrong password code", e.code, 401)

    # The v2 client's probes.
    with V2Client(url=URL, token=TOKEN, org="agora") as v2:
        check("v2 ping()", v2.ping(), True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            check("v2 health()", v2.health().status, "pass")
        check("v2 ready()", v2.ready().status, "ready")
        check("v2 version()", v2.version(), "1.8.10")

    if failures:
        for f in failures:
            print(f"MISMATCH {f}", file=sys.stderr)
        sys.exit(1)
    print("influx clients: all checks passed")


if __name__ == "__main__":
    main()
