#!/usr/bin/env python3
"""Certificates renewed while devices and browsers are connected: Eclipse Paho (as shipped)
publishes over MQTT over TLS and a keep-alive HTTPS connection (Python's http.client) reads
the API, while the server certificate is replaced and agora told with SIGHUP, then replaced
again and left for agora to notice. Neither connection drops; every QoS 1 message is
acknowledged and stored; new handshakes get the new certificate.

Usage: clients.py HTTPS_PORT MQTTS_PORT ADMIN_TOKEN CERT_DIR AGORA_PID
"""
import calendar
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

HTTPS, MQTTS, ADMIN, CERTS, PID = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
CA = os.path.join(CERTS, "ca.pem")
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        failures.append(name)


def context():
    ctx = ssl.create_default_context(cafile=CA)
    return ctx


def served_serial(port):
    """The serial of the certificate a new handshake gets (verified against the city's CA)."""
    import socket
    with socket.create_connection(("localhost", port), timeout=5) as raw:
        with context().wrap_socket(raw, server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"],
                         input=der, capture_output=True, check=True)
    return out.stdout.decode().strip().split("=")[1].lstrip("0") or "0"


def renew(serial, days):
    subprocess.run([os.path.join(os.path.dirname(__file__), "make-certs.sh"), CERTS, str(serial), str(days)], check=True)


api = http.client.HTTPSConnection("localhost", HTTPS, context=context(), timeout=10)


def get(path):
    api.request("GET", path, headers={"Authorization": f"Bearer {ADMIN}"})
    r = api.getresponse()
    return r.status, r.read(), r


def post(path, body):
    api.request("POST", path, body=json.dumps(body),
                headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    r = api.getresponse()
    return r.status, json.loads(r.read() or b"null")


status, token = post("/api/v1/tokens", {"name": "tls-paho", "scope": "ingest"})
check("an ingest token made over HTTPS", status == 201, status)
TOKEN = token["token"]
api_socket = api.sock.getsockname()
check("the first handshakes get serial 1", served_serial(HTTPS) == "1" and served_serial(MQTTS) == "1")

# Paho over TLS, QoS 1, one connection for the whole test.
acks, lock = set(), threading.Lock()
disconnects = []
connected = threading.Event()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-paho", protocol=mqtt.MQTTv311)
c.username_pw_set(TOKEN)
c.tls_set(ca_certs=CA)
c.on_connect = lambda *a: connected.set()
c.on_disconnect = lambda *a: disconnects.append(a[3] if len(a) > 3 else a)


def on_publish(client, userdata, mid, reason_code, properties):
    with lock:
        acks.add(mid)


c.on_publish = on_publish
c.connect("localhost", MQTTS, keepalive=30)
c.loop_start()
check("paho connected over TLS", connected.wait(10))

sent, http_ok, http_total = [], 0, 0
base = int(time.time() * 1000) - 600_000
stop = time.time() + 9
phase = 0
while time.time() < stop:
    i = len(sent)
    info = c.publish("agora/tls-lamp/telemetry", json.dumps({"ts": base + i * 100, "values": {"temperature": 20 + i % 7}}), qos=1)
    sent.append(info.mid)
    if i % 10 == 0:
        status, _, _ = get("/api/v1/devices?limit=1")
        http_total += 1
        http_ok += status == 200
    elapsed = 9 - (stop - time.time())
    if phase == 0 and elapsed > 2:
        # Renewed, then agora told (systemctl reload agora).
        renew(2, 45)
        os.kill(PID, signal.SIGHUP)
        phase = 1
    elif phase == 1 and elapsed > 4.5:
        check("after SIGHUP, new handshakes get the renewed certificate", served_serial(HTTPS) == "2" and served_serial(MQTTS) == "2",
              (served_serial(HTTPS), served_serial(MQTTS)))
        # Renewed again, and nobody says so: agora sees the files change.
        renew(3, 50)
        phase = 2
    time.sleep(0.02)

deadline = time.time() + 15
while time.time() < deadline:
    with lock:
        if all(m in acks for m in sent):
            break
    time.sleep(0.1)
with lock:
    missing = [m for m in sent if m not in acks]
check(f"all {len(sent)} QoS 1 messages acknowledged across two renewals", not missing, f"{len(missing)} not acknowledged")
check("the MQTT connection was never dropped", not disconnects, disconnects)
check(f"the same HTTPS connection answered all {http_total} requests", http_ok == http_total and api.sock.getsockname() == api_socket,
      (http_ok, http_total))
check("after the files changed, new handshakes get the third certificate", served_serial(HTTPS) == "3" and served_serial(MQTTS) == "3",
      (served_serial(HTTPS), served_serial(MQTTS)))
c.loop_stop()
c.disconnect()

t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base / 1000 - 1))
status, body, _ = get(f"/api/v1/observations?device=tls-lamp&property=temperature&from={t0}&limit=100000&quality=all")
points = json.loads(body).get("points", [])
check(f"every message stored ({len(sent)})", len(points) == len(sent), f"{len(points)} stored")

status, body, _ = get("/metrics")
end = subprocess.run(["openssl", "x509", "-in", os.path.join(CERTS, "server.pem"), "-noout", "-enddate"],
                     capture_output=True, check=True, text=True).stdout.strip().split("=", 1)[1]
expected = calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y GMT"))
lines = [l for l in body.decode().splitlines() if l.startswith("agora_tls_certificate_expiry_timestamp_seconds{")]
values = {l.split('"')[1]: float(l.rsplit(" ", 1)[1]) for l in lines}
check("the expiry metric names the certificate in use", values == {"https": expected, "mqtts": expected}, (values, expected))
sys.exit(1 if failures else 0)
