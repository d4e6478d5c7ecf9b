/**
 * Client of a ZeroFS server's admin API for claim directories (operator/README.md, "StorageClass
 * provisioner"; served by the server's HTTP endpoint under /v1/, enabled by
 * ZEROFS_ADMIN_TOKEN_FILE). The operator uses it in `shared` provisioning mode to create, size
 * and remove one directory per claim, and to read their usage.
 *
 * Every error names the server, the directory and what the server said. Responses are bounded
 * (a hostile or broken endpoint cannot make the operator buffer without limit) and every request
 * has a deadline.
 */
import http from "node:http";
import { z } from "zod";

/** One path component, as the server accepts it. */
export const DIRECTORY_NAME_RE = /^[A-Za-z0-9._-]{1,200}$/;

export interface Quota {
  bytes: number | null;
  inodes: number | null;
}

const nullableInt = z.number().int().nonnegative().nullable();
const directorySchema = z.object({
  name: z.string(),
  path: z.string(),
  projectId: z.number().int().optional(),
  quota: z.object({ bytes: nullableInt, inodes: nullableInt }),
  usage: z.object({ bytes: z.number().int().nonnegative(), inodes: z.number().int().nonnegative() }),
});
export type DirectoryInfo = z.infer<typeof directorySchema>;
/** GET /v1/directories: a bare array, or {"directories": [...]} (both accepted). */
const listSchema = z.union([z.array(directorySchema), z.object({ directories: z.array(directorySchema) }).transform((o) => o.directories)]);

export class AdminApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = "AdminApiError";
    this.status = status;
  }
}

export interface AdminClientOptions {
  /** Base URL, e.g. http://10.0.0.12:9090 */
  baseUrl: string;
  token: string;
  timeoutMs?: number;
  /** Largest response body accepted (default 4 MiB: a list of a few thousand directories). */
  maxResponseBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE = 4 << 20;

export class AdminClient {
  private readonly o: AdminClientOptions;

  constructor(o: AdminClientOptions) {
    this.o = o;
  }

  /** Creates the directory if missing and sets its limits (idempotent). */
  async putDirectory(name: string, quota: Quota, owner?: { uid?: number; gid?: number; mode?: number }): Promise<DirectoryInfo> {
    checkName(name);
    const r = await this.request("PUT", `/v1/directories/${name}`, { quota, ...owner }, `put directory ${name}`);
    return parse(directorySchema, r.body, `${this.o.baseUrl}: put directory ${name}`);
  }

  /** The directory's limits and usage, or undefined when it does not exist. */
  async getDirectory(name: string): Promise<DirectoryInfo | undefined> {
    checkName(name);
    const r = await this.request("GET", `/v1/directories/${name}`, undefined, `get directory ${name}`, true);
    if (r.status === 404) return undefined;
    return parse(directorySchema, r.body, `${this.o.baseUrl}: get directory ${name}`);
  }

  async listDirectories(): Promise<DirectoryInfo[]> {
    const r = await this.request("GET", "/v1/directories", undefined, "list directories");
    return parse(listSchema, r.body, `${this.o.baseUrl}: list directories`);
  }

  /** Detaches and reclaims the directory; false when it was already gone (idempotent). */
  async deleteDirectory(name: string): Promise<boolean> {
    checkName(name);
    const r = await this.request("DELETE", `/v1/directories/${name}`, undefined, `delete directory ${name}`, true);
    return r.status !== 404;
  }

  private request(method: string, path: string, body: unknown, what: string, allowNotFound = false): Promise<{ status: number; body: unknown }> {
    const url = new URL(path, this.o.baseUrl);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.token}`, accept: "application/json" };
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    const label = `${this.o.baseUrl}: ${what}`;
    const max = this.o.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, signal: AbortSignal.timeout(this.o.timeoutMs ?? DEFAULT_TIMEOUT_MS) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > max) {
            res.destroy(new Error(`response larger than ${max} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.once("error", (err) => reject(new AdminApiError(`${label}: ${err.message}`, 0)));
        res.once("end", () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          if (status === 404 && allowNotFound) return resolve({ status, body: json });
          if (status < 200 || status >= 300) {
            const msg = json && typeof json === "object" && "error" in json ? String((json).error) : text.slice(0, 300);
            return reject(new AdminApiError(`${label}: HTTP ${status}${msg ? `: ${msg}` : ""}`, status));
          }
          if (json === undefined && text !== "") return reject(new AdminApiError(`${label}: response is not JSON: ${text.slice(0, 200)}`, status));
          resolve({ status, body: json });
        });
      });
      req.once("error", (err) => reject(new AdminApiError(`${label}: ${err.message}`, 0)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
}

function checkName(name: string): void {
  if (!DIRECTORY_NAME_RE.test(name) || name === "." || name === "..") throw new AdminApiError(`invalid directory name ${JSON.stringify(name)}: one path component of [A-Za-z0-9._-], 1-200 chars`, 400);
}

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new AdminApiError(`${what}: unexpected response: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, 0);
  return r.data;
}
