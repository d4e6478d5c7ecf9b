// Seal/open throughput for 64 KiB blocks: noble's pure-JS XChaCha20-Poly1305 vs the
// OpenSSL-backed path (server/src/crypto/xchacha.ts), and the full block sealer (zstd + AEAD)
// on compressible and incompressible data. Run: npx node bench/seal.ts
import { randomBytes } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { createBlockSealer } from "../server/src/crypto/block-sealer.ts";
import { blockAad } from "../server/src/crypto/sealer.ts";
import { xchachaOpen, xchachaSeal } from "../server/src/crypto/xchacha.ts";

const BLOCK = 64 * 1024;
const TOTAL = 256 * 1024 * 1024; // bytes per measurement
const N = TOTAL / BLOCK;
const key = randomBytes(32);
const nonce = randomBytes(24);
const aad = blockAad("sst/00000001.sst", 0);
const random = randomBytes(BLOCK);
// Text-like data: compresses about 3-4x with zstd level 3, like typical file contents.
const words = ["the", "quick", "brown", "fox", "zerofs", "block", "nfs", "server", "object", "store", "\n"];
let text = "";
while (text.length < BLOCK) text += `${words[Math.floor(Math.random() * words.length)]} ${Math.floor(Math.random() * 1000)} `;
const compressible = Buffer.from(text.slice(0, BLOCK));

async function measure(name: string, fn: () => unknown): Promise<void> {
  for (let i = 0; i < 16; i++) await fn(); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${name.padEnd(44)} ${(TOTAL / s / 1e6).toFixed(0).padStart(6)} MB/s`);
}

const nobleSealed = xchacha20poly1305(key, nonce, aad).encrypt(random);
const fastSealed = xchachaSeal(key, nonce, random, aad);
await measure("noble xchacha20poly1305 seal", () => xchacha20poly1305(key, nonce, aad).encrypt(random));
await measure("noble xchacha20poly1305 open", () => xchacha20poly1305(key, nonce, aad).decrypt(nobleSealed));
await measure("fast xchacha (hchacha + OpenSSL) seal", () => xchachaSeal(key, nonce, random, aad));
await measure("fast xchacha (hchacha + OpenSSL) open", () => xchachaOpen(key, nonce, fastSealed, aad));

const sealer = createBlockSealer(key);
for (const [label, data] of [["random", random], ["text", compressible]] as const) {
  const sealed = await sealer.seal(data, aad);
  console.log(`  (${label}: 64 KiB seals to ${sealed.length} bytes)`);
  await measure(`block sealer seal, ${label}`, () => sealer.seal(data, aad));
  await measure(`block sealer open, ${label}`, () => sealer.open(sealed, aad));
}
