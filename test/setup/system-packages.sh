#!/usr/bin/env bash
# Installs the Debian packages the tests need. Idempotent: installs only what is missing, and runs
# apt-get update only when it has to install. Needs root (CI runs as root); prints what it does.
set -euo pipefail

# package -> a command it provides (checked to decide whether to install)
declare -A PACKAGES=(
  [prometheus]=promtool   # `promtool check metrics` on the signaling server's /metrics
  [coturn]=turnserver     # real STUN/TURN for the werift agents' tests
  [chromium]=chromium     # a browser as an independent WebRTC peer (driven by playwright-core)
  [nginx]=nginx           # the load balancer ifmesh deploy puts in front of signaling instances
  [tmux]=tmux             # a real terminal for the progress view's test
  [curl]=curl             # the runbook's own curl | jq lines, run as tests
  [jq]=jq
  [logrotate]=/usr/sbin/logrotate  # maintenance daily rotates its own logs with it (not on a user PATH)
  [openssl]=openssl     # test certificates for ifmesh preflight (expired, mismatched key)
  [redis-server]=redis-server   # the store signaling instances share in a cluster (--cluster redis://)
  [postgresql]=/usr/lib/postgresql/*/bin/initdb  # IF.witness on PostgreSQL; its binaries are not on PATH
  [prometheus-alertmanager]=amtool  # monitoring export's Alertmanager config: amtool check-config and a real delivery
  # systemd-nspawn boots a real systemd for the systemd supervisor's tests (no systemd as PID 1 here);
  # on the host's own /usr (--volatile=yes), so no rootfs download (mmdebstrap) is needed.
  [systemd-container]=systemd-nspawn
  [nftables]=/usr/sbin/nft      # the NAT lab's routers (ifmesh lab): masquerade, fully-random for symmetric NAT
  [iproute2]=/usr/sbin/ip       # the NAT lab's namespaces and veths (ip netns, ip link)
  [conntrack]=/usr/sbin/conntrack  # the NAT lab flushes a router's mappings after a rule change
  [zsh]=zsh                     # ifmesh completion zsh: the script passes zsh -n
  [fish]=fish                   # ifmesh completion fish: fish -n, and fish completes from it (complete -C)
)

# A command on PATH, or (for packages such as postgresql) a path pattern that must match a file.
provides() {
  case "$1" in
    /*) compgen -G "$1" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for pkg in "${!PACKAGES[@]}"; do
  provides "${PACKAGES[$pkg]}" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (${!PACKAGES[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "system packages missing: ${missing[*]}; run this script as root (apt-get install)" >&2
  exit 1
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps prometheus from pulling in its web UI assets' recommends;
# policy-rc.d stops any package from starting a daemon during the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
  provides "${PACKAGES[$pkg]}" || { echo "installing $pkg did not provide ${PACKAGES[$pkg]}" >&2; exit 1; }
done
echo "system packages: installed ${missing[*]}"
