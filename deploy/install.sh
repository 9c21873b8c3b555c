#!/bin/sh
# Installs ptyrelay and ptcat from build/bin into /usr/local, creates the `ptyrelay` system user
# and its state dir, and installs the systemd unit (not enabled or started: say so yourself).
# Usage: sudo deploy/install.sh [PREFIX]     (run `make build` first)
set -eu
PREFIX=${1:-/usr/local}
cd "$(dirname "$0")/.."
for b in ptyrelay ptcat ptload; do
    if [ ! -x "build/bin/$b" ]; then
        echo "install: build/bin/$b is missing; run 'make build' first" >&2
        exit 1
    fi
done
if [ "$(id -u)" -ne 0 ]; then
    echo "install: run as root (sudo $0)" >&2
    exit 1
fi
echo "install: binaries to $PREFIX/bin"
install -m 0755 build/bin/ptyrelay build/bin/ptcat build/bin/ptload "$PREFIX/bin/"
install -d "$PREFIX/share/man/man1" "$PREFIX/share/doc/ptyrelay"
install -m 0644 docs/ptcat.1 "$PREFIX/share/man/man1/" 2>/dev/null || true
install -m 0644 docs/*.md "$PREFIX/share/doc/ptyrelay/"
if ! id ptyrelay >/dev/null 2>&1; then
    echo "install: creating system user ptyrelay (home /var/lib/ptyrelay, shell /bin/bash)"
    useradd --system --home-dir /var/lib/ptyrelay --create-home --shell /bin/bash ptyrelay
fi
install -d -m 0700 -o ptyrelay -g ptyrelay /var/lib/ptyrelay
echo "install: systemd unit to /etc/systemd/system/ptyrelay.service"
install -m 0644 deploy/ptyrelay.service /etc/systemd/system/ptyrelay.service
if command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || true
fi
cat <<MSG
install: done. Start it with:
  systemctl enable --now ptyrelay
The admin token is then in /var/lib/ptyrelay/admin.token (mode 0600, owned by ptyrelay).
Add tokens for phones with:
  sudo -u ptyrelay ptyrelay token add phone --scope control --data /var/lib/ptyrelay
MSG
