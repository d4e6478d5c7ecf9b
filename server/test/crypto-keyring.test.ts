import { test } from "node:test";
import assert from "node:assert/strict";
import * as argon2 from "argon2";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import {
  changePassword,
  DEK_OBJECT_KEY,
  KeyObjectCorruptError,
  openKeyring,
  VolumeNotFoundError,
  WrongPasswordError,
  type Keyring,
} from "../src/crypto/keyring.ts";
import { blockAad } from "../src/crypto/sealer.ts";
import { InjectedCrashError } from "../src/store/errors.ts";
import { MemoryStore } from "../src/store/memory-store.ts";
import type { PutResult } from "../src/store/object-store.ts";

// Every open costs one Argon2id at the real (minimum) params, ~0.2 s; tests share work where
// they can to stay within a few seconds.

async function snapshot(store: MemoryStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of await store.list("")) out.set(m.key, `${m.etag}:${(await store.get(m.key)).toString("base64")}`);
  return out;
}

async function opens(store: MemoryStore, password: string): Promise<Keyring | null> {
  try {
    return await openKeyring(store, password);
  } catch (err) {
    if (err instanceof WrongPasswordError) return null;
    throw err;
  }
}

/** Crashes on the first putIfMatch, either before or after applying it. */
class CrashingStore extends MemoryStore {
  crash: "before" | "after" | null;
  constructor(crash: "before" | "after") {
    super("crashing");
    this.crash = crash;
  }
  override async putIfMatch(key: string, body: Uint8Array, etag: string): Promise<PutResult> {
    const mode = this.crash;
    this.crash = null;
    if (mode === "before") throw new InjectedCrashError(this.description, "putIfMatch", key);
    const r = await super.putIfMatch(key, body, etag);
    if (mode === "after") throw new InjectedCrashError(this.description, "putIfMatch", key);
    return r;
  }
}

test("create, reopen: same subkeys; the object holds neither password nor DEK; sealers work across opens", async () => {
  const store = new MemoryStore();
  const password = "correct horse battery staple";
  const k1 = await openKeyring(store, password);
  const k2 = await openKeyring(store, password);
  assert.equal(k1.keyId, k2.keyId);
  assert.ok(k1.subkey("index").equals(k2.subkey("index")));
  assert.ok(!k1.subkey("index").equals(k1.subkey("data")));
  assert.equal(k1.subkey("x").length, 32);
  assert.equal(k1.sealer("sst"), k1.sealer("sst"), "sealers are memoized per purpose");
  const aad = blockAad("sst/1", 0);
  const sealed = await k1.sealer("sst").seal(Buffer.from("hello"), aad);
  assert.equal((await k2.sealer("sst").open(sealed, aad)).toString(), "hello");
  await assert.rejects(k2.sealer("wal").open(sealed, aad));

  // Unwrap by hand from the documented format, to find the DEK and check it is not stored.
  const body = await store.get(DEK_OBJECT_KEY);
  const text = body.toString("utf8");
  const j = JSON.parse(text) as {
    version: number;
    kdf: { memoryKiB: number; iterations: number; parallelism: number; salt: string };
    wrap: { nonce: string; ciphertext: string };
  };
  assert.equal(j.version, 1);
  assert.deepEqual([j.kdf.memoryKiB, j.kdf.iterations, j.kdf.parallelism], [65536, 3, 4]);
  const salt = Buffer.from(j.kdf.salt, "base64");
  const kek = await argon2.hash(password, { type: argon2.argon2id, raw: true, hashLength: 32, salt, memoryCost: 65536, timeCost: 3, parallelism: 4 });
  const aadWrap = Buffer.concat([Buffer.from("zerofs-wrapped-dek/v1|argon2id|m=65536|t=3|p=4|"), salt]);
  const dek = Buffer.from(xchacha20poly1305(kek, Buffer.from(j.wrap.nonce, "base64"), aadWrap).decrypt(Buffer.from(j.wrap.ciphertext, "base64")));
  assert.equal(dek.length, 32);
  for (const needle of [dek, Buffer.from(dek.toString("hex")), Buffer.from(dek.toString("base64")), Buffer.from(password), kek]) {
    assert.equal(body.indexOf(needle), -1);
  }
  assert.ok(!text.includes(password));
});

test("wrong password throws WrongPasswordError naming the store, and writes nothing", async () => {
  const store = new MemoryStore("vol-a");
  await openKeyring(store, "right password");
  const before = await snapshot(store);
  await assert.rejects(openKeyring(store, "wrong password"), (e: unknown) => {
    assert.ok(e instanceof WrongPasswordError);
    assert.match(e.message, /does not match/);
    assert.match(e.message, /memory:\/\/vol-a/);
    return true;
  });
  assert.deepEqual(await snapshot(store), before);
});

test("create: false refuses to start a new volume (nothing written); onCreate reports a creation once", async () => {
  const store = new MemoryStore("vol-new");
  await assert.rejects(openKeyring(store, "pw", { create: false }), (e: unknown) => {
    assert.ok(e instanceof VolumeNotFoundError);
    assert.match(e.message, /no volume in memory:\/\/vol-new .*ZEROFS_NO_CREATE/);
    return true;
  });
  assert.deepEqual(await store.list(""), [], "nothing was written");
  const created: string[] = [];
  await openKeyring(store, "pw", { onCreate: (where) => created.push(where) });
  await openKeyring(store, "pw", { create: false, onCreate: (where) => created.push(where) });
  assert.deepEqual(created, ["memory://vol-new"], "the reopen is not a creation");
});

test("empty passwords and weaker KDF params are rejected before anything is written", async () => {
  const store = new MemoryStore();
  await assert.rejects(openKeyring(store, ""), /empty/);
  await assert.rejects(openKeyring(store, "pw", { argon2: { memoryKiB: 1024 } }), /memoryKiB/);
  await assert.rejects(openKeyring(store, "pw", { argon2: { iterations: 1 } }), /iterations/);
  await assert.rejects(changePassword(store, "a", ""), /empty/);
  assert.equal((await store.list("")).length, 0);
});

test("changePassword: old stops working, new works, same data key; retry is idempotent", async () => {
  const store = new MemoryStore();
  const k0 = await openKeyring(store, "old-pw");
  const r = await changePassword(store, "old-pw", "new-pw");
  assert.equal(r.changed, true);
  assert.equal(r.keyId, k0.keyId);
  assert.equal(await opens(store, "old-pw"), null);
  const k1 = await opens(store, "new-pw");
  assert.ok(k1);
  assert.ok(k1.subkey("sst").equals(k0.subkey("sst")));
  // A retried rotation (the first reply was lost) succeeds without changing anything.
  const before = await snapshot(store);
  const again = await changePassword(store, "old-pw", "new-pw");
  assert.deepEqual([again.changed, again.keyId], [false, k0.keyId]);
  assert.deepEqual(await snapshot(store), before);
  await assert.rejects(changePassword(store, "neither", "other"), WrongPasswordError);
  assert.deepEqual(await snapshot(store), before);
});

for (const mode of ["before", "after"] as const) {
  test(`a crash ${mode} the key object replacement leaves exactly one password working`, async () => {
    const store = new CrashingStore(mode);
    const k0 = await openKeyring(store, "old-pw");
    await assert.rejects(changePassword(store, "old-pw", "new-pw"), InjectedCrashError);
    const oldK = await opens(store, "old-pw");
    const newK = await opens(store, "new-pw");
    assert.equal(Number(oldK !== null) + Number(newK !== null), 1, "exactly one password opens the volume");
    assert.equal((mode === "before" ? oldK : newK)?.keyId, k0.keyId);
    // Retrying completes the change (or recognises it was already done).
    const r = await changePassword(store, "old-pw", "new-pw");
    assert.equal(r.changed, mode === "before");
    assert.equal(r.keyId, k0.keyId);
  });
}

test("two racing first opens create one key object and agree on the key", async () => {
  const store = new MemoryStore();
  const [a, b] = await Promise.all([openKeyring(store, "pw"), openKeyring(store, "pw")]);
  assert.equal(a.keyId, b.keyId);
  assert.ok(a.subkey("sst").equals(b.subkey("sst")));
  assert.deepEqual((await store.list("")).map((m) => m.key), [DEK_OBJECT_KEY]);
});

test("a corrupt key object gives a clear error naming the object and store", async () => {
  const cases: [string, RegExp][] = [
    ["not json at all", /not valid JSON/],
    ["[]", /format/],
    [JSON.stringify({ format: "zerofs-wrapped-dek", version: 7 }), /format version 7/],
    [JSON.stringify({ format: "zerofs-wrapped-dek", version: 1, kdf: { alg: "argon2id" }, wrap: { alg: "xchacha20-poly1305" } }), /kdf\.memoryKiB/],
  ];
  for (const [body, re] of cases) {
    const store = new MemoryStore("corrupt");
    await store.put(DEK_OBJECT_KEY, Buffer.from(body));
    await assert.rejects(openKeyring(store, "pw"), (e: unknown) => {
      assert.ok(e instanceof KeyObjectCorruptError, String(e));
      assert.match(e.message, /keys\/dek/);
      assert.match(e.message, /memory:\/\/corrupt/);
      assert.match(e.message, re);
      return true;
    });
  }
  // Valid shape, truncated ciphertext.
  const store = new MemoryStore();
  await openKeyring(store, "pw");
  const j = JSON.parse((await store.get(DEK_OBJECT_KEY)).toString()) as { wrap: { ciphertext: string } };
  j.wrap.ciphertext = j.wrap.ciphertext.slice(0, 20);
  await store.put(DEK_OBJECT_KEY, Buffer.from(JSON.stringify(j)));
  await assert.rejects(openKeyring(store, "pw"), /wrap\.ciphertext is \d+ bytes, expected 48/);
});
