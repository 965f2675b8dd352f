"""`hub-http-gateway-sim`: run a simulated vendor gateway from the command line until Ctrl-C."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from hub_http_gateway.simulator import GatewaySim

KEY_ENV = "HUB_HTTP_GATEWAY_SIM_KEY"


def _ids(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub-http-gateway-sim",
                                description="Simulate a vendor HTTP gateway with many IP loudspeakers behind it.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8480, help="0 picks a free port (default %(default)s)")
    p.add_argument("--api-key", default=os.environ.get(KEY_ENV),
                   help=f"the key clients must present (default: ${KEY_ENV}); required")
    p.add_argument("--count", type=int, default=10, help="number of devices (default %(default)s)")
    p.add_argument("--id-format", default="GW{:05d}", help="device ids for --count (default %(default)s)")
    p.add_argument("--first", type=int, default=1, help="first number for --id-format")
    p.add_argument("--path-prefix", default="", help="serve under this path, e.g. /gw")
    p.add_argument("--offline", type=_ids, default=[], help="ID,... of devices that are offline")
    p.add_argument("--wrong-volume", type=_ids, default=[], help="ID,... reporting volume 2 steps off")
    p.add_argument("--ack-without-acting", type=_ids, default=[], help="ID,... answering OK but doing nothing")
    p.add_argument("--bad-status", type=_ids, default=[], help="ID,... reporting volume 11 in status")
    p.add_argument("--fail-next-n", type=int, default=0, help="answer HTTP 500 to the next N batch requests")
    p.add_argument("--delay-s", type=float, default=0.0, help="delay every batch answer this long")
    p.add_argument("--accept-without-key", action="store_true", help="fault: accept unauthenticated requests")
    p.add_argument("--max-devices", type=int, default=1000, help="devices per request the gateway accepts")
    p.add_argument("--certfile", help="serve https with this certificate (PEM)")
    p.add_argument("--keyfile", help="private key for --certfile when not in the same file")
    p.add_argument("--log-level", default="WARNING")
    return p


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.api_key:
        print(f"hub-http-gateway-sim: give --api-key or set {KEY_ENV}; the gateway has no default key",
              file=sys.stderr)
        return 2
    devices = [args.id_format.format(i) for i in range(args.first, args.first + args.count)]
    try:
        sim = GatewaySim(devices, api_key=args.api_key, host=args.host, port=args.port,
                         fail_next_n=args.fail_next_n, delay_s=args.delay_s,
                         accept_without_key=args.accept_without_key, offline=args.offline,
                         wrong_volume=args.wrong_volume, ack_without_acting=args.ack_without_acting,
                         bad_status=args.bad_status, max_devices=args.max_devices, path_prefix=args.path_prefix,
                         certfile=args.certfile, keyfile=args.keyfile)
        sim.start()
    except (KeyError, ValueError, OSError) as exc:
        print(f"hub-http-gateway-sim: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"hub-http-gateway-sim: {len(devices)} devices behind {sim.url}; Ctrl-C to stop", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def main() -> None:
    sys.exit(run())
