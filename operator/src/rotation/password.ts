/**
 * Reading the user's password and hashing passwords for display and change detection.
 * The hash is an HMAC under a random key kept in the operator's password Secret: status shows
 * it to anyone who can read the volume, and a plain SHA-256 of a weak password could be
 * brute-forced from there.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { Problem } from "../status/compute.ts";

export const HASH_PREFIX = "hmac-sha256:";

export function newHmacKey(): Buffer {
  return randomBytes(32);
}

export function passwordHash(key: Buffer, password: Buffer): string {
  return HASH_PREFIX + createHmac("sha256", key).update(password).digest("hex").slice(0, 32);
}

/**
 * The password as the server will read it: Secret files often end with a newline the user did
 * not mean (the server strips one trailing \n or \r\n), so "pw" and "pw\n" are the same password
 * and editing one into the other must not start a rotation.
 */
export function normalizePassword(raw: Buffer): Buffer {
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) {
    end--;
    if (end > 0 && raw[end - 1] === 0x0d) end--;
  }
  return raw.subarray(0, end);
}

/** Validates a password from the user's Secret; a Problem names the Secret, the key and what is wrong. */
export function checkPassword(raw: Buffer | undefined, where: string): { password: Buffer } | { problem: Problem } {
  if (raw === undefined) return { problem: { reason: "PasswordKeyMissing", message: `${where} does not exist` } };
  const pw = normalizePassword(raw);
  if (pw.length === 0) return { problem: { reason: "PasswordEmpty", message: `${where} is empty` } };
  if (!Buffer.from(pw.toString("utf8"), "utf8").equals(pw)) {
    return { problem: { reason: "PasswordMalformed", message: `${where} is not valid UTF-8 text` } };
  }
  if (pw.includes(0)) return { problem: { reason: "PasswordMalformed", message: `${where} contains a NUL byte` } };
  return { password: pw };
}
