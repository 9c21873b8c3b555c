#!/bin/sh
# Installs the Debian 12 packages ptyrelay needs to build and test, and only those that are missing.
# Safe to run repeatedly and without a terminal (CI): it never prompts.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev libev-dev libwebsockets-evlib-ev \
libwebsockets-dev libssl-dev libsqlite3-dev libmsgpack-dev libcriterion-dev libjansson-dev \
tmux procps openssl perl"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all build and test packages are present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "install-deps: not root and no sudo; please install:$missing" >&2
        exit 1
    fi
fi

echo "install-deps: installing missing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
echo "install-deps: done"
