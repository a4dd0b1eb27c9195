/**
 * The simulated world every load tester shares: torrents with skewed popularity and a fixed
 * population of peers, generated from a seed so that a run can be repeated and so that a
 * whitelist (opentracker) can be written before the run.
 */

/** Small fast PRNG (xorshift128+ on 32-bit halves is overkill here: mulberry32 is enough). */
export class Rng {
  private s: number
  constructor(seed: number) {
    this.s = seed >>> 0
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  int(n: number): number {
    return Math.floor(this.next() * n)
  }
  fill(buf: Uint8Array, offset = 0, length = buf.length - offset): void {
    for (let i = 0; i < length; i++) buf[offset + i] = (this.next() * 256) | 0
  }
}

/**
 * Walker's alias table: O(1) sampling from a fixed discrete distribution.
 */
export class AliasTable {
  private readonly prob: Float64Array
  private readonly alias: Uint32Array
  constructor(weights: ArrayLike<number>) {
    const n = weights.length
    this.prob = new Float64Array(n)
    this.alias = new Uint32Array(n)
    let sum = 0
    for (let i = 0; i < n; i++) sum += weights[i]
    const scaled = new Float64Array(n)
    const small: number[] = []
    const large: number[] = []
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i] * n) / sum
      ;(scaled[i] < 1 ? small : large).push(i)
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!
      const l = large.pop()!
      this.prob[s] = scaled[s]
      this.alias[s] = l
      scaled[l] = scaled[l] + scaled[s] - 1
      ;(scaled[l] < 1 ? small : large).push(l)
    }
    for (const i of large) this.prob[i] = 1
    for (const i of small) this.prob[i] = 1
  }
  sample(rng: Rng): number {
    const i = rng.int(this.prob.length)
    return rng.next() < this.prob[i] ? i : this.alias[i]
  }
}

export interface ModelOptions {
  numberOfTorrents: number
  numberOfPeers: number
  peerSeederProbability: number
  seed?: number
}

/**
 * Torrents: 20-byte info hashes, popularity weight_i = N/P + exp(6.5 - 500 i / N) as in
 * aquatic's UDP load tester (an exponentially decaying head on a uniform floor).
 * Peers: each has a peer id, a port, one torrent it announces and a seeder flag.
 */
export class SwarmModel {
  readonly infoHashes: Uint8Array
  readonly peerIds: Uint8Array
  readonly peerPorts: Uint16Array
  readonly peerTorrent: Uint32Array
  readonly peerSeeder: Uint8Array
  readonly popularity: AliasTable
  readonly rng: Rng

  constructor(readonly options: ModelOptions) {
    const {numberOfTorrents: n, numberOfPeers: p} = options
    this.rng = new Rng(options.seed ?? 0xc3aa8be6)
    this.infoHashes = new Uint8Array(n * 20)
    this.rng.fill(this.infoHashes)
    const weights = new Float64Array(n)
    for (let i = 0; i < n; i++) weights[i] = n / p + Math.exp(6.5 - (500 * i) / n)
    this.popularity = new AliasTable(weights)
    this.peerIds = new Uint8Array(p * 20)
    this.rng.fill(this.peerIds)
    this.peerPorts = new Uint16Array(p)
    this.peerTorrent = new Uint32Array(p)
    this.peerSeeder = new Uint8Array(p)
    for (let i = 0; i < p; i++) {
      this.peerPorts[i] = 1024 + this.rng.int(64511)
      this.peerTorrent[i] = this.popularity.sample(this.rng)
      this.peerSeeder[i] = this.rng.next() < options.peerSeederProbability ? 1 : 0
    }
  }

  infoHash(i: number): Uint8Array {
    return this.infoHashes.subarray(i * 20, i * 20 + 20)
  }

  peerId(i: number): Uint8Array {
    return this.peerIds.subarray(i * 20, i * 20 + 20)
  }

  /** Hex info hashes, one per line: an opentracker whitelist or our access list. */
  infoHashList(): string {
    const lines: string[] = []
    for (let i = 0; i < this.options.numberOfTorrents; i++) lines.push(Buffer.from(this.infoHash(i)).toString('hex'))
    return lines.join('\n') + '\n'
  }
}

/**
 * The info hashes a load test announces (every load tester simulates the same torrents), for a
 * whitelist (opentracker -w) or our access list.
 */
export function loadtestInfoHashList(config: {requests: {number_of_torrents: number}}): string {
  return new SwarmModel({numberOfTorrents: config.requests.number_of_torrents, numberOfPeers: 1, peerSeederProbability: 0}).infoHashList()
}

/** Latency histogram with ~2% relative buckets from 1 us to ~60 s; constant memory. */
export class LatencyHistogram {
  private static readonly BUCKETS_PER_OCTAVE = 32
  private readonly counts = new Float64Array(LatencyHistogram.BUCKETS_PER_OCTAVE * 27)
  count = 0

  record(us: number): void {
    const v = Math.max(us, 1)
    let b = Math.floor(Math.log2(v) * LatencyHistogram.BUCKETS_PER_OCTAVE)
    if (b >= this.counts.length) b = this.counts.length - 1
    this.counts[b]++
    this.count++
  }

  /** The value below which `q` (0..1) of the samples fall, in microseconds. */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const target = q * this.count
    let seen = 0
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b]
      if (seen >= target) return 2 ** ((b + 0.5) / LatencyHistogram.BUCKETS_PER_OCTAVE)
    }
    return 2 ** (this.counts.length / LatencyHistogram.BUCKETS_PER_OCTAVE)
  }

  reset(): void {
    this.counts.fill(0)
    this.count = 0
  }

  merge(other: LatencyHistogram): void {
    for (let b = 0; b < this.counts.length; b++) this.counts[b] += other.counts[b]
    this.count += other.count
  }

  toArray(): number[] {
    return Array.from(this.counts)
  }

  static fromArray(counts: number[]): LatencyHistogram {
    const h = new LatencyHistogram()
    counts.forEach((c, i) => {
      h.counts[i] = c
      h.count += c
    })
    return h
  }
}
