#!/usr/bin/env python3
"""Interop scenario: drive a running rstmdb server with the public Python client.

The client is the PyPI package `rstmdb` (0.2.x; `scripts/python-env` installs the pinned
version). docs/protocol.md §1.2 promises that it works unmodified against our server; this
scenario checks the values that come back, not merely that no exception was raised.

    python scenario.py --host H --port P [--token T] [--tls --ca-cert F] [--skip-watch]

* With --token, the scenario also checks that a wrong token is refused (AUTH_FAILED) and that a
  connection without a token cannot run data ops (UNAUTHORIZED), so the server must require auth.
* With --tls, it verifies the server's certificate against --ca-cert and runs the shortened
  scenario (ping, put, create, apply, get); --full runs every step over TLS as well.
* Machine and instance names carry a random run id, so the scenario can run again against the
  same server, as long as no other client writes to it meanwhile (WAL counters are compared).

It prints one line per passed step and exits 1 on the first failed expectation, naming the step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

try:
    import rstmdb
    from rstmdb import ErrorCode, ServerError
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("scenario: the `rstmdb` client is not installed; run scripts/python-env first")

# The PUT_MACHINE example of spec §4.7 and its checksum test vector (§6.7, vector 1).
ORDER_DEFINITION: dict[str, Any] = {
    "states": ["created", "paid", "shipped"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "SHIP", "to": "shipped", "guard": "ctx.ready"},
    ],
}
ORDER_CHECKSUM = "eef67bea"
# GET_MACHINE returns the normalised form (§7.2): every `from` becomes a list (§4.8 example).
ORDER_DEFINITION_NORMALISED: dict[str, Any] = {
    "states": ["created", "paid", "shipped"],
    "initial": "created",
    "transitions": [
        {"from": ["created"], "event": "PAY", "to": "paid"},
        {"from": ["paid"], "event": "SHIP", "to": "shipped", "guard": "ctx.ready"},
    ],
}
PAY_PAYLOAD: dict[str, Any] = {"amount": 42.5, "ready": True}
COMPACT_FIELDS = (
    "snapshots_created",
    "segments_deleted",
    "bytes_reclaimed",
    "total_snapshots",
    "wal_segments",
)
# Long enough for a slow CI machine, short enough that a missing event fails the run quickly.
EVENT_WAIT_SECS = 10.0
REQUEST_TIMEOUT_SECS = 15.0


class ScenarioFailure(Exception):
    """An expectation about the server's behaviour did not hold."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailure(message)


def check_eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise ScenarioFailure(f"{what}: expected {expected!r}, got {actual!r}")


def check_u64(value: Any, what: str) -> int:
    # bool is an int subclass in Python; a JSON `true` must not pass for a counter.
    check(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        f"{what}: expected an unsigned integer, got {value!r}",
    )
    return value


async def expect_server_error(code: ErrorCode, request: Awaitable[Any], what: str) -> ServerError:
    """Awaits `request`, which must fail with a ServerError carrying `code`."""
    try:
        result = await request
    except ServerError as error:
        check_eq(error.code, code, f"{what}: error code")
        return error
    raise ScenarioFailure(f"{what}: expected {code.value}, but the request succeeded: {result!r}")


async def next_event(events: AsyncIterator[rstmdb.StreamEvent]) -> rstmdb.StreamEvent:
    # A coroutine around __anext__ so that asyncio.wait_for can put a deadline on it.
    return await events.__anext__()


class Scenario:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        run_id = args.run_id or uuid.uuid4().hex[:8]
        self.machine = f"order-{run_id}"
        # Byte order of ids decides LIST_INSTANCES order (§4.12): "-1" sorts before "-2".
        self.with_ctx_id = f"{self.machine}-1"
        self.without_ctx_id = f"{self.machine}-2"
        self.client: rstmdb.Client | None = None
        self.records_written = 0
        self.create_offset = 0
        self.pay_result: rstmdb.ApplyEventResult | None = None
        self.last_offset = 0
        self.stats_before: rstmdb.WalStatsResult | None = None

    # ---- plumbing -------------------------------------------------------------------------

    def new_client(self, token: str | None) -> rstmdb.Client:
        return rstmdb.Client(
            self.args.host,
            self.args.port,
            token=token,
            tls=self.args.tls,
            ca_cert=self.args.ca_cert,
            connect_timeout=REQUEST_TIMEOUT_SECS,
            request_timeout=REQUEST_TIMEOUT_SECS,
        )

    @property
    def db(self) -> rstmdb.Client:
        check(self.client is not None, "not connected")
        assert self.client is not None  # for the type checker; check() raised otherwise
        return self.client

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Names the step in the failure message; any unexpected exception fails the step."""
        try:
            yield
        except ScenarioFailure as failure:
            raise ScenarioFailure(f"[{name}] {failure}") from None
        except Exception as error:  # the client raises ServerError, pydantic errors, OSError...
            raise ScenarioFailure(f"[{name}] unexpected {type(error).__name__}: {error}") from error
        print(f"ok   {name}", flush=True)

    def wrote(self, wal_offset: int, what: str) -> None:
        """Records one WAL append; offsets only grow (docs/architecture.md §4, protocol §6.10)."""
        check_u64(wal_offset, f"{what} wal_offset")
        check(
            wal_offset > self.last_offset,
            f"{what}: wal_offset {wal_offset} is not above the previous write's {self.last_offset}",
        )
        self.last_offset = wal_offset
        self.records_written += 1

    # ---- steps ----------------------------------------------------------------------------

    async def connect(self) -> None:
        with self.step("connect (HELLO, AUTH) and PING"):
            self.client = self.new_client(self.args.token)
            await self.client.connect()
            check_eq(await self.client.ping(), True, "PING")

    async def auth_is_enforced(self) -> None:
        with self.step("a wrong token is refused with AUTH_FAILED"):
            intruder = self.new_client(self.args.token + "-wrong")
            try:
                await expect_server_error(ErrorCode.AUTH_FAILED, intruder.connect(), "connect")
            finally:
                await intruder.close()
        with self.step("without a token, data ops are refused with UNAUTHORIZED"):
            anonymous = self.new_client(None)
            try:
                await anonymous.connect()
                check_eq(await anonymous.ping(), True, "PING needs no auth")
                await expect_server_error(
                    ErrorCode.UNAUTHORIZED, anonymous.list_machines(), "LIST_MACHINES"
                )
            finally:
                await anonymous.close()

    async def wal_baseline(self) -> None:
        with self.step("WAL_STATS baseline"):
            self.stats_before = await self.db.wal_stats()
            check(self.stats_before.latest_offset is not None, "latest_offset is missing")
            self.last_offset = self.stats_before.latest_offset - 1

    async def put_machine(self) -> None:
        with self.step(f"PUT_MACHINE {self.machine} v1 (checksum {ORDER_CHECKSUM})"):
            put = await self.db.put_machine(self.machine, 1, ORDER_DEFINITION)
            check_eq(put.machine, self.machine, "machine")
            check_eq(put.version, 1, "version")
            check_eq(put.stored_checksum, ORDER_CHECKSUM, "stored_checksum")
            check_eq(put.created, True, "created")
            self.records_written += 1
        with self.step("PUT_MACHINE again with the same definition is a no-op"):
            again = await self.db.put_machine(self.machine, 1, ORDER_DEFINITION)
            check_eq(again.stored_checksum, ORDER_CHECKSUM, "stored_checksum")
            check_eq(again.created, False, "created")

    async def get_and_list_machines(self) -> None:
        with self.step("GET_MACHINE returns the normalised definition"):
            got = await self.db.get_machine(self.machine, 1)
            check_eq(got.checksum, ORDER_CHECKSUM, "checksum")
            check_eq(got.definition, ORDER_DEFINITION_NORMALISED, "definition")
        with self.step("LIST_MACHINES lists the machine with its version"):
            items = await self.db.list_machines()
            ours = [item for item in items if item.get("machine") == self.machine]
            check_eq(ours, [{"machine": self.machine, "versions": [1]}], "our item")
            names = [item.get("machine") for item in items]
            check_eq(names, sorted(names), "items in name order")

    async def create_instances(self) -> None:
        with self.step("CREATE_INSTANCE with initial_ctx"):
            created = await self.db.create_instance(
                self.machine,
                1,
                instance_id=self.with_ctx_id,
                initial_ctx={"customer": "alice"},
                idempotency_key=f"create-{self.with_ctx_id}",
            )
            check_eq(created.instance_id, self.with_ctx_id, "instance_id")
            check_eq(created.state, "created", "state")
            self.wrote(created.wal_offset, "CREATE_INSTANCE")
            self.create_offset = created.wal_offset
        with self.step("CREATE_INSTANCE without initial_ctx gets ctx {}"):
            bare = await self.db.create_instance(self.machine, 1, instance_id=self.without_ctx_id)
            check_eq(bare.instance_id, self.without_ctx_id, "instance_id")
            check_eq(bare.state, "created", "state")
            self.wrote(bare.wal_offset, "CREATE_INSTANCE")
            fetched = await self.db.get_instance(self.without_ctx_id)
            check_eq(fetched.ctx, {}, "ctx of an instance created without initial_ctx")

    async def apply_with_payload(self) -> None:
        with self.step("APPLY_EVENT PAY with a payload merges it into ctx"):
            paid = await self.db.apply_event(
                self.with_ctx_id, "PAY", payload=PAY_PAYLOAD, idempotency_key="pay-1"
            )
            check_eq(paid.from_state, "created", "from_state")
            check_eq(paid.to_state, "paid", "to_state")
            check_eq(paid.ctx, {"customer": "alice", **PAY_PAYLOAD}, "ctx after the merge")
            check_eq(paid.applied, True, "applied")
            check_eq(paid.event_id, None, "event_id (none was sent)")
            self.wrote(paid.wal_offset, "APPLY_EVENT")
            self.pay_result = paid

    async def get_instance(self) -> None:
        with self.step("GET_INSTANCE shows the new state and merged ctx"):
            assert self.pay_result is not None
            got = await self.db.get_instance(self.with_ctx_id)
            check_eq(got.machine, self.machine, "machine")
            check_eq(got.version, 1, "version")
            check_eq(got.state, "paid", "state")
            check_eq(got.ctx, {"customer": "alice", **PAY_PAYLOAD}, "ctx")
            check_eq(got.last_wal_offset, self.pay_result.wal_offset, "last_wal_offset")
            check_eq(got.last_event_id, None, "last_event_id (no apply carried one)")

    async def list_instances(self) -> None:
        with self.step("LIST_INSTANCES pages in id order with total and has_more"):
            assert self.pay_result is not None
            first = await self.db.list_instances(machine=self.machine, limit=1)
            check_eq(first.total, 2, "total")
            check_eq(first.has_more, True, "has_more with limit 1")
            check_eq([i.id for i in first.instances], [self.with_ctx_id], "first page ids")
            summary = first.instances[0]
            check_eq(summary.machine, self.machine, "machine")
            check_eq(summary.version, 1, "version")
            check_eq(summary.state, "paid", "state")
            check_eq(summary.last_wal_offset, self.pay_result.wal_offset, "last_wal_offset")
            check(
                0 < summary.created_at <= summary.updated_at,
                f"created_at {summary.created_at} must be positive and <= updated_at "
                f"{summary.updated_at}",
            )
            whole = await self.db.list_instances(machine=self.machine)
            check_eq(whole.total, 2, "total")
            check_eq(whole.has_more, False, "has_more without a limit")
            check_eq(
                [i.id for i in whole.instances],
                [self.with_ctx_id, self.without_ctx_id],
                "ids in byte order",
            )
            paid_only = await self.db.list_instances(machine=self.machine, state="paid")
            check_eq([i.id for i in paid_only.instances], [self.with_ctx_id], "state filter")
            check_eq(paid_only.total, 1, "total with the state filter")

    async def idempotent_replay(self) -> None:
        with self.step("APPLY_EVENT replayed with the same idempotency key writes nothing"):
            assert self.pay_result is not None
            entries_before = (await self.db.wal_stats()).entry_count
            replay = await self.db.apply_event(
                self.with_ctx_id, "PAY", payload=PAY_PAYLOAD, idempotency_key="pay-1"
            )
            check_eq(replay.wal_offset, self.pay_result.wal_offset, "wal_offset of the replay")
            check_eq(replay.applied, False, "applied on a replay")
            check_eq(replay.from_state, "created", "from_state of the original transition")
            check_eq(replay.to_state, "paid", "to_state of the original transition")
            check_eq(replay.ctx, self.pay_result.ctx, "ctx of the original transition")
            check_eq((await self.db.wal_stats()).entry_count, entries_before, "WAL entry_count")
            got = await self.db.get_instance(self.with_ctx_id)
            check_eq(got.state, "paid", "state (no second transition)")
            check_eq(got.last_wal_offset, self.pay_result.wal_offset, "last_wal_offset")

    async def guard_failure(self) -> None:
        with self.step("APPLY_EVENT whose guard fails raises GUARD_FAILED"):
            paid = await self.db.apply_event(self.without_ctx_id, "PAY")
            check_eq((paid.from_state, paid.to_state), ("created", "paid"), "PAY transition")
            check_eq(paid.ctx, {}, "ctx after a PAY without payload")
            self.wrote(paid.wal_offset, "APPLY_EVENT")
            # SHIP needs ctx.ready, which this instance lacks.
            await expect_server_error(
                ErrorCode.GUARD_FAILED, self.db.apply_event(self.without_ctx_id, "SHIP"), "SHIP"
            )
            got = await self.db.get_instance(self.without_ctx_id)
            check_eq(got.state, "paid", "state after the refused SHIP")
            check_eq(got.last_wal_offset, paid.wal_offset, "last_wal_offset")

    async def delete_instance(self) -> None:
        with self.step("DELETE_INSTANCE, then GET_INSTANCE fails with INSTANCE_NOT_FOUND"):
            deleted = await self.db.delete_instance(self.without_ctx_id)
            check_eq(deleted.get("instance_id"), self.without_ctx_id, "instance_id")
            check_eq(deleted.get("deleted"), True, "deleted")
            self.wrote(deleted.get("wal_offset"), "DELETE_INSTANCE")
            await expect_server_error(
                ErrorCode.INSTANCE_NOT_FOUND,
                self.db.get_instance(self.without_ctx_id),
                "GET_INSTANCE of a deleted instance",
            )
            listed = await self.db.list_instances(machine=self.machine)
            check_eq([i.id for i in listed.instances], [self.with_ctx_id], "listed ids")
            check_eq(listed.total, 1, "total after the delete")

    async def wal_stats(self) -> None:
        with self.step("WAL_STATS counts this run's records"):
            assert self.stats_before is not None and self.stats_before.latest_offset is not None
            stats = await self.db.wal_stats()
            check_eq(
                stats.entry_count - self.stats_before.entry_count,
                self.records_written,
                "entry_count growth (records this run wrote)",
            )
            check(stats.latest_offset is not None, "latest_offset is missing")
            assert stats.latest_offset is not None
            check(
                stats.latest_offset > self.last_offset,
                f"latest_offset {stats.latest_offset} must lie past the last record's offset "
                f"{self.last_offset}",
            )
            check(stats.segment_count >= 1, f"segment_count {stats.segment_count}")
            check(stats.total_size_bytes > 0, f"total_size_bytes {stats.total_size_bytes}")
            check(
                stats.io_stats.writes - self.stats_before.io_stats.writes >= self.records_written,
                f"io_stats.writes grew by less than {self.records_written}: {stats.io_stats}",
            )

    async def compact(self) -> None:
        with self.step("COMPACT writes a checkpoint and leaves the WAL counters alone"):
            before = await self.db.wal_stats()
            result = await self.db.compact()
            for field in COMPACT_FIELDS:
                check_u64(result.get(field), f"COMPACT {field}")
            # Records were committed since any earlier checkpoint, so one must be written.
            check_eq(result["snapshots_created"], 1, "snapshots_created")
            check(result["total_snapshots"] >= 1, f"total_snapshots {result['total_snapshots']}")
            check(result["wal_segments"] >= 1, f"wal_segments {result['wal_segments']}")
            after = await self.db.wal_stats()
            check_eq(after.entry_count, before.entry_count, "entry_count across COMPACT")
            check_eq(after.latest_offset, before.latest_offset, "latest_offset across COMPACT")

    async def watch_all(self) -> None:
        with self.step("WATCH_ALL delivers an apply made on a second connection"):
            latest = (await self.db.wal_stats()).latest_offset
            subscription = await self.db.watch_all(machines=[self.machine])
            check(
                subscription.subscription_id.startswith("sub-"),
                f"subscription_id {subscription.subscription_id!r} must start with 'sub-'",
            )
            check_eq(subscription.wal_offset, latest, "wal_offset (the next record's offset)")
            events = self.db.events()
            other = self.new_client(self.args.token)
            try:
                await other.connect()
                shipped = await other.apply_event(self.with_ctx_id, "SHIP")
            finally:
                await other.close()
            check_eq((shipped.from_state, shipped.to_state), ("paid", "shipped"), "SHIP")
            try:
                event = await asyncio.wait_for(next_event(events), EVENT_WAIT_SECS)
            except asyncio.TimeoutError:
                raise ScenarioFailure(f"no event within {EVENT_WAIT_SECS:.0f} s") from None
            check_eq(event.subscription_id, subscription.subscription_id, "subscription_id")
            check_eq(event.instance_id, self.with_ctx_id, "instance_id")
            check_eq(event.machine, self.machine, "machine")
            check_eq(event.version, 1, "version")
            check_eq(event.wal_offset, shipped.wal_offset, "wal_offset")
            check_eq((event.from_state, event.to_state), ("paid", "shipped"), "states")
            check_eq(event.event, "SHIP", "event")
            check_eq(event.payload, None, "payload (none was sent)")
            check_eq(event.ctx, {"customer": "alice", **PAY_PAYLOAD}, "ctx (include_ctx)")
            removed = await self.db.unwatch(subscription.subscription_id)
            check_eq(removed.removed, True, "UNWATCH removed")
            await events.aclose()

    async def watch_instance_and_filters(self) -> None:
        with self.step("WATCH_INSTANCE without ctx and a filtered WATCH_ALL get only their events"):
            watched_id = f"{self.with_ctx_id}-watched"
            await self.db.create_instance(
                self.machine, 1, instance_id=watched_id, initial_ctx={"ready": True}
            )
            by_instance = await self.db.watch_instance(watched_id, include_ctx=False)
            check_eq(by_instance.instance_id, watched_id, "WATCH_INSTANCE instance_id")
            check_eq(by_instance.current_state, "created", "WATCH_INSTANCE current_state")
            shipped_only = await self.db.watch_all(machines=[self.machine], to_states=["shipped"])
            events = self.db.events()
            paid = await self.db.apply_event(watched_id, "PAY")
            shipped = await self.db.apply_event(watched_id, "SHIP")
            received = []
            for _ in range(3):
                try:
                    received.append(await asyncio.wait_for(next_event(events), EVENT_WAIT_SECS))
                except asyncio.TimeoutError:
                    raise ScenarioFailure(
                        f"{len(received)} of 3 events within {EVENT_WAIT_SECS:.0f} s"
                    ) from None
            expected = {
                (by_instance.subscription_id, paid.wal_offset, "PAY"),
                (by_instance.subscription_id, shipped.wal_offset, "SHIP"),
                (shipped_only.subscription_id, shipped.wal_offset, "SHIP"),
            }
            got = {(e.subscription_id, e.wal_offset, e.event) for e in received}
            check_eq(got, expected, "(subscription, wal_offset, event) of the events")
            for event in received:
                wanted = None if event.subscription_id == by_instance.subscription_id else {
                    "ready": True
                }
                check_eq(event.ctx, wanted, f"ctx of {event.event} for {event.subscription_id}")
            for subscription_id in (by_instance.subscription_id, shipped_only.subscription_id):
                removed = await self.db.unwatch(subscription_id)
                check_eq(removed.removed, True, "UNWATCH removed")
            await events.aclose()

    # ---- the two scenarios ----------------------------------------------------------------

    def full_steps(self) -> list[Callable[[], Awaitable[None]]]:
        steps: list[Callable[[], Awaitable[None]]] = [self.connect]
        if self.args.token:
            steps.append(self.auth_is_enforced)
        steps += [
            self.wal_baseline,
            self.put_machine,
            self.get_and_list_machines,
            self.create_instances,
            self.apply_with_payload,
            self.get_instance,
            self.list_instances,
            self.idempotent_replay,
            self.guard_failure,
            self.delete_instance,
            self.wal_stats,
            self.compact,
        ]
        if not self.args.skip_watch:
            steps += [self.watch_all, self.watch_instance_and_filters]
        return steps

    def short_steps(self) -> list[Callable[[], Awaitable[None]]]:
        return [
            self.connect,
            self.put_machine,
            self.create_instances,
            self.apply_with_payload,
            self.get_instance,
        ]

    async def run(self) -> int:
        short = self.args.tls and not self.args.full
        steps = self.short_steps() if short else self.full_steps()
        print(
            f"scenario: {'short' if short else 'full'} run against {self.args.host}:"
            f"{self.args.port}{' over TLS' if self.args.tls else ''}, machine {self.machine}",
            flush=True,
        )
        try:
            for run_step in steps:
                await run_step()
        finally:
            if self.client is not None:
                await self.client.close()
        print(f"scenario: all {len(steps)} step groups passed", flush=True)
        return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", help="bearer token; enables the auth checks")
    parser.add_argument("--tls", action="store_true", help="connect over TLS")
    parser.add_argument("--ca-cert", help="CA certificate (PEM) that signed the server's")
    parser.add_argument("--full", action="store_true", help="run every step even over TLS")
    parser.add_argument("--skip-watch", action="store_true", help="skip the WATCH_ALL step")
    parser.add_argument("--run-id", help="suffix for machine and instance names (default random)")
    args = parser.parse_args(argv)
    if args.ca_cert and not args.tls:
        parser.error("--ca-cert needs --tls")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(Scenario(args).run())
    except ScenarioFailure as failure:
        print(f"FAIL {failure}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
