/**
 * POSIX permission and semantics checks, run inside the test VM on the kernel NFS mount (by
 * posix.sh): `node posix-suite.ts <dir>`. Runs as root; the unprivileged users are child
 * processes that start as root, drop to their uid/gid/groups and then run the operations the
 * parent sends them, so each check can mix root, alice and bob.
 *
 * Prints "ok - name" / "not ok - name :: why" per check (the host test makes each a subtest), then
 * "posix suite: done"; a non-zero exit status means the suite itself broke.
 * Standalone (node: imports only): it is copied into the VM's job folder.
 */
import { fork, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const { O_CREAT, O_EXCL, O_WRONLY, O_RDWR, O_APPEND } = fs.constants;

type Result = { ok: true; value: unknown } | { ok: false; code: string; message: string };
interface StatLite {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  blocks: number;
  ino: number;
  atimeNs: string;
  mtimeNs: string;
  ctimeNs: string;
}

function statLite(s: fs.BigIntStats): StatLite {
  return {
    mode: Number(s.mode),
    uid: Number(s.uid),
    gid: Number(s.gid),
    nlink: Number(s.nlink),
    size: Number(s.size),
    blocks: Number(s.blocks),
    ino: Number(s.ino),
    atimeNs: s.atimeNs.toString(),
    mtimeNs: s.mtimeNs.toString(),
    ctimeNs: s.ctimeNs.toString(),
  };
}

/** Runs a command and turns a failure into an errno-like error from its message. */
function command(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status === 0) return r.stdout;
  const msg = `${r.stderr}`;
  const code = /Permission denied/.test(msg) ? "EACCES" : /Operation not permitted/.test(msg) ? "EPERM" : "ECMDFAIL";
  throw Object.assign(new Error(`${cmd} ${args.join(" ")}: ${msg.trim()}`), { code });
}

/** The operations a user can be asked to perform; each throws a Node fs error on failure. */
const OPS = {
  read: (p: string) => fs.readFileSync(p, "utf8"),
  write: (p: string, data: string) => fs.writeFileSync(p, data),
  writeMode: (p: string, data: string, mode: number) => fs.writeFileSync(p, data, { mode }),
  /** open(O_CREAT|O_EXCL|O_WRONLY, mode), write through that descriptor, close. */
  createWrite: (p: string, mode: number, data: string) => {
    const fd = fs.openSync(p, O_CREAT | O_EXCL | O_WRONLY, mode);
    try {
      fs.writeSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
  },
  openClose: (p: string, flags: number, mode?: number) => fs.closeSync(fs.openSync(p, flags, mode)),
  appendLines: (p: string, prefix: string, n: number) => {
    const fd = fs.openSync(p, O_WRONLY | O_APPEND);
    try {
      for (let i = 0; i < n; i++) fs.writeSync(fd, `${prefix}${i}\n`);
    } finally {
      fs.closeSync(fd);
    }
  },
  unlink: (p: string) => fs.unlinkSync(p),
  rename: (a: string, b: string) => fs.renameSync(a, b),
  mkdir: (p: string, mode: number) => fs.mkdirSync(p, { mode }),
  rmdir: (p: string) => fs.rmdirSync(p),
  chmod: (p: string, mode: number) => fs.chmodSync(p, mode),
  chown: (p: string, uid: number, gid: number) => fs.chownSync(p, uid, gid),
  utimes: (p: string, atime: number, mtime: number) => fs.utimesSync(p, atime, mtime),
  /** utimensat(UTIME_NOW): allowed to anyone who may write the file. */
  touchNow: (p: string) => command("touch", ["-c", p]),
  truncate: (p: string, len: number) => fs.truncateSync(p, len),
  readdir: (p: string) => fs.readdirSync(p).sort(),
  stat: (p: string) => statLite(fs.statSync(p, { bigint: true })),
  lstat: (p: string) => statLite(fs.lstatSync(p, { bigint: true })),
  symlink: (target: string, p: string) => fs.symlinkSync(target, p),
  link: (a: string, b: string) => fs.linkSync(a, b),
  readlink: (p: string) => fs.readlinkSync(p),
  umask: (m: number) => process.umask(m),
} as const;
type OpName = keyof typeof OPS;

function perform(op: OpName, args: unknown[]): Result {
  try {
    const fn = OPS[op] as unknown as (...a: unknown[]) => unknown;
    return { ok: true, value: fn(...args) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, code: e.code ?? "UNKNOWN", message: e.message };
  }
}

interface Request {
  id: number;
  op: OpName;
  args: unknown[];
}

class User {
  private nextId = 1;
  private readonly pending = new Map<number, (r: Result) => void>();
  readonly name: string;
  private readonly child: ChildProcess | undefined;
  private constructor(name: string, child: ChildProcess | undefined) {
    this.name = name;
    this.child = child;
    child?.on("message", (m: { id?: number; result?: Result }) => {
      if (m.id !== undefined && m.result) {
        this.pending.get(m.id)?.(m.result);
        this.pending.delete(m.id);
      }
    });
  }

  static root(): User {
    return new User("root", undefined);
  }

  static async spawn(name: string, uid: number, gid: number, groups: number[]): Promise<User> {
    const child = fork(process.argv[1]!, ["--child", String(uid), String(gid), groups.join(",")], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    await new Promise<void>((ok, fail) => {
      child.once("message", () => ok());
      child.once("exit", (code) => fail(new Error(`user ${name}: child exited ${code}`)));
    });
    return new User(name, child);
  }

  async do(op: OpName, ...args: unknown[]): Promise<Result> {
    if (!this.child) return perform(op, args);
    const id = this.nextId++;
    return new Promise((ok) => {
      this.pending.set(id, ok);
      this.child!.send({ id, op, args });
    });
  }

  /** The operation must succeed; returns its value. */
  async ok<T = unknown>(op: OpName, ...args: unknown[]): Promise<T> {
    const r = await this.do(op, ...args);
    if (!r.ok) throw new Error(`${this.name}: ${op}(${args.map((a) => JSON.stringify(a)).join(", ")}) failed with ${r.code} (expected success)`);
    return r.value as T;
  }

  /** The operation must fail with one of the codes. */
  async err(codes: string | string[], op: OpName, ...args: unknown[]): Promise<void> {
    const want = typeof codes === "string" ? [codes] : codes;
    const r = await this.do(op, ...args);
    const call = `${this.name}: ${op}(${args.map((a) => JSON.stringify(a)).join(", ")})`;
    if (r.ok) throw new Error(`${call} succeeded (expected ${want.join(" or ")})`);
    if (!want.includes(r.code)) throw new Error(`${call} failed with ${r.code} (expected ${want.join(" or ")}): ${r.message}`);
  }

  async stat(p: string): Promise<StatLite> {
    return this.ok<StatLite>("stat", p);
  }

  close(): void {
    this.child?.disconnect();
  }
}

function eq(what: string, actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}
function truthy(what: string, cond: boolean): void {
  if (!cond) throw new Error(what);
}
const perm = (s: StatLite): number => s.mode & 0o7777;
const gt = (a: string, b: string): boolean => BigInt(a) > BigInt(b);

async function main(base: string): Promise<void> {
  process.umask(0);
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { mode: 0o755 });
  const root = User.root();
  const ALICE = 1001;
  const BOB = 1002;
  const SHARED = 2000;
  const alice = await User.spawn("alice", ALICE, ALICE, [ALICE, SHARED]);
  const bob = await User.spawn("bob", BOB, BOB, [BOB]);
  const results: { name: string; error?: string }[] = [];
  const check = async (name: string, fn: (dir: string) => Promise<void>): Promise<void> => {
    const dir = join(base, name.replace(/[^a-z0-9]+/gi, "-").toLowerCase().slice(0, 60));
    fs.mkdirSync(dir, { mode: 0o777 });
    try {
      await fn(dir);
      results.push({ name });
      console.log(`ok - ${name}`);
    } catch (err) {
      const msg = (err as Error).message;
      results.push({ name, error: msg });
      console.log(`not ok - ${name} :: ${msg}`);
    }
  };

  await check("permission bits: owner, group, other, root", async (d) => {
    fs.chmodSync(d, 0o755);
    const p = (n: string): string => join(d, n);
    fs.writeFileSync(p("f600"), "x", { mode: 0o600 });
    await alice.err("EACCES", "read", p("f600"));
    fs.writeFileSync(p("f644"), "x", { mode: 0o644 });
    eq("alice reads a 0644 file", await alice.ok("read", p("f644")), "x");
    await alice.err("EACCES", "write", p("f644"), "y");
    await alice.err("EACCES", "truncate", p("f644"), 0);
    await alice.err("EACCES", "unlink", p("f644"));
    await alice.err("EACCES", "write", p("new"), "y");
    await alice.err("EACCES", "mkdir", p("newdir"), 0o755);
    fs.writeFileSync(p("grp"), "g", { mode: 0o640 });
    fs.chownSync(p("grp"), 0, SHARED);
    eq("group member reads a 0640 file", await alice.ok("read", p("grp")), "g");
    await bob.err("EACCES", "read", p("grp"));
    // The owner class decides alone, even when "other" would allow more.
    fs.writeFileSync(p("own"), "o", { mode: 0o077 });
    fs.chownSync(p("own"), ALICE, ALICE);
    await alice.err("EACCES", "read", p("own"));
    eq("other reads a 0077 file", await bob.ok("read", p("own")), "o");
    fs.writeFileSync(p("none"), "n", { mode: 0o000 });
    eq("root reads a 0000 file", await root.ok("read", p("none")), "n");
    await root.ok("write", p("none"), "m");
  });

  await check("directory search (x) and list (r) permission", async (d) => {
    const sub = join(d, "sub");
    fs.mkdirSync(sub, { mode: 0o700 });
    fs.writeFileSync(join(sub, "f"), "f", { mode: 0o644 });
    await alice.err("EACCES", "stat", join(sub, "f"));
    await alice.err("EACCES", "readdir", sub);
    fs.chmodSync(sub, 0o711);
    eq("search-only directory: read a known name", await alice.ok("read", join(sub, "f")), "f");
    await alice.err("EACCES", "readdir", sub);
    fs.chmodSync(sub, 0o744);
    eq("list-only directory: names", await alice.ok("readdir", sub), ["f"]);
    await alice.err("EACCES", "stat", join(sub, "f"));
  });

  await check("chmod, chown, utimes need ownership (EPERM); UTIME_NOW needs write access", async (d) => {
    const f = join(d, "rootfile");
    fs.writeFileSync(f, "r", { mode: 0o666 });
    await alice.err("EPERM", "chmod", f, 0o600);
    await alice.err("EPERM", "chown", f, ALICE, ALICE);
    await alice.err("EPERM", "utimes", f, 1000, 1000);
    await alice.ok("touchNow", f);
    fs.chmodSync(f, 0o644);
    await alice.err(["EACCES", "EPERM"], "touchNow", f);
    const g = join(d, "alicefile");
    await alice.ok("write", g, "a");
    const st = await alice.stat(g);
    eq("new file owner", [st.uid, st.gid], [ALICE, ALICE]);
    await alice.ok("chmod", g, 0o600);
    await alice.ok("utimes", g, 1000, 2000);
    await alice.err("EPERM", "chown", g, BOB, ALICE);
    await alice.err("EPERM", "chown", g, ALICE, BOB);
    await alice.ok("chown", g, ALICE, SHARED);
    eq("chown to a supplementary group", (await alice.stat(g)).gid, SHARED);
    await root.ok("chown", g, BOB, BOB);
    eq("root chown", [(await root.stat(g)).uid, (await root.stat(g)).gid], [BOB, BOB]);
  });

  await check("owner writes through the descriptor that created a 0444 file", async (d) => {
    const f = join(d, "ro");
    await alice.ok("createWrite", f, 0o444, "data written after a read-only create");
    eq("content", await alice.ok("read", f), "data written after a read-only create");
    eq("mode", perm(await alice.stat(f)), 0o444);
    await alice.err("EACCES", "write", f, "again");
  });

  await check("chmod g+s by an owner outside the file's group clears S_ISGID", async (d) => {
    const f = join(d, "f");
    await alice.ok("write", f, "x");
    await alice.ok("chmod", f, 0o2755);
    eq("owner in the group keeps setgid", perm(await alice.stat(f)), 0o2755);
    await root.ok("chown", f, ALICE, 3000);
    await alice.ok("chmod", f, 0o2755);
    eq("owner outside the group: setgid cleared", perm(await alice.stat(f)), 0o755);
  });

  await check("a write by a non-root user clears set-user-ID and set-group-ID", async (d) => {
    const f = join(d, "suid");
    fs.writeFileSync(f, "x");
    fs.chmodSync(f, 0o6777);
    await alice.ok("write", f, "changed by alice");
    eq("mode after the write", perm(await root.stat(f)), 0o777);
  });

  await check("sticky directory: only the file's owner, the directory's owner or root remove or rename", async (d) => {
    const s = join(d, "sticky");
    fs.mkdirSync(s, { mode: 0o1777 });
    fs.chmodSync(s, 0o1777);
    eq("sticky mode", perm(await root.stat(s)), 0o1777);
    await alice.ok("write", join(s, "a"), "a");
    await bob.ok("write", join(s, "b"), "b");
    await bob.err(["EPERM", "EACCES"], "unlink", join(s, "a"));
    await bob.err(["EPERM", "EACCES"], "rename", join(s, "a"), join(s, "stolen"));
    await bob.err(["EPERM", "EACCES"], "rename", join(s, "b"), join(s, "a"));
    await alice.ok("unlink", join(s, "a"));
    await root.ok("unlink", join(s, "b"));
    // the directory's owner may remove anything in it
    const t = join(d, "owned");
    fs.mkdirSync(t, { mode: 0o1777 });
    fs.chmodSync(t, 0o1777);
    fs.chownSync(t, ALICE, ALICE);
    await bob.ok("write", join(t, "b"), "b");
    await alice.ok("unlink", join(t, "b"));
  });

  await check("setgid directory: new entries take its group; new subdirectories keep setgid", async (d) => {
    const s = join(d, "sg");
    fs.mkdirSync(s, { mode: 0o777 });
    fs.chownSync(s, 0, SHARED);
    fs.chmodSync(s, 0o2777);
    await alice.ok("write", join(s, "f"), "f");
    eq("file group", (await root.stat(join(s, "f"))).gid, SHARED);
    await alice.ok("mkdir", join(s, "sub"), 0o755);
    const sub = await root.stat(join(s, "sub"));
    eq("subdirectory group", sub.gid, SHARED);
    truthy(`subdirectory keeps S_ISGID (mode ${sub.mode.toString(8)})`, (sub.mode & 0o2000) !== 0);
    await bob.ok("write", join(s, "g"), "g");
    eq("file group (creator not in the group)", (await root.stat(join(s, "g"))).gid, SHARED);
    await alice.ok("write", join(s, "sub", "deep"), "d");
    eq("nested inheritance", (await root.stat(join(s, "sub", "deep"))).gid, SHARED);
  });

  await check("rename edge cases", async (d) => {
    const p = (n: string): string => join(d, n);
    fs.writeFileSync(p("a"), "A");
    await root.ok("rename", p("a"), p("a"));
    eq("rename onto itself", fs.readFileSync(p("a"), "utf8"), "A");
    fs.linkSync(p("a"), p("b"));
    await root.ok("rename", p("a"), p("b"));
    truthy("rename between links of one file keeps both names", fs.existsSync(p("a")) && fs.existsSync(p("b")));
    fs.mkdirSync(p("d1"));
    fs.mkdirSync(p("d2"));
    fs.writeFileSync(p("d2/x"), "x");
    await root.err(["ENOTEMPTY", "EEXIST"], "rename", p("d1"), p("d2"));
    fs.mkdirSync(p("empty"));
    await root.ok("rename", p("d1"), p("empty"));
    truthy("directory over an empty directory", !fs.existsSync(p("d1")) && fs.statSync(p("empty")).isDirectory());
    fs.writeFileSync(p("f"), "f");
    await root.err("EISDIR", "rename", p("f"), p("empty"));
    await root.err("ENOTDIR", "rename", p("empty"), p("f"));
    fs.mkdirSync(p("top/mid"), { recursive: true });
    await root.err("EINVAL", "rename", p("top"), p("top/mid/inside"));
    await root.err("ENOENT", "rename", p("missing"), p("x"));
    // replacing one name of a hard-linked file leaves the other name alone
    fs.writeFileSync(p("t1"), "T");
    fs.linkSync(p("t1"), p("t2"));
    fs.writeFileSync(p("s"), "S");
    await root.ok("rename", p("s"), p("t1"));
    eq("replaced name", fs.readFileSync(p("t1"), "utf8"), "S");
    eq("other link", fs.readFileSync(p("t2"), "utf8"), "T");
    eq("other link's count", (await root.stat(p("t2"))).nlink, 1);
    // moving a subdirectory moves a link count between the parents
    fs.mkdirSync(p("m1/sub"), { recursive: true });
    fs.mkdirSync(p("m2"));
    eq("nlink before", [(await root.stat(p("m1"))).nlink, (await root.stat(p("m2"))).nlink], [3, 2]);
    await root.ok("rename", p("m1/sub"), p("m2/sub"));
    eq("nlink after", [(await root.stat(p("m1"))).nlink, (await root.stat(p("m2"))).nlink], [2, 3]);
    eq("moved directory's parent", fs.statSync(p("m2/sub/..")).ino, fs.statSync(p("m2")).ino);
  });

  await check("hard link counts", async (d) => {
    const p = (n: string): string => join(d, n);
    fs.writeFileSync(p("f"), "f");
    eq("nlink 1", (await root.stat(p("f"))).nlink, 1);
    fs.linkSync(p("f"), p("g"));
    fs.linkSync(p("f"), p("h"));
    eq("nlink 3", (await root.stat(p("f"))).nlink, 3);
    fs.unlinkSync(p("g"));
    eq("nlink 2", (await root.stat(p("h"))).nlink, 2);
    eq("same inode", (await root.stat(p("h"))).ino, (await root.stat(p("f"))).ino);
    fs.mkdirSync(p("D"));
    await root.err("EPERM", "link", p("D"), p("Dlink"));
    eq("empty dir nlink", (await root.stat(p("D"))).nlink, 2);
    fs.mkdirSync(p("D/a"));
    fs.mkdirSync(p("D/b"));
    fs.writeFileSync(p("D/file"), "");
    eq("dir nlink with 2 subdirs", (await root.stat(p("D"))).nlink, 4);
    fs.rmdirSync(p("D/a"));
    eq("dir nlink after rmdir", (await root.stat(p("D"))).nlink, 3);
    // an open file that is unlinked stays readable; nothing is left behind after close
    const fd = fs.openSync(p("open"), "w+");
    fs.writeSync(fd, "still here");
    fs.unlinkSync(p("open"));
    const buf = Buffer.alloc(10);
    fs.readSync(fd, buf, 0, 10, 0);
    eq("read after unlink", buf.toString(), "still here");
    fs.closeSync(fd);
    let left: string[] = [];
    for (let i = 0; i < 50; i++) {
      left = fs.readdirSync(d).filter((n) => n.startsWith(".nfs"));
      if (left.length === 0) break;
      await sleep(100);
    }
    eq("silly-renamed leftovers after close", left, []);
  });

  await check("symlink loops, chains and long targets", async (d) => {
    const p = (n: string): string => join(d, n);
    fs.symlinkSync("loopB", p("loopA"));
    fs.symlinkSync("loopA", p("loopB"));
    await root.err("ELOOP", "read", p("loopA"));
    await root.err("ELOOP", "stat", p("loopA"));
    truthy("lstat of a loop", ((await root.ok<StatLite>("lstat", p("loopA"))).mode & 0o170000) === 0o120000);
    fs.symlinkSync("self", p("self"));
    await root.err("ELOOP", "write", p("self"), "x");
    fs.writeFileSync(p("target"), "end");
    let prev = "target";
    for (let i = 0; i < 45; i++) {
      fs.symlinkSync(prev, p(`c${i}`));
      prev = `c${i}`;
    }
    eq("chain of 10", await root.ok("read", p("c9")), "end");
    await root.err("ELOOP", "read", p("c44"));
    const long = "x/".repeat(2000) + "end";
    fs.symlinkSync(long, p("long"));
    eq("long target", await root.ok("readlink", p("long")), long);
    fs.mkdirSync(p("real"));
    fs.symlinkSync("real", p("dirlink"));
    fs.writeFileSync(p("dirlink/f"), "via link");
    eq("through a directory symlink", fs.readFileSync(p("real/f"), "utf8"), "via link");
    eq("symlink mode", perm(await root.ok<StatLite>("lstat", p("dirlink"))), 0o777);
  });

  await check("O_CREAT|O_EXCL", async (d) => {
    const p = (n: string): string => join(d, n);
    await root.ok("openClose", p("x"), O_CREAT | O_EXCL | O_WRONLY, 0o644);
    await root.err("EEXIST", "openClose", p("x"), O_CREAT | O_EXCL | O_WRONLY, 0o644);
    fs.symlinkSync("nowhere", p("dangling"));
    await root.err("EEXIST", "openClose", p("dangling"), O_CREAT | O_EXCL | O_WRONLY, 0o644);
    truthy("dangling symlink target not created", !fs.existsSync(p("nowhere")));
    // two processes race for the same names: exactly one wins each
    for (let i = 0; i < 10; i++) {
      const name = p(`race${i}`);
      const [a, b] = await Promise.all([alice.do("openClose", name, O_CREAT | O_EXCL | O_WRONLY, 0o644), bob.do("openClose", name, O_CREAT | O_EXCL | O_WRONLY, 0o644)]);
      const wins = [a, b].filter((r) => r.ok).length;
      const losers = [a, b].filter((r) => !r.ok && r.code === "EEXIST").length;
      eq(`race ${i}: winners/EEXIST`, [wins, losers], [1, 1]);
      const owner = (await root.stat(name)).uid;
      eq(`race ${i}: owner is the winner`, owner, a.ok ? ALICE : BOB);
    }
  });

  await check("O_APPEND", async (d) => {
    const f = join(d, "log");
    fs.writeFileSync(f, "", { mode: 0o666 });
    const fd1 = fs.openSync(f, O_WRONLY | O_APPEND);
    const fd2 = fs.openSync(f, O_RDWR | O_APPEND);
    for (let i = 0; i < 20; i++) {
      fs.writeSync(fd1, "aaaaaaaaa\n");
      fs.writeSync(fd2, "bbbbbbbbb\n", 0);
    }
    fs.closeSync(fd1);
    fs.closeSync(fd2);
    const text = fs.readFileSync(f, "utf8");
    eq("size with two appending descriptors", text.length, 400);
    eq("interleaving", text.slice(0, 20), "aaaaaaaaa\nbbbbbbbbb\n");
    fs.writeFileSync(f, "");
    await Promise.all([alice.ok("appendLines", f, "alice-", 300), bob.ok("appendLines", f, "bob-", 300)]);
    const lines = fs.readFileSync(f, "utf8").split("\n").filter(Boolean);
    eq("lines from two appending processes", lines.length, 600);
    for (const who of ["alice-", "bob-"]) {
      const mine = lines.filter((l) => l.startsWith(who)).map((l) => Number(l.slice(who.length)));
      eq(`${who} lines in order`, mine, [...Array(300).keys()]);
    }
    truthy("no torn lines", lines.every((l) => /^(alice|bob)-\d+$/.test(l)));
  });

  const sparse = async (d: string): Promise<string> => {
    const f = join(d, "sparse");
    const fd = fs.openSync(f, "w+");
    fs.writeSync(fd, Buffer.alloc(65536, 1), 0, 65536, 0);
    fs.writeSync(fd, Buffer.from("x"), 0, 1, 1 << 30);
    fs.closeSync(fd);
    return f;
  };
  await check("sparse files: holes read as zeros", async (d) => {
    const GiB = 1 << 30;
    const f = await sparse(d);
    eq("size", fs.statSync(f).size, GiB + 1);
    const rd = fs.openSync(f, "r");
    const hole = Buffer.alloc(1 << 20, 7);
    fs.readSync(rd, hole, 0, hole.length, 512 << 20);
    truthy("hole in the middle reads as zeros", hole.every((b) => b === 0));
    const edge = Buffer.alloc(65536 + 16, 7);
    fs.readSync(rd, edge, 0, edge.length, 0);
    truthy("data then hole", edge.subarray(0, 65536).every((b) => b === 1) && edge.subarray(65536).every((b) => b === 0));
    const last = Buffer.alloc(2);
    eq("read at the end", fs.readSync(rd, last, 0, 2, GiB), 1);
    eq("last byte", last.subarray(0, 1).toString(), "x");
    fs.closeSync(rd);
    fs.truncateSync(f, GiB + 4096);
    const tail = Buffer.alloc(4096, 7);
    const rd2 = fs.openSync(f, "r");
    fs.readSync(rd2, tail, 0, 4096, GiB + 1);
    fs.closeSync(rd2);
    truthy("extended by truncate reads as zeros", tail.subarray(0, 4095).every((b) => b === 0));
  });

  await check("sparse files: st_blocks and du smaller than the size", async (d) => {
    const f = await sparse(d);
    const st = fs.statSync(f);
    truthy(`st_blocks says ${st.blocks * 512} bytes are allocated for a 1 GiB file holding 64 KiB + 1 byte`, st.blocks * 512 < 8 << 20);
    const du = Number(command("du", ["-k", f]).split("\t")[0]);
    truthy(`du -k says ${du} KiB`, du < 8192);
  });

  await check("mtime and ctime updates", async (d) => {
    const f = join(d, "f");
    const tick = (): Promise<void> => sleep(30);
    fs.writeFileSync(f, "1");
    const s0 = await root.stat(f);
    await tick();
    fs.appendFileSync(f, "2");
    const s1 = await root.stat(f);
    truthy("write changes mtime", gt(s1.mtimeNs, s0.mtimeNs));
    truthy("write changes ctime", gt(s1.ctimeNs, s0.ctimeNs));
    await tick();
    fs.chmodSync(f, 0o600);
    const s2 = await root.stat(f);
    eq("chmod keeps mtime", s2.mtimeNs, s1.mtimeNs);
    truthy("chmod changes ctime", gt(s2.ctimeNs, s1.ctimeNs));
    await tick();
    fs.readFileSync(f);
    const s3 = await root.stat(f);
    eq("read keeps mtime/ctime", [s3.mtimeNs, s3.ctimeNs], [s2.mtimeNs, s2.ctimeNs]);
    await tick();
    fs.linkSync(f, join(d, "f2"));
    const s4 = await root.stat(f);
    truthy("link changes ctime", gt(s4.ctimeNs, s3.ctimeNs));
    await tick();
    fs.utimesSync(f, 1000, 2000.5);
    const s5 = await root.stat(f);
    eq("utimes sets atime/mtime", [s5.atimeNs, s5.mtimeNs], ["1000000000000", "2000500000000"]);
    truthy("utimes changes ctime", gt(s5.ctimeNs, s4.ctimeNs));
    await tick();
    fs.truncateSync(f, 1);
    const s6 = await root.stat(f);
    truthy("truncate changes mtime and ctime", gt(s6.mtimeNs, s5.mtimeNs) && gt(s6.ctimeNs, s5.ctimeNs));
    const dir0 = await root.stat(d);
    await tick();
    fs.writeFileSync(join(d, "new"), "");
    const dir1 = await root.stat(d);
    truthy("create changes the directory's mtime", gt(dir1.mtimeNs, dir0.mtimeNs) && gt(dir1.ctimeNs, dir0.ctimeNs));
    await tick();
    fs.renameSync(join(d, "new"), join(d, "renamed"));
    const dir2 = await root.stat(d);
    truthy("rename changes the directory's mtime", gt(dir2.mtimeNs, dir1.mtimeNs));
    await tick();
    fs.unlinkSync(join(d, "renamed"));
    const dir3 = await root.stat(d);
    truthy("unlink changes the directory's mtime", gt(dir3.mtimeNs, dir2.mtimeNs));
  });

  await check("umask applies to new files and directories", async (d) => {
    await alice.ok("umask", 0o022);
    await alice.ok("mkdir", join(d, "dir"), 0o777);
    await alice.ok("writeMode", join(d, "file"), "", 0o666);
    await alice.ok("umask", 0);
    eq("directory mode", perm(await root.stat(join(d, "dir"))), 0o755);
    eq("file mode", perm(await root.stat(join(d, "file"))), 0o644);
  });

  await check("names: 255 bytes, UTF-8, errors", async (d) => {
    const p = (n: string): string => join(d, n);
    await root.ok("write", p("n".repeat(255)), "long");
    await root.err("ENAMETOOLONG", "write", p("n".repeat(256)), "too long");
    const odd = "ünïcödé name\twith tab & spaces ✓";
    fs.writeFileSync(p(odd), "odd");
    truthy("readdir returns the UTF-8 name", fs.readdirSync(d).includes(odd));
    fs.mkdirSync(p("dir"));
    fs.writeFileSync(p("dir/x"), "");
    await root.err("EEXIST", "mkdir", p("dir"), 0o755);
    await root.err("ENOTEMPTY", "rmdir", p("dir"));
    await root.err("ENOTDIR", "rmdir", p("dir/x"));
    await root.err(["EISDIR", "EPERM"], "unlink", p("dir"));
    await root.err("EISDIR", "write", p("dir"), "x");
    await root.err("ENOTDIR", "write", p("dir/x/y"), "x");
    await root.err("ENOENT", "read", p("nope"));
  });

  alice.close();
  bob.close();
  const failed = results.filter((r) => r.error !== undefined);
  // The host turns the ok/not ok lines into subtests; the exit status only says the suite ran.
  console.log(`posix suite: ${results.length - failed.length} of ${results.length} checks ok`);
  console.log("posix suite: done");
}

// ---- child side: drop privileges, then serve requests ----
if (process.argv[2] === "--child") {
  const [uid, gid, groups] = [Number(process.argv[3]), Number(process.argv[4]), (process.argv[5] ?? "").split(",").filter(Boolean).map(Number)];
  // setgroups/setgid/setuid exist on POSIX systems only (this runs in the Linux guest).
  process.setgroups!(groups);
  process.setgid!(gid);
  process.setuid!(uid);
  process.umask(0);
  process.on("message", (m: Request) => {
    process.send?.({ id: m.id, result: perform(m.op, m.args) });
  });
  process.send?.({ ready: true });
} else {
  await main(process.argv[2] ?? "/tmp/zerofs/posix");
}
