/**
 * The fixed-size plaintext footer at the end of every SST object. It holds only positions and
 * counts (never key or value bytes). Little-endian, 45 bytes:
 *   0  magic "ZSST" (4)
 *   4  format version u8 (= 1)
 *   5  index offset u64
 *   13 index sealed length u32
 *   17 bloom offset u64
 *   25 bloom sealed length u32
 *   29 entry count u64
 *   37 data block count u32
 *   41 crc32 (zlib/ISO-HDLC) of bytes 0..40
 */
import { crc32 } from "node:zlib";
import { FormatError } from "./errors.ts";

export const FOOTER_SIZE = 45;
export const FORMAT_VERSION = 1;
const MAGIC = Buffer.from("ZSST", "latin1");

export interface Footer {
  indexOffset: number;
  indexLength: number;
  bloomOffset: number;
  bloomLength: number;
  entryCount: number;
  blockCount: number;
}

export function encodeFooter(f: Footer): Buffer {
  const out = Buffer.alloc(FOOTER_SIZE);
  MAGIC.copy(out, 0);
  out[4] = FORMAT_VERSION;
  out.writeBigUInt64LE(BigInt(f.indexOffset), 5);
  out.writeUInt32LE(f.indexLength, 13);
  out.writeBigUInt64LE(BigInt(f.bloomOffset), 17);
  out.writeUInt32LE(f.bloomLength, 25);
  out.writeBigUInt64LE(BigInt(f.entryCount), 29);
  out.writeUInt32LE(f.blockCount, 37);
  out.writeUInt32LE(crc32(out.subarray(0, 41)), 41);
  return out;
}

function safeU64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`footer ${what} ${v} is too large`);
  return Number(v);
}

/**
 * Decodes the footer (the last FOOTER_SIZE bytes of an object of `objectSize` bytes) and checks
 * that every region it names fits the object and that the regions tile it exactly:
 * [data 0, indexOffset)[index][bloom][footer].
 */
export function decodeFooter(buf: Buffer, objectSize: number): Footer {
  if (buf.length !== FOOTER_SIZE) throw new FormatError(`footer is ${buf.length} bytes, expected ${FOOTER_SIZE}`);
  if (!buf.subarray(0, 4).equals(MAGIC)) {
    throw new FormatError(`bad footer magic ${buf.subarray(0, 4).toString("hex")} (expected ${MAGIC.toString("hex")} "ZSST"); not an SST or truncated`);
  }
  if (buf[4] !== FORMAT_VERSION) throw new FormatError(`unsupported format version ${buf[4]} (this build reads ${FORMAT_VERSION})`);
  const stored = buf.readUInt32LE(41);
  const actual = crc32(buf.subarray(0, 41));
  if (stored !== actual) {
    throw new FormatError(`footer crc32 mismatch: stored ${stored.toString(16).padStart(8, "0")}, computed ${actual.toString(16).padStart(8, "0")}`);
  }
  const f: Footer = {
    indexOffset: safeU64(buf, 5, "index offset"),
    indexLength: buf.readUInt32LE(13),
    bloomOffset: safeU64(buf, 17, "bloom offset"),
    bloomLength: buf.readUInt32LE(25),
    entryCount: safeU64(buf, 29, "entry count"),
    blockCount: buf.readUInt32LE(37),
  };
  const footerStart = objectSize - FOOTER_SIZE;
  if (f.blockCount === 0 || f.entryCount === 0) throw new FormatError(`footer says ${f.blockCount} blocks / ${f.entryCount} entries; SSTs are never empty`);
  if (f.indexOffset === 0 || f.indexLength === 0 || f.bloomLength === 0) {
    throw new FormatError(`footer regions are empty (index @${f.indexOffset}+${f.indexLength}, bloom +${f.bloomLength})`);
  }
  if (f.indexOffset + f.indexLength !== f.bloomOffset || f.bloomOffset + f.bloomLength !== footerStart) {
    throw new FormatError(
      `footer regions do not tile the ${objectSize}-byte object: index ${f.indexOffset}+${f.indexLength}, ` +
        `bloom ${f.bloomOffset}+${f.bloomLength}, footer at ${footerStart}`,
    );
  }
  return f;
}
