import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { SealError } from "../src/crypto/sealer.ts";
import { XChaChaKey, xchachaOpen, xchachaSeal } from "../src/crypto/xchacha.ts";

const LENGTHS = [0, 1, 63, 64, 65, 64 * 1024, 1024 * 1024];

test("matches noble xchacha20poly1305 byte for byte, both directions", () => {
  for (const len of LENGTHS) {
    for (const aadLen of [0, 1, 37]) {
      const key = randomBytes(32);
      const nonce = randomBytes(24);
      const aad = randomBytes(aadLen);
      const plain = randomBytes(len);
      const ours = xchachaSeal(key, nonce, plain, aad);
      const noble = xchacha20poly1305(key, nonce, aad).encrypt(plain);
      assert.equal(ours.length, len + 16);
      assert.ok(ours.equals(noble), `seal differs from noble at len=${len} aad=${aadLen}`);
      assert.ok(xchachaOpen(key, nonce, noble, aad).equals(plain), `cannot open noble's output at len=${len}`);
      assert.ok(Buffer.from(xchacha20poly1305(key, nonce, aad).decrypt(ours)).equals(plain));
    }
  }
});

test("prefix is prepended without changing the ciphertext", () => {
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const plain = randomBytes(100);
  const prefix = Buffer.from("HDR");
  const withPrefix = xchachaSeal(key, nonce, plain, Buffer.alloc(0), prefix);
  assert.ok(withPrefix.subarray(0, 3).equals(prefix));
  assert.ok(withPrefix.subarray(3).equals(xchachaSeal(key, nonce, plain, Buffer.alloc(0))));
});

test("unaligned subarray inputs work (pooled Buffers)", () => {
  const pool = randomBytes(200);
  const key = pool.subarray(1, 33);
  const nonce = pool.subarray(35, 59);
  const plain = pool.subarray(61, 161);
  const aad = pool.subarray(3, 10);
  const noble = xchacha20poly1305(Uint8Array.from(key), Uint8Array.from(nonce), Uint8Array.from(aad)).encrypt(Uint8Array.from(plain));
  assert.ok(xchachaSeal(key, nonce, plain, aad).equals(noble));
});

test("tampering with ciphertext, tag, AAD, nonce or key fails with SealError", () => {
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const aad = Buffer.from("sst/000001@4096");
  const sealed = xchachaSeal(key, nonce, randomBytes(1000), aad);
  const flip = (b: Buffer, i: number) => {
    const c = Buffer.from(b);
    c[i]! ^= 0x01;
    return c;
  };
  assert.throws(() => xchachaOpen(key, nonce, flip(sealed, 0), aad), SealError);
  assert.throws(() => xchachaOpen(key, nonce, flip(sealed, 999), aad), SealError);
  assert.throws(() => xchachaOpen(key, nonce, flip(sealed, sealed.length - 1), aad), SealError); // tag
  assert.throws(() => xchachaOpen(key, nonce, sealed, flip(aad, 3)), SealError);
  assert.throws(() => xchachaOpen(key, nonce, sealed, Buffer.alloc(0)), SealError);
  assert.throws(() => xchachaOpen(key, flip(nonce, 2), sealed, aad), SealError); // HChaCha half
  assert.throws(() => xchachaOpen(key, flip(nonce, 20), sealed, aad), SealError); // IETF half
  assert.throws(() => xchachaOpen(flip(key, 5), nonce, sealed, aad), SealError);
  assert.throws(() => xchachaOpen(key, nonce, sealed.subarray(0, sealed.length - 1), aad), SealError);
  assert.throws(() => xchachaOpen(key, nonce, sealed.subarray(0, 10), aad), SealError);
});

test("rejects wrong key and nonce sizes", () => {
  assert.throws(() => xchachaSeal(randomBytes(16), randomBytes(24), Buffer.alloc(1), Buffer.alloc(0)), /key must be 32 bytes/);
  assert.throws(() => xchachaSeal(randomBytes(32), randomBytes(12), Buffer.alloc(1), Buffer.alloc(0)), /nonce must be 24 bytes/);
});

test("XChaChaKey: nonces share a random prefix and count under it; output is plain XChaCha20-Poly1305 (noble opens it)", () => {
  const key = randomBytes(32);
  const k = new XChaChaKey(key);
  const other = new XChaChaKey(key); // another process with the same key
  const seen = new Set<string>();
  let prefix: string | undefined;
  for (let i = 0; i < 300; i++) {
    const nonce = Buffer.alloc(24);
    const plain = randomBytes(i * 7);
    const aad = randomBytes(i % 5);
    const [ct, tag] = k.sealParts(plain, aad, nonce);
    const sealed = Buffer.concat([ct!, tag!]);
    const id = nonce.toString("hex");
    assert.ok(!seen.has(id), `nonce reused at message ${i}`);
    seen.add(id);
    prefix ??= id.slice(0, 32);
    assert.equal(id.slice(0, 32), prefix, "one subkey (prefix) serves many messages");
    assert.equal(nonce.readUInt32LE(16), i, "counter under the prefix");
    assert.ok(Buffer.from(xchacha20poly1305(key, nonce, aad).decrypt(sealed)).equals(plain));
    assert.ok(other.open(nonce, sealed, aad).equals(plain));
    assert.ok(xchachaOpen(key, nonce, sealed, aad).equals(plain));
    const bad = Buffer.from(sealed);
    if (bad.length > 0) {
      bad[0]! ^= 1;
      assert.throws(() => other.open(nonce, bad, aad), SealError);
    }
  }
  // A second key object picks its own random prefix: no nonce shared across processes.
  const n2 = Buffer.alloc(24);
  other.sealParts(Buffer.alloc(1), Buffer.alloc(0), n2);
  assert.notEqual(n2.subarray(0, 16).toString("hex"), prefix);
});
