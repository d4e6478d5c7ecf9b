/**
 * Segment object names (docs/layout-v2.md): `seg/<epoch:10>-<seq:12>`. The writer epoch makes
 * names unique across writers (a fenced zombie and its successor never collide); the sequence
 * counts the segments of one writer. Zero padding keeps listings in creation order per epoch.
 */
export const SEGMENT_DIR = "seg/";

/** Identity of a segment. */
export interface SegmentId {
  epoch: number;
  seq: number;
}

const MAX_EPOCH = 10 ** 10 - 1;
const MAX_SEQ = 10 ** 12 - 1;

export function segmentKey(id: SegmentId): string {
  if (!Number.isSafeInteger(id.epoch) || id.epoch < 0 || id.epoch > MAX_EPOCH) throw new RangeError(`segment epoch out of range: ${id.epoch}`);
  if (!Number.isSafeInteger(id.seq) || id.seq < 0 || id.seq > MAX_SEQ) throw new RangeError(`segment sequence out of range: ${id.seq}`);
  return `${SEGMENT_DIR}${String(id.epoch).padStart(10, "0")}-${String(id.seq).padStart(12, "0")}`;
}

/** The id of a segment key, or undefined for any other object. */
export function parseSegmentKey(key: string): SegmentId | undefined {
  const m = /^seg\/(\d{10})-(\d{12})$/.exec(key);
  return m ? { epoch: Number(m[1]), seq: Number(m[2]) } : undefined;
}

/** Map key for per-segment tables. */
export function segmentTag(id: SegmentId): string {
  return `${id.epoch}-${id.seq}`;
}
