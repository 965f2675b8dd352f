"""`hub-mqtt-sim`: run a simulated fleet from the command line until Ctrl-C."""
from __future__ import annotations

import argparse
import csv
import logging
import signal
import sys
import threading
import time
from typing import Any

from hub_mqtt_speaker.device import FAULT_SWITCHES, SimDevice, set_faults
from hub_mqtt_speaker.simulator import Fleet


def _parse_switch(text: str) -> tuple[str, str, Any]:
    """ADDR:switch[=value] -> (address, switch, value)."""
    address, _, rest = text.partition(":")
    name, _, raw = rest.partition("=")
    if not address or name not in FAULT_SWITCHES:
        raise argparse.ArgumentTypeError(f"expected ADDR:switch[=value] with a switch among "
                                         f"{', '.join(FAULT_SWITCHES)}, got {text!r}")
    if name == "ack_delay_s":
        value: Any = float(raw or "1")
    else:
        value = raw.lower() not in ("0", "false", "no", "off")
    return address, name, value


def _read_fleet_csv(path: str) -> list[SimDevice]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if rows and "address" not in rows[0]:
        raise SystemExit(f"{path}: needs a header row with columns address,kind")
    return [SimDevice(address=row["address"].strip(), kind=(row.get("kind") or "speaker").strip())
            for row in rows if (row.get("address") or "").strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub-mqtt-sim",
                                description="Simulate MQTT IP speakers and LED boards for the hub.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--prefix", default="hub/mqtt_speaker", help="topic prefix (default %(default)s)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--count", type=int, default=10, help="number of devices (default %(default)s)")
    who.add_argument("--fleet", metavar="CSV", help="CSV file with columns address,kind")
    p.add_argument("--address-format", default="SPK{:04d}", help="for --count (default %(default)s)")
    p.add_argument("--first", type=int, default=1, help="first number for --address-format")
    p.add_argument("--kind", choices=("speaker", "led_board"), default="speaker", help="for --count")
    p.add_argument("--status-interval", type=float, default=5.0, help="seconds between status reports")
    p.add_argument("--silent", default="", metavar="ADDR,...", help="devices that never ack nor report")
    p.add_argument("--fault", action="append", default=[], type=_parse_switch, metavar="ADDR:SWITCH[=V]",
                   help=f"set a fault switch; switches: {', '.join(FAULT_SWITCHES)}")
    p.add_argument("--fetch-media", action="store_true",
                   help="speakers fetch a play's audio (Range requests) before acking, and nack if refused")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca-file")
    p.add_argument("--connect-rate", type=float, default=250.0, help="new connections per second")
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--log-level", default="WARNING")
    return p


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.fleet:
            devices = _read_fleet_csv(args.fleet)
        else:
            devices = [SimDevice(args.address_format.format(i), kind=args.kind)
                       for i in range(args.first, args.first + args.count)]
    except (OSError, ValueError, IndexError, KeyError) as exc:
        raise SystemExit(f"hub-mqtt-sim: {exc}") from None
    if not devices:
        raise SystemExit("hub-mqtt-sim: no devices to simulate")
    by_address = {d.address: d for d in devices}
    for address in filter(None, (a.strip() for a in args.silent.split(","))):
        if address not in by_address:
            raise SystemExit(f"--silent names unknown device {address}")
        by_address[address].silent = True
    for address, name, value in args.fault:
        if address not in by_address:
            raise SystemExit(f"--fault names unknown device {address}")
        set_faults(by_address[address], **{name: value})
    for device in devices:
        device.fetch_media = args.fetch_media
    fleet = Fleet(args.host, args.port, args.prefix, devices, args.status_interval,
                  username=args.username, password=args.password, tls=args.tls, ca_file=args.ca_file,
                  connect_rate=args.connect_rate)
    stop = threading.Event()
    # Both by hand: a process started in the background by a script (or under a parent that
    # ignores Ctrl-C) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    began = time.monotonic()
    try:
        fleet.start(timeout=args.start_timeout)
    except TimeoutError as exc:
        print(f"hub-mqtt-sim: {exc}", file=sys.stderr)
        return 1
    print(f"hub-mqtt-sim: {len(devices)} devices connected to {args.host}:{args.port} under "
          f"{args.prefix}/ in {time.monotonic() - began:.1f}s; Ctrl-C to stop", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()
    return 0

