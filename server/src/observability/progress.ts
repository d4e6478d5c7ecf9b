/**
 * Progress of long work (WAL replay at start-up, a password change, a segment GC pass): while it
 * runs, one `info` line every `intervalMs` with counts and rates; at the end one summary line.
 * Work that ends before the first interval is summarised at `quickLevel` (default `info`): a
 * background pass that runs every few seconds passes `debug` so that only slow passes reach the
 * log.
 *
 * Stable field names (dashboards and log queries rely on them):
 *   task            "wal-replay" | "password-change" | "segment-gc" | ...
 *   progress        "running" | "done" | "failed"
 *   done, total     items processed / expected (total absent when unknown)
 *   unit            what an item is ("objects", "segments", "steps")
 *   records, bytes  secondary counts, when the task has them
 *   elapsedSeconds, perSecond, bytesPerSecond, percent
 *
 * A leaf module (imports nothing of the project), so every layer may use it.
 */
import type { Level, Logger } from "pino";

export const DEFAULT_PROGRESS_INTERVAL_MS = 5000;

export interface ProgressOptions {
  task: string;
  /** The message prefix, e.g. "WAL replay". */
  label: string;
  unit: string;
  total?: number;
  intervalMs?: number;
  /** Level of the summary when the work ended before the first progress line. */
  quickLevel?: Level;
  /** Extra fields on every line (e.g. the store). */
  fields?: Record<string, unknown>;
}

export class Progress {
  private readonly started = performance.now();
  private lastReport = this.started;
  private reported = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;
  done = 0;
  records = 0;
  bytes = 0;
  total: number | undefined;

  private readonly log: Logger | undefined;
  private readonly o: ProgressOptions;

  constructor(log: Logger | undefined, o: ProgressOptions) {
    this.log = log;
    this.o = o;
    this.intervalMs = o.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
    this.total = o.total;
    if (log && this.intervalMs > 0) {
      // The timer covers a stall inside one item (a slow object read); add() covers a busy
      // loop that never lets a timer run.
      this.timer = setInterval(() => this.maybeReport(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Counts `n` items (and their records and bytes), logging a progress line when one is due. */
  add(n = 1, records = 0, bytes = 0): void {
    this.done += n;
    this.records += records;
    this.bytes += bytes;
    this.maybeReport();
  }

  private maybeReport(): void {
    if (!this.log || this.timer === undefined) return;
    const now = performance.now();
    if (now - this.lastReport < this.intervalMs) return;
    this.lastReport = now;
    this.reported = true;
    this.log.info(this.fields("running", now), `${this.o.label}: ${this.describe()}`);
  }

  private describe(): string {
    return this.total !== undefined ? `${this.done}/${this.total} ${this.o.unit}` : `${this.done} ${this.o.unit}`;
  }

  private fields(progress: "running" | "done" | "failed", now: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const elapsed = (now - this.started) / 1000;
    const rate = (x: number) => (elapsed > 0 ? Math.round((x / elapsed) * 10) / 10 : 0);
    return {
      ...this.o.fields,
      task: this.o.task,
      progress,
      done: this.done,
      ...(this.total !== undefined ? { total: this.total, percent: this.total > 0 ? Math.floor((this.done / this.total) * 100) : 100 } : {}),
      unit: this.o.unit,
      ...(this.records > 0 ? { records: this.records } : {}),
      ...(this.bytes > 0 ? { bytes: this.bytes, bytesPerSecond: Math.round(this.bytes / Math.max(elapsed, 1e-6)) } : {}),
      elapsedSeconds: Math.round(elapsed * 1000) / 1000,
      perSecond: rate(this.done),
      ...extra,
    };
  }

  /** The summary line; `extra` adds the task's own results, `quickLevel` overrides the option. */
  finish(extra: Record<string, unknown> = {}, quickLevel?: Level): void {
    this.stopTimer();
    if (!this.log) return;
    const level: Level = this.reported ? "info" : (quickLevel ?? this.o.quickLevel ?? "info");
    this.log[level](this.fields("done", performance.now(), extra), `${this.o.label}: done, ${this.describe()}`);
  }

  /** The work stopped on an error: one line saying how far it got (the caller logs the error itself). */
  fail(err: unknown): void {
    this.stopTimer();
    if (!this.log || !this.reported) return;
    this.log.warn(this.fields("failed", performance.now(), { err: err instanceof Error ? err.message : String(err) }), `${this.o.label}: failed after ${this.describe()}`);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
