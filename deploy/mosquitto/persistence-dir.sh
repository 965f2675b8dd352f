#!/bin/sh
# Create the folder a Mosquitto configuration persists to, owned by the user Mosquitto runs as,
# and check that this user can write in it.
#
#     deploy/mosquitto/persistence-dir.sh /etc/mosquitto/conf.d/hub.conf
#
# Why: Mosquitto started as root switches to the user named by its `user` option (`mosquitto`
# by default). When that user cannot write `persistence_location`, persistence fails with only
# "Permission denied" at each autosave, and every session — the ingest's, with the acks queued
# for it — is gone after the broker restarts. (The hub warns when it finds its session gone.)
set -eu
conf=${1:?usage: $0 MOSQUITTO_CONF}
[ -r "$conf" ] || { echo "persistence-dir: cannot read $conf" >&2; exit 2; }
# last occurrence wins, as in Mosquitto; values may not contain spaces
value() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$conf"; }
if [ "$(value persistence)" != "true" ]; then
  echo "persistence-dir: $conf has no 'persistence true': nothing to do"; exit 0
fi
dir=$(value persistence_location)
[ -n "$dir" ] || dir=$(pwd)  # Mosquitto's default: its working directory
user=$(value user)
[ -n "$user" ] || user=mosquitto
if [ "$(id -u)" != 0 ]; then
  # without root, Mosquitto does not switch users either, so the folder is ours to create
  mkdir -p "$dir"
  user=$(id -un)
else
  id "$user" >/dev/null 2>&1 || { echo "persistence-dir: no user '$user' (the 'user' option of $conf)" >&2; exit 1; }
  install -d -m 0750 -o "$user" -g "$(id -gn "$user")" "$dir"
  # an existing folder keeps its mode and owner with install -d on some systems: set them
  chown "$user:$(id -gn "$user")" "$dir"
fi
probe="$dir/.hub-write-test.$$"
if [ "$(id -u)" = 0 ] && [ "$user" != root ]; then
  setpriv --reuid="$user" --regid="$(id -gn "$user")" --clear-groups sh -c "touch '$probe' && rm -f '$probe'" \
    || { echo "persistence-dir: user $user cannot write in $dir (a parent folder may be closed to it)" >&2; exit 1; }
else
  touch "$probe" && rm -f "$probe"
fi
echo "persistence-dir: $dir is writable by $user"
