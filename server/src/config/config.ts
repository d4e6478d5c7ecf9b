/**
 * The `zerofs` command's configuration: environment variables compatible with the original
 * ZeroFS, plus flags. A flag overrides its variable. Every value is validated with zod and a bad
 * one is reported by the name the user wrote (variable or flag) with what was expected.
 */
import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { z } from "zod";

export interface Setting {
  env?: string;
  flag?: string;
  /** Flags without a value. */
  boolean?: boolean;
  help: string;
  default?: string;
}

/** Everything `--help` lists, in order. Keys are the names used in `readConfig`. */
export const SETTINGS = {
  cacheDir: { env: "SLATEDB_CACHE_DIR", flag: "cache-dir", help: "directory of the on-disk cache of SST object ranges (required)" },
  cacheSizeGb: { env: "SLATEDB_CACHE_SIZE_GB", flag: "cache-size-gb", help: "byte budget of the on-disk cache in GiB, > 0 (required)" },
  password: { env: "ZEROFS_ENCRYPTION_PASSWORD", help: "encryption password (or use a password file)" },
  passwordFile: { env: "ZEROFS_ENCRYPTION_PASSWORD_FILE", flag: "password-file", help: "file holding the encryption password, e.g. a mounted Kubernetes Secret (give it mode 0400/0600: one readable by group or others is warned about)" },
  strictPasswordFile: { env: "ZEROFS_STRICT_PASSWORD_FILE", flag: "strict-password-file", boolean: true, help: "refuse to start when a password file is readable by group or others, instead of warning (true/false)", default: "false" },
  newPassword: { env: "ZEROFS_NEW_PASSWORD", help: "change the password to this value, then exit" },
  newPasswordFile: { env: "ZEROFS_NEW_PASSWORD_FILE", flag: "new-password-file", help: "file holding the new password (change, then exit)" },
  bucket: { env: "AWS_S3_BUCKET", help: "bucket, when no s3:// URL is given" },
  endpoint: { env: "AWS_ENDPOINT_URL", flag: "s3-endpoint", help: "S3 endpoint URL (default: AWS)" },
  region: { env: "AWS_DEFAULT_REGION", flag: "s3-region", help: "S3 region", default: "us-east-1" },
  accessKeyId: { env: "AWS_ACCESS_KEY_ID", help: "S3 access key id" },
  secretAccessKey: { env: "AWS_SECRET_ACCESS_KEY", help: "S3 secret access key" },
  allowHttp: { env: "AWS_ALLOW_HTTP", flag: "allow-http", boolean: true, help: "allow a plain http:// S3 endpoint (true/false)", default: "false" },
  listen: { env: "ZEROFS_LISTEN", flag: "listen", help: "NFS listen address; a non-loopback one requires --allow", default: "127.0.0.1" },
  port: { env: "ZEROFS_NFS_PORT", flag: "port", help: "NFS port (NFS, MOUNT and PORTMAP share it)", default: "2049" },
  httpListen: { env: "ZEROFS_HTTP_LISTEN", flag: "http-listen", help: "address of the /metrics /healthz /readyz endpoint; a non-loopback one requires --http-allow", default: "127.0.0.1" },
  httpPort: { env: "ZEROFS_HTTP_PORT", flag: "http-port", help: "port of that endpoint (0 disables it)", default: "9090" },
  httpAllowedClients: { env: "ZEROFS_HTTP_ALLOWED_CLIENTS", flag: "http-allow", help: "comma-separated client CIDRs allowed to use the HTTP endpoint; * means everyone", default: "loopback" },
  allowedClients: { env: "ZEROFS_ALLOWED_CLIENTS", flag: "allow", help: "comma-separated client CIDRs allowed to connect (NFS, MOUNT, PORTMAP), listed by MOUNT EXPORT; * (or 0.0.0.0/0,::/0) exports to everyone", default: "loopback; required when --listen is not loopback" },
  insecure: { env: "ZEROFS_INSECURE", flag: "insecure", boolean: true, help: "accept MOUNT and NFS calls from source ports >= 1024 (exports(5) insecure: clients that cannot bind a reserved port, NAT) (true/false)", default: "false" },
  squash: { env: "ZEROFS_SQUASH", flag: "squash", help: "root: uid 0 and gid 0 (also supplementary) become the anonymous ids; all: everyone does; none: ids are taken as sent", default: "root" },
  anonUid: { env: "ZEROFS_ANON_UID", flag: "anon-uid", help: "uid squashed callers become", default: "65534" },
  anonGid: { env: "ZEROFS_ANON_GID", flag: "anon-gid", help: "gid squashed callers become", default: "65534" },
  readOnly: { env: "ZEROFS_READ_ONLY", flag: "read-only", boolean: true, help: "export read-only (true/false)", default: "false" },
  noCreate: { env: "ZEROFS_NO_CREATE", flag: "no-create", boolean: true, help: "refuse to initialize a new volume: the location must already hold one (exit 1 otherwise) (true/false)", default: "false" },
  memoryCacheMb: {
    env: "ZEROFS_MEMORY_CACHE_MB",
    flag: "memory-cache-mb",
    help: "MiB of memory for the caches of decrypted data: a quarter for SST blocks (metadata), the rest for file data (extents); at least 16",
    default: "25% of the container's memory limit (cgroup), else 25% of the machine's memory, at most 4096",
  },
  cryptoThreads: {
    env: "ZEROFS_CRYPTO_THREADS",
    flag: "crypto-threads",
    help: "worker threads that encrypt and decrypt file data off the event loop; 0: on the event loop",
    default: "the usable CPUs (os.availableParallelism, lowered by a cgroup CPU quota) minus one, 0 to 4",
  },
  adminTokenFile: {
    env: "ZEROFS_ADMIN_TOKEN_FILE",
    flag: "admin-token-file",
    help: "file holding the bearer token of the admin API (claim directories with quotas, under /v1/ on the HTTP endpoint; re-read when it changes); unset: the API is off",
  },
  claimsDir: { env: "ZEROFS_CLAIMS_DIR", flag: "claims-dir", help: "absolute path below the export root where the admin API keeps claim directories (created if missing)", default: "/" },
  capacity: { env: "ZEROFS_CAPACITY_BYTES", flag: "capacity", help: "optional capacity limit in bytes; writes past it get ENOSPC" },
  maxConnections: { env: "ZEROFS_MAX_CONNECTIONS", flag: "max-connections", help: "NFS connections at most; when full the longest-idle one is closed for a new one", default: "220" },
  maxBufferedBytes: { env: "ZEROFS_MAX_BUFFERED_BYTES", flag: "max-buffered-bytes", help: "server-wide budget of buffered request + reply bytes; over it connections stop being read", default: "268435456" },
  idleTimeout: { env: "ZEROFS_IDLE_TIMEOUT_SECONDS", flag: "idle-timeout", help: "seconds before an NFS connection with nothing in progress is closed", default: "360" },
  recordTimeout: { env: "ZEROFS_RECORD_TIMEOUT_SECONDS", flag: "record-timeout", help: "seconds one RPC record may take to arrive before its connection is closed", default: "30" },
  stallTimeout: { env: "ZEROFS_STALL_TIMEOUT_SECONDS", flag: "stall-timeout", help: "seconds queued replies may go unread before their connection is closed", default: "60" },
  storeTimeout: {
    env: "ZEROFS_STORE_TIMEOUT_SECONDS",
    flag: "store-timeout-seconds",
    help: "deadline of one object store request (plus 1 s per MiB it moves); an NFS request stuck on the store gets NFS3ERR_JUKEBOX (retry later) after it, a durable write after twice it",
    default: "10",
  },
  shutdownTimeout: {
    env: "ZEROFS_SHUTDOWN_TIMEOUT_SECONDS",
    flag: "shutdown-timeout-seconds",
    help: "on SIGTERM/SIGINT, how long to finish requests and flush before exiting 1 with what was not flushed",
    default: "20",
  },
  logLevel: { env: "ZEROFS_LOG_LEVEL", flag: "log-level", help: "trace | debug | info | warn | error | fatal", default: "info" },
  logFormat: {
    env: "ZEROFS_LOG_FORMAT",
    flag: "log-format",
    help: "json: one JSON object per line (what Kubernetes log collectors want); pretty: human-readable lines; auto: pretty when stdout is a terminal, else json",
    default: "auto",
  },
} as const satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;

export interface S3Config {
  endpoint: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  allowHttp: boolean;
}

export interface ConnectionLimitsConfig {
  maxConnections: number;
  maxBufferedBytes: number;
  idleTimeoutMs: number;
  recordTimeoutMs: number;
  stallTimeoutMs: number;
}

export interface Config {
  url: string;
  cacheDir: string;
  cacheBytes: number;
  password: string;
  newPassword: string | undefined;
  s3: S3Config;
  listen: string;
  port: number;
  httpListen: string;
  httpPort: number;
  /** Client CIDRs of the HTTP endpoint. */
  httpAllowedClients: string[];
  /** Client CIDRs of NFS, MOUNT and PORTMAP. */
  allowedClients: string[];
  /** Accept MOUNT/NFS calls from unreserved source ports (exports(5) `insecure`). */
  insecure: boolean;
  squash: "none" | "root" | "all";
  anonUid: number;
  anonGid: number;
  readOnly: boolean;
  /** Refuse to initialize a volume that does not exist yet. */
  noCreate: boolean;
  capacityBytes: number | undefined;
  /** Token file of the admin API; undefined: the API is off. */
  adminTokenFile: string | undefined;
  /** Where the admin API keeps claim directories (absolute, below the export root). */
  claimsDir: string;
  /** ZEROFS_MEMORY_CACHE_MB in bytes; undefined: derived from the memory limit at start (config/memory.ts). */
  memoryCacheBytes: number | undefined;
  /** ZEROFS_CRYPTO_THREADS; undefined: defaultCryptoThreads() at start. */
  cryptoThreads: number | undefined;
  /** Connection and buffer limits of the NFS server (see the settings above). */
  limits: ConnectionLimitsConfig;
  /** Deadline of one object store request (ms). */
  storeTimeoutMs: number;
  /** Deadline of a graceful stop (ms). */
  shutdownTimeoutMs: number;
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal";
  /** auto: pretty when stdout is a TTY (main.ts decides). */
  logFormat: "json" | "pretty" | "auto";
  /** Doubtful but accepted settings, to log once the logger exists. */
  warnings: ConfigWarning[];
}

export interface ConfigWarning {
  message: string;
  details: Record<string, unknown>;
}

/** A bad configuration value; `problems` name each variable/flag and what was expected. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export class HelpRequested extends Error {
  constructor() {
    super("help requested");
    this.name = "HelpRequested";
  }
}

export function helpText(): string {
  const lines = [
    "Usage: zerofs [options] <path | s3://bucket/prefix>",
    "",
    "Serves a ZeroFS volume over NFSv3. A local directory path is the embedded default; an",
    "s3:// URL keeps the volume in a bucket. Mount with:",
    "  mount -t nfs -o vers=3,nolock,tcp,port=2049,mountport=2049 127.0.0.1:/ /mnt",
    "",
    "Settings (environment variable / flag; a flag overrides its variable):",
  ];
  for (const s of Object.values(SETTINGS) as Setting[]) {
    const names = [s.env, s.flag ? `--${s.flag}${s.boolean ? "" : " <value>"}` : undefined].filter(Boolean).join(" / ");
    lines.push(`  ${names}`);
    lines.push(`      ${s.help}${s.default ? ` (default: ${s.default})` : ""}`);
  }
  lines.push("  --help", "      this text");
  return lines.join("\n");
}

const BOOL = z.enum(["true", "false", "1", "0", "yes", "no"], { error: "expected true or false" }).transform((v) => v === "true" || v === "1" || v === "yes");
const PORT = z.coerce.number({ error: "expected a port number" }).int("expected a whole port number").min(0, "expected a port in 0..65535").max(65535, "expected a port in 0..65535");
const ID = z.coerce.number({ error: "expected a numeric id" }).int("expected a whole number").min(0, "expected an id in 0..4294967295").max(0xffffffff, "expected an id in 0..4294967295");
const COUNT = z.coerce.number({ error: "expected a number" }).int("expected a whole number").min(1, "expected at least 1").max(1_000_000, "expected at most 1000000");
const BYTES = z.coerce.number({ error: "expected a number of bytes" }).int("expected whole bytes").min(1024 * 1024, "expected at least 1048576 (1 MiB)").max(Number.MAX_SAFE_INTEGER, "expected fewer bytes");
const SECONDS = z.coerce.number({ error: "expected a number of seconds" }).positive("expected more than 0 seconds").max(86_400 * 365, "expected at most a year");
const DEADLINE_SECONDS = z.coerce.number({ error: "expected a number of seconds" }).min(0.05, "expected at least 0.05 seconds").max(3600, "expected at most 3600 seconds");
const HOST = z.string().refine((v) => isIP(v) !== 0 || /^[a-zA-Z0-9.-]+$/.test(v), "expected an IP address or host name");

function cidrProblem(c: string): string | undefined {
  const [addr, bits, extra] = c.split("/");
  if (extra !== undefined || !addr) return `"${c}" is not a CIDR`;
  const family = isIP(addr);
  if (family === 0) return `"${c}": "${addr}" is not an IP address`;
  if (bits === undefined) return undefined;
  const n = Number(bits);
  const max = family === 4 ? 32 : 128;
  if (!/^\d+$/.test(bits) || n > max) return `"${c}": prefix length must be 0..${max}`;
  return undefined;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

const LOOPBACK_CIDRS = ["127.0.0.0/8", "::1/128"];
/** What `*` stands for in a client list: every IPv4 and IPv6 address. */
const EVERYONE_CIDRS = ["0.0.0.0/0", "::/0"];

/**
 * Reads the configuration from `argv` (without node and script) and `env`.
 * Throws HelpRequested for --help and ConfigError listing every problem found.
 */
export function readConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const s of Object.values(SETTINGS) as Setting[]) if (s.flag) options[s.flag] = { type: s.boolean ? "boolean" : "string" };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError([(err as Error).message]);
  }
  if (parsed.values.help) throw new HelpRequested();

  const problems: string[] = [];
  /** The raw value of a setting and the name to blame for it. */
  const raw = (key: Key): { value: string | undefined; name: string } => {
    const s: Setting = SETTINGS[key];
    const flagValue = s.flag ? parsed.values[s.flag] : undefined;
    if (flagValue !== undefined) return { value: typeof flagValue === "boolean" ? String(flagValue) : String(flagValue), name: `--${s.flag}` };
    const envValue = s.env ? env[s.env] : undefined;
    if (envValue !== undefined && envValue !== "") return { value: envValue, name: s.env! };
    return { value: undefined, name: s.env ?? `--${s.flag}` };
  };
  function get<T>(key: Key, schema: z.ZodType<T>, fallback?: string): T | undefined {
    const { value, name } = raw(key);
    const v = value ?? fallback;
    if (v === undefined) return undefined;
    const r = schema.safeParse(v);
    if (r.success) return r.data;
    problems.push(`${name}=${JSON.stringify(key.toLowerCase().includes("password") || key === "secretAccessKey" ? "<hidden>" : v)}: ${r.error.issues.map((i) => i.message).join("; ")}`);
    return undefined;
  }
  function required<T>(key: Key, schema: z.ZodType<T>): T | undefined {
    const v = get(key, schema);
    if (v === undefined && raw(key).value === undefined) {
      const s: Setting = SETTINGS[key];
      problems.push(`${[s.env, s.flag ? `--${s.flag}` : undefined].filter(Boolean).join(" or ")} is required: ${s.help}`);
    }
    return v;
  }
  const readSecret = (valueKey: Key, fileKey: Key): string | undefined => {
    const direct = raw(valueKey).value;
    const file = raw(fileKey);
    if (direct !== undefined && file.value !== undefined) {
      problems.push(`${raw(valueKey).name} and ${file.name} are both set: give the password one way`);
      return undefined;
    }
    if (file.value === undefined) return direct;
    try {
      // Secret files usually end with a newline the user did not mean as part of the password.
      const text = readFileSync(file.value, "utf8").replace(/\r?\n$/, "");
      checkSecretFileMode(file.name, file.value);
      return text;
    } catch (err) {
      problems.push(`${file.name}=${JSON.stringify(file.value)}: cannot read the password file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return undefined;
    }
  };

  const strictPasswordFile = get("strictPasswordFile", BOOL, "false") ?? false;
  const warnings: ConfigWarning[] = [];
  /**
   * The password unwraps the data key, and `keys/dek` is an offline guessing target for anyone
   * who can also read the volume: a password file others can read deserves at least a warning.
   */
  function checkSecretFileMode(name: string, path: string): void {
    const st = statSync(path);
    const mode = st.mode & 0o777;
    // Group read is fine when the group is this process's own: a Kubernetes Secret volume with
    // defaultMode 0400 in a pod with an fsGroup comes out 0440 owned by that group (the kubelet
    // adds group read), which is the server's own supplementary group.
    const ownGroup = process.getgid?.() === st.gid || (process.getgroups?.() ?? []).includes(st.gid);
    if ((mode & 0o004) === 0 && ((mode & 0o040) === 0 || ownGroup)) return;
    const octal = `0${mode.toString(8).padStart(3, "0")}`;
    const fix = "chmod 0400/0600 (Kubernetes Secret volumes: defaultMode: 0400)";
    if (strictPasswordFile) {
      problems.push(`${name}=${JSON.stringify(path)} is readable by group or others (mode ${octal}) and ZEROFS_STRICT_PASSWORD_FILE is set: ${fix}`);
    } else {
      warnings.push({
        message: `password file is readable by group or others: ${fix}, or set ZEROFS_STRICT_PASSWORD_FILE=true to refuse such files`,
        details: { setting: name, path, mode: octal },
      });
    }
  }

  // The volume location.
  let url: string | undefined;
  const positionals = parsed.positionals;
  if (positionals.length > 1) problems.push(`expected one volume location, got ${positionals.length}: ${positionals.join(" ")}`);
  const bucket = get("bucket", z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "expected an S3 bucket name"));
  if (positionals[0] !== undefined) url = positionals[0];
  else if (bucket !== undefined) url = `s3://${bucket}/`;
  else problems.push("the volume location is required: a directory path or s3://bucket/prefix (or AWS_S3_BUCKET)");
  if (url !== undefined && url.startsWith("s3://") && !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(url)) {
    problems.push(`volume location ${JSON.stringify(url)}: expected s3://bucket/prefix with a valid bucket name`);
  }

  const cacheDir = required("cacheDir", z.string().min(1, "expected a directory path"));
  const cacheSizeGb = required("cacheSizeGb", z.coerce.number({ error: "expected a number of GiB" }).positive("expected a size > 0 GiB").max(1 << 20, "expected at most 1,048,576 GiB"));
  const password = readSecret("password", "passwordFile");
  if (password === undefined && !problems.some((p) => p.includes("password"))) {
    problems.push("ZEROFS_ENCRYPTION_PASSWORD or ZEROFS_ENCRYPTION_PASSWORD_FILE (--password-file) is required: the volume's encryption password");
  } else if (password === "") problems.push("the encryption password is empty");
  const newPassword = readSecret("newPassword", "newPasswordFile");
  if (newPassword === "") problems.push("the new password is empty");

  const endpoint = get("endpoint", z.url({ protocol: /^https?$/, error: "expected an http(s):// URL" }));
  const allowHttp = get("allowHttp", BOOL, "false") ?? false;
  if (url?.startsWith("s3://") && endpoint?.startsWith("http://") && !allowHttp) {
    problems.push(`AWS_ENDPOINT_URL=${JSON.stringify(endpoint)} is plain http: set AWS_ALLOW_HTTP=true to allow it`);
  }
  const listen = get("listen", HOST, "127.0.0.1") ?? "127.0.0.1";
  const httpListen = get("httpListen", HOST, "127.0.0.1") ?? "127.0.0.1";
  const httpPort = get("httpPort", PORT, "9090") ?? 9090;
  /**
   * A client list: given CIDRs (`*` = everyone), else loopback. Listening on a non-loopback
   * address without a list would export to the world by accident (exports(5): nothing is
   * exported to everyone unless asked for), so that is a configuration error.
   */
  const clientList = (key: "allowedClients" | "httpAllowedClients", address: string, addressKey: "listen" | "httpListen"): string[] => {
    const { value, name } = raw(key);
    if (value === undefined) {
      if (!isLoopback(address)) {
        const s: Setting = SETTINGS[key];
        const a = raw(addressKey);
        problems.push(
          `${a.name}=${JSON.stringify(address)} is not a loopback address, so ${s.env} (--${s.flag}) is required: ` +
            `the client CIDRs to admit (e.g. 10.0.0.0/8), or "*" (the same as 0.0.0.0/0,::/0) to admit everyone`,
        );
      }
      return [...LOOPBACK_CIDRS];
    }
    const list = value.split(",").map((c) => c.trim()).filter(Boolean);
    if (list.length === 0) problems.push(`${name} is empty: expected at least one CIDR, or "*" for everyone`);
    const out: string[] = [];
    for (const c of list) {
      if (c === "*") {
        out.push(...EVERYONE_CIDRS);
        continue;
      }
      const p = cidrProblem(c);
      if (p) problems.push(`${name}: ${p}`);
      out.push(c);
    }
    return [...new Set(out)];
  };
  const allowedClients = clientList("allowedClients", listen, "listen");
  // A disabled endpoint (port 0) listens nowhere, so its address needs no client list.
  const httpAllowedClients = httpPort === 0 ? [...LOOPBACK_CIDRS] : clientList("httpAllowedClients", httpListen, "httpListen");
  const adminTokenFile = get("adminTokenFile", z.string().min(1, "expected a file path"));
  if (adminTokenFile !== undefined) {
    try {
      if (readFileSync(adminTokenFile, "utf8").trim() === "") problems.push(`${raw("adminTokenFile").name}=${JSON.stringify(adminTokenFile)}: the token file is empty`);
    } catch (err) {
      problems.push(`${raw("adminTokenFile").name}=${JSON.stringify(adminTokenFile)}: cannot read the token file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const claimsDir = get(
    "claimsDir",
    z.string().refine((p) => p.startsWith("/") && !p.split("/").some((c) => c === "." || c === ".."), "expected an absolute path without . or .. components"),
    "/",
  );
  const capacity = get("capacity", z.coerce.number({ error: "expected a number of bytes" }).int("expected whole bytes").positive("expected a capacity > 0"));

  const memoryCacheMb = get("memoryCacheMb", z.coerce.number({ error: "expected a number of MiB" }).int("expected whole MiB").min(16, "expected at least 16 MiB").max(1 << 24, "expected at most 16777216 MiB (16 TiB)"));

  const config = {
    url: url ?? "",
    cacheDir: cacheDir ?? "",
    cacheBytes: Math.floor((cacheSizeGb ?? 0) * 2 ** 30),
    password: password ?? "",
    newPassword,
    s3: {
      endpoint,
      region: get("region", z.string().min(1, "expected a region name"), "us-east-1") ?? "us-east-1",
      accessKeyId: raw("accessKeyId").value,
      secretAccessKey: raw("secretAccessKey").value,
      allowHttp,
    },
    listen,
    port: get("port", PORT, "2049") ?? 2049,
    httpListen,
    httpPort,
    httpAllowedClients,
    allowedClients,
    insecure: get("insecure", BOOL, "false") ?? false,
    squash: get("squash", z.enum(["none", "root", "all"], { error: "expected none, root or all" }), "root") ?? "root",
    anonUid: get("anonUid", ID, "65534") ?? 65534,
    anonGid: get("anonGid", ID, "65534") ?? 65534,
    readOnly: get("readOnly", BOOL, "false") ?? false,
    noCreate: get("noCreate", BOOL, "false") ?? false,
    capacityBytes: capacity,
    adminTokenFile,
    claimsDir: claimsDir ?? "/",
    memoryCacheBytes: memoryCacheMb === undefined ? undefined : memoryCacheMb * 1024 * 1024,
    cryptoThreads: get("cryptoThreads", z.coerce.number({ error: "expected a number of threads" }).int("expected a whole number").min(0, "expected 0 or more").max(64, "expected at most 64")),
    limits: {
      maxConnections: get("maxConnections", COUNT, "220") ?? 220,
      maxBufferedBytes: get("maxBufferedBytes", BYTES, "268435456") ?? 268435456,
      idleTimeoutMs: Math.round((get("idleTimeout", SECONDS, "360") ?? 360) * 1000),
      recordTimeoutMs: Math.round((get("recordTimeout", SECONDS, "30") ?? 30) * 1000),
      stallTimeoutMs: Math.round((get("stallTimeout", SECONDS, "60") ?? 60) * 1000),
    },
    storeTimeoutMs: Math.round((get("storeTimeout", DEADLINE_SECONDS, "10") ?? 10) * 1000),
    shutdownTimeoutMs: Math.round((get("shutdownTimeout", DEADLINE_SECONDS, "20") ?? 20) * 1000),
    logLevel: get("logLevel", z.enum(["trace", "debug", "info", "warn", "error", "fatal"], { error: "expected trace, debug, info, warn, error or fatal" }), "info") ?? "info",
    logFormat: get("logFormat", z.enum(["json", "pretty", "auto"], { error: "expected json, pretty or auto" }), "auto") ?? "auto",
    warnings,
  } satisfies Config;
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
