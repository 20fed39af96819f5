"""Independent Modbus slave for interop tests, written against pymodbus 3.0.

Usage: python3 pymodbus_server.py MAP   (MAP is a JSON object or a path to a JSON file)

MAP: {"units": [{"unit": 1, "holding": [...], "input": [...], "coils": [...],
                 "discrete": [...]}],
      "tcpPort": 0, "serialPath": "/dev/pts/..", "baudRate": 9600}

Prints "READY tcp <port>" or "READY rtu <path>" once serving. Each stdin line
{"seq": n, "unit": 1, "table": "holding", "address": 0, "values": [...]} updates the
map and is answered "SET <n>". EOF on stdin stops the server, so a crashed test
runner never leaves one behind.
"""

import asyncio
import json
import logging
import os
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer

# Function codes pymodbus uses to address each table in setValues.
TABLE_FC = {"coils": 1, "discrete": 2, "holding": 3, "input": 4}


def load_map(arg):
    text = arg if arg.lstrip().startswith("{") else open(arg, encoding="utf-8").read()
    return json.loads(text)


def block(values, as_bool):
    # An explicit block: pymodbus would otherwise default to 65536 zeros and no
    # address would ever be out of range. It cannot hold an empty list, so an empty
    # table is one value parked at 65536, beyond any Modbus address.
    vals = [bool(v) for v in values] if as_bool else [int(v) & 0xFFFF for v in values]
    if not vals:
        return ModbusSequentialDataBlock(0x10000, [False if as_bool else 0])
    return ModbusSequentialDataBlock(0, vals)


def build_context(spec):
    slaves = {}
    for unit in spec.get("units", []):
        uid = int(unit.get("unit", 1))
        if uid in (0, 0xFF):
            # The framers accept every unit id when 0 or 255 is configured, which would
            # defeat "unknown units stay silent".
            raise SystemExit(f"unit id {uid} is not supported by this test server")
        slaves[uid] = ModbusSlaveContext(
            co=block(unit.get("coils", []), True),
            di=block(unit.get("discrete", []), True),
            hr=block(unit.get("holding", []), False),
            ir=block(unit.get("input", []), False),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def control_loop(context, stop):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            stop.set()
            return
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            fc = TABLE_FC[cmd["table"]]
            values = cmd["values"]
            if fc in (3, 4):
                values = [int(v) & 0xFFFF for v in values]
            context[int(cmd.get("unit", 1))].setValues(fc, int(cmd["address"]), values)
            say(f"SET {cmd.get('seq', 0)}")
        except Exception as exc:  # pylint: disable=broad-except
            say(f"ERR {cmd.get('seq', 0) if isinstance(cmd, dict) else 0} {exc}")


async def serve_tcp(spec, context):
    # rtuOverTcp: raw RTU frames (unit, PDU, CRC) on the socket, as a serial device server relays them.
    extra = {"framer": ModbusRtuFramer} if spec.get("rtuOverTcp") else {}
    server = await StartAsyncTcpServer(
        context=context,
        address=("127.0.0.1", int(spec.get("tcpPort") or 0)),
        **extra,
        defer_start=True,
        ignore_missing_slaves=True,
        allow_reuse_address=True,
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    port = server.server.sockets[0].getsockname()[1]
    return server, task, f"READY tcp {port}"


async def serve_rtu(spec, context):
    # StartAsyncSerialServer defaults to the ASCII framer; RTU must be asked for.
    server = await StartAsyncSerialServer(
        context=context,
        framer=ModbusRtuFramer,
        port=spec["serialPath"],
        baudrate=int(spec.get("baudRate", 9600)),
        defer_start=True,
        ignore_missing_slaves=True,
        # A replugged adapter (socat restarted on the same path) is reopened.
        auto_reconnect=True,
        reconnect_delay=0.2,
    )
    await server.start()
    task = asyncio.create_task(server.serve_forever())
    return server, task, f"READY rtu {spec['serialPath']}"


async def main():
    spec = load_map(sys.argv[1])
    # pymodbus 3.0 already called logging.basicConfig at import (constants.py), so
    # only the level can be set; by default it logs every closed TCP stream as ERROR.
    logging.getLogger().setLevel(
        logging.DEBUG if os.environ.get("PYMODBUS_DEBUG") else logging.CRITICAL
    )
    context = build_context(spec)
    stop = asyncio.Event()
    if spec.get("serialPath"):
        server, task, ready = await serve_rtu(spec, context)
    else:
        server, task, ready = await serve_tcp(spec, context)
    control = asyncio.create_task(control_loop(context, stop))
    say(ready)
    await stop.wait()
    control.cancel()
    await server.shutdown()
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
