/**
 * Seeded PRNG for randomized tests (mulberry32). Every randomized test prints its seed; set
 * ZEROFS_TEST_SEED to replay one.
 */
export class Rng {
  private state: number;
  readonly seed: number;
  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.state = this.seed;
  }

  static fromEnv(label: string): Rng {
    const env = process.env.ZEROFS_TEST_SEED;
    const seed = env !== undefined && env !== "" ? Number(env) : Math.floor(Math.random() * 2 ** 32);
    console.log(`# ${label}: seed ${seed} (replay with ZEROFS_TEST_SEED=${seed})`);
    return new Rng(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}
