"""Device addresses of this vendor: "PORT_URL#BOARD", e.g. "/dev/ttyUSB0#5" or
"socket://127.0.0.1:7001#5". Imports nothing from `hub`."""
from __future__ import annotations

from dataclasses import dataclass

MIN_BOARD = 1
MAX_BOARD = 254  # 0 is broadcast (boards never answer it) and 255 is reserved


@dataclass(frozen=True)
class BoardAddress:
    port: str
    board: int

    def __str__(self) -> str:
        return f"{self.port}#{self.board}"


def parse_address(address: str) -> BoardAddress:
    """ValueError naming what is wrong. The port part is kept verbatim: it is the bus's
    identity, so devices on one bus must spell it identically."""
    port, sep, board = address.rpartition("#")
    port, board = port.strip(), board.strip()
    if not sep or not port or not board:
        raise ValueError(f"address {address!r} must be PORT_URL#BOARD, e.g. /dev/ttyUSB0#5 "
                         "or socket://127.0.0.1:7001#5")
    if not board.isdigit() or not board.isascii():
        raise ValueError(f"address {address!r}: board {board!r} must be a decimal number")
    number = int(board)
    if not MIN_BOARD <= number <= MAX_BOARD:
        raise ValueError(f"address {address!r}: board {number} is outside {MIN_BOARD}–{MAX_BOARD}")
    return BoardAddress(port, number)
