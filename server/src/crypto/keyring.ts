/**
 * Key hierarchy of a volume.
 *
 *   password ──Argon2id(salt, m, t, p)──▶ KEK ──XChaCha20-Poly1305 unwrap──▶ DEK (256 random bits)
 *   DEK ──HKDF-SHA256(salt = "zerofs-keyring-v1", info = "zerofs/" + purpose)──▶ subkeys
 *
 * The DEK never changes for the life of the volume, so changing the password rewrites one small
 * object and no data. It is stored wrapped in ONE object, `keys/dek`, replaced atomically
 * (putIfMatch), so a crash during a password change leaves either the old or the new password
 * working, never neither.
 *
 * `keys/dek` format (UTF-8 JSON, version 1):
 *
 *   {
 *     "format": "zerofs-wrapped-dek",
 *     "version": 1,
 *     "kdf": { "alg": "argon2id", "memoryKiB": 65536, "iterations": 3, "parallelism": 4,
 *              "salt": "<base64, 16 bytes>" },
 *     "wrap": { "alg": "xchacha20-poly1305", "nonce": "<base64, 24 bytes>",
 *               "ciphertext": "<base64, 32-byte DEK ‖ 16-byte tag>" }
 *   }
 *
 * The wrap's AAD is `zerofs-wrapped-dek/v1|argon2id|m=<memoryKiB>|t=<iterations>|p=<parallelism>|`
 * followed by the raw salt bytes, so an attacker with write access to the bucket cannot lower the
 * KDF cost or swap the salt of a wrapped key: the tag would no longer verify.
 *
 * Passwords are Unicode-normalized (NFC) before hashing, so the same password typed on systems
 * that compose accents differently opens the volume.
 */
import { hkdfSync, randomBytes } from "node:crypto";
import * as argon2 from "argon2";
import { ObjectNotFoundError, PreconditionFailedError } from "../store/errors.ts";
import type { ObjectStore } from "../store/object-store.ts";
import { createBlockSealer } from "./block-sealer.ts";
import type { CryptoWorkers } from "./crypto-workers.ts";
import { SealError, type Sealer } from "./sealer.ts";
import { xchachaOpen, xchachaSeal, XCHACHA_NONCE_BYTES, XCHACHA_TAG_BYTES } from "./xchacha.ts";

export const DEK_OBJECT_KEY = "keys/dek";
const FORMAT = "zerofs-wrapped-dek";
const FORMAT_VERSION = 1;
const DEK_BYTES = 32;
const SALT_BYTES = 16;
const HKDF_SALT = Buffer.from("zerofs-keyring-v1", "utf8");

export interface Argon2Params {
  /** Memory cost in KiB. */
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/** The floor: OWASP-grade Argon2id. Options may raise any of these, never lower them. */
export const MIN_ARGON2_PARAMS: Readonly<Argon2Params> = Object.freeze({ memoryKiB: 65536, iterations: 3, parallelism: 4 });
/** Sanity ceilings for params read from the store, so a corrupt object cannot make us allocate 1 TiB. */
const MAX_ARGON2_PARAMS: Readonly<Argon2Params> = Object.freeze({ memoryKiB: 4 * 1024 * 1024, iterations: 64, parallelism: 64 });

export interface KeyringOptions {
  /** KDF cost for newly written key objects (first open, password change). Default and floor:
   * MIN_ARGON2_PARAMS. Existing key objects keep the params they were written with. */
  argon2?: Partial<Argon2Params>;
  /**
   * Whether a store without a key object may become a new volume (default true). False makes
   * openKeyring throw VolumeNotFoundError instead, so that a mistyped location cannot silently
   * start an empty volume.
   */
  create?: boolean;
  /** Called once this process has created a new volume's key object (to say so in the log). */
  onCreate?: (store: string) => void;
}

/** There is no volume in the store (no key object) and creating one was not allowed. Nothing was written. */
export class VolumeNotFoundError extends Error {
  readonly store: string;
  constructor(store: string) {
    super(`no volume in ${store} (no ${DEK_OBJECT_KEY} object) and creating one is not allowed (ZEROFS_NO_CREATE): check the volume location; nothing was written`);
    this.name = "VolumeNotFoundError";
    this.store = store;
  }
}

/** The password does not unwrap the volume's key. Nothing was written. */
export class WrongPasswordError extends Error {
  readonly store: string;
  constructor(store: string) {
    super(`wrong password: it does not match the key of the volume in ${store} (object ${DEK_OBJECT_KEY}, unless that object was tampered with); nothing was changed`);
    this.name = "WrongPasswordError";
    this.store = store;
  }
}

/** `keys/dek` exists but is not a key object this build can read. */
export class KeyObjectCorruptError extends Error {
  readonly store: string;
  constructor(store: string, problem: string, options?: { cause?: unknown }) {
    super(`key object ${DEK_OBJECT_KEY} in ${store} is unreadable: ${problem}`, options);
    this.name = "KeyObjectCorruptError";
    this.store = store;
  }
}

/** Another writer replaced `keys/dek` while we were changing the password. */
export class ConcurrentKeyChangeError extends Error {
  constructor(store: string, options?: { cause?: unknown }) {
    super(`key object ${DEK_OBJECT_KEY} in ${store} was changed by someone else during the password change; nothing was written, retry`, options);
    this.name = "ConcurrentKeyChangeError";
  }
}

export interface Keyring {
  /** Non-secret fingerprint of the DEK (hex); equal fingerprints mean the same data key. */
  readonly keyId: string;
  /** KDF params of the key object this keyring was opened from. */
  readonly params: Readonly<Argon2Params>;
  /** 32-byte key for `purpose`, independent of every other purpose's key. A fresh copy. */
  subkey(purpose: string): Buffer;
  /** Block sealer keyed by subkey("seal/" + purpose); one instance per purpose. */
  sealer(purpose: string): Sealer;
}

interface KeyObject {
  params: Argon2Params;
  salt: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
}

function checkPassword(password: string, what: string): string {
  if (typeof password !== "string") throw new TypeError(`${what} must be a string`);
  if (password.length === 0) throw new RangeError(`${what} is empty; an empty password would leave the volume's key unprotected`);
  return password.normalize("NFC");
}

function resolveParams(opts: KeyringOptions | undefined, atLeast?: Argon2Params): Argon2Params {
  const want = opts?.argon2 ?? {};
  const p: Argon2Params = {
    memoryKiB: want.memoryKiB ?? MIN_ARGON2_PARAMS.memoryKiB,
    iterations: want.iterations ?? MIN_ARGON2_PARAMS.iterations,
    parallelism: want.parallelism ?? MIN_ARGON2_PARAMS.parallelism,
  };
  for (const f of ["memoryKiB", "iterations", "parallelism"] as const) {
    if (!Number.isSafeInteger(p[f]) || p[f] < MIN_ARGON2_PARAMS[f] || p[f] > MAX_ARGON2_PARAMS[f]) {
      throw new RangeError(`argon2 ${f} = ${p[f]} is outside the allowed range ${MIN_ARGON2_PARAMS[f]}..${MAX_ARGON2_PARAMS[f]}`);
    }
    // A password change never weakens the KDF the volume already used.
    if (atLeast && atLeast[f] > p[f]) p[f] = atLeast[f];
  }
  return p;
}

function wrapAad(params: Argon2Params, salt: Uint8Array): Buffer {
  const label = `${FORMAT}/v${FORMAT_VERSION}|argon2id|m=${params.memoryKiB}|t=${params.iterations}|p=${params.parallelism}|`;
  return Buffer.concat([Buffer.from(label, "utf8"), salt]);
}

async function deriveKek(password: string, params: Argon2Params, salt: Buffer): Promise<Buffer> {
  return argon2.hash(password, {
    type: argon2.argon2id,
    raw: true,
    hashLength: 32,
    salt,
    memoryCost: params.memoryKiB,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  });
}

async function wrapDek(dek: Buffer, password: string, params: Argon2Params): Promise<Buffer> {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(XCHACHA_NONCE_BYTES);
  const kek = await deriveKek(password, params, salt);
  try {
    const ciphertext = xchachaSeal(kek, nonce, dek, wrapAad(params, salt));
    const json = {
      format: FORMAT,
      version: FORMAT_VERSION,
      kdf: { alg: "argon2id", ...params, salt: salt.toString("base64") },
      wrap: { alg: "xchacha20-poly1305", nonce: nonce.toString("base64"), ciphertext: ciphertext.toString("base64") },
    };
    return Buffer.from(JSON.stringify(json, null, 2) + "\n", "utf8");
  } finally {
    kek.fill(0);
  }
}

function b64(store: string, v: unknown, field: string, bytes: number): Buffer {
  if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new KeyObjectCorruptError(store, `${field} is not base64`);
  const b = Buffer.from(v, "base64");
  if (b.length !== bytes) throw new KeyObjectCorruptError(store, `${field} is ${b.length} bytes, expected ${bytes}`);
  return b;
}

function parseKeyObject(store: string, body: Buffer): KeyObject {
  let j: unknown;
  try {
    j = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new KeyObjectCorruptError(store, "not valid JSON", { cause: err });
  }
  if (typeof j !== "object" || j === null) throw new KeyObjectCorruptError(store, "not a JSON object");
  const o = j as Record<string, unknown>;
  if (o.format !== FORMAT) throw new KeyObjectCorruptError(store, `format is ${JSON.stringify(o.format)}, expected "${FORMAT}"`);
  if (o.version !== FORMAT_VERSION) {
    throw new KeyObjectCorruptError(store, `format version ${JSON.stringify(o.version)}; this build reads only version ${FORMAT_VERSION} (written by a newer ZeroFS?)`);
  }
  const kdf = (typeof o.kdf === "object" && o.kdf !== null ? o.kdf : {}) as Record<string, unknown>;
  const wrap = (typeof o.wrap === "object" && o.wrap !== null ? o.wrap : {}) as Record<string, unknown>;
  if (kdf.alg !== "argon2id") throw new KeyObjectCorruptError(store, `kdf.alg is ${JSON.stringify(kdf.alg)}, expected "argon2id"`);
  if (wrap.alg !== "xchacha20-poly1305") throw new KeyObjectCorruptError(store, `wrap.alg is ${JSON.stringify(wrap.alg)}, expected "xchacha20-poly1305"`);
  const params = {} as Argon2Params;
  for (const f of ["memoryKiB", "iterations", "parallelism"] as const) {
    const v = kdf[f];
    // Stored params below the floor can only come from corruption or tampering (and the AAD
    // would reject tampering anyway); above the ceiling would let a bad object exhaust memory.
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < MIN_ARGON2_PARAMS[f] || v > MAX_ARGON2_PARAMS[f]) {
      throw new KeyObjectCorruptError(store, `kdf.${f} = ${JSON.stringify(v)} is outside ${MIN_ARGON2_PARAMS[f]}..${MAX_ARGON2_PARAMS[f]}`);
    }
    params[f] = v;
  }
  return {
    params,
    salt: b64(store, kdf.salt, "kdf.salt", SALT_BYTES),
    nonce: b64(store, wrap.nonce, "wrap.nonce", XCHACHA_NONCE_BYTES),
    ciphertext: b64(store, wrap.ciphertext, "wrap.ciphertext", DEK_BYTES + XCHACHA_TAG_BYTES),
  };
}

/** The DEK, or null when `password` does not unwrap it. */
async function tryUnwrap(ko: KeyObject, password: string): Promise<Buffer | null> {
  const kek = await deriveKek(password, ko.params, ko.salt);
  try {
    return xchachaOpen(kek, ko.nonce, ko.ciphertext, wrapAad(ko.params, ko.salt));
  } catch (err) {
    if (err instanceof SealError) return null;
    throw err;
  } finally {
    kek.fill(0);
  }
}

function deriveSubkey(dek: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", dek, HKDF_SALT, `zerofs/${purpose}`, 32));
}

/** 8 bytes of a dedicated subkey: identifies the DEK without revealing anything usable. */
function keyIdOf(dek: Buffer): string {
  return deriveSubkey(dek, "key-id").subarray(0, 8).toString("hex");
}

class DekKeyring implements Keyring {
  readonly keyId: string;
  readonly params: Readonly<Argon2Params>;
  readonly #dek: Buffer;
  readonly #sealers = new Map<string, Sealer>();

  constructor(dek: Buffer, params: Argon2Params) {
    this.#dek = dek;
    this.params = Object.freeze({ ...params });
    this.keyId = keyIdOf(dek);
  }

  subkey(purpose: string): Buffer {
    if (typeof purpose !== "string" || purpose.length === 0) throw new RangeError("subkey purpose must be a non-empty string");
    return deriveSubkey(this.#dek, purpose);
  }

  /** The sealer for `purpose`; with `workers`, a new one that encrypts and opens on them. */
  sealer(purpose: string, opts: { workers?: CryptoWorkers } = {}): Sealer {
    let s = opts.workers ? undefined : this.#sealers.get(purpose);
    if (!s) {
      // "seal/" keeps sealer keys apart from any subkey a caller derives for another use.
      const key = this.subkey(`seal/${purpose}`);
      s = createBlockSealer(key, opts.workers ? { workers: opts.workers } : {});
      key.fill(0); // the sealer (and the workers) keep their own copies
      if (!opts.workers) this.#sealers.set(purpose, s);
    }
    return s;
  }
}

async function readKeyObject(store: ObjectStore): Promise<{ ko: KeyObject; etag: string } | null> {
  // head first: if the object changes between head and get, the etag is older than the body and
  // a later putIfMatch(etag) fails safely instead of overwriting an update we never saw.
  const meta = await store.head(DEK_OBJECT_KEY);
  if (!meta) return null;
  let body: Buffer;
  try {
    body = await store.get(DEK_OBJECT_KEY);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    throw err;
  }
  return { ko: parseKeyObject(store.description, body), etag: meta.etag };
}

/**
 * Opens the volume's keyring, creating the key object on first use. A wrong password throws
 * WrongPasswordError and writes nothing.
 */
export async function openKeyring(store: ObjectStore, password: string, opts?: KeyringOptions): Promise<Keyring> {
  const pw = checkPassword(password, "password");
  const newParams = resolveParams(opts);
  const existing = await readKeyObject(store);
  if (existing) return unwrapOrThrow(store, existing.ko, pw);
  if (opts?.create === false) throw new VolumeNotFoundError(store.description);

  const dek = randomBytes(DEK_BYTES);
  const body = await wrapDek(dek, pw, newParams);
  try {
    await store.putIfAbsent(DEK_OBJECT_KEY, body);
    opts?.onCreate?.(store.description);
    return new DekKeyring(dek, newParams);
  } catch (err) {
    dek.fill(0);
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  // Another process created the volume's key first; its key wins and our password must open it.
  const winner = await readKeyObject(store);
  if (!winner) throw new KeyObjectCorruptError(store.description, "putIfAbsent reported it exists, but it cannot be read back");
  return unwrapOrThrow(store, winner.ko, pw);
}

async function unwrapOrThrow(store: ObjectStore, ko: KeyObject, pw: string): Promise<Keyring> {
  const dek = await tryUnwrap(ko, pw);
  if (!dek) throw new WrongPasswordError(store.description);
  return new DekKeyring(dek, ko.params);
}

export interface ChangePasswordResult {
  /** False when the key object already opened with the new password (a retried change). */
  changed: boolean;
  /** Fingerprint of the (unchanged) data key. */
  keyId: string;
  /** KDF params the key object now uses. */
  params: Argon2Params;
}

/**
 * Re-wraps the same DEK under `newPassword` with a fresh salt, in one conditional replacement of
 * `keys/dek`. Idempotent: if the object already opens with `newPassword`, reports changed=false.
 * The KDF params are the stronger of the existing ones and `opts`.
 */
export async function changePassword(store: ObjectStore, oldPassword: string, newPassword: string, opts?: KeyringOptions): Promise<ChangePasswordResult> {
  const oldPw = checkPassword(oldPassword, "old password");
  const newPw = checkPassword(newPassword, "new password");
  const current = await readKeyObject(store);
  if (!current) throw new KeyObjectCorruptError(store.description, "it does not exist (no volume has been created in this store)");
  const params = resolveParams(opts, current.ko.params);

  const dek = await tryUnwrap(current.ko, oldPw);
  if (!dek) {
    const already = await tryUnwrap(current.ko, newPw);
    if (!already) throw new WrongPasswordError(store.description);
    const keyId = keyIdOf(already);
    already.fill(0);
    return { changed: false, keyId, params: { ...current.ko.params } };
  }
  const keyId = keyIdOf(dek);
  try {
    const body = await wrapDek(dek, newPw, params);
    await store.putIfMatch(DEK_OBJECT_KEY, body, current.etag);
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    // Someone replaced the object since we read it (maybe an earlier attempt of this very change
    // whose reply was lost). Success if the new password opens what is there now.
    const now = await readKeyObject(store);
    const reopened = now ? await tryUnwrap(now.ko, newPw) : null;
    if (reopened && now) {
      const id = keyIdOf(reopened);
      reopened.fill(0);
      return { changed: false, keyId: id, params: { ...now.ko.params } };
    }
    throw new ConcurrentKeyChangeError(store.description, { cause: err });
  } finally {
    dek.fill(0);
  }
  return { changed: true, keyId, params };
}
