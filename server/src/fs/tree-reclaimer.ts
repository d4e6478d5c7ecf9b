/**
 * Background deletion of detached directory trees (DELETE of a claim directory, fs/claims.ts).
 * Detaching is one batch: the directory's entry and inode go, and its quota project record is
 * marked `deleting`. The tree below stays keyed by the detached directory's id; this reclaimer
 * then removes it like `rm -rf` in bounded batches: it lists the first entries of the current
 * directory, descends into the first non-empty subdirectory, and otherwise removes the entries
 * (each removal is the ordinary unlink: inodes and small files' data go in the batch, large
 * files' data through a tombstone and the chunk reclaimer), climbing back up when a directory
 * is empty. Each batch is an ordinary fs operation under the inodes' locks, so quota and volume
 * usage stay exact; after a restart the walk starts again at the tree's root and continues
 * where the removed entries end. Work is proportional to the entries and data stored.
 * The project record (and its counters) go with the last batch.
 */
import type { Logger } from "pino";
import { BackgroundPasses } from "./background-passes.ts";
import { FIRST_COOKIE, isEmptyDir, listEntryChunks, lookupEntry, removeEntry, type ListedEntry } from "./directory.ts";
import type { ProjectRecord } from "./quota.ts";
import { FileType } from "./types.ts";
import type { FsInternals } from "./zerofs.ts";

export interface TreeReclaimerOptions {
  /** Entries removed per batch. */
  batchEntries: number;
  logger?: Logger;
}

export class TreeReclaimer {
  private readonly fs: FsInternals;
  private readonly opts: TreeReclaimerOptions;
  private readonly passes: BackgroundPasses;
  /** Trees fully reclaimed since start (tests, logs). */
  reclaimedTrees = 0;
  /** Test hook after each batch of removed entries. */
  afterBatch: (() => void | Promise<void>) | undefined;

  constructor(fs: FsInternals, opts: TreeReclaimerOptions) {
    this.fs = fs;
    this.opts = opts;
    this.passes = new BackgroundPasses(
      () => this.pass(),
      (err) => this.opts.logger?.warn({ err }, "reclaiming a deleted directory tree failed; will retry on the next deletion or restart"),
    );
  }

  kick(): void {
    this.passes.kick();
  }

  idle(): Promise<void> {
    return this.passes.idle();
  }

  stop(): Promise<void> {
    return this.passes.stop();
  }

  private async pass(): Promise<void> {
    for (const r of this.fs.quotas.all()) {
      if (this.passes.stopped) return;
      if (!r.deleting) continue;
      if (!(await this.reclaim(r))) return;
      this.reclaimedTrees++;
      this.opts.logger?.info({ project: r.id, dirIno: r.dirIno }, "reclaimed a deleted directory tree");
    }
  }

  /** Removes the tree of `r`; false when stopped first. */
  private async reclaim(r: ProjectRecord): Promise<boolean> {
    const { db } = this.fs;
    const limit = Math.max(1, this.opts.batchEntries);
    // The descent path (not the inodes' parent fields: a corrupt tree must not loop).
    const path: number[] = [];
    let cur = r.dirIno;
    for (;;) {
      if (this.passes.stopped) return false;
      const page: ListedEntry[] = [];
      scan: for await (const chunk of listEntryChunks(db, cur, FIRST_COOKIE)) {
        for (const e of chunk) {
          page.push(e);
          if (page.length >= limit) break scan;
        }
      }
      if (page.length === 0) {
        const up = path.pop();
        if (up === undefined) break;
        // Empty: the parent's next batch removes it.
        cur = up;
        continue;
      }
      const removable: ListedEntry[] = [];
      let descend: number | undefined;
      const seen = new Set<number>();
      for (const e of page) {
        if (e.type === FileType.DIR && !(await isEmptyDir(db, e.ino))) {
          descend = e.ino;
          break;
        }
        // Two names of one inode in one batch would both see its old link count: next batch.
        if (seen.has(e.ino)) break;
        seen.add(e.ino);
        removable.push(e);
      }
      if (removable.length > 0) await this.removeEntries(cur, removable);
      else if (descend !== undefined) {
        path.push(cur);
        cur = descend;
      }
      await this.afterBatch?.();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const batchDone = this.fs.quotas.usage(r.id);
    if (batchDone.bytes !== 0 || batchDone.inodes !== 0) {
      this.opts.logger?.warn({ project: r.id, usage: batchDone }, "deleted directory tree reclaimed but its quota usage is not zero (dropped with the project)");
    }
    await this.fs.mutate(`removal of quota project ${r.id}`, [r.dirIno], async (tx) => {
      this.fs.quotas.deleteProject(tx.batch, r.id);
    });
    this.fs.quotas.forget(r.id);
    return true;
  }

  private async removeEntries(dirIno: number, entries: ListedEntry[]): Promise<void> {
    const what = `reclaim of deleted tree entries in directory ${dirIno}`;
    await this.fs.mutate(what, [dirIno, ...entries.map((e) => e.ino)], async (tx) => {
      const now = this.fs.clock.now();
      for (const e of entries) {
        const entry = await lookupEntry(this.fs.db, dirIno, e.name);
        if (!entry || entry.ino !== e.ino) continue; // changed meanwhile: the next page sees it
        const child = await this.fs.inodes.get(e.ino);
        if (child?.type === FileType.DIR && !(await isEmptyDir(this.fs.db, child.ino))) continue;
        removeEntry(tx.batch, dirIno, e.name, entry);
        if (child) this.fs.dropLink(tx, child, now);
      }
    });
  }
}
