#!/usr/bin/env bash
# Builds agora's Debian package from this checkout: the release binary, the hardened systemd
# unit, the default configuration (a conffile: upgrades keep local changes), the operations
# guide, the Prometheus alerting rules and the Grafana dashboard.
#   scripts/package/build-deb.sh [REVISION]     (default 1) → prints the .deb's path
# dpkg-deb only (no debhelper): the package's whole content is here and in packaging/debian/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
revision="${1:-1}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
arch="$(dpkg --print-architecture)"
AGORA_COMMIT="$commit" cargo build --release --locked --bin agora >&2
out="$CARGO_TARGET_DIR/debian"
root="$out/agora_${version}-${revision}_${arch}"
rm -rf "$root"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/agora" \
  "$root/usr/share/doc/agora" "$root/usr/share/agora/prometheus" "$root/usr/share/agora/grafana"
# Debug sections stripped: a package of some 20 MB instead of 100.
objcopy --strip-debug "$CARGO_TARGET_DIR/release/agora" "$root/usr/bin/agora"
chmod 0755 "$root/usr/bin/agora"
install -m 0644 packaging/debian/agora.service "$root/lib/systemd/system/agora.service"
install -m 0644 packaging/debian/agora.toml "$root/etc/agora/agora.toml"
install -m 0644 docs/exploitation.md agora.example.toml "$root/usr/share/doc/agora/"
install -m 0644 packaging/prometheus/agora-rules.yml "$root/usr/share/agora/prometheus/"
install -m 0644 packaging/grafana/agora-dashboard.json "$root/usr/share/agora/grafana/"
cat >"$root/usr/share/doc/agora/copyright" <<TXT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: agora
Files: *
License: AGPL-3.0-or-later
TXT
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
echo /etc/agora/agora.toml >"$root/DEBIAN/conffiles"
# The libraries the binary links (glibc and libgcc_s only: everything else is Rust, static).
needed="$(objdump -p "$root/usr/bin/agora" | awk '/NEEDED/ {print $2}' | sort -u | tr '\n' ' ')"
for lib in $needed; do
  case "$lib" in
    libc.so.6|libm.so.6|libdl.so.2|libpthread.so.0|librt.so.1|ld-linux*|libgcc_s.so.1) ;;
    *) echo "unexpected library $lib: add its package to Depends" >&2; exit 1 ;;
  esac
done
glibc="$(objdump -T "$root/usr/bin/agora" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)"
cat >"$root/DEBIAN/control" <<TXT
Package: agora
Version: ${version}-${revision}
Architecture: ${arch}
Maintainer: agora developers <agora@example.org>
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: libc6 (>= ${glibc}), libgcc-s1, adduser
Section: net
Priority: optional
Description: open urban data platform for connected cities
 agora collects what a city's sensors send (HTTP, MQTT, LoRaWAN through ChirpStack,
 citizen sensors, CSV), keeps it compactly in its own storage, shows it to operators,
 departments and citizens, raises alerts, computes indicators and forecasts, and
 publishes open data through standard APIs. One binary, one service.
 .
 Commit ${commit}. The operations guide is in /usr/share/doc/agora/exploitation.md
 and served at /docs.
TXT
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/" >&2
rm -rf "$root"
echo "$out/agora_${version}-${revision}_${arch}.deb"
