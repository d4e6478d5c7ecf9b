/**
 * A background job that runs in passes: `kick()` starts a pass, or asks for one more after the
 * pass in progress (kicks while a pass runs coalesce into one); at most one pass runs at a
 * time. A failed pass is reported and not retried here: the next kick (the next deletion, the
 * next timer tick, the next start) tries again, and the work it left is still recorded in the
 * store. Shared by the chunk reclaimer and the segment GC.
 */
import { DbClosedError } from "../lsm/errors.ts";

export class BackgroundPasses {
  private readonly pass: () => Promise<unknown>;
  private readonly onError: (err: unknown) => void;
  private running: Promise<void> | undefined;
  private again = false;
  private stopping = false;

  constructor(pass: () => Promise<unknown>, onError: (err: unknown) => void) {
    this.pass = pass;
    this.onError = onError;
  }

  /** Set once stop() was called: passes check it between batches and return early. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Starts a pass (or schedules one after the current pass). */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once no pass is running or scheduled (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops after the work in flight; what is left stays recorded for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.idle();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        if (err instanceof DbClosedError || this.stopping) return;
        this.onError(err);
        return;
      }
    } while (this.again && !this.stopping);
  }
}
