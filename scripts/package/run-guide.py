#!/usr/bin/env python3
"""Turns the operations guide's `sh` blocks into one bash script, in the guide's order, so that
variables set by one block (TOKEN, AGORA) serve the next, as they would in the technician's
shell. Two things differ from a real server, both said here: the test's own ports replace 8080,
1883 and 8883 (another program may hold those on a test machine), and after a block that
installs the package the script does what the package's postinst does under systemd (start the
service, or restart it after an upgrade), since the test machine's systemd is not running.

Usage: run-guide.py GUIDE.md HTTP_PORT MQTT_PORT MQTTS_PORT > guide.sh
"""
import re
import sys

guide, http, mqtt, mqtts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
text = open(guide, encoding="utf-8").read()
blocks = re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)
out = ["#!/usr/bin/env bash", "set -euo pipefail"]
section = ""
pos = 0
for i, m in enumerate(re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M)):
    heads = re.findall(r"^## (.+)$", text[: m.start()], re.M)
    section = heads[-1] if heads else ""
    body = m.group(1)
    body = body.replace("localhost:8080", f"localhost:{http}").replace("0.0.0.0:8883", f"0.0.0.0:{mqtts}")
    out.append(f"echo '── guide, {section}, bloc {i + 1}'")
    out.append(body.rstrip("\n"))
    if "apt-get install" in body:
        out.append("systemctl try-restart agora; systemctl start agora  # the postinst's part under systemd")
print("\n".join(out))
print(f"{len(blocks)} blocks", file=sys.stderr)
