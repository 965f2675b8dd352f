"""Carrying out one command on one unit: setpoints, commit, ack register, read-back; and a run of
units behind one endpoint over one connection."""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from hub.vendor import Outcome, Outgoing, Result

from hub_modbus_board import commands
from hub_modbus_board.addressing import BoardAddress
from hub_modbus_board.client import Connection, DeviceException, LinkDown, ModbusFault, NoResponse
from hub_modbus_board.registers import (COMMAND_BLOCK, HR_COMMAND_SEQ, HR_TEXT_FLAGS, IR_TEXT, RESULT_OK, RESULTS,
                                        STATUS_BLOCK, TEXT_MAX_BYTES, decode_status, registers_to_bytes,
                                        unpack_text)

log = logging.getLogger(__name__)

ACK_POLL_S = 0.02


def _next_seq(*in_use: int) -> int:
    """1-65535, different from the sequence and ack registers as read, so an old ack can never
    pass for the new command's."""
    seq = max(in_use) % 0xFFFF + 1
    while seq in in_use:
        seq = seq % 0xFFFF + 1
    return seq


def deliver(conn: Connection, address: BoardAddress, item: Outgoing, ack_timeout_s: float) -> Result:
    """ACKED with read-back detail, or FAILED for good; link trouble is raised as ModbusFault."""
    device, env = item.device, item.envelope
    unit = address.unit
    expires = env.expires_at if env.expires_at.tzinfo else env.expires_at.replace(tzinfo=timezone.utc)
    if expires <= datetime.now(timezone.utc):  # a long run of units behind a slow gateway
        return Result(device.id, Outcome.FAILED, reason="expired before it could be sent")
    try:
        commands.precheck(device, env)
        flags = conn.read_holding(unit, HR_TEXT_FLAGS, 1)[0] if commands.needs_flags(env) else None
        plan = commands.plan(device, env, flags)
    except commands.CommandError as exc:
        return Result(device.id, Outcome.FAILED, reason=str(exc))
    seq_now, ack_now, _ = conn.read_holding(unit, *COMMAND_BLOCK)
    seq = _next_seq(seq_now, ack_now)
    for first, values in plan.writes:
        if values:
            conn.write(unit, first, values)
    conn.write(unit, HR_COMMAND_SEQ, [seq])
    deadline = time.monotonic() + ack_timeout_s
    while True:
        current, ack, result = conn.read_holding(unit, *COMMAND_BLOCK)
        # Another hub committing after us makes the device apply our setpoints too (a commit
        # applies all of them), so its ack counts; the read-back below decides either way.
        if ack == seq or (current != seq and ack == current):
            break
        if time.monotonic() >= deadline:
            return Result(device.id, Outcome.FAILED, transient=True,
                          reason=f"{address}: sequence {seq} not acknowledged within {ack_timeout_s:g} s "
                                 f"(timeout; HR 201 still {ack})")
        time.sleep(ACK_POLL_S)
    if result != RESULT_OK:
        return Result(device.id, Outcome.FAILED, detail={"sequence": seq, "result": result},
                      reason=f"device refused the command: {RESULTS.get(result, 'unknown result')} "
                             f"(HR 202 = {result})")
    try:
        status = decode_status(registers_to_bytes(conn.read_input(unit, *STATUS_BLOCK)))
    except ValueError as exc:
        return Result(device.id, Outcome.FAILED, reason=f"read-back status is invalid: {exc}")
    on_board = b""
    if plan.read_text and status.text_length:
        n = min(status.text_length, TEXT_MAX_BYTES)
        on_board = unpack_text(conn.read_input(unit, IR_TEXT, math.ceil(n / 2)), n)
    problem, detail = plan.check(status, on_board)
    detail["sequence"] = seq
    if problem:
        return Result(device.id, Outcome.FAILED, detail=detail,
                      reason=f"{problem} (the device acknowledged sequence {seq})")
    return Result(device.id, Outcome.ACKED, detail=detail)


def deliver_group(conn: Connection, items: Sequence[tuple[BoardAddress, Outgoing]], ack_timeout_s: float,
                  max_timeouts: int) -> list[Result]:
    """Every unit behind one endpoint, in turn, over its one connection."""
    results: list[Result] = []
    timeouts_in_a_row = 0
    with conn.session():
        for i, (address, item) in enumerate(items):
            if timeouts_in_a_row >= max_timeouts:
                # A dead gateway would otherwise cost a timeout per unit and outlast the job.
                why = (f"{conn.endpoint}: not tried, the endpoint stopped answering "
                       f"({timeouts_in_a_row} units in a row timed out)")
                results.extend(Result(it.device.id, Outcome.FAILED, reason=why, transient=True)
                               for _a, it in items[i:])
                break
            try:
                results.append(deliver(conn, address, item, ack_timeout_s))
                timeouts_in_a_row = 0
            except LinkDown as exc:
                results.extend(Result(it.device.id, Outcome.FAILED, reason=str(exc), transient=True)
                               for _a, it in items[i:])
                break
            except NoResponse as exc:
                timeouts_in_a_row += 1
                results.append(Result(item.device.id, Outcome.FAILED, reason=str(exc), transient=True))
            except DeviceException as exc:
                timeouts_in_a_row = 0
                results.append(Result(item.device.id, Outcome.FAILED, reason=str(exc), transient=exc.transient,
                                      detail={"modbus_exception": exc.code}))
            except ModbusFault as exc:
                results.append(Result(item.device.id, Outcome.FAILED, reason=str(exc), transient=True))
    return results
