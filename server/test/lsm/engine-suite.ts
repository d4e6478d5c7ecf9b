/**
 * The engine suite: the same behavioural tests run against every object store (memory, local
 * directory, a real S3 server). Each test gets a fresh, empty store.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Db, type DbOptions } from "../../src/lsm/db.ts";
import { CorruptObjectError, FencedError } from "../../src/lsm/errors.ts";
import { WriteBatch } from "../../src/lsm/write-batch.ts";
import { FaultInjectingStore } from "../../src/store/fault-store.ts";
import type { ObjectStore } from "../../src/store/object-store.ts";
import { Rng } from "../../../test/support/random.ts";
import { testKeys } from "../../../test/support/test-keys.ts";

export interface StoreFixture {
  store: ObjectStore;
  cleanup: () => Promise<void>;
}

export interface EngineSuiteOptions {
  /** Operations in the randomized model test. */
  modelOps: number;
  /** Trials of the crash test. */
  crashTrials: number;
}

const k = (s: string): Buffer => Buffer.from(s, "utf8");

/** Small sizes so that a few hundred writes exercise flushes, compaction and multi-SST runs. */
export const SMALL: Partial<DbOptions> = {
  flushIntervalMs: 2,
  memtableBytes: 16 * 1024,
  sstBlockBytes: 1024,
  sstTargetBytes: 8 * 1024,
  l0CompactionTrigger: 3,
  runMergeWidth: 3,
  gcIntervalMs: 0,
  gcMinAgeMs: 0,
};

async function scanAll(db: Db, from?: Buffer, to?: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of db.scan(from, to)) out.set(e.key.toString("hex"), e.value!.toString("hex"));
  return out;
}

export function engineSuite(name: string, makeStore: () => Promise<StoreFixture>, opts: EngineSuiteOptions): void {
  const withStore = async (fn: (store: ObjectStore) => Promise<void>): Promise<void> => {
    const fx = await makeStore();
    try {
      await fn(fx.store);
    } finally {
      await fx.cleanup();
    }
  };

  describe(`engine on ${name}`, () => {
    it("puts, gets, deletes and scans across memtable, L0 and sorted runs", () =>
      withStore(async (store) => {
        const db = await Db.open(store, testKeys(), SMALL);
        for (let i = 0; i < 600; i++) {
          await db.write(new WriteBatch().put(k(`key${String(i).padStart(4, "0")}`), k(`value-${i}`)), { awaitDurable: false });
        }
        for (let i = 0; i < 600; i += 3) await db.write(new WriteBatch().delete(k(`key${String(i).padStart(4, "0")}`)), { awaitDurable: false });
        await db.flush();
        assert.ok(db.stats().sstObjects > 0, "small memtable must have flushed SSTs");
        assert.equal((await db.get(k("key0001")))?.toString(), "value-1");
        assert.equal(await db.get(k("key0003")), undefined);
        assert.equal(await db.get(k("nope")), undefined);
        const range = await scanAll(db, k("key0100"), k("key0110"));
        assert.deepEqual([...range.keys()].map((h) => Buffer.from(h, "hex").toString()), ["key0100", "key0101", "key0103", "key0104", "key0106", "key0107", "key0109"]);
        await db.compactAll();
        assert.equal(db.currentManifest.l0.length, 0);
        assert.equal(db.currentManifest.runs.length, 1);
        assert.equal((await scanAll(db)).size, 400);
        await db.close();
        const again = await Db.open(store, testKeys(), SMALL);
        assert.equal((await again.get(k("key0599")))?.toString(), "value-599");
        assert.equal((await scanAll(again)).size, 400);
        await again.close();
      }));

    it("a batch is atomic for readers and after recovery", () =>
      withStore(async (store) => {
        const db = await Db.open(store, testKeys(), SMALL);
        const b = new WriteBatch();
        for (let i = 0; i < 50; i++) b.put(k(`a${i}`), Buffer.alloc(300, i));
        const p = db.write(b);
        // Visible to readers as a whole as soon as write() has been called.
        assert.equal((await scanAll(db)).size, 50);
        await p;
        await db.close();
        const db2 = await Db.open(store, testKeys(), SMALL);
        assert.equal((await scanAll(db2)).size, 50);
        await db2.close();
      }));

    it("scan sees a consistent snapshot while writes, flushes and compactions go on", () =>
      withStore(async (store) => {
        const db = await Db.open(store, testKeys(), SMALL);
        for (let i = 0; i < 300; i++) await db.write(new WriteBatch().put(k(`s${String(i).padStart(3, "0")}`), k("old")), { awaitDurable: false });
        const seen: string[] = [];
        let i = 0;
        for await (const e of db.scan()) {
          seen.push(e.value!.toString());
          // Overwrite keys ahead of the cursor, delete some, and churn the tree.
          await db.write(new WriteBatch().put(k(`s${String(299 - (i % 300)).padStart(3, "0")}`), k("new")).delete(k(`s${String((i * 7) % 300).padStart(3, "0")}`)), { awaitDurable: false });
          if (i % 97 === 0) await db.flushMemtable();
          i++;
        }
        assert.equal(seen.length, 300);
        assert.ok(seen.every((v) => v === "old"), "scan must not see writes made after it started");
        await db.close();
      }));

    it(`randomized model test (${opts.modelOps} ops with flushes, compactions, reopens and crashes)`, () =>
      withStore(async (inner) => {
        const rng = Rng.fromEnv(`model test on ${name}`);
        let fault = new FaultInjectingStore(inner);
        let db = await Db.open(fault, testKeys(), SMALL);
        // Every batch in order; `model` is the state after all of them, `durableUpTo` the count
        // of batches known durable (a crash may keep any prefix at least that long).
        const history: [string, string | null][][] = [];
        let durableUpTo = 0;
        const model = new Map<string, string>();
        const apply = (m: Map<string, string>, batch: [string, string | null][]): void => {
          for (const [key, v] of batch) {
            if (v === null) m.delete(key);
            else m.set(key, v);
          }
        };
        const keyOf = (): Buffer => k(`k${rng.int(0, 400)}`);
        const valueOf = (): Buffer => (rng.chance(0.05) ? rng.bytes(rng.int(2000, 70_000)) : rng.bytes(rng.int(0, 200)));
        for (let step = 0; step < opts.modelOps; step++) {
          const r = rng.next();
          if (r < 0.55) {
            const b = new WriteBatch();
            const ops: [string, string | null][] = [];
            const n = rng.chance(0.7) ? 1 : rng.int(2, 20);
            for (let j = 0; j < n; j++) {
              const key = keyOf();
              if (rng.chance(0.2)) {
                b.delete(key);
                ops.push([key.toString("hex"), null]);
              } else {
                const v = valueOf();
                b.put(key, v);
                ops.push([key.toString("hex"), v.toString("hex")]);
              }
            }
            history.push(ops);
            apply(model, ops);
            const durable = rng.chance(0.1);
            await db.write(b, { awaitDurable: durable });
            if (durable) durableUpTo = history.length;
          } else if (r < 0.75) {
            const key = keyOf();
            const got = await db.get(key);
            assert.equal(got?.toString("hex"), model.get(key.toString("hex")), `step ${step}: get ${key.toString()} (seed ${rng.seed})`);
          } else if (r < 0.8) {
            let a = keyOf();
            let b = keyOf();
            if (Buffer.compare(a, b) > 0) [a, b] = [b, a];
            const got = await scanAll(db, a, b);
            const want = [...model].filter(([h]) => Buffer.compare(Buffer.from(h, "hex"), a) >= 0 && Buffer.compare(Buffer.from(h, "hex"), b) < 0).sort(([x], [y]) => Buffer.compare(Buffer.from(x, "hex"), Buffer.from(y, "hex")));
            assert.deepEqual([...got], want, `step ${step}: scan (seed ${rng.seed})`);
          } else if (r < 0.85) {
            await db.flush();
            durableUpTo = history.length;
          } else if (r < 0.9) {
            await db.flushMemtable();
          } else if (r < 0.93) {
            await db.compactAll();
          } else if (r < 0.965) {
            await db.close();
            durableUpTo = history.length;
            db = await Db.open(fault, testKeys(), SMALL);
          } else {
            // kill -9: the old writer can reach the store no more.
            fault.crashAfter(0);
            await db.close().catch(() => undefined);
            fault = new FaultInjectingStore(inner);
            db = await Db.open(fault, testKeys(), SMALL);
            const recovered = await scanAll(db);
            // Recovered state must equal the state after some prefix of at least durableUpTo batches.
            const m = new Map<string, string>();
            for (let j = 0; j < durableUpTo; j++) apply(m, history[j]!);
            let len = durableUpTo;
            const same = (): boolean => m.size === recovered.size && [...m].every(([x, v]) => recovered.get(x) === v);
            while (!same() && len < history.length) apply(m, history[len++]!);
            assert.ok(same(), `step ${step}: state after crash is not a prefix of at least ${durableUpTo} batches (seed ${rng.seed})`);
            history.length = len;
            model.clear();
            for (const [x, v] of m) model.set(x, v);
            durableUpTo = len;
          }
        }
        assert.deepEqual(await scanAll(db), new Map([...model].sort(([x], [y]) => Buffer.compare(Buffer.from(x, "hex"), Buffer.from(y, "hex")))));
        await db.close();
      }));

    it(`crash test: ${opts.crashTrials} kills at random store calls lose no acknowledged batch and leave none partial`, () =>
      withStore(async (root) => {
        const rng = Rng.fromEnv(`crash test on ${name}`);
        for (let trial = 0; trial < opts.crashTrials; trial++) {
          const inner = new PrefixStore(root, `t${trial}/`);
          const fault = new FaultInjectingStore(inner);
          const crashAt = rng.int(1, 80);
          fault.crashAfter(crashAt, { midPut: rng.chance(0.5) });
          const acked = new Set<number>();
          const batchSize = (i: number): number => 1 + (i % 5);
          try {
            const db = await Db.open(fault, testKeys(), { ...SMALL, memtableBytes: 4096 });
            const inflight: Promise<void>[] = [];
            let died: unknown;
            for (let i = 0; i < 400 && died === undefined; i++) {
              const b = new WriteBatch();
              for (let j = 0; j < batchSize(i); j++) b.put(k(`b${i}/${j}`), k(`v${i}`.repeat(20)));
              b.put(k("last"), k(String(i)));
              const p = db.write(b).then(() => void acked.add(i), (err: unknown) => void (died = err));
              inflight.push(p);
              if (inflight.length >= 4) await inflight.shift();
              if (i % 50 === 49) await db.compactAll();
            }
            await Promise.all(inflight);
            await db.close();
          } catch {
            // The writer died: that is the point.
          }
          const db = await Db.open(inner, testKeys(), SMALL);
          const state = await scanAll(db);
          const present = new Map<number, number>();
          for (const h of state.keys()) {
            const m = /^b(\d+)\/\d+$/.exec(Buffer.from(h, "hex").toString());
            if (m) present.set(Number(m[1]), (present.get(Number(m[1])) ?? 0) + 1);
          }
          for (const i of acked) assert.equal(present.get(i), batchSize(i), `trial ${trial} (crash after call ${crashAt}, seed ${rng.seed}): acknowledged batch ${i} lost`);
          for (const [i, n] of present) assert.equal(n, batchSize(i), `trial ${trial} (crash after call ${crashAt}, seed ${rng.seed}): batch ${i} partial`);
          const last = await db.get(k("last"));
          if (acked.size > 0) assert.ok(Number(last?.toString()) >= Math.max(...acked), `trial ${trial}: "last" went backwards`);
          await db.close();
        }
      }));

    const parallelTrials = Math.min(40, opts.crashTrials);
    it(`crash test with several WAL PUTs in flight, landing out of order: ${parallelTrials} kills; gaps are cut off, strays never read, late PUTs of the dead writer change nothing`, () =>
      withStore(async (root) => {
        const rng = Rng.fromEnv(`parallel WAL crash test on ${name}`);
        let gaps = 0;
        for (let trial = 0; trial < parallelTrials; trial++) {
          const inner = new PrefixStore(root, `p${trial}/`);
          const fault = new FaultInjectingStore(inner);
          // Every third WAL object is slow, so higher ids land first and a crash leaves a gap
          // with stray objects above it; its PUT may even land after the crash (a zombie's).
          fault.addRule({ op: "putIfAbsent", key: (key) => /wal\/\d+$/.test(key) && Number(key.slice(-20)) % 3 === 0, delayMs: 25 });
          const crashAt = rng.int(5, 60);
          fault.crashAfter(crashAt, { midPut: rng.chance(0.5) });
          const acked = new Set<number>();
          const batchSize = (i: number): number => 1 + (i % 3);
          try {
            // Parallel PUTs at once, whatever the store's speed.
            const db = await Db.open(fault, testKeys(), { ...SMALL, memtableBytes: 8192, walMaxInFlight: 8, walParallelAfterMs: 0 });
            const inflight: Promise<void>[] = [];
            let died: unknown;
            for (let i = 0; i < 300 && died === undefined; i++) {
              const b = new WriteBatch();
              for (let j = 0; j < batchSize(i); j++) b.put(k(`b${i}/${j}`), k(`v${i}`.repeat(10)));
              b.put(k("last"), k(String(i)));
              inflight.push(db.write(b).then(() => void acked.add(i), (err: unknown) => void (died = err)));
              if (inflight.length >= 16) await inflight.shift();
            }
            await Promise.all(inflight);
            await db.close();
          } catch {
            // The writer died: that is the point.
          }
          const walIds = (await inner.list("wal/")).map((m) => Number(m.key.slice(-20))).sort((a, b) => a - b);
          if (walIds.some((id, i) => i > 0 && id !== walIds[i - 1]! + 1)) gaps++;
          const check = async (when: string): Promise<void> => {
            const db = await Db.open(inner, testKeys(), SMALL);
            const state = await scanAll(db);
            const present = new Map<number, number>();
            for (const h of state.keys()) {
              const m = /^b(\d+)\/\d+$/.exec(Buffer.from(h, "hex").toString());
              if (m) present.set(Number(m[1]), (present.get(Number(m[1])) ?? 0) + 1);
            }
            const at = `trial ${trial} ${when} (crash after call ${crashAt}, seed ${rng.seed})`;
            for (const i of acked) assert.equal(present.get(i), batchSize(i), `${at}: acknowledged batch ${i} lost`);
            for (const [i, n] of present) assert.equal(n, batchSize(i), `${at}: batch ${i} partial`);
            const last = Number((await db.get(k("last")))?.toString() ?? "-1");
            if (acked.size > 0) assert.ok(last >= Math.max(...acked), `${at}: "last" went backwards`);
            // Batches apply in order: whatever survived is a prefix of what was written.
            for (let i = 0; i <= last; i++) assert.ok(present.has(i), `${at}: batch ${i} missing below "last" = ${last}`);
            await db.write(new WriteBatch().put(k(`after-${when}`), k("1")));
            await db.close();
          };
          await check("after the crash");
          // The dead writer's delayed PUTs land now, into claimed or deleted ids: nothing changes.
          await new Promise((r) => setTimeout(r, 60));
          await check("after its late PUTs");
        }
        console.log(`parallel WAL crash test on ${name}: ${gaps} of ${parallelTrials} crashes left a gap in the WAL (seed ${rng.seed})`);
        assert.ok(gaps > 0, "some crash left a gap (otherwise the test proves nothing)");
      }));

    it("fencing: a second writer takes over; the first one's writes fail and never appear", () =>
      withStore(async (store) => {
        const a = await Db.open(store, testKeys(), SMALL);
        await a.write(new WriteBatch().put(k("from-a"), k("1")));
        const b = await Db.open(store, testKeys(), SMALL);
        assert.equal((await b.get(k("from-a")))?.toString(), "1", "new writer sees the old writer's durable data");
        await assert.rejects(a.write(new WriteBatch().put(k("zombie"), k("x"))), FencedError);
        await assert.rejects(a.write(new WriteBatch().put(k("zombie2"), k("x"))), FencedError);
        await b.write(new WriteBatch().put(k("from-b"), k("2")));
        await b.flushMemtable();
        await b.close();
        await a.close().catch(() => undefined);
        const c = await Db.open(store, testKeys(), SMALL);
        assert.equal(await c.get(k("zombie")), undefined);
        assert.equal(await c.get(k("zombie2")), undefined);
        assert.equal((await c.get(k("from-a")))?.toString(), "1");
        assert.equal((await c.get(k("from-b")))?.toString(), "2");
        await c.close();
      }));

    it("fencing, interleaved: acknowledged writes of the fenced writer are kept, later ones fail", () =>
      withStore(async (store) => {
        const rng = Rng.fromEnv(`interleaved fencing on ${name}`);
        const a = await Db.open(store, testKeys(), SMALL);
        const ackedA: number[] = [];
        const failedA: number[] = [];
        const writes: Promise<void>[] = [];
        let b: Db | undefined;
        for (let i = 0; i < 60; i++) {
          if (i === 20) b = await Db.open(store, testKeys(), SMALL);
          writes.push(a.write(new WriteBatch().put(k(`a${i}`), k("x"))).then(() => void ackedA.push(i), () => void failedA.push(i)));
          if (b && rng.chance(0.5)) await b.write(new WriteBatch().put(k(`b${i}`), k("y")));
          if (rng.chance(0.3)) await new Promise((r) => setTimeout(r, 3));
        }
        await Promise.all(writes);
        assert.ok(failedA.length > 0, "the fenced writer must fail");
        assert.ok(a.isFenced);
        await b!.close();
        const c = await Db.open(store, testKeys(), SMALL);
        for (const i of ackedA) assert.equal((await c.get(k(`a${i}`)))?.toString(), "x", `acknowledged write a${i} lost`);
        for (const i of failedA) assert.equal(await c.get(k(`a${i}`)), undefined, `failed write a${i} appeared (seed ${rng.seed})`);
        await c.close();
        await a.close().catch(() => undefined);
      }));

    it("garbage collection removes replaced SSTs and flushed WAL objects, keeps data", () =>
      withStore(async (store) => {
        const db = await Db.open(store, testKeys(), SMALL);
        for (let i = 0; i < 400; i++) await db.write(new WriteBatch().put(k(`g${i}`), Buffer.alloc(100, i)), { awaitDurable: false });
        await db.flushMemtable();
        await db.compactAll();
        const before = (await store.list("sst/")).length;
        const res = await db.runGc();
        assert.ok(res.sst > 0 && res.wal > 0, `gc removed ${JSON.stringify(res)}`);
        const live = db.currentManifest.runs.flatMap((r) => r.ssts.map((s) => s.key)).sort();
        assert.deepEqual((await store.list("sst/")).map((o) => o.key), live);
        assert.ok(before > live.length);
        await db.close();
        const again = await Db.open(store, testKeys(), SMALL);
        assert.equal((await scanAll(again)).size, 400);
        await again.close();
      }));

    it("a corrupt WAL object, a missing SST or a truncated manifest is reported by object name", () =>
      withStore(async (store) => {
        const db = await Db.open(store, testKeys(), SMALL);
        await db.write(new WriteBatch().put(k("x"), k("y")));
        await db.flushMemtable();
        await db.write(new WriteBatch().put(k("z"), k("w")));
        const ssts = db.currentManifest.l0.map((r) => r.key);
        await db.close();
        // A clean close flushes the memtable; leave a WAL object to replay by crashing.
        const fault = new FaultInjectingStore(store);
        const db2 = await Db.open(fault, testKeys(), SMALL);
        await db2.write(new WriteBatch().put(k("late"), k("1")));
        fault.crashAfter(0);
        await db2.close().catch(() => undefined);
        const wals = (await store.list("wal/")).map((o) => o.key);
        const victim = wals[wals.length - 1]!;
        const good = await store.get(victim);
        const bad = Buffer.from(good);
        bad[bad.length - 5]! ^= 0xff;
        await store.put(victim, bad);
        await assert.rejects(Db.open(store, testKeys(), SMALL), (err: unknown) => err instanceof CorruptObjectError && err.message.includes(victim));
        await store.put(victim, good);
        const db3 = await Db.open(store, testKeys(), SMALL);
        assert.equal((await db3.get(k("late")))?.toString(), "1");
        await store.delete(ssts[0]!);
        await assert.rejects(db3.get(k("x")), (err: unknown) => err instanceof Error && err.message.includes(ssts[0]!));
        await db3.close().catch(() => undefined);
        // A damaged (here: truncated) latest manifest is named, not skipped.
        const manifests = (await store.list("manifest/")).map((o) => o.key);
        const latest = manifests[manifests.length - 1]!;
        const m = await store.get(latest);
        await store.put(latest, m.subarray(0, m.length - 3));
        await assert.rejects(Db.open(store, testKeys(), SMALL), (err: unknown) => err instanceof CorruptObjectError && err.message.includes(latest));
      }));
  });
}

/** A view of a store under a key prefix, so crash trials share one real store cheaply. */
class PrefixStore implements ObjectStore {
  readonly description: string;
  private readonly inner: ObjectStore;
  private readonly prefix: string;
  constructor(inner: ObjectStore, prefix: string) {
    this.inner = inner;
    this.prefix = prefix;
    this.description = `${inner.description}/${prefix}`;
  }
  get: ObjectStore["get"] = (key, range) => this.inner.get(this.prefix + key, range);
  put: ObjectStore["put"] = (key, body) => this.inner.put(this.prefix + key, body);
  putIfAbsent: ObjectStore["putIfAbsent"] = (key, body) => this.inner.putIfAbsent(this.prefix + key, body);
  putIfMatch: ObjectStore["putIfMatch"] = (key, body, etag) => this.inner.putIfMatch(this.prefix + key, body, etag);
  head: ObjectStore["head"] = async (key) => {
    const m = await this.inner.head(this.prefix + key);
    return m && { ...m, key };
  };
  list: ObjectStore["list"] = async (prefix) =>
    (await this.inner.list(this.prefix + prefix)).map((m) => ({ ...m, key: m.key.slice(this.prefix.length) }));
  delete: ObjectStore["delete"] = (key) => this.inner.delete(this.prefix + key);
  close = async (): Promise<void> => undefined;
}
