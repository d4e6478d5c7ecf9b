/**
 * WAL replay at start-up says how far it got: progress lines while it runs, with counts and
 * rates under stable field names, and one summary line at the end (observability/progress.ts).
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { it } from "node:test";
import { pino } from "pino";
import { Db } from "../../src/lsm/db.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";

const opts = { gcIntervalMs: 0, autoCompact: false, flushIntervalMs: 5 };

function capture(level = "info"): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level }, sink), lines };
}

it("replaying a WAL of many records logs progress lines and a summary with counts and rates", async () => {
  const store = new MemoryStore();
  const writer = await Db.open(store, testKeys(), opts);
  const objects = 300;
  for (let i = 0; i < objects; i++) {
    const b = new WriteBatch();
    for (let j = 0; j < 10; j++) b.put(Buffer.from(`key-${i}-${j}`), Buffer.alloc(100, i));
    await writer.write(b); // durable: one WAL object each
  }
  // The writer "dies" with everything in its memtable: a successor replays the whole WAL.
  const { log, lines } = capture();
  const successor = await Db.open(store, testKeys(), { ...opts, logger: log, progressIntervalMs: 1 });
  await writer.close().catch(() => undefined); // fenced
  try {
    assert.equal((await successor.get(Buffer.from("key-299-9")))?.length, 100);
    const replay = lines.filter((l) => l.task === "wal-replay");
    const running = replay.filter((l) => l.progress === "running");
    const done = replay.filter((l) => l.progress === "done");
    assert.ok(running.length >= 2, `progress lines while replaying: ${JSON.stringify(replay.slice(0, 3))}`);
    for (const l of running) {
      assert.equal(l.unit, "objects");
      assert.equal(typeof l.done, "number");
      assert.equal(typeof l.elapsedSeconds, "number");
      assert.equal(typeof l.perSecond, "number");
      assert.ok((l.done as number) <= (l.total as number));
      assert.match(l.msg as string, /^WAL replay: \d+\/\d+ objects$/);
    }
    const counts = running.map((l) => l.done as number);
    assert.deepEqual(counts, [...counts].sort((a, b) => a - b), "counts only grow");
    assert.equal(done.length, 1, "one summary line");
    const s = done[0]!;
    assert.ok((s.done as number) >= objects && s.done === s.total, JSON.stringify(s));
    assert.equal(s.percent, 100);
    assert.ok((s.records as number) >= objects * 10, "records counted");
    assert.ok((s.bytes as number) > objects * 100 && (s.bytesPerSecond as number) > 0, "bytes and a byte rate");
    assert.ok((s.perSecond as number) > 0);
    assert.equal(s.replayed, s.done);
  } finally {
    await successor.close();
  }
});

it("a quick replay of nothing but a predecessor's empty fence objects is summarised at debug only", async () => {
  const store = new MemoryStore();
  const first = await Db.open(store, testKeys(), opts);
  await first.close(); // clean: memtable flushed, only the fence objects left in the WAL
  const { log, lines } = capture("debug");
  const db = await Db.open(store, testKeys(), { ...opts, logger: log, progressIntervalMs: 60_000 });
  await db.close();
  const replay = lines.filter((l) => l.task === "wal-replay");
  assert.ok(replay.every((l) => l.progress === "done" && l.level === 20 && l.records === undefined), JSON.stringify(replay));
});
