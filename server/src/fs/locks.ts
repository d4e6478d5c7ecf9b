/**
 * Async mutexes keyed by number. The engine has atomic batches but no transactions, so every
 * read-modify-write of fs metadata runs while holding the locks of the inodes it changes.
 * `acquire` takes all keys of one operation in ascending order, so two operations can never
 * wait on each other in a cycle; callers that discover more keys later must release and retry.
 * Waiters are served first come, first served.
 */
export class KeyedMutex {
  private readonly tails = new Map<number, Promise<void>>();

  /** Locks every key (duplicates allowed); resolves with a function that releases them all. */
  async acquire(keys: readonly number[]): Promise<() => void> {
    const sorted = [...new Set(keys)].sort((a, b) => a - b);
    const releases: (() => void)[] = [];
    try {
      for (const k of sorted) releases.push(await this.lockOne(k));
    } catch (err) {
      for (const r of releases.reverse()) r();
      throw err;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const r of releases.reverse()) r();
    };
  }

  /** Number of keys currently locked or waited for (tests). */
  get size(): number {
    return this.tails.size;
  }

  private async lockOne(key: number): Promise<() => void> {
    const prev = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = prev ? prev.then(() => mine) : mine;
    this.tails.set(key, tail);
    if (prev) await prev;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
