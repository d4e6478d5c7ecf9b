import assert from "node:assert/strict";
import { chmod, chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, HelpRequested, SETTINGS, helpText, readConfig } from "../src/config/config.ts";

const base = { SLATEDB_CACHE_DIR: "/tmp/c", SLATEDB_CACHE_SIZE_GB: "1.5", ZEROFS_ENCRYPTION_PASSWORD: "pw" };

function problems(argv: string[], env: NodeJS.ProcessEnv): string[] {
  try {
    readConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail("expected a ConfigError");
}

describe("configuration", () => {
  it("reads the original's variables with defaults", () => {
    const c = readConfig(["/var/lib/zerofs"], base);
    assert.equal(c.url, "/var/lib/zerofs");
    assert.equal(c.cacheDir, "/tmp/c");
    assert.equal(c.cacheBytes, 1.5 * 2 ** 30);
    assert.equal(c.password, "pw");
    assert.equal(c.port, 2049);
    assert.equal(c.listen, "127.0.0.1");
    assert.deepEqual(c.allowedClients, ["127.0.0.0/8", "::1/128"], "loopback-only by default when bound to loopback");
    assert.equal(c.readOnly, false);
  });

  it("is safe by default (exports(5)): root squash, secure ports, loopback-only HTTP, volumes may be created", () => {
    const c = readConfig(["/d"], base);
    assert.equal(c.squash, "root");
    assert.equal(c.insecure, false);
    assert.equal(c.httpListen, "127.0.0.1");
    assert.deepEqual(c.httpAllowedClients, ["127.0.0.0/8", "::1/128"]);
    assert.equal(c.noCreate, false);
    assert.deepEqual(c.warnings, []);
    const relaxed = readConfig(["/d", "--squash", "none", "--insecure", "--no-create"], base);
    assert.deepEqual([relaxed.squash, relaxed.insecure, relaxed.noCreate], ["none", true, true]);
    const viaEnv = readConfig(["/d"], { ...base, ZEROFS_INSECURE: "true", ZEROFS_NO_CREATE: "1" });
    assert.deepEqual([viaEnv.insecure, viaEnv.noCreate], [true, true]);
  });

  it("exports to no one beyond loopback unless told: a non-loopback listen needs --allow, * means everyone", () => {
    for (const [argv, env] of [[["--listen", "0.0.0.0", "/d"], base], [["/d"], { ...base, ZEROFS_LISTEN: "10.1.2.3" }]] as const) {
      const text = problems([...argv], env).join("\n");
      assert.match(text, /is not a loopback address, so ZEROFS_ALLOWED_CLIENTS \(--allow\) is required/);
      assert.match(text, /"\*" \(the same as 0\.0\.0\.0\/0,::\/0\) to admit everyone/);
    }
    assert.deepEqual(readConfig(["--listen", "0.0.0.0", "--allow", "*", "/d"], base).allowedClients, ["0.0.0.0/0", "::/0"]);
    assert.deepEqual(readConfig(["--listen", "::", "/d"], { ...base, ZEROFS_ALLOWED_CLIENTS: "0.0.0.0/0,::/0" }).allowedClients, ["0.0.0.0/0", "::/0"]);
    const c = readConfig(["--listen", "10.0.0.5", "--allow", "10.0.0.0/8", "/d"], base);
    assert.deepEqual(c.allowedClients, ["10.0.0.0/8"]);
    assert.equal(c.httpListen, "127.0.0.1", "the HTTP endpoint stays on loopback; it does not follow --listen");
  });

  it("the HTTP endpoint: a non-loopback listen needs --http-allow (unless disabled)", () => {
    assert.match(problems(["--http-listen", "0.0.0.0", "/d"], base).join("\n"), /ZEROFS_HTTP_ALLOWED_CLIENTS \(--http-allow\) is required/);
    const c = readConfig(["/d"], { ...base, ZEROFS_HTTP_LISTEN: "0.0.0.0", ZEROFS_HTTP_ALLOWED_CLIENTS: "10.0.0.0/8, 192.168.0.0/16" });
    assert.deepEqual(c.httpAllowedClients, ["10.0.0.0/8", "192.168.0.0/16"]);
    assert.deepEqual(readConfig(["--http-listen", "0.0.0.0", "--http-allow", "*", "/d"], base).httpAllowedClients, ["0.0.0.0/0", "::/0"]);
    assert.equal(readConfig(["--http-listen", "0.0.0.0", "--http-port", "0", "/d"], base).httpPort, 0, "a disabled endpoint needs no client list");
    assert.match(problems(["--http-allow", "10.0.0.0/99", "/d"], base).join("\n"), /--http-allow: "10\.0\.0\.0\/99": prefix length must be 0\.\.32/);
  });

  it("warns about a password file readable by group or others; ZEROFS_STRICT_PASSWORD_FILE refuses it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-cfg-"));
    try {
      const file = join(dir, "pw");
      await writeFile(file, "secret\n");
      const env = { SLATEDB_CACHE_DIR: "/c", SLATEDB_CACHE_SIZE_GB: "1", ZEROFS_ENCRYPTION_PASSWORD_FILE: file };
      await chmod(file, 0o644);
      const c = readConfig(["/d"], env);
      assert.equal(c.password, "secret");
      assert.equal(c.warnings.length, 1);
      assert.match(c.warnings[0]!.message, /readable by group or others.*defaultMode: 0400.*ZEROFS_STRICT_PASSWORD_FILE/);
      assert.deepEqual(c.warnings[0]!.details, { setting: "ZEROFS_ENCRYPTION_PASSWORD_FILE", path: file, mode: "0644" });
      assert.match(problems(["/d", "--strict-password-file"], env).join("\n"), /ZEROFS_ENCRYPTION_PASSWORD_FILE=".*pw" is readable by group or others \(mode 0644\)/);
      await chmod(file, 0o440);
      assert.deepEqual(readConfig(["/d"], { ...env, ZEROFS_STRICT_PASSWORD_FILE: "true" }).warnings, [], "group read by the process's own group (a Secret with an fsGroup) is fine");
      await chown(file, 0, 54321);
      await chmod(file, 0o640);
      assert.match(problems(["/d"], { ...env, ZEROFS_STRICT_PASSWORD_FILE: "true" }).join("\n"), /mode 0640/);
      await chmod(file, 0o400);
      assert.deepEqual(readConfig(["/d"], { ...env, ZEROFS_STRICT_PASSWORD_FILE: "true" }).warnings, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("store and shutdown deadlines: defaults well under Kubernetes' 30 s grace period, flags override, bad values named", () => {
    const c = readConfig(["/v"], base);
    assert.equal(c.storeTimeoutMs, 10_000);
    assert.equal(c.shutdownTimeoutMs, 20_000);
    const d = readConfig(["/v", "--store-timeout-seconds", "2.5"], { ...base, ZEROFS_STORE_TIMEOUT_SECONDS: "7", ZEROFS_SHUTDOWN_TIMEOUT_SECONDS: "5" });
    assert.equal(d.storeTimeoutMs, 2_500);
    assert.equal(d.shutdownTimeoutMs, 5_000);
    const p = problems(["/v", "--shutdown-timeout-seconds", "0"], { ...base, ZEROFS_STORE_TIMEOUT_SECONDS: "soon" });
    assert.ok(p.some((x) => /ZEROFS_STORE_TIMEOUT_SECONDS="soon": expected a number of seconds/.test(x)), p.join("\n"));
    assert.ok(p.some((x) => /--shutdown-timeout-seconds="0": expected at least 0\.05 seconds/.test(x)), p.join("\n"));
  });

  it("names every missing required setting", () => {
    const p = problems([], {});
    const text = p.join("\n");
    for (const name of ["SLATEDB_CACHE_DIR", "SLATEDB_CACHE_SIZE_GB", "ZEROFS_ENCRYPTION_PASSWORD", "volume location"]) assert.match(text, new RegExp(name));
  });

  it("names each bad value and what was expected", () => {
    const p = problems(["s3://Bad_Bucket/x"], { ...base, SLATEDB_CACHE_SIZE_GB: "-2", ZEROFS_NFS_PORT: "70000", ZEROFS_SQUASH: "some", ZEROFS_ALLOWED_CLIENTS: "10.0.0.0/33,nonsense", AWS_ALLOW_HTTP: "maybe", ZEROFS_LOG_LEVEL: "loud" });
    const text = p.join("\n");
    assert.match(text, /SLATEDB_CACHE_SIZE_GB="-2": expected a size > 0 GiB/);
    assert.match(text, /ZEROFS_NFS_PORT="70000": expected a port in 0\.\.65535/);
    assert.match(text, /ZEROFS_SQUASH="some": expected none, root or all/);
    assert.match(text, /ZEROFS_ALLOWED_CLIENTS: "10\.0\.0\.0\/33": prefix length must be 0\.\.32/);
    assert.match(text, /ZEROFS_ALLOWED_CLIENTS: "nonsense"/);
    assert.match(text, /AWS_ALLOW_HTTP="maybe": expected true or false/);
    assert.match(text, /ZEROFS_LOG_LEVEL="loud"/);
    assert.match(text, /s3:\/\/Bad_Bucket\/x/);
  });

  it("refuses a plain-http S3 endpoint unless AWS_ALLOW_HTTP", () => {
    assert.match(problems(["s3://bucket/p"], { ...base, AWS_ENDPOINT_URL: "http://127.0.0.1:9000" }).join("\n"), /AWS_ALLOW_HTTP=true/);
    const c = readConfig(["s3://bucket/p"], { ...base, AWS_ENDPOINT_URL: "http://127.0.0.1:9000", AWS_ALLOW_HTTP: "true" });
    assert.equal(c.s3.allowHttp, true);
    assert.equal(c.s3.endpoint, "http://127.0.0.1:9000");
  });

  it("flags override variables", () => {
    const c = readConfig(["--port", "12049", "--squash", "all", "--read-only", "/d"], { ...base, ZEROFS_NFS_PORT: "3000", ZEROFS_SQUASH: "none" });
    assert.equal(c.port, 12049);
    assert.equal(c.squash, "all");
    assert.equal(c.readOnly, true);
  });

  it("reads passwords from files (Kubernetes Secret volumes), never both ways", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zerofs-cfg-"));
    try {
      await writeFile(join(dir, "pw"), "from-file\n");
      await writeFile(join(dir, "new"), "newer");
      const env = { SLATEDB_CACHE_DIR: "/c", SLATEDB_CACHE_SIZE_GB: "1", ZEROFS_ENCRYPTION_PASSWORD_FILE: join(dir, "pw") };
      const c = readConfig(["/d", "--new-password-file", join(dir, "new")], env);
      assert.equal(c.password, "from-file");
      assert.equal(c.newPassword, "newer");
      assert.match(problems(["/d"], { ...env, ZEROFS_ENCRYPTION_PASSWORD: "x" }).join("\n"), /both set/);
      assert.match(problems(["/d"], { ...env, ZEROFS_ENCRYPTION_PASSWORD_FILE: join(dir, "missing") }).join("\n"), /cannot read the password file \(ENOENT\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("--help lists every variable and flag", () => {
    assert.throws(() => readConfig(["--help"], {}), HelpRequested);
    const text = helpText();
    for (const s of Object.values(SETTINGS)) {
      if ("env" in s && s.env) assert.ok(text.includes(s.env), s.env);
      if ("flag" in s && s.flag) assert.ok(text.includes(`--${s.flag}`), s.flag);
    }
  });

  it("connection limits: defaults, env and flags, bad values named", () => {
    assert.deepEqual(readConfig(["/d"], base).limits, { maxConnections: 220, maxBufferedBytes: 268435456, idleTimeoutMs: 360_000, recordTimeoutMs: 30_000, stallTimeoutMs: 60_000 });
    const c = readConfig(["--max-connections", "5", "--idle-timeout", "0.5", "/d"], {
      ...base,
      ZEROFS_MAX_CONNECTIONS: "9",
      ZEROFS_MAX_BUFFERED_BYTES: "33554432",
      ZEROFS_RECORD_TIMEOUT_SECONDS: "2",
      ZEROFS_STALL_TIMEOUT_SECONDS: "3",
    });
    assert.deepEqual(c.limits, { maxConnections: 5, maxBufferedBytes: 33554432, idleTimeoutMs: 500, recordTimeoutMs: 2000, stallTimeoutMs: 3000 });
    const p = problems(["--stall-timeout=-1", "/d"], { ...base, ZEROFS_MAX_CONNECTIONS: "0", ZEROFS_MAX_BUFFERED_BYTES: "1000", ZEROFS_IDLE_TIMEOUT_SECONDS: "soon" }).join("\n");
    assert.match(p, /ZEROFS_MAX_CONNECTIONS="0": expected at least 1/);
    assert.match(p, /ZEROFS_MAX_BUFFERED_BYTES="1000": expected at least 1048576/);
    assert.match(p, /ZEROFS_IDLE_TIMEOUT_SECONDS="soon": expected a number of seconds/);
    assert.match(p, /--stall-timeout="-1": expected more than 0 seconds/);
  });

  it("memory cache size: unset means derived at start, MiB from env or flag, bad values named", () => {
    assert.equal(readConfig(["/d"], base).memoryCacheBytes, undefined);
    assert.equal(readConfig(["/d"], { ...base, ZEROFS_MEMORY_CACHE_MB: "96" }).memoryCacheBytes, 96 * 1024 * 1024);
    assert.equal(readConfig(["/d", "--memory-cache-mb", "2048"], { ...base, ZEROFS_MEMORY_CACHE_MB: "96" }).memoryCacheBytes, 2048 * 1024 * 1024);
    assert.match(problems(["/d"], { ...base, ZEROFS_MEMORY_CACHE_MB: "8" }).join("\n"), /ZEROFS_MEMORY_CACHE_MB="8": expected at least 16 MiB/);
    assert.match(problems(["/d", "--memory-cache-mb", "1.5G"], base).join("\n"), /--memory-cache-mb="1\.5G": expected a number of MiB/);
  });

  it("admin API: off by default; the token file must be readable and non-empty; claims dir absolute", async () => {
    const c = readConfig(["/d"], base);
    assert.equal(c.adminTokenFile, undefined, "off unless configured");
    assert.equal(c.claimsDir, "/");
    const dir = await mkdtemp(join(tmpdir(), "zerofs-admin-cfg-"));
    try {
      const tokenPath = join(dir, "token");
      await writeFile(tokenPath, "secret\n", { mode: 0o600 });
      const on = readConfig(["/d", "--claims-dir", "/claims/x"], { ...base, ZEROFS_ADMIN_TOKEN_FILE: tokenPath });
      assert.equal(on.adminTokenFile, tokenPath);
      assert.equal(on.claimsDir, "/claims/x");
      assert.match(problems(["/d"], { ...base, ZEROFS_ADMIN_TOKEN_FILE: join(dir, "missing") }).join("\n"), /ZEROFS_ADMIN_TOKEN_FILE=.*cannot read the token file \(ENOENT\)/);
      await writeFile(join(dir, "empty"), "\n");
      assert.match(problems(["/d"], { ...base, ZEROFS_ADMIN_TOKEN_FILE: join(dir, "empty") }).join("\n"), /token file is empty/);
      for (const bad of ["claims", "/a/../b", "/./a"]) assert.match(problems(["/d"], { ...base, ZEROFS_CLAIMS_DIR: bad }).join("\n"), /ZEROFS_CLAIMS_DIR=.*absolute path/, bad);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("an unknown flag is a clear error", () => {
    assert.match(problems(["--bogus", "/d"], base).join("\n"), /bogus/);
  });
});

describe("documentation", () => {
  it("README.md documents every variable and flag --help lists", async () => {
    const { readFile } = await import("node:fs/promises");
    const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
    for (const s of Object.values(SETTINGS)) {
      if ("env" in s && s.env) assert.ok(readme.includes(`\`${s.env}\``) || readme.includes(s.env), `README lacks ${s.env}`);
      if ("flag" in s && s.flag) assert.ok(readme.includes(`--${s.flag}`), `README lacks --${s.flag}`);
    }
  });
});
