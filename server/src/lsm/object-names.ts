/**
 * Where the engine's objects live under the store root. Folders are fixed and no object is
 * ever named like another object's folder (POSIX-backed S3 servers cannot hold `x` and `x/y`).
 * Ids are zero-padded to 20 digits so that key order = numeric order in listings.
 */
export const MANIFEST_DIR = "manifest/";
export const WAL_DIR = "wal/";
export const SST_DIR = "sst/";

const pad = (id: number): string => id.toString().padStart(20, "0");

export const manifestKey = (id: number): string => `${MANIFEST_DIR}${pad(id)}`;
export const walKey = (id: number): string => `${WAL_DIR}${pad(id)}`;
/**
 * SST names carry the writer epoch: SSTs are written with a plain PUT, and a fenced writer still
 * flushing or compacting must never overwrite an SST of its successor that happens to get the
 * same id (both start from the manifest's nextSstId). Names without an epoch
 * (`sst/<id:20>.sst`) were written by earlier builds and stay readable: the manifest holds
 * every SST's full key.
 */
export const sstKey = (id: number, epoch: number): string => `${SST_DIR}${String(epoch).padStart(10, "0")}-${pad(id)}.sst`;

/** Parses the numeric id out of an object key in `dir`, or returns undefined for strangers. */
export function parseId(dir: string, key: string, suffix = ""): number | undefined {
  if (!key.startsWith(dir) || !key.endsWith(suffix)) return undefined;
  const digits = key.slice(dir.length, key.length - suffix.length);
  if (!/^\d{20}$/.test(digits)) return undefined;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}
