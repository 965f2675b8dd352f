"""The simulator behaves like the controller: it acts on writes, guards its registers, and its
fault switches do what the adapter's fault tests rely on."""
from __future__ import annotations

import time

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from hub_modbus_board.board import BoardUnit, UnitSpec
from hub_modbus_board.registers import (FLAG_UNICODE, HR_ACK_SEQ, HR_BRIGHTNESS, HR_COMMAND_SEQ, HR_TEXT,
                                        HR_TEXT_FLAGS, HR_TEXT_LENGTH, HR_VOLUME, IR_HEARTBEAT, RESULT_NOT_ASCII,
                                        pack_text)
from modbus_board_helpers import VIETNAMESE, wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(make_sim):
    sim = make_sim([1, UnitSpec(2, unicode=False)])
    c = ModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
    assert c.connect()
    yield sim, c
    c.close()


def _show(c: ModbusTcpClient, unit: int, text: bytes, seq: int) -> None:
    assert not c.write_registers(HR_TEXT, pack_text(text), device_id=unit).isError()
    assert not c.write_registers(HR_TEXT_LENGTH, [len(text), 0, 1, 0], device_id=unit).isError()
    assert not c.write_register(HR_COMMAND_SEQ, seq, device_id=unit).isError()


def test_setpoints_apply_on_commit_and_the_sequence_is_acked(client) -> None:
    sim, c = client
    c.write_register(HR_BRIGHTNESS, 30, device_id=1)
    assert sim.unit(1).brightness == 80  # a setpoint alone changes nothing yet
    c.write_register(HR_COMMAND_SEQ, 41, device_id=1)
    assert sim.unit(1).brightness == 30
    assert c.read_holding_registers(HR_COMMAND_SEQ, count=3, device_id=1).registers == [41, 41, 0]
    assert sim.unit(1).commits == 1 and sim.unit(2).commits == 0  # units are independent


def test_text_is_shown_byte_identical(client) -> None:
    sim, c = client
    _show(c, 1, VIETNAMESE.encode(), 1)
    assert sim.unit(1).text == VIETNAMESE and sim.unit(1).text_bytes == VIETNAMESE.encode()


def test_ascii_board_refuses_utf8_bytes_through_the_result_register(client) -> None:
    sim, c = client
    assert c.read_holding_registers(HR_TEXT_FLAGS, count=1, device_id=2).registers == [0]
    assert c.read_holding_registers(HR_TEXT_FLAGS, count=1, device_id=1).registers == [FLAG_UNICODE]
    _show(c, 2, VIETNAMESE.encode(), 5)
    assert c.read_holding_registers(HR_ACK_SEQ, count=2, device_id=2).registers == [5, RESULT_NOT_ASCII]
    assert sim.unit(2).text == ""


@pytest.mark.parametrize("call,code", [
    (lambda c: c.read_holding_registers(7, count=2, device_id=1), 2),  # a hole in the map
    (lambda c: c.write_register(HR_ACK_SEQ, 9, device_id=1), 2),  # read-only
    (lambda c: c.write_register(HR_BRIGHTNESS, 101, device_id=1), 3),
    (lambda c: c.write_register(HR_VOLUME, 32, device_id=1), 3),
    (lambda c: c.write_register(HR_TEXT_LENGTH, 257, device_id=1), 3),
    (lambda c: c.read_coils(0, count=1, device_id=1), 1),
    (lambda c: c.read_holding_registers(0, count=1, device_id=9), 11),  # no such unit behind the gateway
])
def test_the_map_is_guarded_with_exception_codes(client, call, code: int) -> None:
    _sim, c = client
    rr = call(c)
    assert rr.isError() and rr.exception_code == code


def test_flag_bit0_belongs_to_the_device(client) -> None:
    _sim, c = client
    c.write_register(HR_TEXT_FLAGS, 0, device_id=1)
    c.write_register(HR_TEXT_FLAGS, FLAG_UNICODE, device_id=2)
    assert c.read_holding_registers(HR_TEXT_FLAGS, count=1, device_id=1).registers == [FLAG_UNICODE]
    assert c.read_holding_registers(HR_TEXT_FLAGS, count=1, device_id=2).registers == [0]


def test_heartbeat_ticks_every_second_unless_switched_off(client) -> None:
    sim, c = client
    first = c.read_input_registers(IR_HEARTBEAT, count=1, device_id=1).registers[0]
    assert wait_until(lambda: c.read_input_registers(IR_HEARTBEAT, count=1, device_id=1).registers[0] > first, 5)
    sim.set_faults(1, no_heartbeat=True)
    frozen = sim.unit(1).heartbeat
    time.sleep(1.2)
    assert c.read_input_registers(IR_HEARTBEAT, count=1, device_id=1).registers[0] == frozen


def test_fault_switches(client) -> None:
    sim, c = client
    sim.set_faults(1, exception_on_write=True)
    rr = c.write_register(HR_BRIGHTNESS, 10, device_id=1)
    assert rr.isError() and rr.exception_code == 4
    sim.set_faults(1, exception_on_write=False, ack_without_acting=True)
    c.write_register(HR_BRIGHTNESS, 10, device_id=1)
    c.write_register(HR_COMMAND_SEQ, 3, device_id=1)
    assert c.read_holding_registers(HR_ACK_SEQ, count=1, device_id=1).registers == [3]
    assert sim.unit(1).brightness == 80  # acked, not acted on
    sim.set_faults(1, ack_without_acting=False, mangle_text=True, wrong_volume=True)
    c.write_register(HR_VOLUME, 10, device_id=1)
    _show(c, 1, VIETNAMESE.encode(), 4)
    assert sim.unit(1).text == "Thong bao khan: bao so 3" and sim.unit(1).volume != 10
    with pytest.raises(ValueError, match="unknown fault"):
        sim.set_faults(1, explode=True)


def test_unresponsive_unit_times_out_while_its_neighbour_answers(client) -> None:
    sim, c = client
    sim.set_faults(1, unresponsive=True)
    with pytest.raises(ModbusIOException):
        c.write_register(HR_BRIGHTNESS, 10, device_id=1)
    c.close()  # a late answer must not be taken for the next one
    assert c.connect()
    assert not c.read_holding_registers(0, count=1, device_id=2).isError()
    sim.set_faults(1, unresponsive=False)
    assert sim.unit(1).brightness == 80 and not c.read_holding_registers(0, count=1, device_id=1).isError()


def test_restart_keeps_the_port_and_the_units_state(make_sim) -> None:
    sim = make_sim([1])
    port = sim.port
    sim.set_alarms(1, mains_lost=True)
    sim.stop()
    assert not sim.running
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
    assert not c.connect()  # refused while it is down
    sim.start()
    assert sim.port == port and sim.unit(1).alarms == ("mains_lost",)
    assert c.connect() and not c.read_input_registers(0, count=9, device_id=1).isError()
    c.close()


def test_text_with_a_duration_disappears_after_it() -> None:
    clock = FakeClock()
    unit = BoardUnit(UnitSpec(1), clock=clock)
    data = b"Hop to dan pho"
    assert unit.write_holding(HR_TEXT, pack_text(data)) is None
    assert unit.write_holding(HR_TEXT_LENGTH, [len(data), 0, 0, 60]) is None
    assert unit.write_holding(HR_COMMAND_SEQ, [1]) is None
    assert unit.state().text == "Hop to dan pho" and unit.state().duration_s == 60
    clock.now += 59
    assert unit.state().text
    clock.now += 1
    assert unit.state().text == "" and unit.read_input(8, 1) == [0]


def test_alarms_show_in_the_fault_bits() -> None:
    unit = BoardUnit(UnitSpec(1))
    unit.set_alarms(amplifier_overheat=True, speaker_line_open=True)
    assert unit.read_input(4, 1) == [0b011]
    unit.set_alarms(amplifier_overheat=False)
    assert unit.read_input(4, 1) == [0b010] and unit.state().alarms == ("speaker_line_open",)
