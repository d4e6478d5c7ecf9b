/**
 * Directory entries. Each entry is stored twice, atomically in the same batch:
 *   D|dir|name   → (child, cookie, type)   LOOKUP: one get
 *   C|dir|cookie → (child, type, name)     READDIR: an ordered range scan
 * Cookies come from the directory's own monotonic counter (`nextCookie` in its inode) and are
 * never reused, so a cookie stays meaningful across restarts and across concurrent changes:
 * resuming a listing at cookie c continues with the entries whose cookie is > c.
 * Cookies 1 and 2 are "." and ".."; real entries start at FIRST_COOKIE.
 */
import type { Db } from "../lsm/db.ts";
import type { Entry } from "../lsm/entry.ts";
import type { WriteBatch } from "../lsm/write-batch.ts";
import { fsError } from "./errors.ts";
import type { Inode } from "./inode-codec.ts";
import { cookieKey, cookieRange, direntKey, parseCookieKey } from "./keys.ts";
import { decodeCookieEntry, decodeDirent, encodeCookieValue, encodeDirent, type CookieEntry, type DirentValue } from "./records.ts";
import type { FileType } from "./types.ts";

export const NAME_MAX = 255;
export const DOT_COOKIE = 1;
export const DOTDOT_COOKIE = 2;
export const FIRST_COOKIE = 3;

export function toName(name: string | Uint8Array): Buffer {
  return typeof name === "string" ? Buffer.from(name, "utf8") : Buffer.from(name.buffer, name.byteOffset, name.byteLength);
}

/** A name for error messages (bounded, quoted). */
export function showName(name: Buffer): string {
  const s = name.toString("utf8");
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

export function isDot(name: Buffer): boolean {
  return name.length === 1 && name[0] === 0x2e;
}

export function isDotDot(name: Buffer): boolean {
  return name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
}

/** Rejects names no directory entry can have (too long, empty, containing "/" or NUL). */
export function validateName(name: Buffer, dirIno: number, what: string): void {
  if (name.length > NAME_MAX) throw fsError("ENAMETOOLONG", `${what}: name of ${name.length} bytes in directory ${dirIno} exceeds ${NAME_MAX}`);
  if (name.length === 0) throw fsError("EINVAL", `${what}: empty name in directory ${dirIno}`);
  if (name.includes(0x2f) || name.includes(0)) throw fsError("EINVAL", `${what}: name ${showName(name)} in directory ${dirIno} contains "/" or NUL`);
}

export async function lookupEntry(db: Db, dirIno: number, name: Buffer): Promise<DirentValue | undefined> {
  const raw = await db.get(direntKey(dirIno, name));
  return raw ? decodeDirent(raw, `${showName(name)} in directory ${dirIno}`) : undefined;
}

/**
 * Adds both records of a new entry to `batch`, taking the next cookie from `dir` (a mutable
 * copy of the directory inode that the caller also writes in the same batch).
 */
export function addEntry(batch: WriteBatch, dir: Inode, name: Buffer, ino: number, type: FileType): number {
  const cookie = Math.max(dir.nextCookie, FIRST_COOKIE);
  dir.nextCookie = cookie + 1;
  batch.put(direntKey(dir.ino, name), encodeDirent({ ino, cookie, type }));
  batch.put(cookieKey(dir.ino, cookie), encodeCookieValue({ ino, type, name }));
  return cookie;
}

export function removeEntry(batch: WriteBatch, dirIno: number, name: Buffer, entry: DirentValue): void {
  batch.delete(direntKey(dirIno, name));
  batch.delete(cookieKey(dirIno, entry.cookie));
}

export async function isEmptyDir(db: Db, dirIno: number): Promise<boolean> {
  const [from, to] = cookieRange(dirIno, 0);
  for await (const _ of db.scan(from, to)) return false;
  return true;
}

/** A listed entry: its cookie, inode, type and name. */
export type ListedEntry = CookieEntry;

/**
 * Entries of `dirIno` with cookie ≥ fromCookie, in cookie order (a consistent snapshot), a
 * chunk at a time (as the engine reads them: no promise per entry). Entries are decoded as the
 * caller takes them, and `pageEntries` (how many the caller can use at most) bounds the first
 * chunk read from the memtable: a READDIR page of 50 entries used to walk, copy and decode the
 * engine's 256-entry chunk, most of which the next page read again.
 */
export async function* listEntryChunks(db: Db, dirIno: number, fromCookie: number, pageEntries?: number): AsyncGenerator<Iterable<ListedEntry>> {
  const [from, to] = cookieRange(dirIno, fromCookie);
  for await (const chunk of db.scanChunks(from, to, pageEntries !== undefined ? { firstChunk: pageEntries } : {})) yield decodeEntries(chunk, dirIno);
}

function* decodeEntries(chunk: readonly Entry[], dirIno: number): Generator<ListedEntry> {
  for (const e of chunk) {
    const { cookie } = parseCookieKey(e.key);
    yield decodeCookieEntry(cookie, e.value!, dirIno);
  }
}
