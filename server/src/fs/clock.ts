/**
 * Timestamps for inodes. Each call returns a time strictly after the previous one (at least
 * 1 ns later), so two changes within one millisecond still give different mtime/ctime values:
 * NFS clients detect changes by comparing these, and pjdfstest-style checks expect a change.
 */
import type { Time } from "./types.ts";

export type TimeSource = () => number;

export class Clock {
  private readonly source: TimeSource;
  private last: Time = { sec: -Infinity, nsec: 0 };

  /** `source` returns wall-clock milliseconds (injectable for tests). */
  constructor(source: TimeSource = Date.now) {
    this.source = source;
  }

  now(): Time {
    const ms = this.source();
    let t: Time = { sec: Math.floor(ms / 1000), nsec: Math.round((ms - Math.floor(ms / 1000) * 1000) * 1e6) };
    if (t.nsec >= 1e9) t = { sec: t.sec + 1, nsec: t.nsec - 1e9 };
    if (compareTime(t, this.last) <= 0) {
      t = this.last.nsec + 1 >= 1e9 ? { sec: this.last.sec + 1, nsec: 0 } : { sec: this.last.sec, nsec: this.last.nsec + 1 };
    }
    this.last = t;
    return t;
  }
}

export function compareTime(a: Time, b: Time): number {
  return a.sec !== b.sec ? (a.sec < b.sec ? -1 : 1) : a.nsec - b.nsec;
}

export function timeEquals(a: Time, b: Time): boolean {
  return a.sec === b.sec && a.nsec === b.nsec;
}
