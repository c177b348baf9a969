#!/usr/bin/env python3
"""Quick start with the public Python client (`pip install rstmdb==0.2.1`, Python 3.10+).

Start a server first, e.g. `cargo run --release -- serve`, then:

    python examples/python_quickstart.py            # RSTMDB_HOST, RSTMDB_PORT, RSTMDB_TOKEN

tests/interop/scenario.py is the full, self-checking version of this walk-through.
"""

import asyncio
import os

from rstmdb import Client, ErrorCode, ServerError

ORDER = {
    "states": ["created", "paid", "shipped"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "SHIP", "to": "shipped", "guard": "ctx.ready"},
    ],
}


async def main() -> None:
    host = os.environ.get("RSTMDB_HOST", "127.0.0.1")
    port = int(os.environ.get("RSTMDB_PORT", "7401"))
    # The client sends HELLO, then AUTH when a token is given.
    async with Client(host, port, token=os.environ.get("RSTMDB_TOKEN")) as db:
        machine = await db.put_machine("order", 1, ORDER)
        print("machine", machine.machine, "v1 checksum", machine.stored_checksum)

        order = await db.create_instance("order", 1, initial_ctx={"customer": "alice"})
        print("created", order.instance_id, "in state", order.state)

        # The payload is merged into the instance's context.
        paid = await db.apply_event(order.instance_id, "PAY", payload={"amount": 42.5})
        print(f"{paid.from_state} -> {paid.to_state}, ctx {paid.ctx}")

        # SHIP's guard `ctx.ready` reads the context before this event's payload is merged,
        # and no earlier event set `ready`, so the server refuses the transition.
        try:
            await db.apply_event(order.instance_id, "SHIP", payload={"ready": True})
        except ServerError as error:
            if error.code != ErrorCode.GUARD_FAILED:
                raise
            print("SHIP refused:", error.code.value, "-", error.message)

        current = await db.get_instance(order.instance_id)
        print("still", current.state, "with ctx", current.ctx)

if __name__ == "__main__":
    asyncio.run(main())
