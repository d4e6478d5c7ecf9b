/** Helpers for tests of the admin API (/v1/ on the HTTP endpoint) of a real `zerofs`. */
import { randomBytes } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ZerofsProcess } from "../../../test/support/zerofs-process.ts";

export interface ClaimJson {
  name: string;
  path: string;
  projectId: number;
  quota: { bytes: number | null; inodes: number | null };
  usage: { bytes: number; inodes: number };
}

/** Any answer of the API: a claim, a list, a deletion or an error (fields as they come). */
export type AdminBody = Partial<ClaimJson> & { error?: string; directories?: ClaimJson[]; deleted?: boolean };

export interface AdminReply {
  status: number;
  body: AdminBody;
  contentType: string | null;
}

/** A fresh token in a 0600 file of its own directory. */
export async function tokenFile(): Promise<{ path: string; token: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "zerofs-admin-"));
  const token = randomBytes(24).toString("hex");
  const path = join(dir, "token");
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return { path, token, dir };
}

export async function admin(s: ZerofsProcess, method: string, path: string, token: string | undefined, body?: unknown): Promise<AdminReply> {
  const res = await fetch(`http://127.0.0.1:${s.httpPort}${path}`, {
    method,
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: AdminBody;
  try {
    parsed = JSON.parse(text) as AdminBody;
  } catch {
    parsed = { error: `not JSON: ${text}` };
  }
  return { status: res.status, body: parsed, contentType: res.headers.get("content-type") };
}

/** PUT a claim directory and insist on 200. */
export async function putClaim(s: ZerofsProcess, token: string, name: string, quota: { bytes: number | null; inodes: number | null }): Promise<ClaimJson> {
  const r = await admin(s, "PUT", `/v1/directories/${name}`, token, { quota });
  if (r.status !== 200) throw new Error(`PUT ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as ClaimJson;
}
