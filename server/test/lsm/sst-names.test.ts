/**
 * A fenced writer that keeps flushing must never overwrite an SST of its successor: both start
 * numbering SSTs from the same manifest's nextSstId, and SSTs are written with a plain PUT, so
 * their names carry the writer epoch.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { Db } from "../../src/lsm/db.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { testKeys } from "../../../test/support/test-keys.ts";

const opts = { gcIntervalMs: 0, autoCompact: false, flushIntervalMs: 5 };
const k = (s: string): Buffer => Buffer.from(s);

it("a zombie writer's memtable flush lands beside the new writer's SSTs, never over them", async () => {
  const store = new MemoryStore();
  const a = await Db.open(store, testKeys(), opts);
  await a.write(new WriteBatch().put(k("key"), k("from A, durable")));
  const b = await Db.open(store, testKeys(), opts);
  await b.write(new WriteBatch().put(k("key"), k("from B")));
  await b.flushMemtable();
  // A has not noticed it is fenced: it writes and flushes; its SST upload lands, its manifest
  // commit fails.
  await a.write(new WriteBatch().put(k("key"), k("from the zombie")), { awaitDurable: false }).catch(() => undefined);
  await a.flushMemtable().catch(() => undefined);
  await a.close().catch(() => undefined);
  const ssts = (await store.list("sst/")).map((o) => o.key);
  assert.equal(new Set(ssts).size, ssts.length);
  for (const key of ssts) assert.match(key, /^sst\/\d{10}-\d{20}\.sst$/, "SST names carry the writer epoch");
  await b.close();
  const c = await Db.open(store, testKeys(), opts);
  try {
    assert.equal((await c.get(k("key")))?.toString(), "from B");
  } finally {
    await c.close();
  }
});
