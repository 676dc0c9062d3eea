#!/usr/bin/env python3
"""Read agora's open-data exports with independent readers and compare them with the Explore API.

Usage: check-open-data.py BASE_URL. For each published dataset (a few measurements datasets
and the two catalogues), the JSON export is the reference; it must hold as many rows as the
records endpoint's total_count, and the CSV export (Python's csv, `;`, with a BOM), the
JSON Lines export, the Parquet export (pyarrow) and the GeoJSON export (the geojson package's
validation) must hold the same rows with the same values. Exits 1 on the first difference.
"""
import csv
import io
import json
import sys
import urllib.parse
import urllib.request
from datetime import date, datetime, timezone

import geojson
import pyarrow.parquet as pq

BASE = sys.argv[1].rstrip("/") + "/api/explore/v2.1/catalog/datasets"


def get(path: str) -> bytes:
    with urllib.request.urlopen(BASE + path) as r:
        return r.read()


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return a == b


def normal(v):
    """A value as the JSON export writes it."""
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    if isinstance(v, date):
        return v.isoformat()
    return v


def check(dataset: str, where: str = "") -> None:
    q = ("?where=" + urllib.parse.quote(where)) if where else ""
    total = json.loads(get(f"/{dataset}/records{q}{'&' if q else '?'}limit=0"))["total_count"]
    reference = json.loads(get(f"/{dataset}/exports/json{q}"))
    assert len(reference) == total, f"{dataset}: json export {len(reference)} rows, records {total}"
    assert total > 0, f"{dataset}: no rows"
    keys = list(reference[0].keys())

    text = get(f"/{dataset}/exports/csv{q}").decode("utf-8")
    assert text.startswith("\ufeff"), f"{dataset}: the CSV has no byte-order mark"
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert rows[0] == keys, f"{dataset}: CSV header {rows[0]} != {keys}"
    assert len(rows) - 1 == total, f"{dataset}: CSV {len(rows) - 1} rows, expected {total}"
    for ref, row in zip(reference, rows[1:]):
        for k, cell in zip(keys, row):
            v = ref[k]
            if v is None:
                assert cell == "", f"{dataset} {k}: CSV {cell!r} for null"
            elif isinstance(v, dict):
                assert cell == f"{v['lat']}, {v['lon']}", f"{dataset} {k}: CSV {cell!r} != {v}"
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                assert same(float(cell), v), f"{dataset} {k}: CSV {cell!r} != {v}"
            else:
                assert cell == str(v), f"{dataset} {k}: CSV {cell!r} != {v!r}"

    lines = get(f"/{dataset}/exports/jsonl{q}").decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == reference, f"{dataset}: JSON Lines differ"

    table = pq.read_table(io.BytesIO(get(f"/{dataset}/exports/parquet{q}")))
    assert table.num_rows == total, f"{dataset}: Parquet {table.num_rows} rows, expected {total}"
    assert table.column_names == keys, f"{dataset}: Parquet columns {table.column_names}"
    for ref, row in zip(reference, table.to_pylist()):
        for k in keys:
            v, p = ref[k], normal(row[k])
            if isinstance(v, dict):
                v = f"{v['lat']}, {v['lon']}"
            assert (v is None and p is None) or same(p, v), f"{dataset} {k}: Parquet {p!r} != {v!r}"

    fc = geojson.loads(get(f"/{dataset}/exports/geojson{q}").decode("utf-8"))
    assert fc.is_valid, f"{dataset}: invalid GeoJSON: {fc.errors()}"
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == total
    for ref, feature in zip(reference, fc["features"]):
        g = ref.get("geo_point_2d")
        if g:
            assert feature["geometry"]["coordinates"] == [g["lon"], g["lat"]], f"{dataset}: {feature}"
        props = dict(feature["properties"])
        assert props == {k: v for k, v in ref.items() if k != "geo_point_2d"}, f"{dataset}: {props}"
    print(f"{dataset}{' where ' + where if where else ''}: {total} rows, identical in JSON, CSV, "
          f"JSON Lines, Parquet and GeoJSON")


def main() -> int:
    catalogue = json.loads(get("?limit=100"))
    ids = [d["dataset_id"] for d in catalogue["results"]]
    print(f"{catalogue['total_count']} datasets published: {', '.join(ids)}")
    # The demo streams on and periods complete as the check runs: read up to the last hour
    # begun at the start, so that every export of a dataset holds the same rows.
    until = f"date < date'{datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:00:00Z')}'"
    for dataset, where in [("qualite-air-horaire", until), ("bruit-horaire", until),
                           ("frequentation-pietonne-quotidienne", until),
                           ("lieux-equipes", ""), ("capteurs", ""),
                           ("qualite-air-hotel-de-ville-mesures", until + " and pm10 > 30"),
                           # More rows than a Parquet row group holds (65,536): several groups.
                           ("qualite-air-hotel-de-ville-mesures", until)]:
        assert dataset in ids, f"the demo does not publish {dataset}"
        check(dataset, where)
    return 0


if __name__ == "__main__":
    sys.exit(main())
