/**
 * The local store's etags (local-store.ts), computed where a file is written: on the event loop
 * or on a publisher thread (local-publish-worker.ts).
 */
import type { BigIntStats } from "node:fs";

let lastStampUs = 0;
/**
 * Wall-clock time in microseconds, strictly increasing within this process. Stamped on every
 * temp file as its mtime; see `etagOf` for why.
 */
export function uniqueStampSeconds(): number {
  const nowUs = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  lastStampUs = Math.max(nowUs, lastStampUs + 1);
  return lastStampUs / 1e6;
}

/**
 * etag = inode, mtime (ns) and size. A content hash would cost a full read on every head/list.
 * Every write creates a fresh inode, but the kernel reuses freed inode numbers and stamps mtime
 * from a coarse (jiffy) clock, so two quick writes could otherwise collide; we set mtime ourselves
 * at microsecond precision, and two writes that reuse one inode are sequential (the first file
 * must be gone first), so they cannot share a stamp unless the wall clock steps back.
 */
export function etagOf(st: BigIntStats): string {
  return `${st.ino}-${st.mtimeNs}-${st.size}`;
}
