#!/usr/bin/env python3
"""OGC SensorThings API 1.1 through FROST-Server's own Python client, as shipped on PyPI
(`frost_sta_client` 1.1.53), against a running agora: the client lists Things with a count,
finds one, follows its Datastreams and their Observations with $filter, $orderby, $top and
$expand, pages through next links, reads Locations by a spatial filter, and meets agora's errors
as FROST's. Then the requests Grafana's SensorThings data sources send (FROST's
`iosb-sensorthings-datasource` and the older linksmart one, which cannot be installed from
PyPI or npm) are replayed as they write them. Every expected value is worked out from the
points written here: PM10 = m µg/m³ at minute m, for three hours. Run by
scripts/sta-clients.sh, which starts agora and sets AGORA_URL and AGORA_TOKEN (an admin token).
Exits 1 naming each mismatch.
"""

import json
import os
import sys
import urllib.parse
import urllib.request

import frost_sta_client as fsc
from frost_sta_client.service.auth_handler import AuthHandler

URL = os.environ["AGORA_URL"]
TOKEN = os.environ["AGORA_TOKEN"]
ROOT = URL + "/v1.1"

# 2026-01-01T00:00:00Z.
T = 1767225600
MINUTES = 180

failures = []


def check(name, got, want):
    if got != want:
        failures.append(f"{name}: got {got!r}, want {want!r}")


def api(path, body, raw=False):
    """POST to agora's own API with the admin token."""
    data = body.encode() if raw else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if not raw:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(URL + path, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(req) as r:
        return r.status


def get(path_and_query):
    """GET a SensorThings URL as a data source writes it (spaces and quotes escaped only)."""
    url = ROOT + "/" + urllib.parse.quote(path_and_query, safe="/?&=$(),'")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def main():
    api("/api/v1/communes", {"insee": "13001", "name": "Aix-en-Provence"})
    api("/api/v1/sites", {"id": "rotonde", "commune": "13001", "name": "La Rotonde", "lat": 43.5263, "lon": 5.4446})
    for d in [
        {"id": "aq-rotonde", "kind": "air_quality", "site": "rotonde", "commune": "13001", "name": "Station Rotonde", "lat": 43.5264, "lon": 5.4447},
        {"id": "noise-rotonde", "kind": "noise", "site": "rotonde", "commune": "13001"},
    ]:
        api("/api/v1/devices", d)
    lines = []
    for m in range(MINUTES):
        lines.append(f"air_quality,device=aq-rotonde pm10={m} {T + 60 * m}")
        lines.append(f"noise,device=noise-rotonde laeq={50 + m % 10} {T + 60 * m}")
    api("/api/v2/write?precision=s", "\n".join(lines) + "\n", raw=True)

    # The client, as an integrator sets it up: HTTP Basic with the token as password.
    svc = fsc.SensorThingsService(ROOT, auth_handler=AuthHandler(username="agora", password=TOKEN))
    things = svc.things().query().count().list()
    check("Things count", things.count, 2)
    check("Things ids", sorted(t.id for t in things), ["aq-rotonde", "noise-rotonde"])
    thing = svc.things().find("aq-rotonde")
    check("find name", thing.name, "Station Rotonde")
    streams = list(thing.get_datastreams().query().list())
    check("Datastreams of the Thing", len(streams), 1)
    ds = streams[0]
    check("unit symbol", ds.unit_of_measurement.symbol, "ug/m3")
    check("Datastream by id", svc.datastreams().find(ds.id).name, "pm10 of aq-rotonde")

    # Observations: a filter, the client's default descending order, a page of 50.
    obs = ds.get_observations().query().filter("result ge 100").orderby("phenomenonTime").top(50).count().list()
    check("Observations count", obs.count, MINUTES - 100)
    first_page = [o.result for o in obs.entities]
    check("first page, newest first", first_page, [float(m) for m in range(MINUTES - 1, MINUTES - 51, -1)])
    # Iterating follows the next links to the end.
    every = [o.result for o in obs]
    check("all pages", every, [float(m) for m in range(MINUTES - 1, 99, -1)])
    # Ascending, with a time window.
    obs = ds.get_observations().query().filter(
        "phenomenonTime ge 2026-01-01T01:00:00Z and phenomenonTime lt 2026-01-01T01:05:00Z"
    ).orderby("phenomenonTime", "ASC").list()
    check("time window", [o.result for o in obs], [60.0, 61.0, 62.0, 63.0, 64.0])
    check("phenomenonTime", str(obs.entities[0].phenomenon_time), "2026-01-01T01:00:00Z")
    # $expand and $select through the client.
    t = svc.things().query().filter("id eq 'aq-rotonde'").expand("Datastreams($select=name,id)").list()
    ents = list(t)
    check("expand", [d.name for d in ents[0].datastreams], ["pm10 of aq-rotonde"])
    # Locations by a spatial filter: the meter has no position, its place's stands for it.
    locs = svc.locations().query().filter(
        "st_within(location, geography'POLYGON ((5.444 43.526, 5.445 43.526, 5.445 43.527, 5.444 43.527, 5.444 43.526))')"
    ).list()
    check("Locations within", sorted(l.id for l in locs), ["aq-rotonde", "noise-rotonde"])
    # Creating an Observation with the client: it posts the Datastream it fetched, inlined, and
    # reads the new id from the Location header.
    obs = fsc.Observation(phenomenon_time="2026-01-01T03:00:00Z", result=250.0, datastream=ds)
    svc.create(obs)
    check("created id", obs.id, f"{ds.id}-{(T + 3 * 3600) * 10**9}")
    check("created, read back", svc.observations().find(obs.id).result, 250.0)
    # An error as FROST answers it: the client raises with the server's message.
    try:
        list(svc.things().query().filter("name eq").list())
        failures.append("a bad $filter was accepted")
    except Exception as e:  # the client logs the server's message and raises requests' HTTPError
        body = e.response.json()
        check("bad $filter", (e.response.status_code, body["code"], body["type"]), (400, 400, "error"))
        check("bad $filter names the problem", "ends too early" in body["message"], True)

    # Grafana's FROST data source: browse, then a time range with $top=1000 and paging.
    status, root = get("")
    check("root", (status, [s["name"] for s in root["value"]][:2]), (200, ["Things", "Locations"]))
    status, v = get("Things?$count=true&$skip=0&$top=10&$filter=startswith(name,'Station')")
    check("grafana browse", (status, v.get("@iot.count")), (200, 1))
    status, v = get(
        f"Datastreams({ds.id})/Observations?$orderby=phenomenonTime asc"
        "&$filter=phenomenonTime ge 2026-01-01T02:00:00.000Z and phenomenonTime le 2026-01-01T02:59:59.999Z&$top=1000"
    )
    check("grafana range", (status, [o["result"] for o in v["value"]]), (200, [float(m) for m in range(120, 180)]))
    # The linksmart data source: double-quoted string ids, $select, newest first, the latest alone.
    status, v = get('Things("aq-rotonde")/Datastreams?$top=1000&$select=name,id')
    check("linksmart ids", (status, [d["name"] for d in v["value"]]), (200, ["pm10 of aq-rotonde"]))
    status, v = get(
        f"Datastreams({ds.id})/Observations?$select=result,phenomenonTime&$top=1&$filter=phenomenonTime le 2026-01-01T00:30:00.000Z"
        "&$orderby=phenomenonTime desc"
    )
    check("linksmart latest", (status, v["value"]), (200, [{"result": 30.0, "phenomenonTime": "2026-01-01T00:30:00Z"}]))
    check("more after the latest alone", "@iot.nextLink" in v, True)
    status, v = get(
        f"Datastreams({ds.id})/Observations?$select=result&$top=1000&$filter=phenomenonTime le 2026-01-01T00:09:00.000Z"
    )
    check("a last page", (len(v["value"]), "@iot.nextLink" in v), (10, False))

    if failures:
        for f in failures:
            print(f"MISMATCH {f}", file=sys.stderr)
        sys.exit(1)
    print("SensorThings clients: all checks passed")


if __name__ == "__main__":
    main()
