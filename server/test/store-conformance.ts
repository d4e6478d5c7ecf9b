/**
 * The ObjectStore contract as a test suite, run against every implementation. Each test gets a
 * fresh, empty store from `makeStore`.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { ObjectNotFoundError, ObjectStoreError, PreconditionFailedError } from "../src/store/errors.ts";
import type { ObjectStore } from "../src/store/object-store.ts";

export interface StoreUnderTest {
  store: ObjectStore;
  cleanup: () => Promise<void>;
}

const buf = (s: string) => Buffer.from(s, "utf8");

/** Settles all promises and splits them into winners and losers. */
async function race<T>(attempts: Promise<T>[]): Promise<{ wins: { index: number; value: T }[]; losses: unknown[] }> {
  const settled = await Promise.allSettled(attempts);
  const wins: { index: number; value: T }[] = [];
  const losses: unknown[] = [];
  settled.forEach((s, index) => (s.status === "fulfilled" ? wins.push({ index, value: s.value }) : losses.push(s.reason)));
  return { wins, losses };
}

export function storeConformance(name: string, makeStore: () => Promise<StoreUnderTest>, opts: { raceRounds?: number } = {}): void {
  const rounds = opts.raceRounds ?? 20;
  const withStore = (fn: (store: ObjectStore) => Promise<void>) => async () => {
    const { store, cleanup } = await makeStore();
    try {
      await fn(store);
    } finally {
      await store.close();
      await cleanup();
    }
  };

  describe(`ObjectStore conformance: ${name}`, () => {
    it(
      "put then get returns the bytes; overwrite replaces them and changes the etag",
      withStore(async (s) => {
        const r1 = await s.put("a/b/c.txt", buf("hello"));
        assert.deepEqual(await s.get("a/b/c.txt"), buf("hello"));
        const r2 = await s.put("a/b/c.txt", buf("world!"));
        assert.notEqual(r2.etag, r1.etag);
        assert.deepEqual(await s.get("a/b/c.txt"), buf("world!"));
      }),
    );

    it(
      "put of a body in pieces stores their concatenation (empty pieces, more than IOV_MAX pieces)",
      withStore(async (s) => {
        const pieces = [buf("ab"), Buffer.alloc(0), buf("c"), randomBytes(70_000)];
        for (let i = 0; i < 1500; i++) pieces.push(Buffer.from([i & 0xff]), Buffer.alloc(0));
        await s.put("p/1", pieces);
        assert.ok((await s.get("p/1")).equals(Buffer.concat(pieces)));
        await s.put("p/2", []);
        assert.equal((await s.get("p/2")).length, 0);
        assert.equal((await s.head("p/1"))?.size, Buffer.concat(pieces).length);
      }),
    );

    it(
      "ranged get: start, middle, tail running past the end, past the end, zero length",
      withStore(async (s) => {
        await s.put("r", buf("0123456789"));
        assert.equal((await s.get("r", { offset: 0, length: 3 })).toString(), "012");
        assert.equal((await s.get("r", { offset: 4, length: 2 })).toString(), "45");
        assert.equal((await s.get("r", { offset: 7, length: 100 })).toString(), "789");
        assert.equal((await s.get("r", { offset: 10, length: 5 })).length, 0);
        assert.equal((await s.get("r", { offset: 50, length: 5 })).length, 0);
        assert.equal((await s.get("r", { offset: 3, length: 0 })).length, 0);
        assert.equal((await s.get("r", { offset: 0, length: 10 })).toString(), "0123456789");
        await assert.rejects(s.get("missing", { offset: 0, length: 0 }), ObjectNotFoundError);
        await assert.rejects(s.get("missing", { offset: 0, length: 4 }), ObjectNotFoundError);
        await assert.rejects(s.get("r", { offset: -1, length: 2 }), ObjectStoreError);
      }),
    );

    it(
      "missing objects: get throws ObjectNotFoundError naming the key, head returns null",
      withStore(async (s) => {
        const err = await s.get("no/such/key").then(
          () => assert.fail("get of a missing key succeeded"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof ObjectNotFoundError, `expected ObjectNotFoundError, got ${String(err)}`);
        assert.equal(err.key, "no/such/key");
        assert.equal(err.op, "get");
        // A wrapping store passes its inner store's errors through; its description contains the inner one.
        assert.ok(s.description.includes(err.store), `${err.store} vs ${s.description}`);
        assert.match(err.message, /no\/such\/key/);
        assert.equal(await s.head("no/such/key"), null);
      }),
    );

    it(
      "putIfAbsent creates once, then fails with PreconditionFailedError and keeps the first body",
      withStore(async (s) => {
        const r = await s.putIfAbsent("once", buf("first"));
        await assert.rejects(s.putIfAbsent("once", buf("second")), (e: unknown) => {
          assert.ok(e instanceof PreconditionFailedError);
          assert.equal(e.key, "once");
          assert.equal(e.op, "putIfAbsent");
          return true;
        });
        assert.deepEqual(await s.get("once"), buf("first"));
        assert.equal((await s.head("once"))?.etag, r.etag);
      }),
    );

    it(
      "putIfMatch: right etag replaces, wrong or stale etag and absent object fail",
      withStore(async (s) => {
        const r1 = await s.put("m", buf("v1"));
        const r2 = await s.putIfMatch("m", buf("v2"), r1.etag);
        assert.notEqual(r2.etag, r1.etag);
        assert.deepEqual(await s.get("m"), buf("v2"));
        await assert.rejects(s.putIfMatch("m", buf("v3"), r1.etag), PreconditionFailedError);
        await assert.rejects(s.putIfMatch("m", buf("v3"), "not-an-etag"), PreconditionFailedError);
        await assert.rejects(s.putIfMatch("absent", buf("v3"), r1.etag), PreconditionFailedError);
        assert.equal(await s.head("absent"), null);
        assert.deepEqual(await s.get("m"), buf("v2"));
        assert.equal((await s.head("m"))?.etag, r2.etag);
      }),
    );

    it(
      `8 concurrent putIfAbsent on one key: exactly one wins (${rounds} rounds)`,
      withStore(async (s) => {
        for (let round = 0; round < rounds; round++) {
          const key = `race/${round}`;
          const { wins, losses } = await race(Array.from({ length: 8 }, (_, i) => s.putIfAbsent(key, buf(`writer-${i}`))));
          assert.equal(wins.length, 1, `round ${round}: ${wins.length} winners`);
          for (const l of losses) assert.ok(l instanceof PreconditionFailedError, `round ${round}: loser got ${String(l)}`);
          assert.equal((await s.get(key)).toString(), `writer-${wins[0]?.index}`);
        }
      }),
    );

    it(
      `8 concurrent putIfMatch with one etag: exactly one wins (${Math.ceil(rounds / 2)} rounds)`,
      withStore(async (s) => {
        let { etag } = await s.put("cas", buf("start"));
        for (let round = 0; round < Math.ceil(rounds / 2); round++) {
          const { wins, losses } = await race(Array.from({ length: 8 }, (_, i) => s.putIfMatch("cas", buf(`r${round}-w${i}`), etag)));
          assert.equal(wins.length, 1, `round ${round}: ${wins.length} winners`);
          for (const l of losses) assert.ok(l instanceof PreconditionFailedError, `round ${round}: loser got ${String(l)}`);
          const winner = wins[0];
          assert.ok(winner);
          assert.equal((await s.get("cas")).toString(), `r${round}-w${winner.index}`);
          etag = winner.value.etag;
          assert.equal((await s.head("cas"))?.etag, etag);
        }
      }),
    );

    it(
      "head returns size, the etag put returned, and a date",
      withStore(async (s) => {
        const before = Date.now();
        const { etag } = await s.put("h/x", buf("12345"));
        const meta = await s.head("h/x");
        assert.ok(meta);
        assert.equal(meta.key, "h/x");
        assert.equal(meta.size, 5);
        assert.equal(meta.etag, etag);
        assert.ok(meta.lastModified instanceof Date);
        // Servers may truncate to whole seconds; only check it is roughly now.
        assert.ok(Math.abs(meta.lastModified.getTime() - before) < 120_000, `lastModified ${meta.lastModified.toISOString()}`);
      }),
    );

    it(
      "list(prefix): sorted, nested keys included, other prefixes excluded, metadata filled",
      withStore(async (s) => {
        const keys = ["logs/002", "logs/001", "logs/010/part", "logs/003/a/b", "logsx/1", "other/1", "log", "top"];
        for (const k of keys) await s.put(k, buf(`body of ${k}`));
        const logs = await s.list("logs/");
        assert.deepEqual(
          logs.map((m) => m.key),
          ["logs/001", "logs/002", "logs/003/a/b", "logs/010/part"],
        );
        for (const m of logs) {
          assert.equal(m.size, Buffer.byteLength(`body of ${m.key}`));
          assert.equal(m.etag, (await s.head(m.key))?.etag);
        }
        assert.deepEqual(
          (await s.list("logs/00")).map((m) => m.key),
          ["logs/001", "logs/002", "logs/003/a/b"],
        );
        assert.deepEqual(
          (await s.list("log")).map((m) => m.key),
          ["log", "logs/001", "logs/002", "logs/003/a/b", "logs/010/part", "logsx/1"],
        );
        assert.deepEqual(
          (await s.list("")).map((m) => m.key),
          [...keys].sort(),
        );
        assert.deepEqual(await s.list("nothing/"), []);
        assert.deepEqual(await s.list("top/"), []);
      }),
    );

    it(
      "delete removes the object and is idempotent",
      withStore(async (s) => {
        await s.put("d/1", buf("x"));
        await s.put("d/2", buf("y"));
        await s.delete("d/1");
        assert.equal(await s.head("d/1"), null);
        await assert.rejects(s.get("d/1"), ObjectNotFoundError);
        await s.delete("d/1");
        await s.delete("never/existed");
        assert.deepEqual(
          (await s.list("d/")).map((m) => m.key),
          ["d/2"],
        );
        // A deleted key can be created again, conditionally too.
        await s.putIfAbsent("d/1", buf("again"));
        assert.deepEqual(await s.get("d/1"), buf("again"));
      }),
    );

    it(
      "binary bodies up to a few MiB are byte-exact, whole and ranged; empty bodies work",
      withStore(async (s) => {
        for (const size of [1, 255, 65_537, 3 * 1024 * 1024 + 17]) {
          const body = randomBytes(size);
          await s.put(`bin/${size}`, body);
          assert.ok((await s.get(`bin/${size}`)).equals(body), `size ${size}`);
          const off = Math.floor(size / 3);
          assert.ok((await s.get(`bin/${size}`, { offset: off, length: 1000 })).equals(body.subarray(off, off + 1000)), `range of ${size}`);
          assert.equal((await s.head(`bin/${size}`))?.size, size);
        }
        await s.put("empty", new Uint8Array(0));
        assert.equal((await s.get("empty")).length, 0);
        assert.equal((await s.get("empty", { offset: 0, length: 10 })).length, 0);
        assert.equal((await s.head("empty"))?.size, 0);
        await s.putIfAbsent("empty2", Buffer.alloc(0));
        assert.equal((await s.get("empty2")).length, 0);
      }),
    );

    it(
      "stored bytes are isolated from the caller's buffers",
      withStore(async (s) => {
        const body = buf("immutable");
        await s.put("iso", body);
        body.fill(0);
        const got = await s.get("iso");
        assert.equal(got.toString(), "immutable");
        got.fill(0);
        assert.equal((await s.get("iso")).toString(), "immutable");
      }),
    );

    it(
      "invalid keys are rejected with an ObjectStoreError naming the problem",
      withStore(async (s) => {
        const bad = ["", "/abs", "a//b", "trailing/", "..", "../escape", "a/../../b", "./a", "a/.", ".tmp/x", "nul\0byte"];
        for (const key of bad) {
          for (const op of [() => s.put(key, buf("x")), () => s.get(key), () => s.head(key), () => s.delete(key), () => s.putIfAbsent(key, buf("x"))]) {
            await assert.rejects(op(), (e: unknown) => {
              assert.ok(e instanceof ObjectStoreError, `key ${JSON.stringify(key)}: ${String(e)}`);
              assert.ok(!(e instanceof ObjectNotFoundError), `key ${JSON.stringify(key)} reported as not found`);
              assert.match(e.message, /invalid key/);
              return true;
            });
          }
        }
        await assert.rejects(s.list("../"), /invalid prefix/);
        await assert.rejects(s.list("/x"), /invalid prefix/);
        assert.deepEqual(await s.list(""), []);
      }),
    );
  });
}
