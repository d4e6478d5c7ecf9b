/**
 * One publisher thread of the local store (see local-publish.ts): writes a temp file, makes it
 * durable, links it under its final name and makes that name durable, all as plain blocking
 * system calls, so a small object costs the event loop one message each way instead of a
 * thread-pool round trip per call.
 */
import { closeSync, fstatSync, fsyncSync, futimesSync, linkSync, openSync, unlinkSync, writeSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { etagOf } from "./local-etag.ts";
import type { PublishReply, PublishRequest, PublishStep } from "./local-publish.ts";

const port = parentPort;
if (!port) throw new Error("local-publish-worker.ts runs only as a worker thread");

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | null)?.code ?? "EIO";
}

function fail(id: number, step: PublishStep, err: unknown): PublishReply {
  return { id, step, code: errCode(err), message: err instanceof Error ? err.message : String(err) };
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or never made.
  }
}

function closeQuiet(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The write failed already; that error is the one to report.
  }
}

function publish(r: PublishRequest): PublishReply {
  let fd: number;
  try {
    fd = openSync(r.tmp, "wx", r.mode);
  } catch (err) {
    return fail(r.id, "write", err);
  }
  let etag: string;
  try {
    for (let at = 0; at < r.body.length; ) at += writeSync(fd, r.body, at, r.body.length - at);
    // The etag's mtime, stamped by the caller (see local-etag.ts).
    futimesSync(fd, r.stamp, r.stamp);
    fsyncSync(fd);
    etag = etagOf(fstatSync(fd, { bigint: true }));
  } catch (err) {
    closeQuiet(fd);
    unlinkQuiet(r.tmp);
    return fail(r.id, "write", err);
  }
  try {
    closeSync(fd);
  } catch (err) {
    unlinkQuiet(r.tmp);
    return fail(r.id, "write", err);
  }
  try {
    // Fails with EEXIST if the name exists: the check and the publish are one atomic step.
    linkSync(r.tmp, r.path);
  } catch (err) {
    unlinkQuiet(r.tmp);
    return fail(r.id, "link", err);
  }
  unlinkQuiet(r.tmp);
  try {
    // The new name itself must survive power loss, not just the file's bytes.
    const dir = openSync(r.dir, "r");
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (err) {
    return fail(r.id, "fsyncDir", err);
  }
  return { id: r.id, etag };
}

port.on("message", (r: PublishRequest) => {
  let reply: PublishReply;
  try {
    reply = publish(r);
  } catch (err) {
    // Nothing should get here (every step reports its own failure); the thread lives on.
    reply = fail(r.id, "write", err);
  }
  port.postMessage(reply);
});
