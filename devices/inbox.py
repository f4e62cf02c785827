"""The measurement inbox: a reading the cuff was told we have is on disk before we say so.

(It also remembers when we set a cuff's clock that was behind, so that a restarted
daemon still corrects what the cuff stamped before: `MeasurementInbox.clock_settings`.)

A BPS 1.0 cuff deletes a reading once we confirm its indication (BPS 1.0 3.2.1 sends
stored readings as indications; the cuff keeps each until confirmed). Bumble's GATT
client sends the ATT Handle Value Confirmation as soon as our notify callback returns
(`bumble.gatt_client.Client.on_att_handle_value_indication`), long before the clinic has
committed the reading. A daemon killed in between lost the reading for good (the quick
soak lost 12 of 117). So the link's callback writes the frame here, synchronously and
fsynced, before it returns; the link releases the entry once the daemon took the reading
(committed, or refused for good), and on start the daemon replays every entry still held
(`replay`) before it connects to any cuff. A replayed reading carries the same
`cuff_key` as the original (`devices.readings.cuff_key`), so a reading committed just before
the crash, but not yet released, is stored once.

If the frame cannot be written (disk full, read-only data directory), the callback
raises: Bumble then sends no confirmation and the cuff keeps the reading and sends it
again on a later connection. Never confirm what is not durable.

**Bumble only.** With BlueZ, bluetoothd sends the confirmation itself, before D-Bus even
delivers the value to us, so a daemon killed in that window still loses the reading; the
inbox then only narrows the window to the D-Bus hop. Use a Bumble transport
(`--ble bumble:usb:0`) where BPS 1.0 cuffs must never lose a reading.

Why SQLite (stdlib `sqlite3`, WAL, `synchronous=FULL`): every write is one atomic
transaction, fsynced at commit (the WAL is synced on each commit under FULL), with no
torn or half-written entry to recover after a crash, in one small file next to the
database, and no dependency. It is synchronous on purpose: the write must finish inside
the notify callback, before the confirmation goes out, which the clinic's async database
(another thread, perhaps PostgreSQL across a network, and down exactly when we most need
to keep readings) cannot promise. An append-only file with `os.fsync` would be as durable
but needs its own framing, compaction and torn-tail recovery.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devices.events import CuffEvent, CuffIdentity
from devices.readings import ClockObservation, ReadingContext, reading_event

logger = logging.getLogger(__name__)

INBOX_FILE_NAME: Final = "cuff-inbox.sqlite3"
# How long a write waits for a lock held by another connection (only ours exist).
BUSY_TIMEOUT_S: Final = 5.0

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS held_frame (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL,
        raw BLOB NOT NULL,
        received_at TEXT NOT NULL,
        context TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS clock_setting (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL,
        observation TEXT NOT NULL
    )
    """,
)


class InboxError(OSError):
    """The inbox could not keep a frame (the data directory is unwritable or full)."""


@dataclass(frozen=True)
class HeldFrame:
    """A measurement frame the inbox holds: the cuff confirmed, the clinic not yet."""

    id: int
    address: str
    raw: bytes
    received_at: datetime
    context: ReadingContext

    def event(self) -> CuffEvent:
        """The event the link would have published for it (same `cuff_key`)."""
        event, _key = reading_event(self.context, self.raw, self.received_at)
        return event


class MeasurementInbox:
    """Frames held on disk between the cuff's confirmation and the clinic's commit.

    `hold` and `release` are synchronous and return only once SQLite committed (fsynced):
    they run inside Bluetooth callbacks, on the event loop's thread, and must be done
    before the callback returns. One inbox per daemon (per data directory).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as error:
            raise InboxError(f"cannot open the measurement inbox {self.path}: {error}") from error

    @classmethod
    def in_directory(cls, data_dir: Path | str) -> MeasurementInbox:
        return cls(Path(data_dir) / INBOX_FILE_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MeasurementInbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def hold(self, raw: bytes, received_at: datetime, context: ReadingContext) -> int:
        """Keep one frame; returns its id once it is on disk."""
        try:
            cursor = self._db.execute(
                "INSERT INTO held_frame (address, raw, received_at, context) VALUES (?, ?, ?, ?)",
                (
                    context.identity.address.upper(),
                    raw,
                    received_at.isoformat(),
                    json.dumps(_context_to_json(context, received_at)),
                ),
            )
        except sqlite3.Error as error:
            raise InboxError(
                f"cannot keep a reading from {context.identity.address} in {self.path}:"
                f" {error}; check the data directory is writable and not full"
            ) from error
        entry = cursor.lastrowid
        assert entry is not None
        return entry

    def release(self, entry: int) -> None:
        """The daemon took the frame: forget it. A failure is logged, not raised: the
        entry is replayed on the next start, and the clinic stores it once."""
        try:
            self._db.execute("DELETE FROM held_frame WHERE id = ?", (entry,))
        except sqlite3.Error as error:
            logger.warning("measurement inbox: could not release entry %d: %s", entry, error)

    def note_clock_setting(self, address: str, observation: ClockObservation) -> None:
        """Remember that we set a cuff's clock that was behind (`devices.link
        .is_clock_behind`): a restarted daemon still corrects the readings it stamped
        before (`devices.readings.earlier_offset`). A failure is logged, not raised."""
        try:
            self._db.execute(
                "INSERT INTO clock_setting (address, observation) VALUES (?, ?)",
                (address.upper(), json.dumps(_observation_to_json(observation))),
            )
        except sqlite3.Error as error:
            logger.warning("measurement inbox: could not note %s's clock: %s", address, error)

    def clock_settings(self, address: str) -> list[ClockObservation]:
        """The settings `note_clock_setting` remembered for a cuff, oldest first."""
        rows = self._db.execute(
            "SELECT observation FROM clock_setting WHERE address = ? ORDER BY id",
            (address.upper(),),
        ).fetchall()
        settings = []
        for (text,) in rows:
            try:
                settings.append(_observation_from_json(json.loads(text)))
            except (ValueError, KeyError, TypeError) as error:
                logger.error(
                    "measurement inbox: a clock setting of %s is unreadable: %s", address, error
                )
        return settings

    def held(self) -> list[HeldFrame]:
        """Every frame still held, oldest first."""
        rows = self._db.execute(
            "SELECT id, address, raw, received_at, context FROM held_frame ORDER BY id"
        ).fetchall()
        return list(_frames(rows))

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM held_frame").fetchone()
        return int(count)


def _frames(rows: list[Any]) -> Iterator[HeldFrame]:
    for entry, address, raw, received_at, context in rows:
        try:
            yield HeldFrame(
                entry,
                address,
                bytes(raw),
                datetime.fromisoformat(received_at),
                _context_from_json(json.loads(context)),
            )
        except (ValueError, KeyError, TypeError) as error:
            logger.error("measurement inbox: entry %d is unreadable (%s); kept", entry, error)


async def replay(inbox: MeasurementInbox, publish: Callable[[CuffEvent], Awaitable[None]]) -> int:
    """Give the daemon every frame still held, oldest first, releasing each it took;
    returns how many it took. One it fails to take stays for the next start."""
    taken = 0
    for frame in inbox.held():
        try:
            await publish(frame.event())
        except Exception:
            logger.exception(
                "measurement inbox: the daemon failed to take a held reading from %s;"
                " kept for the next start",
                frame.address,
            )
            continue
        inbox.release(frame.id)
        taken += 1
    if taken:
        logger.info("measurement inbox: replayed %d reading(s) held across a restart", taken)
    return taken


# --- the context as JSON ----------------------------------------------------------------


def _zone_to_json(zone: tzinfo, at: datetime) -> dict[str, Any]:
    if isinstance(zone, ZoneInfo):
        return {"key": zone.key}
    offset = zone.utcoffset(at) or timedelta(0)
    return {"offset_s": offset.total_seconds()}


def _zone_from_json(data: dict[str, Any]) -> tzinfo:
    if "key" in data:
        try:
            return ZoneInfo(data["key"])
        except ZoneInfoNotFoundError as error:
            raise ValueError(f"unknown time zone {data['key']!r}") from error
    return timezone(timedelta(seconds=float(data["offset_s"])))


def _observation_to_json(observation: ClockObservation) -> dict[str, Any]:
    return {
        "cuff_clock": observation.cuff_clock.isoformat(),
        "observed_at": observation.observed_at.isoformat(),
        "zone": _zone_to_json(observation.zone, observation.observed_at),
    }


def _observation_from_json(data: dict[str, Any]) -> ClockObservation:
    return ClockObservation(
        datetime.fromisoformat(data["cuff_clock"]),
        datetime.fromisoformat(data["observed_at"]),
        _zone_from_json(data["zone"]),
    )


def _context_to_json(context: ReadingContext, at: datetime) -> dict[str, Any]:
    identity = context.identity
    clock = context.clock
    return {
        "identity": {
            "address": identity.address,
            "name": identity.name,
            "manufacturer": identity.manufacturer,
            "model": identity.model,
            "serial": identity.serial,
            "firmware": identity.firmware,
        },
        "zone": _zone_to_json(context.zone, at),
        "clock": None
        if clock is None
        else {
            "cuff_clock": clock.cuff_clock.isoformat(),
            "observed_at": clock.observed_at.isoformat(),
        },
        "clock_set_at": None if context.clock_set_at is None else context.clock_set_at.isoformat(),
        "earlier": [_observation_to_json(o) for o in context.earlier],
        "live": context.live,
    }


def _context_from_json(data: dict[str, Any]) -> ReadingContext:
    zone = _zone_from_json(data["zone"])
    clock = data["clock"]
    clock_set_at = data["clock_set_at"]
    return ReadingContext(
        CuffIdentity(**data["identity"]),
        zone,
        None
        if clock is None
        else ClockObservation(
            datetime.fromisoformat(clock["cuff_clock"]),
            datetime.fromisoformat(clock["observed_at"]),
            zone,
        ),
        None if clock_set_at is None else datetime.fromisoformat(clock_set_at),
        tuple(_observation_from_json(o) for o in data.get("earlier", [])),
        live=bool(data.get("live", False)),
    )


__all__ = [
    "INBOX_FILE_NAME",
    "HeldFrame",
    "InboxError",
    "MeasurementInbox",
    "replay",
]
