/**
 * READDIR / READDIRPLUS of ZeroFs (fs/zerofs.ts): pages of directory entries sized to the
 * client's byte budgets, resumable at any cookie handed out.
 */
import { attrsOf, readdirEntryBytes } from "./attrs.ts";
import { DOTDOT_COOKIE, DOT_COOKIE, FIRST_COOKIE, listEntryChunks } from "./directory.ts";
import { fsError } from "./errors.ts";
import type { FsCore } from "./fs-core.ts";
import type { Inode } from "./inode-codec.ts";
import { requirePerm, Perm } from "./permissions.ts";
import type { Cred, DirEntry, ReaddirLimits, ReaddirResult } from "./types.ts";

const DOT_NAME = Buffer.from(".");
const DOTDOT_NAME = Buffer.from("..");

/**
 * READDIR / READDIRPLUS. Cookie 0 starts a listing; "." and ".." come first (cookies 1 and
 * 2), then the entries in cookie order. Resuming at any cookie handed out is exact across
 * restarts and concurrent changes (entries added later appear later, removed ones vanish).
 */
export async function readdir(core: FsCore, cred: Cred, dirIno: number, cookie: number, verifier: Uint8Array | undefined, limits: ReaddirLimits): Promise<ReaddirResult> {
  const dir = await core.requireDir(dirIno, "readdir");
  requirePerm(cred, dir, Perm.R, "readdir");
  const verf = cookieVerifier(dir);
  if (cookie !== 0) {
    const sent = verifier ? Buffer.from(verifier.buffer, verifier.byteOffset, verifier.byteLength) : undefined;
    // All-zero verifiers are accepted: some clients never echo the verifier back.
    if (sent && sent.some((b) => b !== 0) && !sent.equals(verf)) throw fsError("BAD_COOKIE", `readdir: cookie verifier does not match directory ${dirIno}`);
    if (!Number.isSafeInteger(cookie) || cookie < 0 || (cookie > DOTDOT_COOKIE && cookie >= dir.nextCookie)) {
      throw fsError("BAD_COOKIE", `readdir: cookie ${cookie} was never issued by directory ${dirIno}`);
    }
  }
  const plus = limits.plus ?? false;
  const entries: DirEntry[] = [];
  let bytes = 0;
  let dirBytes = 0;
  const plusExtra = readdirEntryBytes(0, plus) - readdirEntryBytes(0, false);
  const fits = (nameLength: number): boolean => {
    const d = readdirEntryBytes(nameLength, false);
    const b = d + plusExtra;
    if (limits.maxEntries !== undefined && entries.length >= limits.maxEntries) return false;
    if (bytes + b > limits.maxBytes) return false;
    if (limits.dirBytes !== undefined && dirBytes + d > limits.dirBytes) return false;
    bytes += b;
    dirBytes += d;
    return true;
  };
  let eof = true;
  const dotEntries: DirEntry[] = [
    { ino: dir.ino, name: DOT_NAME, cookie: DOT_COOKIE, attrs: undefined },
    { ino: dir.parent, name: DOTDOT_NAME, cookie: DOTDOT_COOKIE, attrs: undefined },
  ];
  for (const e of dotEntries) {
    if (cookie >= e.cookie) continue;
    if (!fits(e.name.length)) {
      eof = false;
      break;
    }
    entries.push(e);
  }
  if (eof) {
    // At most this many entries fit the page (each takes at least a 1-byte name's bytes).
    const pageEntries = Math.min(limits.maxEntries ?? Infinity, Math.floor(limits.maxBytes / readdirEntryBytes(1, plus)) + 1);
    listing: for await (const chunk of listEntryChunks(core.db, dirIno, Math.max(cookie + 1, FIRST_COOKIE), pageEntries)) {
      for (const e of chunk) {
        if (!fits(e.name.length)) {
          eof = false;
          break listing;
        }
        entries.push({ ino: e.ino, name: e.name, cookie: e.cookie, attrs: undefined });
      }
    }
  }
  if (entries.length === 0 && !eof) throw fsError("TOOSMALL", `readdir: a budget of ${limits.maxBytes} bytes does not fit one entry of directory ${dirIno}`);
  if (plus) {
    // The page's inodes in one pass (cache, then one scan of their keys), not one read each.
    const found = await core.inodes.getMany(entries.map((e) => e.ino));
    entries.forEach((e, i) => {
      const inode = found[i];
      if (inode) e.attrs = attrsOf(inode);
    });
  }
  return { entries, eof, verifier: verf, dirAttrs: attrsOf(dir) };
}
/** READDIR cookie verifier: fixed per directory (its cookies are never invalidated). */
function cookieVerifier(dir: Inode): Buffer {
  const v = Buffer.alloc(8);
  v.writeUInt32BE(dir.generation, 4);
  return v;
}
