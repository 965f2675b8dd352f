#!/usr/bin/env bash
# Make sure Redis and Mosquitto answer on loopback; start them, installing the Debian packages
# first when they are missing and we may (root or passwordless sudo; HUB_NO_INSTALL unset).
# PostgreSQL is started when installed but not running; its tests skip, visibly, without it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
REDIS_PORT=${HUB_REDIS_PORT:-6379}
MQTT_PORT=${HUB_MQTT_PORT:-1883}

say() { echo "services: $*"; }

answers() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

# A fresh machine often runs unattended-upgrades (or cloud-init's apt) right after boot: its
# apt-get holds the dpkg lock for minutes. Wait for it rather than give up (HUB_APT_LOCK_WAIT_S).
APT_LOCK_WAIT_S=${HUB_APT_LOCK_WAIT_S:-900}
apt_locked() {
  command -v fuser >/dev/null || return 1  # no way to tell: apt-get's own Lock::Timeout waits
  as_root fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock >/dev/null 2>&1
}
wait_for_apt() {
  local waited=0
  while apt_locked; do
    [ "$waited" = 0 ] && say "another apt-get/dpkg holds the package lock; waiting up to ${APT_LOCK_WAIT_S} s"
    [ "$waited" -ge "$APT_LOCK_WAIT_S" ] && { say "the package lock is still held after ${waited} s"; return 1; }
    sleep 5; waited=$((waited + 5))
  done
}
apt() {  # apt-get with the lock waited for, by us first and by apt-get itself (a race between the two)
  wait_for_apt || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_S" "$@"
}

apt_updated=""
install_pkg() {  # package
  if [ -n "${HUB_NO_INSTALL:-}" ] || ! command -v apt-get >/dev/null; then
    say "$1 is missing and I may not install it (install it, or unset HUB_NO_INSTALL)"; return 1
  fi
  if [ -z "$apt_updated" ]; then apt update -qq || return 1; apt_updated=1; fi
  say "installing $1"
  apt install -y -qq "$1" >/dev/null || return 1
}

wait_for() {  # name port
  for _ in $(seq 1 50); do answers 127.0.0.1 "$2" && return 0; sleep 0.2; done
  say "$1 did not come up on 127.0.0.1:$2"; return 1
}

if answers 127.0.0.1 "$REDIS_PORT"; then
  say "redis answers on 127.0.0.1:$REDIS_PORT"
else
  command -v redis-server >/dev/null || install_pkg redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp --logfile /tmp/hub-redis.log
  wait_for redis "$REDIS_PORT" && say "redis started on 127.0.0.1:$REDIS_PORT"
fi

if answers 127.0.0.1 "$MQTT_PORT"; then
  say "mosquitto answers on 127.0.0.1:$MQTT_PORT"
else
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || install_pkg mosquitto
  mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  sed "s/@PORT@/$MQTT_PORT/" "$here/deploy/mosquitto/dev.conf" > /tmp/hub-mosquitto.conf
  # a broker that persists must be able to write where it does, as the user it runs as
  "$here/deploy/mosquitto/persistence-dir.sh" /tmp/hub-mosquitto.conf >/dev/null
  "$mosq" -d -c /tmp/hub-mosquitto.conf
  wait_for mosquitto "$MQTT_PORT" && say "mosquitto started on 127.0.0.1:$MQTT_PORT"
fi

# Tools the plugin tests drive as real processes: Snapcast (a real multi-room audio system)
# and socat (pseudo-terminal pairs standing in for RS-485 lines); openssl makes the security
# tests' throw-away TLS certificates for a broker run from production.conf; stress-ng loads the
# CPUs to show that the suite passes on a busy machine (`stress-ng --cpu 2` beside `make test`).
# Speech: espeak-ng is the offline Vietnamese voice (hub-speech-espeak-ng); ffmpeg and ffprobe
# join, loudness-normalise (EBU R128) and encode synthesised bulletins and check uploaded audio;
# sox (play, soxi) lets an operator listen to and inspect audio files on the hub by hand.
# icecast2 carries live broadcasts and relays (hub.broadcast.icecast runs it with a config of its
# own, as an unprivileged user); install_pkg's DEBIAN_FRONTEND=noninteractive answers its debconf
# questions with the defaults, which we never use, and policy-rc.d or no init leaves it stopped.
for tool in snapserver:snapserver snapclient:snapclient socat:socat openssl:openssl stress-ng:stress-ng \
            espeak-ng:espeak-ng ffmpeg:ffmpeg ffprobe:ffmpeg sox:sox icecast2:icecast2; do
  bin=${tool%%:*}; pkg=${tool##*:}
  if command -v "$bin" >/dev/null || [ -x "/usr/bin/$bin" ]; then
    say "$bin found"
  else
    install_pkg "$pkg" && say "$bin installed" || say "$bin missing: its plugin's tests will fail"
  fi
done

# Prometheus scrapes the metrics output in its own test (plugins/outputs/prometheus), started by the
# test on a loopback port of its own; without recommends (node exporter, smartmontools, ipmitool…),
# which that test never uses. The package's own service is left alone.
if command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ]; then
  say "prometheus found"
elif [ -n "${HUB_NO_INSTALL:-}" ] || ! command -v apt-get >/dev/null; then
  say "prometheus missing: the metrics output's scrape test will fail"
else
  if [ -z "$apt_updated" ]; then apt update -qq && apt_updated=1; fi
  say "installing prometheus"
  apt install -y -qq --no-install-recommends prometheus >/dev/null && say "prometheus installed" \
    || say "prometheus missing: the metrics output's scrape test will fail"
fi

# Chromium runs the console's browser tests (tests/console/, Playwright for Python driving
# /usr/bin/chromium: Debian's package, never a browser download); DejaVu gives its screenshots the
# Vietnamese letters with their diacritics.
if command -v chromium >/dev/null || [ -x /usr/bin/chromium ]; then
  say "chromium found"
else
  install_pkg chromium && say "chromium installed" || say "chromium missing: the console's browser tests will fail"
fi
if ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
  install_pkg fonts-dejavu-core || say "fonts-dejavu-core missing: screenshots may lack Vietnamese letters"
fi

if answers 127.0.0.1 5432; then
  say "postgresql answers on 127.0.0.1:5432 (its tests will run)"
elif command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null \
    && say "postgresql started" || say "postgresql not started (its tests will be skipped)"
else
  say "postgresql not installed (its tests will be skipped; set HUB_TEST_POSTGRES_URL to use one)"
fi
