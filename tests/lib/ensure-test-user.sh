#!/usr/bin/env bash
# ensure-test-user.sh [NAME [GROUP...]]: creates the unprivileged test user
# (default berthtest) once, and makes it a member of each GROUP (created when
# missing) as a supplementary group. Tests run in parallel, and two useradd
# calls at once fail on /etc/passwd's lock, so creation is serialised with flock.
set -eu
name=${1:-${BERTH_TEST_USER:-berthtest}}
exec 9>/run/berth-test-user.lock
flock 9
id "$name" >/dev/null 2>&1 || useradd -m "$name"
for group in "${@:2}"; do
  getent group "$group" >/dev/null || groupadd "$group"
  id -nG "$name" | tr ' ' '\n' | grep -qx "$group" || usermod -aG "$group" "$name"
done
