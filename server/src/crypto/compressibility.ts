/**
 * A cheap guess whether zstd can shrink a block, so that incompressible data (media, archives,
 * encrypted files, random test data) is not run through the compressor only to be stored raw.
 *
 * The guess is the order-0 byte entropy of a sample of the block: 1/32 of it (between 4 and 16
 * windows of 256 bytes, 1 to 4 KiB) spread over it (1/16 cost 5% of a sequential write's CPU); the estimate's bias on random data at 1 KiB
 * is ~0.2 bits, far from the threshold. Already-compressed or random data measures ≈ 7.95 bits/byte on such a
 * sample; text, source code, metadata and executables measure far lower. Only blocks above
 * INCOMPRESSIBLE_BITS are skipped, so a wrong guess costs at most some compression ratio on
 * unusual data (e.g. one random run repeated inside a block), never correctness: the sealer
 * still stores whichever form it picked, flagged.
 */

/** Bits per byte above which a sample is taken as incompressible. */
export const INCOMPRESSIBLE_BITS = 7.6;
const MAX_WINDOWS = 16;
const MIN_WINDOWS = 4;
const WINDOW_BYTES = 256;
const WHOLE_SAMPLE_MAX = MIN_WINDOWS * WINDOW_BYTES;

const MAX_SAMPLE = MAX_WINDOWS * WINDOW_BYTES;
/** c·log2(c) for every count a sample can reach: the entropy sum without a logarithm per symbol. */
const C_LOG_C = Float64Array.from({ length: MAX_SAMPLE + 1 }, (_, c) => (c === 0 ? 0 : c * Math.log2(c)));
/** Reused per call (the event loop is single-threaded): a fresh array per 32 KiB frame showed in profiles. */
const counts = new Uint32Array(256);

/**
 * Shannon entropy (bits per byte) of the sampled bytes of `data`:
 * H = −Σ (c/n)·log2(c/n) = log2(n) − (Σ c·log2 c) / n.
 */
export function sampledEntropy(data: Uint8Array): number {
  counts.fill(0);
  let n = 0;
  if (data.length <= WHOLE_SAMPLE_MAX) {
    for (let i = 0; i < data.length; i++) counts[data[i]!]!++;
    n = data.length;
  } else {
    const windows = Math.max(MIN_WINDOWS, Math.min(MAX_WINDOWS, Math.floor(data.length / (32 * WINDOW_BYTES))));
    const stride = Math.floor((data.length - WINDOW_BYTES) / (windows - 1));
    for (let w = 0; w < windows; w++) {
      const start = w * stride;
      for (let i = start; i < start + WINDOW_BYTES; i++) counts[data[i]!]!++;
    }
    n = windows * WINDOW_BYTES;
  }
  if (n === 0) return 0;
  let sum = 0;
  for (let s = 0; s < 256; s++) sum += C_LOG_C[counts[s]!]!;
  return Math.log2(n) - sum / n;
}

export function looksIncompressible(data: Uint8Array): boolean {
  return sampledEntropy(data) > INCOMPRESSIBLE_BITS;
}
