#!/usr/bin/env bash
# Installs the Debian packages hullscan's tests, demo and benchmarks use, only those missing.
set -euo pipefail
want=(docker-registry skopeo umoci rpm apache2-utils golang-go ruby zstd binutils debootstrap composer
      python3-rpm php-cli nodejs node-semver golang-github-knqyf263-go-apk-version-dev libmaven3-core-java
      default-jre-headless clamav clamav-daemon whois postgresql redis-server chromium)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package starts a registry on :5000 where systemd runs; tests start their own on free ports.
