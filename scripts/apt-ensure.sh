#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet (nothing to do: no apt-get call at all).
#   scripts/apt-ensure.sh PACKAGE...
# Runs apt-get through sudo when not root; waits up to 15 minutes for another apt/dpkg run to finish.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "apt-ensure: installing ${missing[*]}"
$sudo apt-get update -q >/dev/null
$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
  --no-install-recommends "${missing[@]}"
