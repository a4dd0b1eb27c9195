import type {AnnounceResult} from './backend.js'
import type {PeerLists} from './peers.js'

/** Large primes (> any swarm size) used as strides: coprime to every n below them. */
const STRIDES = [268435399, 536870909, 1073741789, 805306457, 402653189, 201326611, 1610612741, 939524087]

/** xorshift32: cheap, seedable (tests replay a swarm's choices). */
export class Random {
  private state: number

  constructor(seed: number) {
    this.state = seed | 1
  }

  next(): number {
    let x = this.state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.state = x
    return x >>> 0
  }
}

/**
 * Up to `want` random peers of torrent `id` in `list` (one IP family), never position `self`; a
 * seeder gets leechers when there are any. Writes their compact forms (and ids when
 * `res.peerIdBuf` is set) into `res` and sets `res.peerCount`.
 */
export function selectPeers(list: PeerLists, id: number, self: number, isSeeder: boolean, want: number, random: Random, res: AnnounceResult): void {
  const l = list.leechers[id]
  const pool = isSeeder && l > 0 ? l : list.count[id]
  if (pool === 0) return
  const selfInPool = self >= 0 && self < pool
  const eligible = pool - (selfInPool ? 1 : 0)
  const take = Math.min(want, eligible)
  if (take === 0) return
  const data = list.data(id)
  const base = list.segOffset[id]
  const R = list.recordBytes
  const K = list.keyBytes
  const I = list.peerIdAt
  const out = res.peerBuf
  let o = res.peerBufOffset
  const ids = res.peerIdBuf
  let io = res.peerIdBufOffset
  let taken = 0
  if (take === eligible) {
    // All of them, in order: the common case of small swarms, in a plain loop of its own (with one
    // loop for both cases, the engine bench's announces ran about 10% slower).
    for (let p = 0; p < pool; p++) {
      if (p === self) continue
      const at = base + p * R
      // Byte loops, not subarray().set(): a view per peer costs more than the copy.
      for (let k = 0; k < K; k++) out[o + k] = data[at + k]
      o += K
      if (ids) {
        for (let k = 0, from = at + I; k < 20; k++) ids[io + k] = data[from + k]
        io += 20
      }
      taken++
    }
    res.peerCount = taken
    return
  }
  // A random start and a stride coprime to the pool visit every position once.
  let p = random.next() % pool
  const stride = STRIDES[random.next() & 7] % pool
  while (taken < take) {
    if (p !== self) {
      const at = base + p * R
      for (let k = 0; k < K; k++) out[o + k] = data[at + k]
      o += K
      if (ids) {
        for (let k = 0, from = at + I; k < 20; k++) ids[io + k] = data[from + k]
        io += 20
      }
      taken++
    }
    p += stride
    if (p >= pool) p -= pool
  }
  res.peerCount = taken
}
