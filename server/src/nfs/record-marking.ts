/**
 * ONC RPC record marking over TCP (RFC 5531 §11): each record is a sequence of fragments, each
 * preceded by a 4-byte big-endian header whose top bit marks the last fragment and whose low 31
 * bits give the fragment length.
 *
 * The decoder is fed socket chunks at arbitrary boundaries. Memory safety matters more than
 * anything here because the header is attacker-controlled: the declared length is checked
 * against the record cap before a single byte is accumulated, and nothing is ever allocated
 * from a declared length — buffers grow only with bytes actually received (at most 2x).
 */
import { copyInto, handOffBuffer, releaseNow } from "../store/shared-buffer.ts";

/** Largest READ/WRITE payload we advertise (FSINFO rtmax/wtmax) is 1 MiB; records carry more room. */
export const DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024 + 64 * 1024;

const LAST_FRAGMENT = 0x8000_0000;
const LENGTH_MASK = 0x7fff_ffff;
/** Up to this many pieces are kept as views and joined once; beyond, switch to a growable buffer. */
const MAX_VIEW_PIECES = 64;

export class RecordTooLargeError extends Error {
  readonly declared: number;
  readonly max: number;
  /** Records the same push completed before the bad header: still valid, to be answered. */
  readonly completed: Buffer[];
  constructor(declared: number, max: number, completed: Buffer[] = []) {
    super(`RPC record of at least ${declared} bytes exceeds the ${max}-byte limit`);
    this.name = "RecordTooLargeError";
    this.declared = declared;
    this.max = max;
    this.completed = completed;
  }
}

export class RecordDecoder {
  readonly maxRecordBytes: number;
  private readonly hdr = Buffer.alloc(4);
  private hdrFill = 0;
  private inFragment = false;
  private fragRemaining = 0;
  private lastFragment = false;
  /** Bytes of the current record received so far (all fragments). */
  private recordBytes = 0;
  /** Received pieces (views of socket chunks) while few... */
  private pieces: Buffer[] = [];
  /** ...or a growable accumulation buffer once there are many. */
  private acc: Buffer | null = null;
  /** Whether fed chunks are ours to free once their bytes are copied (see `push`). */
  private readonly consumeChunks: boolean;
  /** Fed chunks to free once the pieces viewing them are copied (at most one per held piece). */
  private deferred: Buffer[] = [];

  /**
   * `consumeChunks`: the caller hands each chunk over (a socket's reads, seen by nobody else).
   * A chunk that is a whole ArrayBuffer, whose bytes were all copied (into multi-chunk records)
   * and of which no record is a view, is then detached at once (`transfer(0)`), which frees its
   * memory without waiting for a garbage collection. Why: V8 runs a full (mark-compact)
   * collection for every ~64 MiB of ArrayBuffers allocated; on a 1 GiB sequential write the
   * socket's 64 KiB chunks alone were a third of the 28 such collections.
   */
  constructor(maxRecordBytes = DEFAULT_MAX_RECORD_BYTES, opts: { consumeChunks?: boolean } = {}) {
    this.maxRecordBytes = maxRecordBytes;
    this.consumeChunks = opts.consumeChunks ?? false;
  }

  /** Bytes held for the incomplete record (for tests and metrics). */
  get bufferedBytes(): number {
    return this.recordBytes;
  }

  /** True when no partial header or record is pending (a clean record boundary). */
  get idle(): boolean {
    return this.hdrFill === 0 && !this.inFragment && this.recordBytes === 0;
  }

  /**
   * Feeds one chunk; returns the records it completed, in order. A record entirely inside
   * `chunk` is returned as a view of it (no copy). Throws RecordTooLargeError (carrying the
   * records completed before the bad header), after which the decoder is unusable (the
   * connection must be closed).
   */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      if (!this.inFragment) {
        let word: number;
        if (this.hdrFill === 0 && n - off >= 4) {
          word = chunk.readUInt32BE(off);
          off += 4;
        } else {
          const take = Math.min(4 - this.hdrFill, n - off);
          chunk.copy(this.hdr, this.hdrFill, off, off + take);
          this.hdrFill += take;
          off += take;
          if (this.hdrFill < 4) break;
          word = this.hdr.readUInt32BE(0);
          this.hdrFill = 0;
        }
        const len = word & LENGTH_MASK;
        // Checked before accumulating: a 0x7fffffff header costs nothing.
        if (this.recordBytes + len > this.maxRecordBytes) {
          throw new RecordTooLargeError(this.recordBytes + len, this.maxRecordBytes, out);
        }
        this.inFragment = true;
        this.fragRemaining = len;
        this.lastFragment = (word & LAST_FRAGMENT) !== 0;
      }
      const take = Math.min(this.fragRemaining, n - off);
      if (take > 0) {
        if (this.recordBytes === 0 && this.lastFragment && take === this.fragRemaining) {
          // Fast path: the whole record is inside this chunk.
          out.push(chunk.subarray(off, off + take));
          off += take;
          this.fragRemaining = 0;
          this.inFragment = false;
          continue;
        }
        this.append(chunk.subarray(off, off + take));
        off += take;
        this.fragRemaining -= take;
      }
      if (this.fragRemaining === 0) {
        this.inFragment = false;
        if (this.lastFragment) out.push(this.takeRecord());
      }
    }
    if (this.consumeChunks) this.release(chunk, out);
    return out;
  }

  /**
   * Frees `chunk` (and earlier chunks that waited for their pieces to be copied) if no record
   * returned and no piece held is a view of it (see releaseNow: only a chunk that is a whole
   * ArrayBuffer of its own is freed).
   */
  private release(chunk: Buffer, out: readonly Buffer[]): void {
    const inRecords = (ab: ArrayBufferLike): boolean => out.some((r) => r.buffer === ab);
    const inPieces = (ab: ArrayBufferLike): boolean => this.pieces.some((p) => p.buffer === ab);
    if (this.deferred.length > 0) {
      const still: Buffer[] = [];
      for (const c of this.deferred) {
        if (inPieces(c.buffer)) still.push(c);
        else if (!inRecords(c.buffer)) releaseNow(c);
      }
      this.deferred = still;
    }
    if (inRecords(chunk.buffer)) return;
    if (inPieces(chunk.buffer)) this.deferred.push(chunk);
    else releaseNow(chunk);
  }

  private append(piece: Buffer): void {
    const needed = this.recordBytes + piece.length;
    if (this.acc === null && this.pieces.length < MAX_VIEW_PIECES) {
      this.pieces.push(piece);
      this.recordBytes = needed;
      return;
    }
    // Many small pieces (tiny fragments or a trickling peer): views would cost more than the
    // data, so copy into a buffer that at most doubles and never exceeds the record cap.
    if (this.acc === null || needed > this.acc.length) {
      const cap = Math.min(this.maxRecordBytes, Math.max(needed, (this.acc?.length ?? needed) * 2));
      const grown = handOffBuffer(cap);
      if (this.acc !== null) {
        copyInto(grown, 0, this.acc.subarray(0, this.recordBytes));
      } else {
        let at = 0;
        for (const p of this.pieces) {
          copyInto(grown, at, p);
          at += p.length;
        }
        this.pieces = [];
      }
      this.acc = grown;
    }
    copyInto(this.acc, this.recordBytes, piece);
    this.recordBytes = needed;
  }

  private takeRecord(): Buffer {
    let rec: Buffer;
    if (this.acc !== null) rec = this.acc.subarray(0, this.recordBytes);
    else if (this.pieces.length === 1 && this.pieces[0] !== undefined) rec = this.pieces[0];
    else {
      rec = handOffBuffer(this.recordBytes);
      let at = 0;
      for (const p of this.pieces) {
        copyInto(rec, at, p);
        at += p.length;
      }
    }
    this.acc = null;
    this.pieces = [];
    this.recordBytes = 0;
    return rec;
  }
}

/**
 * Frames a record as a single last fragment: returns [header, ...body] for writev. The body
 * chunks are not copied.
 */
export function frameRecord(body: readonly Buffer[]): Buffer[] {
  let len = 0;
  for (const b of body) len += b.length;
  if (len > LENGTH_MASK) throw new RangeError(`record of ${len} bytes does not fit one fragment`);
  const hdr = Buffer.allocUnsafe(4);
  hdr.writeUInt32BE((LAST_FRAGMENT | len) >>> 0, 0);
  return [hdr, ...body];
}
