/**
 * The admin HTTP API under /v1/ (docs/admin-api.md): claim directories with quotas, for the
 * operator's provisioner. Only a translation between HTTP/JSON and the fs layer's
 * ClaimDirectories; every answer is JSON. Off unless a token file is configured; every request
 * must carry `Authorization: Bearer <token>` (compared in constant time; the file is re-read
 * when it changes, so a rotated Kubernetes Secret takes effect without a restart).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { z } from "zod";
import { isClaimName, isFsError, type ClaimDirectories, type ClaimInfo } from "../fs/index.ts";

/** Largest accepted request body. */
const MAX_BODY = 64 * 1024;

const LIMIT = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable();
const PutBody = z.object({
  quota: z.object({ bytes: LIMIT, inodes: LIMIT }),
  uid: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  gid: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  mode: z.number().int().min(0).max(0o7777).optional(),
});

/** The bearer token in a file, re-read whenever the file changes (and after a failed check). */
export class TokenFile {
  private readonly path: string;
  private readonly log: Logger;
  private digest: Buffer | undefined;
  private stamp = "";

  constructor(path: string, log: Logger) {
    this.path = path;
    this.log = log;
  }

  private reload(force: boolean): void {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (!force && stamp === this.stamp) return;
      const token = readFileSync(this.path, "utf8").trim();
      this.digest = token === "" ? undefined : sha256(token);
      if (token === "") this.log.error({ path: this.path }, "admin token file is empty: every admin request is refused");
    } catch (err) {
      this.digest = undefined;
      stamp = "";
      this.log.error({ path: this.path, err: (err as Error).message }, "cannot read the admin token file: every admin request is refused");
    }
    this.stamp = stamp;
  }

  /** True when `presented` is the token (constant time over equal-length digests). */
  check(presented: string): boolean {
    const p = sha256(presented);
    this.reload(false);
    if (this.digest && timingSafeEqual(p, this.digest)) return true;
    this.reload(true);
    return this.digest !== undefined && timingSafeEqual(p, this.digest);
  }
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

export interface AdminApiOptions {
  claims: ClaimDirectories;
  tokenFile: string;
  logger: Logger;
  /** Why changes are refused right now (store degraded, read-only export), or undefined. */
  unavailable: () => string | undefined;
}

export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => void;

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers }).end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    parts.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    throw new HttpError(400, "request body is not JSON");
  }
}

const view = (c: ClaimInfo): ClaimInfo => ({ name: c.name, path: c.path, projectId: c.projectId, quota: c.quota, usage: c.usage });

export function adminApi(opts: AdminApiOptions): AdminHandler {
  const token = new TokenFile(opts.tokenFile, opts.logger);
  const log = opts.logger;

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const auth = req.headers.authorization ?? "";
    const m = /^Bearer (.+)$/i.exec(auth);
    if (!m || !token.check(m[1]!.trim())) {
      log.warn({ peer: req.socket.remoteAddress, method: req.method, path: path.split("/").slice(0, 3).join("/") }, "admin API request without a valid token");
      send(res, 401, { error: "missing or wrong bearer token" }, { "www-authenticate": 'Bearer realm="zerofs-admin"' });
      return;
    }
    const parts = path.split("/").filter(Boolean); // ["v1", "directories", name?]
    if (parts[1] !== "directories" || parts.length > 3) throw new HttpError(404, `no such admin resource: ${path}`);
    let name: string | undefined;
    if (parts.length === 3) {
      try {
        name = decodeURIComponent(parts[2]!);
      } catch {
        throw new HttpError(400, "directory name is not valid percent-encoding");
      }
      if (!isClaimName(name)) throw new HttpError(400, `directory name ${JSON.stringify(name)} must be one path component of [A-Za-z0-9._-]{1,200}, not "." or ".."`);
    }
    const method = req.method ?? "GET";
    if (name === undefined) {
      if (method !== "GET") throw new HttpError(405, "only GET lists directories");
      send(res, 200, { directories: (await opts.claims.list()).map(view) });
      return;
    }
    if (method === "GET") {
      const c = await opts.claims.get(name);
      if (!c) throw new HttpError(404, `no directory ${name}`);
      send(res, 200, view(c));
      return;
    }
    if (method !== "PUT" && method !== "DELETE") throw new HttpError(405, `method ${method} not allowed (GET, PUT, DELETE)`);
    const why = opts.unavailable();
    if (why) throw new HttpError(503, why);
    if (method === "PUT") {
      const parsed = PutBody.safeParse(await readJson(req));
      if (!parsed.success) throw new HttpError(400, `bad body: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`);
      const b = parsed.data;
      const c = await opts.claims.put(name, {
        quota: b.quota,
        ...(b.uid !== undefined ? { uid: b.uid } : {}),
        ...(b.gid !== undefined ? { gid: b.gid } : {}),
        ...(b.mode !== undefined ? { mode: b.mode } : {}),
      });
      log.info({ directory: name, projectId: c.projectId, quota: c.quota }, "claim directory put");
      send(res, 200, view(c));
      return;
    }
    if (!(await opts.claims.delete(name))) throw new HttpError(404, `no directory ${name}`);
    log.info({ directory: name }, "claim directory detached; its tree is reclaimed in the background");
    send(res, 202, { name, deleted: true });
  };

  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    handle(req, res, path).catch((err: unknown) => {
      let status = 500;
      let message = "internal error";
      if (err instanceof HttpError) ({ status, message } = err);
      else if (isFsError(err, "EINVAL")) [status, message] = [400, err.message];
      else if (isFsError(err, "ENOTDIR") || isFsError(err, "ENOTEMPTY") || isFsError(err, "EEXIST")) [status, message] = [409, err.message];
      else if (isFsError(err, "EROFS") || isFsError(err, "JUKEBOX")) [status, message] = [503, err.message];
      else {
        const why = opts.unavailable();
        if (why) [status, message] = [503, why];
        log.error({ err, method: req.method }, "admin API request failed");
      }
      if (!res.headersSent) send(res, status, { error: message });
      else res.destroy();
    });
  };
}
