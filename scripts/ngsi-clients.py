#!/usr/bin/env python3
"""NGSI-LD through Orange's Python client for FIWARE brokers, as shipped on PyPI
(`ngsildclient` 0.5.2), against a running agora: the client connects (its own probe), counts and
queries entities by type and by `q`, retrieves one, reads a history (`lastN`, temporal
values), with agora's own context in its `Link` header, and subscribes to readings above a
threshold (a local endpoint receives the notification). Every expected value is worked out from
the points written here: PM10 = m µg/m³ at minute m for three hours, relative humidity 54 %.
Run by scripts/ngsi-clients.sh, which starts agora and sets AGORA_URL and AGORA_TOKEN (an admin
token). Exits 1 naming each mismatch.
"""

import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request

import requests
from ngsildclient import Client
from ngsildclient.api.helper.subscription import SubscriptionBuilder

URL = os.environ["AGORA_URL"]
TOKEN = os.environ["AGORA_TOKEN"]
CTX = URL + "/ngsi-ld/v1/jsonldContexts/agora.jsonld"

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


class Bearer(requests.auth.AuthBase):
    """agora's token, as the client's `custom_auth` hook lets an integrator send it."""

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {TOKEN}"
        return r


def receiver():
    """A notification endpoint on this machine: keeps the bodies POSTed to it."""
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            got.append((self.headers.get("Content-Type"), json.loads(self.rfile.read(n))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/notify", got


def subscriptions(client):
    """A subscription made with the client's own builder (its q percent-encoded, ld+json with
    the context in the body); a reading above the threshold is notified, one below is not."""
    uri, got = receiver()
    sub = (
        SubscriptionBuilder(uri)
        .select_type("AirQualityObserved")
        .watch(["pm10"])
        .query("pm10>500")
        .notif(["pm10"])
        .context(CTX)
        .build()
    )
    sid = client.subscriptions.create(sub)
    check("subscription id", sid.startswith("urn:ngsi-ld:Subscription:"), True)
    check("subscription exists", client.subscriptions.exists(sid, ctx=CTX), True)
    api("/api/v2/write?precision=s", f"air_quality,device=aq-rotonde pm10=20 {T + 60 * MINUTES}\n", raw=True)
    api("/api/v2/write?precision=s", f"air_quality,device=aq-rotonde pm10=600 {T + 60 * MINUTES + 60}\n", raw=True)
    for _ in range(200):
        if got:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    check("notifications", len(got), 1)
    if got:
        ctype, n = got[0]
        check("notification type", (ctype, n.get("type"), n.get("subscriptionId")), ("application/ld+json", "Notification", sid))
        data = n.get("data", [{}])[0]
        check("notified entity", (data.get("id"), data.get("pm10", {}).get("value"), data.get("pm10", {}).get("observedAt")),
              ("urn:ngsi-ld:AirQualityObserved:aq-rotonde", 600.0, "2026-01-01T03:01:00Z"))
        check("only the attributes asked", sorted(k for k in data if k not in ("id", "type")), ["pm10"])
        check("the context", n.get("@context"), CTX)
    s = client.subscriptions.get(sid, ctx=CTX)
    check("times sent", s.get("notification", {}).get("timesSent"), 1)
    check("deleted", client.subscriptions._delete(sid), True)
    check("gone", client.subscriptions.exists(sid, ctx=CTX), False)


def main():
    api("/api/v1/communes", {"insee": "13001", "name": "Aix-en-Provence"})
    api("/api/v1/sites", {"id": "rotonde", "commune": "13001", "name": "La Rotonde", "lat": 43.5263, "lon": 5.4446})
    for d in [
        {"id": "aq-rotonde", "kind": "air_quality", "site": "rotonde", "commune": "13001", "lat": 43.5264, "lon": 5.4447},
        {"id": "noise-rotonde", "kind": "noise", "site": "rotonde", "commune": "13001"},
    ]:
        api("/api/v1/devices", d)
    lines = []
    for m in range(MINUTES):
        lines.append(f"air_quality,device=aq-rotonde pm10={m},relative_humidity=54 {T + 60 * m}")
        lines.append(f"noise,device=noise-rotonde laeq={50 + m % 10} {T + 60 * m}")
    api("/api/v2/write?precision=s", "\n".join(lines) + "\n", raw=True)

    u = urllib.parse.urlparse(URL)
    client = Client(hostname=u.hostname, port=u.port, custom_auth=Bearer())
    check("connected", client.is_connected(), True)
    check("count", client.entities.count(type="AirQualityObserved", ctx=CTX), 1)
    found = client.query(type="AirQualityObserved,NoiseLevelObserved", ctx=CTX)
    check("query ids", sorted(e.id for e in found), ["urn:ngsi-ld:AirQualityObserved:aq-rotonde", "urn:ngsi-ld:NoiseLevelObserved:noise-rotonde"])
    found = client.query(type="AirQualityObserved", q="pm10>100;relativeHumidity==0.54", ctx=CTX)
    check("query q", [e.id for e in found], ["urn:ngsi-ld:AirQualityObserved:aq-rotonde"])
    check("query q, none", client.query(type="AirQualityObserved", q="pm10>1000", ctx=CTX), [])
    e = client.entities.get("urn:ngsi-ld:AirQualityObserved:aq-rotonde", ctx=CTX, asdict=True)
    check("pm10", (e["pm10"]["value"], e["pm10"]["unitCode"], e["pm10"]["observedAt"]), (179.0, "GQ", "2026-01-01T02:59:00Z"))
    check("humidity as a fraction", e["relativeHumidity"]["value"], 0.54)
    check("location", e["location"]["value"], {"type": "Point", "coordinates": [5.4447, 43.5264]})
    # The history, as temporal values (the client's default, "simplified TRoE").
    h = client.temporal.get("urn:ngsi-ld:AirQualityObserved:aq-rotonde", attrs=["pm10"], ctx=CTX)
    h = h[0] if isinstance(h, list) and len(h) == 1 else h
    want = [[float(m), f"2026-01-01T{m // 60:02d}:{m % 60:02d}:00Z"] for m in range(MINUTES)]
    check("temporal values", (h.get("id"), h.get("pm10", {}).get("values")), ("urn:ngsi-ld:AirQualityObserved:aq-rotonde", want))
    # An unknown entity: the client's own exception for ResourceNotFound.
    try:
        client.entities.get("urn:ngsi-ld:AirQualityObserved:nobody", ctx=CTX)
        failures.append("an unknown entity was found")
    except Exception as ex:
        check("not found", "ResourceNotFound" in repr(ex) or "404" in repr(ex), True)

    subscriptions(client)

    if failures:
        for f in failures:
            print(f"MISMATCH {f}", file=sys.stderr)
        sys.exit(1)
    print("NGSI-LD client: all checks passed")


if __name__ == "__main__":
    main()
