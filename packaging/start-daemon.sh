#!/usr/bin/env bash
# Starts the system berthd: through systemd where systemd runs, else directly
# in the background (as on our CI machines, whose PID 1 is not systemd).
# Idempotent: does nothing when a daemon already answers.
set -euo pipefail
berth=${BERTH:-berth}
berthd=${BERTHD:-berthd}
# BERTH_DAEMON=system: never answered by a user-mode daemon the client
# would otherwise start on demand.
export BERTH_DAEMON=system
if "$berth" version >/dev/null 2>&1; then
  echo "berthd already running"
  exit 0
fi
# The GPU library lists are the admin's to edit: installed once, never replaced.
for list in nvliblist.conf rocmliblist.conf; do
  [ -e "/etc/berth/$list" ] || install -D -m 0644 "$(dirname "$0")/$list" "/etc/berth/$list"
done
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  sed "s|^ExecStart=/usr/bin/berthd|ExecStart=$(command -v "$berthd")|" \
    "$(dirname "$0")/berthd.service" >/etc/systemd/system/berthd.service
  systemctl daemon-reload
  systemctl enable --now berthd
else
  mkdir -p /var/log/berth
  nohup "$berthd" --foreground >>/var/log/berth/berthd.log 2>&1 </dev/null &
fi
for _ in $(seq 50); do
  "$berth" version >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "FATAL:   berthd did not start; see /var/log/berth/berthd.log" >&2
exit 1
