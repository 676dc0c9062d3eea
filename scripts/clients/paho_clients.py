#!/usr/bin/env python3
"""Eclipse Paho (paho-mqtt 2, as shipped) against agora's MQTT endpoint in MQTT 5, 3.1.1 and 3.1.

Usage: paho_clients.py HTTP_BASE MQTT_PORT ADMIN_TOKEN

Each version publishes QoS 1 telemetry and waits for its PUBACK; MQTT 5 also uses a topic alias
and user properties, and reads the reason code and string of a refused message. Values are read
back through agora's API and compared with what was sent. Exits 1 on any failure.
"""
import json
import sys
import threading
import time
import urllib.request

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HTTP, MQTT_PORT, ADMIN = sys.argv[1], int(sys.argv[2]), sys.argv[3]
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        failures.append(name)


def api(method, path, body=None):
    req = urllib.request.Request(HTTP + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def value_at(device, prop, ts_ms):
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms / 1000))
    t2 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms / 1000 + 1))
    r = api("GET", f"/api/v1/observations?device={device}&property={prop}&from={t}&to={t2}&quality=all")
    pts = r.get("points") or r.get("observations") or []
    return pts[0]["value"] if pts else r


TOKEN = api("POST", "/api/v1/tokens", {"name": "paho", "scope": "ingest"})["token"]
versions = [("MQTT 5", mqtt.MQTTv5), ("MQTT 3.1.1", mqtt.MQTTv311), ("MQTT 3.1", mqtt.MQTTv31)]
for i, (name, proto) in enumerate(versions):
    acks = {}
    acked = threading.Condition()

    def on_publish(client, userdata, mid, reason_code, properties):
        with acked:
            acks[mid] = (reason_code, properties)
            acked.notify_all()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho-{i}", protocol=proto)
    c.username_pw_set(TOKEN)
    c.on_publish = on_publish
    connected = threading.Event()
    c.on_connect = lambda client, userdata, flags, rc, props=None: connected.set() if not rc.is_failure else None
    if proto == mqtt.MQTTv5:
        c.connect("127.0.0.1", MQTT_PORT, keepalive=30, clean_start=True)
    else:
        c.connect("127.0.0.1", MQTT_PORT, keepalive=30)
    c.loop_start()
    check(f"{name}: connects", connected.wait(10))
    ts = 1767225600000 + i * 60_000

    def publish(topic, payload, props=None):
        info = c.publish(topic, json.dumps(payload), qos=1, properties=props)
        with acked:
            acked.wait_for(lambda: info.mid in acks, timeout=10)
        return acks.get(info.mid)

    ack = publish(f"agora/paho-{i}/telemetry", {"ts": ts, "values": {"temperature": 20.5 + i}})
    check(f"{name}: QoS 1 acknowledged", ack is not None and not ack[0].is_failure, ack)
    got = value_at(f"paho-{i}", "temperature", ts)
    check(f"{name}: stored exactly", got == 20.5 + i, got)
    if proto == mqtt.MQTTv5:
        # A topic alias set by the first message, then used alone, with user properties.
        p = Properties(PacketTypes.PUBLISH)
        p.TopicAlias = 3
        p.UserProperty = [("site", "hotel-de-ville")]
        publish(f"agora/paho-{i}/telemetry", {"ts": ts + 1000, "values": {"temperature": 30.5}}, p)
        p2 = Properties(PacketTypes.PUBLISH)
        p2.TopicAlias = 3
        ack = publish("", {"ts": ts + 2000, "values": {"temperature": 31.5}}, p2)
        got = value_at(f"paho-{i}", "temperature", ts + 2000)
        check(f"{name}: topic alias", ack is not None and not ack[0].is_failure and got == 31.5,
              (ack, got))
        # A refused message: the reason code and string say why (it is kept as a dead letter).
        info = c.publish("city/whatever", "{}", qos=1)
        with acked:
            acked.wait_for(lambda: info.mid in acks, timeout=10)
        rc, props = acks.get(info.mid, (None, None))
        reason = getattr(props, "ReasonString", "") if props else ""
        check(f"{name}: refusal has a reason code and string",
              rc is not None and rc.is_failure and rc.getName().lower() == "topic name invalid"
              and "unknown topic" in reason, (rc, reason))
    c.disconnect()
    c.loop_stop()

# A wrong token is refused with the right CONNACK in each version.
for name, proto in versions:
    result = {}
    done = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-bad", protocol=proto)
    c.username_pw_set("agora_wrong")
    c.on_connect = lambda client, userdata, flags, rc, props=None: (result.update(rc=rc), done.set())
    c.connect("127.0.0.1", MQTT_PORT, keepalive=30)
    c.loop_start()
    done.wait(10)
    c.loop_stop()
    rc = result.get("rc")
    check(f"{name}: a wrong token gets 'bad user name or password'",
          rc is not None and rc.is_failure and "user name or password" in rc.getName().lower(), rc)

print("paho:", "all checks passed" if not failures else f"{len(failures)} failed: {failures}")
sys.exit(1 if failures else 0)
