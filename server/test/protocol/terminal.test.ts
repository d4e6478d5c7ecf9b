/**
 * `zerofs` at a terminal (issue 12): human-readable logs when stdout is a TTY and JSON otherwise
 * (ZEROFS_LOG_FORMAT forces either), progress and summary lines for a password change, and one
 * log line per client mount/unmount however often a client repeats MNT or UMNT. The TTY is a
 * real pseudo-terminal made by util-linux's `script`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { openKeyring } from "../../src/crypto/keyring.ts";
import { XdrWriter } from "../../src/nfs/xdr.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { Nfs3Client } from "../../../test/support/nfs/nfs3-client.ts";
import { MAIN, NODE_BIN, runZerofs, startZerofs, zerofsEnv } from "../../../test/support/zerofs-process.ts";

const run = promisify(execFile);
const JSON_LINE = /^\{"level":\d+,/;
const shellQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** Runs zerofs with its stdout on a pseudo-terminal: `script` allocates one and copies it out. */
async function runOnTerminal(url: string, env: Record<string, string>): Promise<string> {
  const cacheDir = await mkdtemp(join(tmpdir(), "zerofs-cache-"));
  try {
    const cmd = `${shellQuote(NODE_BIN)} ${shellQuote(MAIN)} ${shellQuote(url)}`;
    const r = await run("script", ["-qefc", cmd, "/dev/null"], { env: zerofsEnv({ url, env }, cacheDir), timeout: 60_000 });
    return r.stdout;
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

describe("zerofs at a terminal", { timeout: 5 * 60_000 }, () => {
  let dir: string;
  let vol: string;
  // Each run changes the password to the other one, so every run has work to show.
  const passwords = ["first-password", "second-password"];
  let current = 0;
  const change = () => {
    const env = { ZEROFS_ENCRYPTION_PASSWORD: passwords[current]!, ZEROFS_NEW_PASSWORD: passwords[1 - current]! };
    current = 1 - current;
    return env;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "zerofs-terminal-"));
    vol = join(dir, "vol");
    await openKeyring(new LocalStore(vol), passwords[0]!);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("on a TTY the logs are human-readable lines, with the password change's progress and summary", async () => {
    const out = await runOnTerminal(vol, change());
    const lines = out.split(/\r?\n/).filter((l) => l.trim());
    assert.ok(lines.length >= 2, out);
    for (const l of lines) assert.doesNotMatch(l, JSON_LINE, `no JSON on a terminal: ${l}`);
    assert.match(out, /INFO.*changing the password/);
    assert.match(out, /password change: done, 1\/1 steps.*"task":"password-change".*"progress":"done"/);
    assert.match(out, /password changed; the old password no longer opens this volume/);
    assert.match(out, /\[\d\d:\d\d:\d\d\.\d{3}\]/, "a local time stamp");
  });

  it("piped (no TTY) the logs are JSON lines with stable progress fields", async () => {
    const r = await runZerofs({ url: vol, env: change() });
    assert.equal(r.code, 0, r.output);
    const records = r.output.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = records.find((x) => x.task === "password-change" && x.progress === "done");
    assert.ok(done, r.output);
    for (const f of ["done", "total", "unit", "elapsedSeconds", "perSecond", "percent"]) assert.ok(f in done, `field ${f}`);
    assert.equal(done.changed, true);
  });

  it("ZEROFS_LOG_FORMAT forces json on a terminal and pretty through a pipe", async () => {
    const onTty = await runOnTerminal(vol, { ...change(), ZEROFS_LOG_FORMAT: "json" });
    const ttyLines = onTty.split(/\r?\n/).filter((l) => l.trim());
    assert.ok(ttyLines.length >= 2 && ttyLines.every((l) => JSON_LINE.test(l)), onTty);
    const piped = await runZerofs({ url: vol, env: { ...change(), ZEROFS_LOG_FORMAT: "pretty" } });
    assert.equal(piped.code, 0, piped.output);
    assert.doesNotMatch(piped.output, JSON_LINE);
    assert.match(piped.output, /INFO.*password changed/);
    assert.doesNotMatch(piped.output, /\x1b\[/, "no colour codes when the output is not a terminal");
    const bad = await runZerofs({ url: vol, env: { ...change(), ZEROFS_LOG_FORMAT: "fancy" } });
    current = 1 - current; // that run changed nothing
    assert.equal(bad.code, 2);
    assert.match(bad.output, /ZEROFS_LOG_FORMAT.*expected json, pretty or auto/);
  });

  it("logs one line per client mount and unmount, however often the client repeats MNT or UMNT", async () => {
    const s = await startZerofs({ url: join(dir, "vol-mounts") });
    try {
      const c = await Nfs3Client.connect(s.nfsPort);
      for (let i = 0; i < 5; i++) await c.mount("/");
      const umnt = async () => {
        const w = new XdrWriter();
        w.string("/");
        const reply = await c.rpc.call(100005, 3, 3, w.toBuffer(), { cred: c.cred });
        assert.equal(reply.kind, "accepted");
      };
      await umnt();
      await umnt();
      await c.mount("/"); // a new mount after the unmount is news again
      c.close();
    } finally {
      assert.equal(await s.stop(), 0);
    }
    const records = s.output().split("\n").filter((l) => JSON_LINE.test(l)).map((l) => JSON.parse(l) as Record<string, unknown>);
    const mounted = records.filter((r) => r.msg === "MOUNT: mounted");
    const unmounted = records.filter((r) => r.msg === "MOUNT: unmounted");
    assert.equal(mounted.length, 2, "five MNT calls, then one after UMNT: two mounts");
    assert.equal(unmounted.length, 1, "two UMNT calls for one mount: one unmount");
    assert.equal(mounted[0]!.peer, "127.0.0.1");
    assert.equal(unmounted[0]!.peer, "127.0.0.1");
  });
});
