import type {AnnounceRequest} from './backend.js'
import {SegmentPool, SIZE_CLASSES, classFor} from './pool.js'
import {grow} from './torrents.js'

/**
 * The peers of one IP family in every torrent of the compact swarm: fixed-size records in a
 * SegmentPool, one segment per torrent, with leechers first [0, L) and seeders after [L, count),
 * so "seeders get leechers" is a slice. (ip, port) lookup is a linear scan in small torrents and
 * a per-torrent hash index in large ones. Keeps no totals: the swarm counts what changes.
 *
 * Record layout: [ip][port BE][flags][pad][expiry u32][peer id 20]. ip+port first, so a record's
 * head is its compact form.
 */

const SEEDER = 1

/** Above this many peers a torrent's family gets a hash index for (ip, port) lookups... */
const INDEX_THRESHOLD = 24
/** ...which it keeps until it falls below this. */
const INDEX_MIN = 12
/** Compact a pool at cleaning when free segments exceed this share of it (and CHUNK_SLACK_BYTES). */
const COMPACT_FREE_SHARE = 0.1
const GROWTH_COMPACT_SHARE = 0.5
const CHUNK_SLACK_BYTES = 4 * 1024 * 1024

export class PeerLists {
  /** IP bytes: 4 or 16. */
  readonly ipBytes: number
  /** Key (ip + port) bytes, the compact form: 6 or 18. */
  readonly keyBytes: number
  readonly flagsAt: number
  readonly expiryAt: number
  readonly peerIdAt: number
  readonly recordBytes: number

  // Per torrent id (replaced as they grow)
  segChunk: Int32Array
  segOffset: Float64Array
  segClass: Uint8Array
  count: Uint32Array
  leechers: Uint32Array
  /** Hash indexes of large lists; present only while count >= INDEX_MIN. */
  private readonly indexes = new Map<number, Int32Array>()
  pool: SegmentPool
  private readonly scratch = new Uint8Array(64)

  constructor(
    family: 4 | 6,
    capacity: number,
    private readonly key: Int32Array,
  ) {
    this.ipBytes = family === 4 ? 4 : 16
    this.keyBytes = this.ipBytes + 2
    this.flagsAt = this.keyBytes
    this.expiryAt = this.keyBytes + 2
    this.peerIdAt = this.keyBytes + 6
    this.recordBytes = this.keyBytes + 26
    this.pool = new SegmentPool(this.recordBytes)
    this.segChunk = new Int32Array(capacity).fill(-1)
    this.segOffset = new Float64Array(capacity)
    this.segClass = new Uint8Array(capacity)
    this.count = new Uint32Array(capacity)
    this.leechers = new Uint32Array(capacity)
  }

  /** Room for `capacity` torrent ids. */
  grow(capacity: number): void {
    this.segChunk = grow(this.segChunk, capacity, -1)
    this.segOffset = grow(this.segOffset, capacity)
    this.segClass = grow(this.segClass, capacity)
    this.count = grow(this.count, capacity)
    this.leechers = grow(this.leechers, capacity)
  }

  /** Empty list for a new torrent `id` (or one whose list was released). */
  reset(id: number): void {
    this.segChunk[id] = -1
    this.count[id] = 0
    this.leechers[id] = 0
  }

  /** Gives torrent `id`'s segment back and empties its list. */
  release(id: number): void {
    const chunk = this.segChunk[id]
    if (chunk >= 0) this.pool.release(this.segClass[id], chunk, this.segOffset[id])
    this.segChunk[id] = -1
    this.count[id] = 0
    this.leechers[id] = 0
    this.indexes.delete(id)
  }

  /** The bytes that hold torrent `id`'s records (from `segOffset[id]`). */
  data(id: number): Uint8Array {
    return this.pool.chunks[this.segChunk[id]]
  }

  /** Move the records into a segment of class `cls`. */
  private resize(id: number, cls: number): void {
    const pool = this.pool
    const chunk = pool.alloc(cls)
    const offset = pool.lastOffset
    const oldChunk = this.segChunk[id]
    if (oldChunk >= 0) {
      const oldOffset = this.segOffset[id]
      const bytes = this.count[id] * this.recordBytes
      pool.chunks[chunk].set(pool.chunks[oldChunk].subarray(oldOffset, oldOffset + bytes), offset)
      pool.release(this.segClass[id], oldChunk, oldOffset)
    }
    this.segChunk[id] = chunk
    this.segOffset[id] = offset
    this.segClass[id] = cls
    // Amortised: a compaction copies the live bytes only after as many bytes were outgrown.
    if (pool.freeBytes > GROWTH_COMPACT_SHARE * pool.chunkBytes && pool.freeBytes > CHUNK_SLACK_BYTES) this.compact()
  }

  private indexOf(id: number): Int32Array | undefined {
    return this.count[id] >= INDEX_MIN ? this.indexes.get(id) : undefined
  }

  private hashKey(b: Uint8Array, o: number, length: number): number {
    const k = this.key
    let h = k[5] ^ length
    for (let i = 0; i < length; i++) {
      h = Math.imul(h ^ b[o + i] ^ k[i & 3], 0x01000193)
    }
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    return h ^ (h >>> 13)
  }

  private keyEquals(data: Uint8Array, base: number, b: Uint8Array, o: number, length: number): boolean {
    for (let i = 0; i < length; i++) if (data[base + i] !== b[o + i]) return false
    return true
  }

  /** Position of the peer whose key (ip+port) is at b[o..], or -1. */
  find(id: number, b: Uint8Array, o: number): number {
    const n = this.count[id]
    if (n === 0) return -1
    const data = this.pool.chunks[this.segChunk[id]]
    const base = this.segOffset[id]
    const R = this.recordBytes
    const K = this.keyBytes
    const index = this.indexOf(id)
    if (index === undefined) {
      for (let p = 0, at = base; p < n; p++, at += R) if (this.keyEquals(data, at, b, o, K)) return p
      return -1
    }
    const mask = index.length - 1
    let s = this.hashKey(b, o, K) & mask
    for (;;) {
      const v = index[s]
      if (v === 0) return -1
      if (this.keyEquals(data, base + (v - 1) * R, b, o, K)) return v - 1
      s = (s + 1) & mask
    }
  }

  private buildIndex(id: number): void {
    const n = this.count[id]
    let size = 64
    while (size < n * 2) size *= 2
    const index = new Int32Array(size)
    const mask = size - 1
    const data = this.pool.chunks[this.segChunk[id]]
    const base = this.segOffset[id]
    for (let p = 0; p < n; p++) {
      let s = this.hashKey(data, base + p * this.recordBytes, this.keyBytes) & mask
      while (index[s] !== 0) s = (s + 1) & mask
      index[s] = p + 1
    }
    this.indexes.set(id, index)
  }

  /** Index slot holding position `p` (whose key is in the record). */
  private indexSlotOf(id: number, index: Int32Array, p: number): number {
    const data = this.pool.chunks[this.segChunk[id]]
    const at = this.segOffset[id] + p * this.recordBytes
    const mask = index.length - 1
    let s = this.hashKey(data, at, this.keyBytes) & mask
    while (index[s] !== p + 1) s = (s + 1) & mask
    return s
  }

  private indexRemoveSlot(id: number, index: Int32Array, slot: number): void {
    const mask = index.length - 1
    const data = this.pool.chunks[this.segChunk[id]]
    const base = this.segOffset[id]
    let hole = slot
    let j = slot
    for (;;) {
      j = (j + 1) & mask
      const v = index[j]
      if (v === 0) break
      const home = this.hashKey(data, base + (v - 1) * this.recordBytes, this.keyBytes) & mask
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        index[hole] = v
        hole = j
      }
    }
    index[hole] = 0
  }

  /** Copy record `from` over record `to` (the old `to` is gone), keeping the index right. */
  private moveRecord(id: number, from: number, to: number): void {
    if (from === to) return
    const index = this.indexOf(id)
    if (index !== undefined) index[this.indexSlotOf(id, index, from)] = to + 1
    this.copyRecordRaw(id, from, to)
  }

  private swapRecords(id: number, a: number, b: number): void {
    if (a === b) return
    const index = this.indexOf(id)
    if (index !== undefined) {
      const sa = this.indexSlotOf(id, index, a)
      const sb = this.indexSlotOf(id, index, b)
      index[sa] = b + 1
      index[sb] = a + 1
    }
    const data = this.pool.chunks[this.segChunk[id]]
    const base = this.segOffset[id]
    const R = this.recordBytes
    const tmp = this.scratch
    const pa = base + a * R
    const pb = base + b * R
    for (let k = 0; k < R; k++) tmp[k] = data[pa + k]
    for (let k = 0; k < R; k++) data[pa + k] = data[pb + k]
    for (let k = 0; k < R; k++) data[pb + k] = tmp[k]
  }

  private copyRecordRaw(id: number, from: number, to: number): void {
    if (from === to) return
    const data = this.pool.chunks[this.segChunk[id]]
    const base = this.segOffset[id]
    const R = this.recordBytes
    data.copyWithin(base + to * R, base + from * R, base + from * R + R)
  }

  /** Remove the peer at `p`, keeping leechers before seeders; returns whether it was a leecher. */
  remove(id: number, p: number): boolean {
    const index = this.indexOf(id)
    if (index !== undefined) this.indexRemoveSlot(id, index, this.indexSlotOf(id, index, p))
    const n = this.count[id]
    const l = this.leechers[id]
    const leecher = p < l
    if (leecher) {
      // A leecher: fill its place with the last leecher, and that place with the last seeder.
      const lastLeecher = l - 1
      if (index !== undefined && p !== lastLeecher) index[this.indexSlotOf(id, index, lastLeecher)] = p + 1
      this.copyRecordRaw(id, lastLeecher, p)
      if (lastLeecher !== n - 1) this.moveRecord(id, n - 1, lastLeecher)
      this.leechers[id] = l - 1
    } else {
      if (index !== undefined && p !== n - 1) index[this.indexSlotOf(id, index, n - 1)] = p + 1
      this.copyRecordRaw(id, n - 1, p)
    }
    this.count[id] = n - 1
    if (index !== undefined && n - 1 < INDEX_MIN) this.indexes.delete(id)
    return leecher
  }

  /** Insert a new peer (leecher or seeder as `req.isSeeder` says); returns its position. */
  insert(id: number, req: AnnounceRequest, expiry: number): number {
    const n = this.count[id]
    if (this.segChunk[id] < 0) this.resize(id, classFor(1))
    else if (n === SIZE_CLASSES[this.segClass[id]]) this.resize(id, this.segClass[id] + 1)
    let p = n
    if (!req.isSeeder) {
      // New leecher goes to the end of the leecher range; the first seeder moves to the end.
      const l = this.leechers[id]
      if (l < n) this.moveRecord(id, l, n)
      p = l
      this.leechers[id] = l + 1
    }
    this.count[id] = n + 1
    const data = this.pool.chunks[this.segChunk[id]]
    const at = this.segOffset[id] + p * this.recordBytes
    for (let k = 0, n = this.ipBytes, ip = req.ip; k < n; k++) data[at + k] = ip[k]
    data[at + this.keyBytes - 2] = req.port >>> 8
    data[at + this.keyBytes - 1] = req.port & 0xff
    this.writeMutable(data, at, req, expiry)
    const index = this.indexOf(id)
    if (index !== undefined) {
      if ((n + 1) * 2 > index.length) this.buildIndex(id)
      else {
        const mask = index.length - 1
        let s = this.hashKey(data, at, this.keyBytes) & mask
        while (index[s] !== 0) s = (s + 1) & mask
        index[s] = p + 1
      }
    } else if (n + 1 > INDEX_THRESHOLD) {
      this.buildIndex(id)
    }
    return p
  }

  isSeeder(id: number, p: number): boolean {
    return (this.pool.chunks[this.segChunk[id]][this.segOffset[id] + p * this.recordBytes + this.flagsAt] & SEEDER) !== 0
  }

  /** Moves the peer at `p` into the seeder or the leecher range; returns its new position. */
  setSeeder(id: number, p: number, seeder: boolean): number {
    const l = this.leechers[id]
    if (seeder) {
      this.swapRecords(id, p, l - 1)
      this.leechers[id] = l - 1
      return l - 1
    }
    this.swapRecords(id, p, l)
    this.leechers[id] = l + 1
    return l
  }

  /** Rewrites the announced fields (seeder flag, expiry, peer id) of the peer at `p`. */
  update(id: number, p: number, req: AnnounceRequest, expiry: number): void {
    this.writeMutable(this.pool.chunks[this.segChunk[id]], this.segOffset[id] + p * this.recordBytes, req, expiry)
  }

  private writeMutable(data: Uint8Array, at: number, req: AnnounceRequest, expiry: number): void {
    data[at + this.flagsAt] = req.isSeeder ? SEEDER : 0
    const e = at + this.expiryAt
    data[e] = expiry
    data[e + 1] = expiry >>> 8
    data[e + 2] = expiry >>> 16
    data[e + 3] = expiry >>> 24
    for (let k = 0, id = req.peerId, from = req.peerIdOffset, to = at + this.peerIdAt; k < 20; k++) data[to + k] = id[from + k]
  }

  /** Removes torrent `id`'s peers whose expiry is before `now`; shrinks or releases a segment left mostly empty. */
  expire(id: number, now: number): void {
    const n = this.count[id]
    if (n === 0) return
    const data = this.pool.chunks[this.segChunk[id]]
    const base = this.segOffset[id]
    const R = this.recordBytes
    const E = this.expiryAt
    // Downwards: whatever remove moves into p was already checked.
    for (let p = n - 1; p >= 0; p--) {
      const e = base + p * R + E
      const expiry = (data[e] | (data[e + 1] << 8) | (data[e + 2] << 16) | (data[e + 3] << 24)) >>> 0
      if (expiry < now) this.remove(id, p)
    }
    const left = this.count[id]
    if (left === 0) this.release(id)
    else {
      const cls = this.segClass[id]
      if (left * 2 < SIZE_CLASSES[cls] && cls > 0) {
        this.resize(id, classFor(left))
        if (this.indexOf(id) !== undefined) this.buildIndex(id)
      }
    }
  }

  /** Compacts the pool when free segments exceed a share of it (at cleaning). */
  tidy(): void {
    const pool = this.pool
    if (pool.freeBytes > COMPACT_FREE_SHARE * pool.chunkBytes && pool.freeBytes > CHUNK_SLACK_BYTES) this.compact()
  }

  /**
   * Segments outgrown by their torrents wait in free lists for torrents of the same size; when
   * swarms grow together nobody reuses them. Past a share of the pool, copy every live segment
   * into fresh chunks and let the old ones go.
   */
  compact(): void {
    const old = this.pool
    const fresh = new SegmentPool(old.recordSize)
    const chunks = this.segChunk
    const offsets = this.segOffset
    const classes = this.segClass
    // A torrent id not in use has no segment (-1).
    for (let id = 0; id < chunks.length; id++) {
      if (chunks[id] < 0) continue
      const bytes = old.segmentBytes(classes[id])
      const chunk = fresh.alloc(classes[id])
      const from = offsets[id]
      fresh.chunks[chunk].set(old.chunks[chunks[id]].subarray(from, from + bytes), fresh.lastOffset)
      chunks[id] = chunk
      offsets[id] = fresh.lastOffset
    }
    this.pool = fresh
  }
}
