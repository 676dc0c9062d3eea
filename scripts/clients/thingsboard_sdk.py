#!/usr/bin/env python3
"""ThingsBoard's official Python SDK (tb-mqtt-client, as shipped: MQTT 5) against agora.

Usage: thingsboard_sdk.py HTTP_BASE MQTT_PORT ADMIN_TOKEN

Creates its own tokens through agora's API, then drives the device client, the gateway client
and the HTTP client through ThingsBoard's device API: telemetry, client attributes, attribute
requests, shared attributes set by an operator (agora's API) and pushed to the device, server-side
RPC called by an operator and answered by the device, client-side RPC, gateway connect with a
device type. Every check compares with values written by this script; exits 1 on any failure.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

from tb_device_http import TBHTTPDevice
from tb_device_mqtt import TBDeviceMqttClient, TBPublishInfo
from tb_gateway_mqtt import TBGatewayMqttClient

HTTP, MQTT_PORT, ADMIN = sys.argv[1], int(sys.argv[2]), sys.argv[3]
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        failures.append(name)


def api(method, path, body=None, token=ADMIN):
    req = urllib.request.Request(HTTP + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def token(name, device=None):
    body = {"name": name, "scope": "ingest"}
    if device:
        body["device"] = device
    status, t = api("POST", "/api/v1/tokens", body)
    assert status == 201, (status, t)
    return t["token"]


def latest(device, prop):
    _, r = api("GET", f"/api/v1/latest?device={device}&property={prop}")
    items = r.get("values", []) if r else []
    return items[0]["value"] if items else None


def wait(cond, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def in_background(f):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", f()), daemon=True)
    t.start()
    return t, box


# ---------------------------------------------------------------- device over MQTT 5
dev_tok = token("tb-sdk-device", "tb-lamp-1")
dev = TBDeviceMqttClient("127.0.0.1", port=MQTT_PORT, username=dev_tok)
dev.connect()
check("device connects over MQTT 5", wait(dev.is_connected))
check("getSessionLimits is answered", wait(lambda: dev.rate_limits_received))
info = dev.send_telemetry({"temperature": 22.5, "humidity": 40})
check("telemetry acknowledged", info.get() == TBPublishInfo.TB_ERR_SUCCESS
      and all(m.is_published() for m in info.message_info))
check("telemetry stored", wait(lambda: latest("tb-lamp-1", "temperature") == 22.5),
      latest("tb-lamp-1", "temperature"))
check("client attributes acknowledged",
      dev.send_attributes({"model": "X1", "serial": "SN-1"}).get() == TBPublishInfo.TB_ERR_SUCCESS)
status, attrs = api("GET", "/api/v1/devices/tb-lamp-1/attributes")
check("client attributes kept", status == 200 and attrs["client"] == {"model": "X1", "serial": "SN-1"}, attrs)

status, _ = api("POST", "/api/v1/devices/tb-lamp-1/attributes", {"targetTemp": 21})
check("operator sets a shared attribute", status == 200)
got, ev = {}, threading.Event()
dev.request_attributes(client_keys=["model", "serial"], shared_keys=["targetTemp"],
                       callback=lambda content, exc: (got.update(req=(content, exc)), ev.set()))
check("request_attributes answered",
      ev.wait(10) and got["req"] == ({"client": {"model": "X1", "serial": "SN-1"},
                                      "shared": {"targetTemp": 21}}, None), got)

upd, upd_ev = {}, threading.Event()
dev.subscribe_to_attribute("targetTemp", lambda content, exc: (upd.update(v=content), upd_ev.set()))
status, r = api("POST", "/api/v1/devices/tb-lamp-1/attributes", {"targetTemp": 25})
check("shared attribute update delivered", status == 200 and r["delivered"] and upd_ev.wait(10)
      and upd["v"] == {"targetTemp": 25}, (status, r, upd))


def on_server_rpc(request_id, body):
    dev.send_rpc_reply(request_id, {"pin": body["params"]["pin"], "state": "on"})


dev.set_server_side_rpc_request_handler(on_server_rpc)
t, box = in_background(lambda: api("POST", "/api/v1/devices/tb-lamp-1/rpc",
                                   {"method": "setGpio", "params": {"pin": 4}, "timeout_ms": 10000}))
t.join(15)
check("server-side RPC answered by the device",
      box.get("r") == (200, {"response": {"pin": 4, "state": "on"}}), box)

crpc, crpc_ev = {}, threading.Event()
before = int(time.time() * 1000)
dev.send_rpc_call("getCurrentTime", {}, lambda rid, resp, exc: (crpc.update(v=resp), crpc_ev.set()))
check("client-side RPC getCurrentTime",
      crpc_ev.wait(10) and abs(crpc["v"]["time"] - before) < 5000, crpc)
status, _ = api("GET", "/api/v1/rejects")
dev.stop()
dev.disconnect()
time.sleep(0.3)
status, r = api("POST", "/api/v1/devices/tb-lamp-1/rpc", {"method": "x", "timeout_ms": 500})
check("a call to a device no longer connected is refused (409)", status == 409, (status, r))

# ---------------------------------------------------------------- gateway over MQTT 5
gw_tok = token("tb-sdk-gateway")
gw = TBGatewayMqttClient("127.0.0.1", port=MQTT_PORT, username=gw_tok)
gw_rpc = {}


def on_gw_rpc(client, content):
    gw_rpc["v"] = content
    client.gw_send_rpc_reply(content["device"], content["data"]["id"], {"rebooted": True})


gw.gw_set_server_side_rpc_request_handler(on_gw_rpc)
gw.connect()
check("gateway connects", wait(gw.is_connected))
check("gateway connects a device with a type",
      gw.gw_connect_device("Weather Station A", "thermometer").get() == TBPublishInfo.TB_ERR_SUCCESS)
status, d = api("GET", "/api/v1/devices/weather-station-a")
check("the device type maps to a kind", status == 200 and d["device"]["kind"] == "weather", d)
gw_attr, gw_attr_ev = {}, threading.Event()
gw.gw_subscribe_to_all_attributes(lambda content: (gw_attr.update(v=content), gw_attr_ev.set()))
status, r = api("POST", "/api/v1/devices/weather-station-a/attributes", {"interval": 30})
check("shared attribute reaches the device through its gateway",
      status == 200 and r["delivered"] and gw_attr_ev.wait(10)
      and gw_attr["v"] == {"device": "Weather Station A", "data": {"interval": 30}}, (r, gw_attr))
t, box = in_background(lambda: api("POST", "/api/v1/devices/weather-station-a/rpc",
                                   {"method": "reboot", "params": {"delay": 1}}))
t.join(15)
check("server-side RPC through the gateway", box.get("r") == (200, {"response": {"rebooted": True}})
      and gw_rpc["v"]["data"]["method"] == "reboot", (box, gw_rpc))
check("gateway telemetry acknowledged",
      gw.gw_send_telemetry("Weather Station A", {"ts": 1767225600000, "values": {"temperature": 20.2}}).get()
      == TBPublishInfo.TB_ERR_SUCCESS)
check("gateway telemetry stored", wait(lambda: latest("weather-station-a", "temperature") == 20.2))
check("gateway attributes acknowledged",
      gw.gw_send_attributes("Weather Station A", {"fw": "1.0"}).get() == TBPublishInfo.TB_ERR_SUCCESS)
req, req_ev = {}, threading.Event()
api("POST", "/api/v1/devices/weather-station-a/attributes", {"threshold": 5})
gw.gw_request_shared_attributes("Weather Station A", ["interval", "threshold"],
                                lambda content, exc: (req.update(v=content), req_ev.set()))
check("gateway shared attribute request",
      req_ev.wait(10) and req["v"].get("values") == {"interval": 30, "threshold": 5}, req)
req_ev.clear()
gw.gw_request_client_attributes("Weather Station A", ["fw"],
                                lambda content, exc: (req.update(v=content), req_ev.set()))
check("gateway client attribute request", req_ev.wait(10) and req["v"].get("value") == "1.0", req)
check("gateway disconnects the device",
      gw.gw_disconnect_device("Weather Station A").get() == TBPublishInfo.TB_ERR_SUCCESS)
time.sleep(0.3)
status, _ = api("POST", "/api/v1/devices/weather-station-a/rpc", {"method": "x", "timeout_ms": 500})
check("a disconnected gateway device is not called", status == 409, status)
gw.stop()
gw.disconnect()

# ---------------------------------------------------------------- HTTP device API
http_tok = token("tb-sdk-http", "tb-meter-1")
h = TBHTTPDevice(HTTP, http_tok)
check("HTTP client connects (its empty-body probe)", h.connect())
h.send_telemetry({"energy": 12.5}, timestamp=None, queued=False)
check("HTTP telemetry stored", wait(lambda: latest("tb-meter-1", "energy") is not None))
h.send_attributes({"model": "M2"})
api("POST", "/api/v1/devices/tb-meter-1/attributes", {"tariff": "night"})
r = h.request_attributes(client_keys=["model"], shared_keys=["tariff"])
check("HTTP attribute request", r == {"client": {"model": "M2"}, "shared": {"tariff": "night"}}, r)
r = h.send_rpc("getCurrentTime")
check("HTTP client-side RPC", isinstance(r, dict) and abs(r.get("time", 0) - time.time() * 1000) < 5000, r)
h_attr, h_attr_ev = {}, threading.Event()
h.subscribe("attributes", lambda data: (h_attr.update(v=data), h_attr_ev.set()))


def on_http_rpc(data):
    h.send_rpc(name="reading", params={"kwh": 12.5}, rpc_id=data["id"])


h.subscribe("rpc", on_http_rpc)
time.sleep(0.5)
status, r = api("POST", "/api/v1/devices/tb-meter-1/attributes", {"tariff": "day"})
check("HTTP long poll gets the shared attribute update",
      status == 200 and h_attr_ev.wait(10) and h_attr["v"] == {"tariff": "day"}, (r, h_attr))
t, box = in_background(lambda: api("POST", "/api/v1/devices/tb-meter-1/rpc",
                                   {"method": "read", "timeout_ms": 10000}))
t.join(15)
check("server-side RPC over HTTP long poll",
      box.get("r") == (200, {"response": {"method": "reading", "params": {"kwh": 12.5}}}), box)
h.unsubscribe("attributes")
h.unsubscribe("rpc")
h.stop_publish_worker()

# Nothing the SDKs sent was refused.
status, r = api("GET", "/api/v1/rejects")
reasons = [x["reason"] for x in r["rejects"]]
check("no dead letters from the SDKs", status == 200 and not reasons, reasons)

print("thingsboard SDK:", "all checks passed" if not failures else f"{len(failures)} failed: {failures}")
sys.exit(1 if failures else 0)
