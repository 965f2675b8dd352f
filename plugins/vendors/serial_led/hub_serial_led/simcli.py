"""`hub-serial-led-sim`: simulate boards on one bus from the command line until Ctrl-C."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from hub_serial_led.board import FAULT_SWITCHES, SimBoard
from hub_serial_led.simulator import SerialBoardsSim


def _boards(text: str) -> list[int]:
    """"1-4,9" -> [1, 2, 3, 4, 9]."""
    out: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            out += range(int(lo), int(hi or lo) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected board numbers like 1-4,9, got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("no boards given")
    return out


def _switch(text: str) -> tuple[int, str, Any]:
    """BOARD:switch[=value] -> (board, switch, value)."""
    board, _, rest = text.partition(":")
    name, _, raw = rest.partition("=")
    if not board.isdigit() or name not in FAULT_SWITCHES:
        raise argparse.ArgumentTypeError(f"expected BOARD:switch[=value] with a switch among "
                                         f"{', '.join(FAULT_SWITCHES)}, got {text!r}")
    value: Any
    if name in ("corrupt_next_n", "wrong_address"):
        if not raw.isdigit():
            raise argparse.ArgumentTypeError(f"{name} needs a number: {text!r}")
        value = int(raw)
    else:
        value = raw.lower() not in ("0", "false", "no", "off")
    return int(board), name, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub-serial-led-sim",
                                description="Simulate LED boards on one RS-485 bus for the hub's serial_led plugin.")
    p.add_argument("--boards", type=_boards, default=[1], metavar="N[-M],...",
                   help="board addresses on the bus (default 1)")
    p.add_argument("--ascii", type=_boards, default=[], metavar="N[-M],...",
                   help="boards with ASCII fonts only (they refuse UTF-8 text)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--tcp", default="127.0.0.1:0", metavar="HOST:PORT",
                       help="serve socket://HOST:PORT (default: a free loopback port)")
    where.add_argument("--pty", action="store_true", help="serve a pseudo-terminal made with socat")
    p.add_argument("--link", help="with --pty: also make the pty reachable at this path")
    p.add_argument("--fault", action="append", default=[], type=_switch, metavar="BOARD:SWITCH[=V]",
                   help=f"set a fault switch; switches: {', '.join(FAULT_SWITCHES)}")
    p.add_argument("--reply-delay", type=float, default=0.0, metavar="S", help="seconds before each reply")
    p.add_argument("--log-level", default="WARNING")
    return p


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    boards = {n: SimBoard(n, unicode=n not in args.ascii) for n in args.boards}
    for n, name, value in args.fault:
        if n not in boards:
            print(f"hub-serial-led-sim: --fault names board {n}, which is not in --boards", file=sys.stderr)
            return 2
        boards[n].set_faults(**{name: value})
    if args.pty:
        sim = SerialBoardsSim(boards.values(), transport="pty", link=args.link, reply_delay_s=args.reply_delay)
    else:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit():
            print(f"hub-serial-led-sim: --tcp wants HOST:PORT, got {args.tcp!r}", file=sys.stderr)
            return 2
        sim = SerialBoardsSim(boards.values(), host=host, port=int(port), reply_delay_s=args.reply_delay)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        sim.start()
    except Exception as exc:  # noqa: BLE001 - one line on stderr, not a traceback
        print(f"hub-serial-led-sim: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"serving boards {','.join(map(str, boards))} on {sim.url}", flush=True)
        while not done.wait(1.0):  # a timeout, so a signal taken by another thread still ends it
            pass
    finally:
        sim.stop()
    return 0
