/**
 * GuardedStore and StoreHealth on the fault-injecting store: deadlines, read retries within the
 * deadline, health states with one log line per change. The real outages (a frozen and a killed
 * S3 server, a deleted or unwritable volume directory) are in test/protocol/outage*.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { ObjectNotFoundError, StoreUnavailableError } from "../src/store/errors.ts";
import { FaultInjectingStore } from "../src/store/fault-store.ts";
import { GuardedStore } from "../src/store/guarded-store.ts";
import { StoreHealth } from "../src/store/health.ts";
import { MemoryStore } from "../src/store/memory-store.ts";

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function capture(): { logger: pino.Logger; lines: LogLine[]; at: (level: number) => LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines, at: (level) => lines.filter((l) => l.level >= level) };
}
const INFO = 30;

function setup(timeoutMs = 300): { fault: FaultInjectingStore; store: GuardedStore; health: StoreHealth; log: ReturnType<typeof capture>; changes: string[]; timeouts: string[] } {
  const log = capture();
  const changes: string[] = [];
  const timeouts: string[] = [];
  const fault = new FaultInjectingStore(new MemoryStore());
  const health = new StoreHealth({ store: fault.description, logger: log.logger, onChange: (s) => changes.push(s), onTimeout: (op) => timeouts.push(op) });
  const store = new GuardedStore(fault, { timeoutMs, health, retryBaseMs: 20, retryMaxMs: 50 });
  return { fault, store, health, log, changes, timeouts };
}

describe("GuardedStore", () => {
  it("a request with no answer fails at its deadline, is cancelled, and marks the store degraded once", async () => {
    const { fault, store, health, log, changes, timeouts } = setup(300);
    await store.put("a", Buffer.from("x"));
    fault.addRule({ op: ["get", "put"], delayMs: 60_000 });
    for (const attempt of [0, 1, 2]) {
      const t0 = performance.now();
      const call = attempt === 1 ? store.put("b", Buffer.from("y")) : store.get("a");
      await assert.rejects(call, (e: unknown) => e instanceof StoreUnavailableError && e.reason === "timeout" && /no answer within 0\.3 s/.test(e.message) && e.key === (attempt === 1 ? "b" : "a"));
      const ms = performance.now() - t0;
      assert.ok(ms >= 290 && ms < 2_000, `failed after ${ms} ms, deadline 300 ms`);
    }
    // The stalled calls were cancelled (the fault store's delay honours the signal): none of
    // them reached the inner store, and no timer is left to keep the process alive.
    assert.equal(fault.stats.forwarded, 1);
    assert.equal(health.state, "degraded");
    assert.deepEqual(changes, ["degraded"]);
    assert.deepEqual(timeouts, ["get", "put", "get"]);
    assert.match(health.status().reason ?? "", /no answer within 0\.3 s/);
    const warned = log.at(INFO);
    assert.equal(warned.length, 1, JSON.stringify(warned));
    assert.match(warned[0]!.msg, /object store unavailable/);
    assert.equal(warned[0]!.err, undefined, "no stack trace at warn level");

    fault.reset();
    assert.equal((await store.get("a")).toString(), "x");
    assert.equal(health.state, "degraded", "reads answer again, but writes have not yet");
    await store.put("b", Buffer.from("y"));
    assert.equal(health.state, "healthy");
    assert.deepEqual(changes, ["degraded", "healthy"]);
    const lines = log.at(INFO);
    assert.equal(lines.length, 2);
    assert.match(lines[1]!.msg, /available again/);
    assert.equal(lines[1]!.timedOutRequests, 3);
  });

  it("reads that fail are retried within the deadline; writes are not; answers count as success", async () => {
    const { fault, store, health, log } = setup(2_000);
    await store.put("k", Buffer.from("v"));
    fault.addRule({ op: "get", times: 2, error: true });
    assert.equal((await store.get("k")).toString(), "v", "two failures then an answer: the read succeeds");
    assert.equal(health.state, "healthy", "2 failures < threshold 3");
    assert.equal(fault.stats.byOp.get, 3);

    fault.addRule({ op: "put", times: 1, error: true });
    const before = fault.stats.byOp.put ?? 0;
    await assert.rejects(store.put("k2", Buffer.from("v")), (e: unknown) => e instanceof StoreUnavailableError && e.reason === "failing" && /injected fault/.test(e.message));
    assert.equal((fault.stats.byOp.put ?? 0) - before, 1, "a write is tried once");

    await assert.rejects(store.get("missing"), ObjectNotFoundError);
    assert.equal(health.state, "healthy", "not found is an answer");
    assert.equal(log.at(INFO).length, 0);
  });

  it("failing requests make it degraded after 3 in a row, logged once however long it lasts", async () => {
    const { fault, store, health, log, changes } = setup(200);
    fault.addRule({ op: ["putIfAbsent", "list"], error: true });
    for (let i = 0; i < 10; i++) await assert.rejects(store.putIfAbsent(`wal/${i}`, Buffer.from("x")), StoreUnavailableError);
    const t0 = performance.now();
    await assert.rejects(store.list("wal/"), (e: unknown) => e instanceof StoreUnavailableError && e.reason === "failing" && /attempts in/.test(e.message));
    assert.ok(performance.now() - t0 >= 100, "a failing read is retried until close to its deadline");
    assert.equal(health.state, "degraded");
    assert.deepEqual(changes, ["degraded"]);
    assert.equal(log.at(INFO).length, 1);
    assert.match(String(log.at(INFO)[0]!.reason), /3 writes in a row failed/);
    assert.ok(log.lines.filter((l) => l.msg === "object store request failed").length >= 10, "each failure is at debug");
    fault.reset();
    await store.list("wal/");
    await store.putIfAbsent("wal/ok", Buffer.from("x"));
    assert.deepEqual(changes, ["degraded", "healthy"]);
    assert.equal(log.at(INFO).length, 2);
    // 10 writes and the read's attempts (each retry is a failed request).
    assert.ok(Number(log.at(INFO)[1]!.failedRequests) >= 13, String(log.at(INFO)[1]!.failedRequests));
  });

  it("a store that answers reads but fails every write stays degraded: no flapping with each read", async () => {
    const { fault, store, health, log, changes } = setup(200);
    await store.put("k", Buffer.from("v"));
    fault.addRule({ op: ["put", "putIfAbsent", "delete"], error: true });
    for (let i = 0; i < 5; i++) {
      await assert.rejects(store.putIfAbsent(`wal/${i}`, Buffer.from("x")), StoreUnavailableError);
      assert.equal((await store.get("k")).toString(), "v");
      await assert.rejects(store.get("missing"), ObjectNotFoundError);
    }
    assert.equal(health.state, "degraded");
    assert.deepEqual(changes, ["degraded"]);
    assert.equal(log.at(INFO).length, 1);
    fault.reset();
    await store.delete("k");
    assert.deepEqual(changes, ["degraded", "healthy"]);
  });

  it("the deadline grows with the bytes a request moves", () => {
    const { store } = setup(1_000);
    assert.equal(store.deadlineMs(0), 1_000);
    assert.equal(store.deadlineMs(8 * 1024 * 1024), 9_000);
  });
});
