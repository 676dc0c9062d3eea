#!/usr/bin/env bash
# A private certificate authority and the certificates the TLS tests use, made with openssl:
#   ca.pem/ca.key            the city's authority (signs the server and the devices)
#   server.pem/server.key    localhost and 127.0.0.1, serial given as $2 (default 1), $3 days
#   device-<id>.pem/.key     a device's client certificate (subject CN = the device's id)
#   rogue-ca.pem, rogue.pem  another authority and a device certificate it signed
# Usage: make-certs.sh DIR [SERIAL] [DAYS]       (server only when ca.pem exists already)
#        make-certs.sh DIR device ID
set -euo pipefail
dir="$1"; mkdir -p "$dir"; cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
if [ "${2:-}" = device ]; then
  id="$3"
  openssl req "${ec[@]}" -subj "/O=agora test/CN=$id" -keyout "device-$id.key" -out "device-$id.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' >device.ext
  openssl x509 -req -in "device-$id.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 30 -extfile device.ext -out "device-$id.pem" 2>/dev/null
  exit 0
fi
serial="${2:-1}"; days="${3:-30}"
if [ ! -f ca.pem ]; then
  openssl req -x509 "${ec[@]}" -days 60 -subj "/O=agora test/CN=agora test CA" -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -x509 "${ec[@]}" -days 60 -subj "/CN=rogue CA" -keyout rogue-ca.key -out rogue-ca.pem 2>/dev/null
  openssl req "${ec[@]}" -subj "/CN=lamp-rogue" -keyout rogue.key -out rogue.csr 2>/dev/null
  openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -set_serial 7 -days 30 -out rogue.pem 2>/dev/null
fi
openssl req "${ec[@]}" -subj "/CN=localhost" -keyout server.key.new -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "$serial" -days "$days" \
  -extfile server.ext -out server.pem.new 2>/dev/null
# The key first, then the certificate, each renamed over the old one: a reader sees a key that
# does not match for an instant at worst, and agora keeps the previous pair until both match.
mv server.key.new server.key
mv server.pem.new server.pem
