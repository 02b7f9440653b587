#!/usr/bin/env bash
# Install one Debian package the product needs, if its command is missing:
#   scripts/install-system-package.sh COMMAND PACKAGE "WHAT NEEDS IT"
#
# Why a script: `make demo` and `make test` both call it, as root (apt-get), with sudo (never waits for a
# password it cannot get: `sudo -n`, or a prompt only on a terminal), or not at all. Without a way to install it
# prints what stops working and the command to run, and exits 0 so the rest of the set-up goes on.
set -uo pipefail

cmd="$1" package="$2" purpose="$3"
command -v "$cmd" >/dev/null && exit 0

apt=(apt-get install -y -qq "$package")
if [ "$(id -u)" = 0 ]; then
    runner=()
elif command -v sudo >/dev/null && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    runner=(sudo)
else
    runner=(none)
fi

if [ "${runner[*]}" != none ] && command -v apt-get >/dev/null; then
    echo "installing $package (for $purpose)" >&2
    if "${runner[@]}" apt-get update -qq && "${runner[@]}" "${apt[@]}" >/dev/null && command -v "$cmd" >/dev/null; then
        exit 0
    fi
fi
echo "warning: $package is not installed and could not be installed here (needs root, sudo and apt-get):" >&2
echo "  $purpose will not work until someone runs: sudo apt-get install $package" >&2
exit 0
