/**
 * `kubectl zerofs rotate <volume>`: a guided update of the user's password Secret. The new
 * password comes from stdin or --password-file, never from the command line (argv is visible
 * in `ps` and shell history). The plugin only writes the Secret; the operator does the rest
 * (stop the server, run the password-change Job, restart with the new password) and the plugin
 * follows it in the volume's status.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { ZeroFSVolume } from "../../src/api/types.ts";
import { isConflict } from "../../src/kube/errors.ts";
import { R } from "../../src/kube/resources.ts";
import type { Secret } from "../../src/kube/types.ts";
import { checkPassword, normalizePassword } from "../../src/rotation/password.ts";
import { CliError, EXIT, type Ctx, type Io } from "./context.ts";
import { getVolume } from "./volume.ts";

/** Rotation phases in which a new Secret value would be queued behind a running rotation. */
const BUSY = new Set(["Pending", "StoppingServer", "Changing", "Verifying", "Committing"]);
const MAX_PASSWORD_BYTES = 4096;

export interface RotateOptions {
  passwordFile?: string;
  yes: boolean;
  wait: boolean;
  timeoutSeconds: number;
  pollMs?: number;
}

async function readAll(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer | string>) {
    const b = typeof c === "string" ? Buffer.from(c) : c;
    n += b.length;
    if (n > limit) throw new CliError(EXIT.USAGE, `the new password is longer than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/**
 * Lines typed at the terminal, read in raw mode so that nothing is echoed. Bytes after a line's
 * end are kept for the next question (a pasted "pw⏎pw⏎y⏎" arrives in one chunk).
 */
class Terminal {
  private pending: number[] = [];
  private readonly io: Io;
  constructor(io: Io) {
    this.io = io;
  }

  async line(question: string, o: { hidden: boolean }): Promise<Buffer> {
    const stdin = this.io.stdin;
    // Raw (no echo) before the question: what is typed after it must not be shown.
    stdin.setRawMode?.(true);
    this.io.err(question);
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        const bytes: number[] = [];
        const done = (err?: Error): true => {
          stdin.removeListener("data", onData);
          stdin.removeListener("end", onEnd);
          stdin.pause();
          if (o.hidden) this.io.err("\n");
          if (err) reject(err);
          else resolve(Buffer.from(bytes));
          return true;
        };
        const take = (): boolean => {
          while (this.pending.length > 0) {
            const b = this.pending.shift()!;
            if (b === 0x03) return done(new CliError(EXIT.FAILED, "cancelled; nothing was changed"));
            if (b === 0x0d || b === 0x0a) {
              if (b === 0x0d && this.pending[0] === 0x0a) this.pending.shift();
              return done();
            }
            if (b === 0x7f || b === 0x08) bytes.pop();
            else bytes.push(b);
            if (bytes.length > MAX_PASSWORD_BYTES) return done(new CliError(EXIT.USAGE, `the new password is longer than ${MAX_PASSWORD_BYTES} bytes`));
          }
          return false;
        };
        const onData = (c: Buffer | string): void => {
          this.pending.push(...(typeof c === "string" ? Buffer.from(c) : c));
          take();
        };
        const onEnd = (): void => void done(new CliError(EXIT.USAGE, "the terminal closed before the answer; nothing was changed"));
        if (take()) return;
        stdin.on("data", onData);
        stdin.once("end", onEnd);
        stdin.resume();
      });
    } finally {
      stdin.setRawMode?.(false);
    }
  }
}

async function newPassword(io: Io, o: RotateOptions, term: Terminal): Promise<{ password: Buffer; interactive: boolean }> {
  let raw: Buffer;
  let interactive = false;
  if (o.passwordFile && o.passwordFile !== "-") {
    try {
      raw = await readFile(o.passwordFile);
    } catch (err) {
      throw new CliError(EXIT.USAGE, `--password-file ${o.passwordFile}: ${(err as Error).message}`);
    }
    if (raw.length > MAX_PASSWORD_BYTES) throw new CliError(EXIT.USAGE, `--password-file ${o.passwordFile}: longer than ${MAX_PASSWORD_BYTES} bytes`);
  } else if (!o.passwordFile && io.stdin.isTTY) {
    interactive = true;
    raw = await term.line("New password: ", { hidden: true });
    const again = await term.line("Repeat it: ", { hidden: true });
    if (!raw.equals(again)) throw new CliError(EXIT.USAGE, "the two passwords differ; nothing was changed");
  } else raw = await readAll(io.stdin, MAX_PASSWORD_BYTES + 2);
  const checked = checkPassword(raw, "the new password");
  if ("problem" in checked) throw new CliError(EXIT.USAGE, `${checked.problem.message}; nothing was changed`);
  return { password: checked.password, interactive };
}

export async function rotate(ctx: Ctx, name: string, o: RotateOptions): Promise<number> {
  const { io } = ctx;
  const v = await getVolume(ctx, name);
  const ref = v.spec.encryption.passwordSecretRef;
  const key = ref.key ?? "password";
  const where = `Secret ${v.metadata.namespace}/${ref.name} key ${key}`;
  const phase = v.status?.passwordRotation?.phase ?? "Idle";
  if (BUSY.has(phase)) {
    throw new CliError(EXIT.FAILED, `volume ${v.metadata.namespace}/${name} is already rotating its password (phase ${phase}); wait for it (kubectl zerofs status ${name})`);
  }
  const term = new Terminal(io);
  const { password, interactive } = await newPassword(io, o, term);
  const secret = await ctx.client.get<Secret>(R.secrets, v.metadata.namespace, ref.name);
  if (!secret) throw new CliError(EXIT.NOT_FOUND, `${where}: the Secret does not exist (spec.encryption.passwordSecretRef)`);
  const current = secret.data?.[key] === undefined ? undefined : normalizePassword(Buffer.from(secret.data[key], "base64"));
  if (current?.equals(password)) {
    io.out(`${where} already holds this password: nothing to do.\n`);
    return EXIT.OK;
  }
  io.out(
    [
      `Rotating the password of volume ${v.metadata.namespace}/${name} (phase ${v.status?.phase ?? "Unknown"}):`,
      `  1. update ${where} (field manager kubectl-zerofs);`,
      `  2. the operator stops the server: NFS clients pause (they retry, nothing is lost) for the length of the change;`,
      `  3. a Job re-wraps the volume's data key under the new password (no data is re-encrypted);`,
      `  4. the server restarts with the new password. The old password no longer opens the volume.`,
      `Keep the new password somewhere safe: without it the data cannot be read.`,
      "",
    ].join("\n"),
  );
  if (!o.yes) {
    if (!interactive) throw new CliError(EXIT.USAGE, "not confirmed: pass --yes (the password came from a file or a pipe, so there is no terminal to ask)");
    const answer = (await term.line("Proceed? [y/N] ", { hidden: false })).toString("utf8").trim();
    io.err(`${answer}\n`);
    if (!/^y(es)?$/i.test(answer)) {
      io.out("Nothing was changed.\n");
      return EXIT.FAILED;
    }
  }
  try {
    // A merge patch conditional on the version read: a concurrent edit makes us stop, not overwrite it.
    await ctx.client.patch(R.secrets, v.metadata.namespace, ref.name, { metadata: { resourceVersion: secret.metadata.resourceVersion }, data: { [key]: password.toString("base64") } });
  } catch (err) {
    if (isConflict(err)) throw new CliError(EXIT.FAILED, `${where} changed while this command ran; nothing was changed, run it again`);
    throw err;
  } finally {
    password.fill(0);
  }
  io.out(`Updated ${where}.\n`);
  if (!o.wait) {
    io.out(`The operator rotates the volume now; follow it with: kubectl zerofs status ${name} -n ${v.metadata.namespace}\n`);
    return EXIT.OK;
  }
  return await follow(ctx, v, o);
}

/** Follows status.passwordRotation until the change Succeeded or Failed. */
async function follow(ctx: Ctx, before: ZeroFSVolume, o: RotateOptions): Promise<number> {
  const deadline = Date.now() + o.timeoutSeconds * 1000;
  const oldTarget = before.status?.passwordRotation?.targetHash;
  const oldStarted = before.status?.passwordRotation?.startedAt;
  let lastPhase = "";
  let started = false;
  while (Date.now() < deadline) {
    const v = await getVolume(ctx, before.metadata.name);
    const r = v.status?.passwordRotation;
    // Only a rotation that started after our update counts (the status may still show the last one).
    if (r && (r.targetHash !== oldTarget || r.startedAt !== oldStarted || BUSY.has(r.phase))) started = true;
    if (r?.phase === "Succeeded" && started && lastPhase === "Succeeded" && v.status?.phase === "Ready") {
      ctx.io.out(`Password rotated; the volume is Ready with the new password.\n`);
      return EXIT.OK;
    }
    if (r && started && r.phase !== lastPhase) {
      lastPhase = r.phase;
      ctx.io.out(`  rotation: ${r.phase}${r.message ? ` (${r.message})` : ""}\n`);
      if (r.phase === "Succeeded") ctx.io.out("  waiting for the server to be ready again\n");
      if (r.phase === "Failed") {
        ctx.io.err(`Rotation failed: ${r.message ?? "see kubectl zerofs status"}. The volume keeps its old password; fix the cause and update the Secret again.\n`);
        return EXIT.FAILED;
      }
    }
    await sleep(o.pollMs ?? 1000);
  }
  ctx.io.err(`Still rotating after ${o.timeoutSeconds} s (phase ${lastPhase || "not started"}); the operator goes on: kubectl zerofs status ${before.metadata.name}\n`);
  return EXIT.TIMEOUT;
}
