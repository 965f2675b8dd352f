"""A wrong profile is reported as `file:line: field: message`, one line per problem, with the
line where the problem stands."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from hub_profiles.validate import load_file, load_text

# Line numbers below are counted in this text: keep it as it is, or fix the expectations.
GOOD = textwrap.dedent("""\
    name: test_relay
    title: Test relay
    version: "1"
    device_kinds: [speaker]
    capabilities: [power.switch, audio.volume]
    driver: mqtt
    mqtt: {prefix: t}
    commands:
      power:
        topic: "{prefix}/cmnd/{address}/POWER"
        payload: "{state}"
        values:
          state: {value: "{params.on}", map: {true: ON, false: OFF}}
      set_volume:
        topic: "{prefix}/cmnd/{address}/Volume"
        payload: "{vol}"
        values:
          vol: {value: "{params.level}", scale: {from: [0, 100], to: [0, 15]}}
    """)
LINE = re.compile(r"^[^\s:]+\.yaml:\d+: [A-Za-z0-9_.\[\]()]+: \S.*$")


def errors_of(text: str, file: str = "tasmota_speaker.yaml") -> list[str]:
    profile, errors = load_text(text, file)
    assert profile is None, "expected the profile to be refused"
    lines = [str(e) for e in errors]
    for line in lines:
        assert LINE.match(line) and "\n" not in line, line
    return lines


def test_the_base_profile_is_valid() -> None:
    profile, errors = load_text(GOOD, "good.yaml")
    assert errors == [] and profile is not None
    # YAML 1.1 would read the unquoted ON/OFF as booleans; profiles use YAML 1.2 booleans.
    assert profile.commands["power"].values["state"].transform.mapping == ((True, "ON"), (False, "OFF"))


@pytest.mark.parametrize("old,new,expected", [
    # unknown keys, at every level, on the key's own line
    ("title: Test relay", "title: Test relay\ncolour: red",
     "tasmota_speaker.yaml:3: profile: unknown key colour"),
    ('    payload: "{vol}"', '    paylod: "{vol}"',
     "tasmota_speaker.yaml:16: commands.set_volume: unknown key paylod (did you mean payload?)"),
    ("mqtt: {prefix: t}", "mqtt: {prefix: t, qoss: 1}",
     "tasmota_speaker.yaml:7: mqtt: unknown key qoss (did you mean qos?)"),
    # the closed capability vocabulary
    ("capabilities: [power.switch, audio.volume]", "capabilities: [power.switch, audio.volume,\n  audio.teleport]",
     "tasmota_speaker.yaml:6: capabilities: audio.teleport is not in the vocabulary"),
    # hub verbs only
    ("  set_volume:", "  teleport:\n    topic: x\n  set_volume:",
     "tasmota_speaker.yaml:14: commands: unknown verb teleport"),
    # placeholders
    ('    payload: "{vol}"', '    payload: "{params.lvl}"',
     "tasmota_speaker.yaml:16: commands.set_volume.payload: unknown placeholder {params.lvl} "
     "(did you mean {params.level}?)"),
    ('    payload: "{vol}"', '    payload: "{params level}"',
     "tasmota_speaker.yaml:16: commands.set_volume.payload: bad placeholder {params level}"),
    ('    payload: "{vol}"', '    payload: "{vol"',
     "tasmota_speaker.yaml:16: commands.set_volume.payload: unbalanced '{'"),
    ('    topic: "{prefix}/cmnd/{address}/POWER"', '    topic: "{prefix}/cmnd/{adress}/POWER"',
     "tasmota_speaker.yaml:10: commands.power.topic: unknown placeholder {adress} (did you mean {address}?)"),
    ('    payload: "{vol}"', '    payload: {level: "{vol}", text: "{text}"}',
     "tasmota_speaker.yaml:16: commands.set_volume.payload.text: unknown placeholder {text}"),
    # scales
    ("scale: {from: [0, 100], to: [0, 15]}", "scale: {from: [0, 100]}",
     "tasmota_speaker.yaml:18: commands.set_volume.values.vol.scale.to: is required"),
    ("scale: {from: [0, 100], to: [0, 15]}", "scale: {from: [5, 5], to: [0, 15]}",
     "tasmota_speaker.yaml:18: commands.set_volume.values.vol.scale.from: the two ends must differ"),
    ("scale: {from: [0, 100], to: [0, 15]}", "scale: {from: [0, 100], to: [0, high]}",
     "tasmota_speaker.yaml:18: commands.set_volume.values.vol.scale.to: expected two numbers"),
    ("scale: {from: [0, 100], to: [0, 15]}", "scale: {from: [0, 50], to: [0, 15]}",
     "tasmota_speaker.yaml:18: commands.set_volume.values.vol.scale.from: 0–50 does not cover {params.level}, "
     "which ranges 0–100"),
    ('map: {true: ON, false: OFF}', 'scale: {from: [0, 1], to: [0, 15]}',
     "tasmota_speaker.yaml:13: commands.power.values.state.scale: scale needs a number, but {params.on} is "
     "true/false"),
    # maps must cover what the hub can send
    ('map: {true: ON, false: OFF}', 'map: {true: ON}',
     "tasmota_speaker.yaml:13: commands.power.values.state.map: no entry for false"),
    # top-level values
    ("name: test_relay", "name: Test-Relay",
     "tasmota_speaker.yaml:1: name: 'Test-Relay' cannot be a vendor name"),
    ('version: "1"', "version: 1.10",
     "tasmota_speaker.yaml:3: version: write the version as text in quotes"),
    ("device_kinds: [speaker]", "device_kinds: [speaker, lamp]",
     "tasmota_speaker.yaml:4: device_kinds: lamp is not a device kind"),
    ("driver: mqtt", "driver: zigbee", "tasmota_speaker.yaml:6: driver: zigbee is not a driver"),
    ("  power:", "  power:\n    topic: x\n  power:", "tasmota_speaker.yaml:11: commands: duplicate key power "
                                                    "(first on line 9)"),
    # capabilities and commands must agree
    ("capabilities: [power.switch, audio.volume]", "capabilities: [power.switch]",
     "tasmota_speaker.yaml:14: commands: set_volume needs the capability audio.volume"),
    ("capabilities: [power.switch, audio.volume]", "capabilities: [power.switch, audio.volume, audio.stop]",
     "tasmota_speaker.yaml:5: capabilities: audio.stop is declared but commands has no stop"),
    ("capabilities: [power.switch, audio.volume]", "capabilities: [power.switch, audio.volume, status.faults]",
     "tasmota_speaker.yaml:5: capabilities: status.faults is declared but status.fields maps none of faults"),
    ("mqtt: {prefix: t}", "mqtt: {qos: 1}",
     "tasmota_speaker.yaml:7: mqtt.prefix: topics use {prefix} but mqtt.prefix gives no default"),
])
def test_each_problem_is_reported_where_it_stands(old: str, new: str, expected: str) -> None:
    assert old in GOOD, old
    lines = errors_of(GOOD.replace(old, new, 1))
    assert any(line.startswith(expected) for line in lines), "\n".join(lines)


def test_yaml_syntax_error_names_its_line() -> None:
    text = GOOD.replace('  set_volume:', '  set_volume: [\n', 1)
    [line] = errors_of(text)
    assert re.match(r"tasmota_speaker\.yaml:1[4-9]: yaml: not valid YAML: ", line), line
    [tab] = errors_of("name: x\n\ttitle: y\n")
    assert tab.startswith("tasmota_speaker.yaml:2: yaml: not valid YAML")


def test_every_problem_is_reported_in_one_pass() -> None:
    text = (GOOD.replace("title: Test relay", "title: Test relay\ncolour: red")
                .replace("audio.volume]", "audio.volume, audio.teleport]")
                .replace('payload: "{vol}"', 'payload: "{params.lvl}"'))
    lines = errors_of(text)
    assert len(lines) == 3, lines
    assert [int(line.split(":")[1]) for line in lines] == sorted(int(line.split(":")[1]) for line in lines)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    _profile, [err] = load_file(missing, "nope.yaml")
    assert str(err).startswith("nope.yaml: (file): cannot read it")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    _profile, [err] = load_file(empty, "empty.yaml")
    assert str(err) == "empty.yaml:1: (file): the profile is empty"


ECHO = GOOD.replace('''      state: {value: "{params.on}", map: {true: ON, false: OFF}}''',
                    '''      state: {value: "{params.on}", map: {true: ON, false: OFF}}
    ack:
      mode: echo
      topic: "{prefix}/stat/{address}/RESULT"
      match: {POWER: "{state}"}''')


def test_ack_rules() -> None:
    assert load_text(ECHO, "echo.yaml")[1] == []
    [line] = errors_of(ECHO.replace('match: {POWER: "{state}"}', 'match: {POWER: "{params.on}"}'))
    assert line.startswith("tasmota_speaker.yaml:17: commands.power.ack.match.POWER: unknown placeholder "
                           "{params.on}"), line  # the device never saw params.on, only {state}
    [line] = errors_of(ECHO.replace('"{prefix}/stat/{address}/RESULT"', '"{prefix}/stat/x{address}/RESULT"'))
    assert line == "tasmota_speaker.yaml:16: commands.power.ack.topic: {address} must be a whole topic level, " \
                   "between slashes"
    [line] = errors_of(ECHO.replace("mode: echo", "mode: reply\n      id: id\n      ok: ok")
                       .replace('      match: {POWER: "{state}"}\n', ""))
    assert line.startswith("tasmota_speaker.yaml:11: commands.power.payload: ack mode reply needs {command_id}")
    [line] = errors_of(ECHO.replace("mode: echo", "mode: maybe"))
    assert line.startswith("tasmota_speaker.yaml:15: commands.power.ack.mode: mode must be one of none, echo, reply")


MODBUS = textwrap.dedent("""\
    name: test_amp
    title: Test amplifier
    version: "1"
    device_kinds: [speaker]
    capabilities: [audio.volume]
    driver: modbus_tcp
    commands:
      set_volume:
        write:
          - register: 1
            value: "{params.level}"
            scale: {from: [0, 100], to: [0, 31]}
            verify: true
    """)


def test_modbus_rules() -> None:
    assert load_text(MODBUS, "amp.yaml")[1] == []
    [line] = errors_of(MODBUS.replace("      - register: 1", "      - register: 1\n        coil: 2"))
    assert line.startswith("tasmota_speaker.yaml:10: commands.set_volume.write[0]: give exactly one of register, coil")
    [line] = errors_of(MODBUS.replace("to: [0, 31]", "to: [0, 70000]"))
    assert "commands.set_volume.write[0].scale: a scaled value must land on integers 0–65535" in line
    [line] = errors_of(MODBUS.replace("verify: true", "verify: sometimes"))
    assert line.startswith("tasmota_speaker.yaml:13: commands.set_volume.write[0].verify: expected true, false or")
    [line] = errors_of(MODBUS.replace("driver: modbus_tcp", "driver: modbus_tcp\nmqtt: {prefix: x}"))
    assert line.startswith("tasmota_speaker.yaml:7: mqtt: settings for mqtt, but the driver is modbus_tcp")
    text = MODBUS + "status:\n  fields:\n    volume: {register: 1, scale: {from: [0, 31], to: [0, 100]}}\n" \
                    "    loudness: {register: 2}\n"
    [line] = errors_of(text)
    assert line.startswith("tasmota_speaker.yaml:17: status.fields: unknown field loudness")
