/**
 * Claim directories: directories directly below one "claims parent" directory, each the root of
 * a quota project (fs/quota.ts). This is the fs-side facade of the admin API (admin/): create a
 * directory with limits, change them, report usage, and delete a whole tree at once (detached
 * in one batch, reclaimed in the background by fs/tree-reclaimer.ts).
 */
import { fsError, isFsError } from "./errors.ts";
import { isEmptyDir, lookupEntry, removeEntry, toName } from "./directory.ts";
import { QUOTA_LAYOUT_VERSION, SUPERBLOCK_KEY } from "./keys.ts";
import { KeyedMutex } from "./locks.ts";
import type { ProjectRecord, QuotaLimits, Usage } from "./quota.ts";
import { decodeSuperblock, encodeSuperblock } from "./records.ts";
import { FileType, ROOT, type Attrs } from "./types.ts";
import type { FsInternals, ZeroFs } from "./zerofs.ts";

/** One path component: what a Kubernetes-derived name can be, and never "." or "..". */
export const CLAIM_NAME = /^[A-Za-z0-9._-]{1,200}$/;

export function isClaimName(name: string): boolean {
  return CLAIM_NAME.test(name) && name !== "." && name !== "..";
}

export interface ClaimInfo {
  name: string;
  /** Path from the export root. */
  path: string;
  /** 0: the directory exists but has no quota project. */
  projectId: number;
  quota: QuotaLimits;
  usage: Usage;
}

export interface ClaimSpec {
  quota: QuotaLimits;
  /** Owner and mode of a directory this call creates (ignored when it exists). */
  uid?: number;
  gid?: number;
  mode?: number;
}

export class ClaimDirectories {
  readonly claimsDir: string;
  private readonly fs: ZeroFs;
  private readonly int: FsInternals;
  /** Admin calls change one claim at a time (they are rare; this keeps PUT/DELETE races out). */
  private readonly serial = new KeyedMutex();

  /** `claimsDir`: absolute path below the export root holding the claim directories. */
  constructor(fs: ZeroFs, claimsDir = "/") {
    if (!claimsDir.startsWith("/")) throw new Error(`claims directory ${JSON.stringify(claimsDir)} must be an absolute path`);
    this.fs = fs;
    this.int = fs.internals();
    this.claimsDir = "/" + claimsDir.split("/").filter(Boolean).join("/");
  }

  private components(): string[] {
    return this.claimsDir.split("/").filter(Boolean);
  }

  pathOf(name: string): string {
    return this.claimsDir === "/" ? `/${name}` : `${this.claimsDir}/${name}`;
  }

  /** The claims parent's inode; created (as root, 0755) when `create` and missing. */
  private async parent(create: boolean): Promise<number | undefined> {
    let ino = this.fs.rootIno;
    for (const part of this.components()) {
      try {
        const a = (await this.fs.lookup(ROOT, ino, part)).attrs;
        if (a.type !== FileType.DIR) throw fsError("ENOTDIR", `claims directory ${this.claimsDir}: ${part} is not a directory`);
        ino = a.ino;
      } catch (err) {
        if (!isFsError(err, "ENOENT") || !create) {
          if (isFsError(err, "ENOENT")) return undefined;
          throw err;
        }
        ino = (await this.fs.mkdir(ROOT, ino, part, { mode: 0o755 })).attrs.ino;
      }
    }
    return ino;
  }

  private async child(parent: number, name: string): Promise<Attrs | undefined> {
    try {
      return (await this.fs.lookup(ROOT, parent, name)).attrs;
    } catch (err) {
      if (isFsError(err, "ENOENT")) return undefined;
      throw err;
    }
  }

  private info(name: string, attrs: Attrs, project: number): ClaimInfo {
    const r = this.int.quotas.record(project);
    return {
      name,
      path: this.pathOf(name),
      projectId: r ? project : 0,
      quota: r ? { ...r.limits } : { bytes: null, inodes: null },
      usage: r ? this.int.quotas.usage(project) : { bytes: 0, inodes: 0 },
    };
  }

  private async projectOf(ino: number): Promise<number> {
    return (await this.int.inodes.require(ino, "claim directory")).project ?? 0;
  }

  /**
   * Creates the directory if missing, makes it a quota project if it is none (it must be empty
   * then: existing files would escape the accounting), and sets its limits. Idempotent.
   * ENOTDIR when the name exists and is no directory; ENOTEMPTY for a non-empty directory
   * without a project.
   */
  async put(name: string, spec: ClaimSpec): Promise<ClaimInfo> {
    if (!isClaimName(name)) throw fsError("EINVAL", `claim name ${JSON.stringify(name)} is not one path component of [A-Za-z0-9._-]`);
    return this.exclusive(async () => {
      const parent = (await this.parent(true))!;
      let attrs = await this.child(parent, name);
      if (!attrs) {
        attrs = (await this.fs.mkdir(ROOT, parent, name, { mode: spec.mode ?? 0o777, uid: spec.uid ?? 0, gid: spec.gid ?? 0 })).attrs;
      }
      if (attrs.type !== FileType.DIR) throw fsError("ENOTDIR", `claim ${name}: ${this.pathOf(name)} exists and is not a directory`);
      let project = await this.projectOf(attrs.ino);
      const existing = project ? this.int.quotas.record(project) : undefined;
      if (!existing) project = await this.assignProject(attrs.ino, spec.quota, name);
      else if (existing.limits.bytes !== spec.quota.bytes || existing.limits.inodes !== spec.quota.inodes) {
        const next: ProjectRecord = { ...existing, limits: { ...spec.quota } };
        await this.int.mutate(`quota change of claim ${name}`, [attrs.ino], async (tx) => {
          this.int.quotas.putRecord(tx.batch, next);
        });
        this.int.quotas.register(next);
      }
      return this.info(name, attrs, project);
    });
  }

  private async assignProject(dirIno: number, limits: QuotaLimits, name: string): Promise<number> {
    const what = `quota project for claim ${name}`;
    const id = this.int.quotas.allocateId();
    const rec: ProjectRecord = { id, dirIno, limits: { ...limits }, deleting: false };
    // Known before the batch so that its accounting (the directory moves into the project) finds it.
    this.int.quotas.register(rec);
    try {
      await this.int.mutate(what, [dirIno], async (tx) => {
        const dir = await this.int.inodes.require(dirIno, what);
        if (dir.project) throw fsError("EIO", `${what}: directory ${dirIno} got project ${dir.project} meanwhile`);
        if (!(await isEmptyDir(this.int.db, dirIno))) throw fsError("ENOTEMPTY", `${what}: ${this.pathOf(name)} is not empty and has no quota project; only an empty directory can become one`);
        this.int.quotas.putRecord(tx.batch, rec);
        tx.put({ ...dir, project: id });
        // From now on inodes carry project ids: servers that do not know them must refuse the volume.
        const sb = decodeSuperblock((await this.int.db.get(SUPERBLOCK_KEY))!);
        if (sb.layoutVersion < QUOTA_LAYOUT_VERSION) tx.batch.put(SUPERBLOCK_KEY, encodeSuperblock({ ...sb, layoutVersion: QUOTA_LAYOUT_VERSION }));
      });
    } catch (err) {
      this.int.quotas.unregister(id);
      throw err;
    }
    return id;
  }

  async get(name: string): Promise<ClaimInfo | undefined> {
    if (!isClaimName(name)) throw fsError("EINVAL", `claim name ${JSON.stringify(name)} is not one path component of [A-Za-z0-9._-]`);
    const parent = await this.parent(false);
    if (parent === undefined) return undefined;
    const attrs = await this.child(parent, name);
    if (!attrs) return undefined;
    if (attrs.type !== FileType.DIR) throw fsError("ENOTDIR", `claim ${name}: ${this.pathOf(name)} is not a directory`);
    return this.info(name, attrs, await this.projectOf(attrs.ino));
  }

  /** Claim directories (directories with a quota project) below the claims parent, by name. */
  async list(): Promise<ClaimInfo[]> {
    // Scraped with every /metrics: no listing of the claims parent while there are no claims.
    if (this.int.quotas.empty) return [];
    const parent = await this.parent(false);
    if (parent === undefined) return [];
    const out: ClaimInfo[] = [];
    let cookie = 0;
    for (;;) {
      const page = await this.fs.readdir(ROOT, parent, cookie, undefined, { maxBytes: 256 * 1024, plus: true });
      for (const e of page.entries) {
        cookie = e.cookie;
        const name = e.name.toString("utf8");
        if (!e.attrs || e.attrs.type !== FileType.DIR || !isClaimName(name)) continue;
        const project = await this.projectOf(e.ino).catch(() => 0);
        if (project && this.int.quotas.record(project)) out.push(this.info(name, e.attrs, project));
      }
      if (page.eof) break;
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Detaches the directory from the namespace in one batch (its handle becomes ESTALE) and has
   * its tree reclaimed in the background. False when there is no such entry.
   */
  async delete(name: string): Promise<boolean> {
    if (!isClaimName(name)) throw fsError("EINVAL", `claim name ${JSON.stringify(name)} is not one path component of [A-Za-z0-9._-]`);
    return this.exclusive(async () => {
      const parent = await this.parent(false);
      if (parent === undefined) return false;
      const attrs = await this.child(parent, name);
      if (!attrs) return false;
      if (attrs.type !== FileType.DIR) throw fsError("ENOTDIR", `claim ${name}: ${this.pathOf(name)} is not a directory`);
      const what = `deletion of claim ${name}`;
      const n = toName(name);
      const known = this.int.quotas.record(await this.projectOf(attrs.ino));
      // A directory without a project gets one only to drive its reclamation.
      const rec: ProjectRecord = known ? { ...known, deleting: true } : { id: this.int.quotas.allocateId(), dirIno: attrs.ino, limits: { bytes: null, inodes: null }, deleting: true };
      const detached = await this.int.mutate(what, [parent, attrs.ino], async (tx) => {
        const entry = await lookupEntry(this.int.db, parent, n);
        if (!entry || entry.ino !== attrs.ino) return false;
        const dir = await this.int.inodes.require(parent, what);
        const child = await this.int.inodes.require(attrs.ino, what);
        const now = this.int.clock.now();
        removeEntry(tx.batch, parent, n, entry);
        tx.put({ ...dir, nlink: dir.nlink - 1, mtime: now, ctime: now });
        this.int.dropLink(tx, child, now);
        this.int.quotas.putRecord(tx.batch, rec);
        return true;
      });
      if (!detached) return false;
      this.int.quotas.register(rec);
      this.int.treeReclaimer()?.kick();
      return true;
    });
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.serial.acquire([0]);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
