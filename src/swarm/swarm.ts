import {randomBytes} from 'node:crypto'
import {SegmentPool, SIZE_CLASSES, classFor} from './pool.js'

/**
 * The swarm engine shared by the UDP and HTTP trackers. Pure: no sockets, no timers, no clock
 * (callers pass `now` in seconds). No allocation per announce: requests come in and results go
 * out through reusable objects, info hashes are compared as bytes.
 *
 * Storage (bytes per peer matter at millions of peers):
 * - torrents: open-addressing table of ids keyed by a keyed hash of the info hash; per-torrent
 *   fields in typed arrays indexed by id;
 * - peers: fixed-size records in a SegmentPool per IP family, one segment per torrent, with
 *   leechers first [0, L) and seeders after [L, count), so "seeders get leechers" is a slice;
 * - (ip, port) lookup: linear scan in small torrents, a per-torrent hash index in large ones.
 */

export const EVENT_NONE = 0
export const EVENT_COMPLETED = 1
export const EVENT_STARTED = 2
export const EVENT_STOPPED = 3

export const enum AnnounceStatus {
  Ok = 0,
  /** The torrent is at max_peers_per_torrent: the peer got counts and peers but is not stored. */
  PeerLimit = 1,
  /** max_torrents reached: nothing stored, nothing returned. */
  TorrentLimit = 2,
}

/** Filled by a codec, read by `announce`. Byte fields point into the request buffer. */
export class AnnounceRequest {
  infoHash: Uint8Array = new Uint8Array(20)
  infoHashOffset = 0
  peerId: Uint8Array = new Uint8Array(20)
  peerIdOffset = 0
  ipFamily: 4 | 6 = 4
  /** 4 or 16 bytes. IPv4-mapped IPv6 must already be IPv4. */
  ip: Uint8Array = new Uint8Array(4)
  port = 0
  event = EVENT_NONE
  isSeeder = false
  /** How many peers to return at most (the protocol clamps it). */
  numWant = 0
}

export class AnnounceResult {
  status: AnnounceStatus = AnnounceStatus.Ok
  /** Other peers (the announcer excluded), both IP families. */
  seeders = 0
  leechers = 0
  completed = 0
  peerCount = 0
  /** Compact peers (6 bytes IPv4, 18 bytes IPv6) are written here by the caller's choice. */
  peerBuf: Uint8Array = new Uint8Array(0)
  peerBufOffset = 0
  /** When set, the selected peers' ids (20 bytes each) are written here too. */
  peerIdBuf: Uint8Array | null = null
  peerIdBufOffset = 0
}

export class ScrapeCounts {
  seeders = 0
  leechers = 0
  completed = 0
}

export interface SwarmLimits {
  maxTorrents: number
  maxPeersPerTorrent: number
  /** Seconds a peer stays without announcing. */
  maxPeerAge: number
}

// Record layouts: [ip][port BE][flags][pad][expiry u32][peer id 20]. ip+port first, so a
// record's head is its compact form.
const FAMILY_IP = [4, 16] as const
const KEY = [6, 18] as const
const FLAGS = [6, 18] as const
const EXPIRY = [8, 20] as const
const PEER_ID = [12, 24] as const
const RECORD = [32, 44] as const
const SEEDER = 1

/** Above this many peers a torrent's family gets a hash index for (ip, port) lookups... */
const INDEX_THRESHOLD = 24
/** ...which it keeps until it falls below this. */
const INDEX_MIN = 12
/** Compact a pool at cleaning when free segments exceed this share of it (and CHUNK_SLACK_BYTES). */
const COMPACT_FREE_SHARE = 0.1
const GROWTH_COMPACT_SHARE = 0.5
const CHUNK_SLACK_BYTES = 4 * 1024 * 1024

/** Large primes (> any swarm size) used as strides: coprime to every n below them. */
const STRIDES = [268435399, 536870909, 1073741789, 805306457, 402653189, 201326611, 1610612741, 939524087]

type Family = 0 | 1

export class Swarm {
  // Torrent table
  private slots: Int32Array
  private slotMask: number
  private hashes: Uint8Array
  private completedCount: Uint32Array
  private inUse: Uint8Array
  private idCap: number
  private idHigh = 0
  private freeIds: number[] = []
  // Per family, per torrent
  private readonly segChunk: [Int32Array, Int32Array]
  private readonly segOffset: [Float64Array, Float64Array]
  private readonly segClass: [Uint8Array, Uint8Array]
  private readonly count: [Uint32Array, Uint32Array]
  private readonly leechers: [Uint32Array, Uint32Array]
  /** Hash indexes of large (torrent, family) lists; present only while count >= INDEX_MIN. */
  private readonly indexes: [Map<number, Int32Array>, Map<number, Int32Array>] = [new Map(), new Map()]
  private pools: [SegmentPool, SegmentPool] = [new SegmentPool(RECORD[0]), new SegmentPool(RECORD[1])]
  private readonly key: Int32Array
  private rng: number
  private readonly scratch = new Uint8Array(64)
  private readonly keyScratch = new Uint8Array(18)

  // Stats, maintained as things change.
  torrents = 0
  readonly peers = [0, 0]
  seeders = 0
  leecherTotal = 0
  completedTotal = 0
  peersExpired = 0
  refusedTorrentLimit = 0
  refusedPeerLimit = 0

  constructor(
    readonly limits: SwarmLimits,
    seed?: number,
  ) {
    const k = randomBytes(24)
    this.key = new Int32Array(6)
    for (let i = 0; i < 6; i++) this.key[i] = k.readInt32LE(i * 4)
    this.rng = (seed ?? k.readUInt32LE(20)) | 1
    this.idCap = 1024
    this.slots = new Int32Array(2048)
    this.slotMask = 2047
    this.hashes = new Uint8Array(this.idCap * 20)
    this.completedCount = new Uint32Array(this.idCap)
    this.inUse = new Uint8Array(this.idCap)
    this.segChunk = [new Int32Array(this.idCap).fill(-1), new Int32Array(this.idCap).fill(-1)]
    this.segOffset = [new Float64Array(this.idCap), new Float64Array(this.idCap)]
    this.segClass = [new Uint8Array(this.idCap), new Uint8Array(this.idCap)]
    this.count = [new Uint32Array(this.idCap), new Uint32Array(this.idCap)]
    this.leechers = [new Uint32Array(this.idCap), new Uint32Array(this.idCap)]
  }

  private random(): number {
    // xorshift32
    let x = this.rng
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.rng = x
    return x >>> 0
  }

  // ------------------------------------------------------------------------------------------
  // Torrent table

  private hashInfo(b: Uint8Array, o: number): number {
    const k = this.key
    let h = k[5]
    for (let i = 0; i < 5; i++) {
      const p = o + 4 * i
      const w = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) ^ k[i]
      h = Math.imul(h ^ w, 0x9e3779b1)
      h ^= h >>> 15
    }
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
    return h ^ (h >>> 13)
  }

  private sameHash(id: number, b: Uint8Array, o: number): boolean {
    const hs = this.hashes
    const base = id * 20
    for (let i = 0; i < 20; i++) if (hs[base + i] !== b[o + i]) return false
    return true
  }

  /** Torrent id for the info hash at b[o..o+20], or -1. */
  find(b: Uint8Array, o: number): number {
    const slots = this.slots
    let s = this.hashInfo(b, o) & this.slotMask
    for (;;) {
      const v = slots[s]
      if (v === 0) return -1
      if (this.sameHash(v - 1, b, o)) return v - 1
      s = (s + 1) & this.slotMask
    }
  }

  private create(b: Uint8Array, o: number): number {
    let id: number
    if (this.freeIds.length > 0) id = this.freeIds.pop()!
    else {
      if (this.idHigh === this.idCap) this.growIds()
      id = this.idHigh++
    }
    this.hashes.set(b.subarray(o, o + 20), id * 20)
    this.inUse[id] = 1
    this.completedCount[id] = 0
    for (let f = 0; f < 2; f++) {
      this.segChunk[f][id] = -1
      this.count[f][id] = 0
      this.leechers[f][id] = 0
    }
    if ((this.torrents + 1) * 2 > this.slots.length) this.growSlots()
    this.insertSlot(id)
    this.torrents++
    return id
  }

  private insertSlot(id: number): void {
    let s = this.hashInfo(this.hashes, id * 20) & this.slotMask
    while (this.slots[s] !== 0) s = (s + 1) & this.slotMask
    this.slots[s] = id + 1
  }

  private growSlots(): void {
    this.slots = new Int32Array(this.slots.length * 2)
    this.slotMask = this.slots.length - 1
    for (let id = 0; id < this.idHigh; id++) if (this.inUse[id] === 1) this.insertSlot(id)
  }

  private growIds(): void {
    const cap = this.idCap * 2
    const grow = <T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(a: T, fill?: number): T => {
      const next = new (a.constructor as new (n: number) => T)(cap)
      if (fill !== undefined) next.fill(fill)
      next.set(a)
      return next
    }
    this.hashes = (() => {
      const next = new Uint8Array(cap * 20)
      next.set(this.hashes)
      return next
    })()
    this.completedCount = grow(this.completedCount)
    this.inUse = grow(this.inUse)
    for (let f = 0; f < 2; f++) {
      this.segChunk[f] = grow(this.segChunk[f], -1)
      this.segOffset[f] = grow(this.segOffset[f])
      this.segClass[f] = grow(this.segClass[f])
      this.count[f] = grow(this.count[f])
      this.leechers[f] = grow(this.leechers[f])
    }
    this.idCap = cap
  }

  private deleteTorrent(id: number): void {
    // Backward-shift deletion keeps probe chains intact without tombstones.
    const mask = this.slotMask
    let s = this.hashInfo(this.hashes, id * 20) & mask
    while (this.slots[s] !== id + 1) s = (s + 1) & mask
    let hole = s
    let j = s
    for (;;) {
      j = (j + 1) & mask
      const v = this.slots[j]
      if (v === 0) break
      const home = this.hashInfo(this.hashes, (v - 1) * 20) & mask
      // Move v into the hole if its home is not in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.slots[hole] = v
        hole = j
      }
    }
    this.slots[hole] = 0
    for (let f = 0 as Family; f < 2; f++) {
      const n = this.count[f][id]
      if (n > 0) {
        const l = this.leechers[f][id]
        this.peers[f] -= n
        this.leecherTotal -= l
        this.seeders -= n - l
      }
      this.releaseSegment(f, id)
    }
    this.inUse[id] = 0
    this.freeIds.push(id)
    this.torrents--
  }

  // ------------------------------------------------------------------------------------------
  // Peer records of one (torrent, family)

  private releaseSegment(f: Family, id: number): void {
    const chunk = this.segChunk[f][id]
    if (chunk >= 0) this.pools[f].release(this.segClass[f][id], chunk, this.segOffset[f][id])
    this.segChunk[f][id] = -1
    this.count[f][id] = 0
    this.leechers[f][id] = 0
    this.indexes[f].delete(id)
  }

  /** Move the (torrent, family) records into a segment of class `cls`. */
  private resize(f: Family, id: number, cls: number): void {
    const pool = this.pools[f]
    const chunk = pool.alloc(cls)
    const offset = pool.lastOffset
    const oldChunk = this.segChunk[f][id]
    if (oldChunk >= 0) {
      const oldOffset = this.segOffset[f][id]
      const bytes = this.count[f][id] * RECORD[f]
      pool.chunks[chunk].set(pool.chunks[oldChunk].subarray(oldOffset, oldOffset + bytes), offset)
      pool.release(this.segClass[f][id], oldChunk, oldOffset)
    }
    this.segChunk[f][id] = chunk
    this.segOffset[f][id] = offset
    this.segClass[f][id] = cls
    // Amortised: a compaction copies the live bytes only after as many bytes were outgrown.
    if (pool.freeBytes > GROWTH_COMPACT_SHARE * pool.chunkBytes && pool.freeBytes > CHUNK_SLACK_BYTES) this.compact(f)
  }

  private indexOf(f: Family, id: number): Int32Array | undefined {
    return this.count[f][id] >= INDEX_MIN ? this.indexes[f].get(id) : undefined
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
  private findPeer(f: Family, id: number, b: Uint8Array, o: number): number {
    const n = this.count[f][id]
    if (n === 0) return -1
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const base = this.segOffset[f][id]
    const R = RECORD[f]
    const K = KEY[f]
    const index = this.indexOf(f, id)
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

  private buildIndex(f: Family, id: number): void {
    const n = this.count[f][id]
    let size = 64
    while (size < n * 2) size *= 2
    const index = new Int32Array(size)
    const mask = size - 1
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const base = this.segOffset[f][id]
    for (let p = 0; p < n; p++) {
      let s = this.hashKey(data, base + p * RECORD[f], KEY[f]) & mask
      while (index[s] !== 0) s = (s + 1) & mask
      index[s] = p + 1
    }
    this.indexes[f].set(id, index)
  }

  /** Index slot holding position `p` (whose key is in the record). */
  private indexSlotOf(f: Family, id: number, index: Int32Array, p: number): number {
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const at = this.segOffset[f][id] + p * RECORD[f]
    const mask = index.length - 1
    let s = this.hashKey(data, at, KEY[f]) & mask
    while (index[s] !== p + 1) s = (s + 1) & mask
    return s
  }

  private indexRemoveSlot(f: Family, id: number, index: Int32Array, slot: number): void {
    const mask = index.length - 1
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const base = this.segOffset[f][id]
    let hole = slot
    let j = slot
    for (;;) {
      j = (j + 1) & mask
      const v = index[j]
      if (v === 0) break
      const home = this.hashKey(data, base + (v - 1) * RECORD[f], KEY[f]) & mask
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        index[hole] = v
        hole = j
      }
    }
    index[hole] = 0
  }

  /** Copy record `from` over record `to` (the old `to` is gone), keeping the index right. */
  private moveRecord(f: Family, id: number, from: number, to: number): void {
    if (from === to) return
    const index = this.indexOf(f, id)
    if (index !== undefined) index[this.indexSlotOf(f, id, index, from)] = to + 1
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const base = this.segOffset[f][id]
    const R = RECORD[f]
    data.copyWithin(base + to * R, base + from * R, base + from * R + R)
  }

  private swapRecords(f: Family, id: number, a: number, b: number): void {
    if (a === b) return
    const index = this.indexOf(f, id)
    if (index !== undefined) {
      const sa = this.indexSlotOf(f, id, index, a)
      const sb = this.indexSlotOf(f, id, index, b)
      index[sa] = b + 1
      index[sb] = a + 1
    }
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const base = this.segOffset[f][id]
    const R = RECORD[f]
    const tmp = this.scratch
    const pa = base + a * R
    const pb = base + b * R
    for (let k = 0; k < R; k++) tmp[k] = data[pa + k]
    for (let k = 0; k < R; k++) data[pa + k] = data[pb + k]
    for (let k = 0; k < R; k++) data[pb + k] = tmp[k]
  }

  /** Remove the peer at `p`, keeping leechers before seeders. */
  private removePeer(f: Family, id: number, p: number): void {
    const index = this.indexOf(f, id)
    if (index !== undefined) this.indexRemoveSlot(f, id, index, this.indexSlotOf(f, id, index, p))
    const n = this.count[f][id]
    const l = this.leechers[f][id]
    if (p < l) {
      // A leecher: fill its place with the last leecher, and that place with the last seeder.
      const lastLeecher = l - 1
      if (index !== undefined && p !== lastLeecher) index[this.indexSlotOf(f, id, index, lastLeecher)] = p + 1
      this.copyRecordRaw(f, id, lastLeecher, p)
      if (lastLeecher !== n - 1) this.moveRecord(f, id, n - 1, lastLeecher)
      this.leechers[f][id] = l - 1
      this.leecherTotal--
    } else {
      if (index !== undefined && p !== n - 1) index[this.indexSlotOf(f, id, index, n - 1)] = p + 1
      this.copyRecordRaw(f, id, n - 1, p)
      this.seeders--
    }
    this.count[f][id] = n - 1
    this.peers[f]--
    if (index !== undefined && n - 1 < INDEX_MIN) this.indexes[f].delete(id)
  }

  private copyRecordRaw(f: Family, id: number, from: number, to: number): void {
    if (from === to) return
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const base = this.segOffset[f][id]
    const R = RECORD[f]
    data.copyWithin(base + to * R, base + from * R, base + from * R + R)
  }

  /** Insert a new peer; returns its position. */
  private insertPeer(f: Family, id: number, req: AnnounceRequest, expiry: number): number {
    const n = this.count[f][id]
    if (this.segChunk[f][id] < 0) this.resize(f, id, classFor(1))
    else if (n === SIZE_CLASSES[this.segClass[f][id]]) this.resize(f, id, this.segClass[f][id] + 1)
    let p = n
    if (!req.isSeeder) {
      // New leecher goes to the end of the leecher range; the first seeder moves to the end.
      const l = this.leechers[f][id]
      if (l < n) this.moveRecord(f, id, l, n)
      p = l
      this.leechers[f][id] = l + 1
      this.leecherTotal++
    } else {
      this.seeders++
    }
    this.count[f][id] = n + 1
    this.peers[f]++
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const at = this.segOffset[f][id] + p * RECORD[f]
    for (let k = 0, n = FAMILY_IP[f], ip = req.ip; k < n; k++) data[at + k] = ip[k]
    data[at + KEY[f] - 2] = req.port >>> 8
    data[at + KEY[f] - 1] = req.port & 0xff
    this.writeMutable(data, at, f, req, expiry)
    const index = this.indexOf(f, id)
    if (index !== undefined) {
      if ((n + 1) * 2 > index.length) this.buildIndex(f, id)
      else {
        const mask = index.length - 1
        let s = this.hashKey(data, at, KEY[f]) & mask
        while (index[s] !== 0) s = (s + 1) & mask
        index[s] = p + 1
      }
    } else if (n + 1 > INDEX_THRESHOLD) {
      this.buildIndex(f, id)
    }
    return p
  }

  private writeMutable(data: Uint8Array, at: number, f: Family, req: AnnounceRequest, expiry: number): void {
    data[at + FLAGS[f]] = req.isSeeder ? SEEDER : 0
    const e = at + EXPIRY[f]
    data[e] = expiry
    data[e + 1] = expiry >>> 8
    data[e + 2] = expiry >>> 16
    data[e + 3] = expiry >>> 24
    for (let k = 0, id = req.peerId, from = req.peerIdOffset, to = at + PEER_ID[f]; k < 20; k++) data[to + k] = id[from + k]
  }

  // ------------------------------------------------------------------------------------------
  // Public operations

  announce(req: AnnounceRequest, now: number, res: AnnounceResult): AnnounceStatus {
    const f: Family = req.ipFamily === 4 ? 0 : 1
    res.status = AnnounceStatus.Ok
    res.peerCount = 0
    let id = this.find(req.infoHash, req.infoHashOffset)
    const stopped = req.event === EVENT_STOPPED
    if (id < 0) {
      if (stopped) {
        res.seeders = res.leechers = res.completed = 0
        return AnnounceStatus.Ok
      }
      if (this.torrents >= this.limits.maxTorrents) {
        this.refusedTorrentLimit++
        res.seeders = res.leechers = res.completed = 0
        res.status = AnnounceStatus.TorrentLimit
        return AnnounceStatus.TorrentLimit
      }
      id = this.create(req.infoHash, req.infoHashOffset)
    }
    // The key (ip, port) as the record stores it.
    const key = this.keyScratch
    for (let k = 0, n = FAMILY_IP[f], ip = req.ip; k < n; k++) key[k] = ip[k]
    key[KEY[f] - 2] = req.port >>> 8
    key[KEY[f] - 1] = req.port & 0xff
    let p = this.findPeer(f, id, key, 0)
    const expiry = now + this.limits.maxPeerAge

    let selfSeeder = false
    let selfStored = false
    if (stopped) {
      if (p >= 0) this.removePeer(f, id, p)
      p = -1
    } else if (p >= 0) {
      const data = this.pools[f].chunks[this.segChunk[f][id]]
      const at = this.segOffset[f][id] + p * RECORD[f]
      const wasSeeder = (data[at + FLAGS[f]] & SEEDER) !== 0
      if (req.event === EVENT_COMPLETED && !wasSeeder) {
        this.completedCount[id]++
        this.completedTotal++
      }
      if (wasSeeder !== req.isSeeder) {
        const l = this.leechers[f][id]
        if (req.isSeeder) {
          this.swapRecords(f, id, p, l - 1)
          p = l - 1
          this.leechers[f][id] = l - 1
          this.leecherTotal--
          this.seeders++
        } else {
          this.swapRecords(f, id, p, l)
          p = l
          this.leechers[f][id] = l + 1
          this.leecherTotal++
          this.seeders--
        }
      }
      const at2 = this.segOffset[f][id] + p * RECORD[f]
      this.writeMutable(data, at2, f, req, expiry)
      selfStored = true
      selfSeeder = req.isSeeder
    } else {
      if (req.event === EVENT_COMPLETED) {
        this.completedCount[id]++
        this.completedTotal++
      }
      if (this.count[0][id] + this.count[1][id] >= this.limits.maxPeersPerTorrent) {
        this.refusedPeerLimit++
        res.status = AnnounceStatus.PeerLimit
      } else {
        p = this.insertPeer(f, id, req, expiry)
        selfStored = true
        selfSeeder = req.isSeeder
      }
    }

    const l0 = this.leechers[0][id]
    const l1 = this.leechers[1][id]
    const s = this.count[0][id] - l0 + this.count[1][id] - l1
    res.seeders = s - (selfStored && selfSeeder ? 1 : 0)
    res.leechers = l0 + l1 - (selfStored && !selfSeeder ? 1 : 0)
    res.completed = this.completedCount[id]
    if (!stopped && req.numWant > 0) this.select(f, id, p, req.isSeeder, req.numWant, res)
    return res.status
  }

  /** Up to `want` random peers of family f, never `self`; a seeder gets leechers when there are any. */
  private select(f: Family, id: number, self: number, isSeeder: boolean, want: number, res: AnnounceResult): void {
    const l = this.leechers[f][id]
    const pool = isSeeder && l > 0 ? l : this.count[f][id]
    if (pool === 0) return
    const selfInPool = self >= 0 && self < pool
    const eligible = pool - (selfInPool ? 1 : 0)
    const take = Math.min(want, eligible)
    if (take === 0) return
    const data = this.pools[f].chunks[this.segChunk[f][id]]
    const base = this.segOffset[f][id]
    const R = RECORD[f]
    const K = KEY[f]
    const out = res.peerBuf
    let o = res.peerBufOffset
    const ids = res.peerIdBuf
    let io = res.peerIdBufOffset
    let taken = 0
    if (take === eligible) {
      for (let p = 0; p < pool; p++) {
        if (p === self) continue
        const at = base + p * R
        // Byte loops, not subarray().set(): a view per peer costs more than the copy.
        for (let k = 0; k < K; k++) out[o + k] = data[at + k]
        o += K
        if (ids) {
          for (let k = 0, from = at + PEER_ID[f]; k < 20; k++) ids[io + k] = data[from + k]
          io += 20
        }
        taken++
      }
    } else {
      // A random start and a stride coprime to the pool visit every position once.
      let p = this.random() % pool
      const stride = STRIDES[this.random() & 7] % pool
      while (taken < take) {
        if (p !== self) {
          const at = base + p * R
          for (let k = 0; k < K; k++) out[o + k] = data[at + k]
          o += K
          if (ids) {
            for (let k = 0, from = at + PEER_ID[f]; k < 20; k++) ids[io + k] = data[from + k]
            io += 20
          }
          taken++
        }
        p += stride
        if (p >= pool) p -= pool
      }
    }
    res.peerCount = taken
  }

  /** Counts of everyone (both families) for the info hash at b[o..o+20]; zeros if unknown. */
  scrape(b: Uint8Array, o: number, out: ScrapeCounts): ScrapeCounts {
    const id = this.find(b, o)
    if (id < 0) {
      out.seeders = out.leechers = out.completed = 0
      return out
    }
    const l = this.leechers[0][id] + this.leechers[1][id]
    out.leechers = l
    out.seeders = this.count[0][id] + this.count[1][id] - l
    out.completed = this.completedCount[id]
    return out
  }

  /**
   * Removes peers whose expiry is before `now`, torrents `isAllowed` refuses, and torrents left
   * empty; shrinks segments that became mostly empty.
   */
  clean(now: number, isAllowed?: (hashes: Uint8Array, offset: number) => boolean): void {
    for (let id = 0; id < this.idHigh; id++) {
      if (this.inUse[id] === 0) continue
      if (isAllowed && !isAllowed(this.hashes, id * 20)) {
        this.deleteTorrent(id)
        continue
      }
      for (let f = 0 as Family; f < 2; f++) {
        const n = this.count[f][id]
        if (n === 0) continue
        const data = this.pools[f].chunks[this.segChunk[f][id]]
        const base = this.segOffset[f][id]
        const R = RECORD[f]
        const E = EXPIRY[f]
        // Downwards: whatever removePeer moves into p was already checked.
        for (let p = n - 1; p >= 0; p--) {
          const e = base + p * R + E
          const expiry = (data[e] | (data[e + 1] << 8) | (data[e + 2] << 16) | (data[e + 3] << 24)) >>> 0
          if (expiry < now) {
            this.removePeer(f, id, p)
            this.peersExpired++
          }
        }
        const left = this.count[f][id]
        if (left === 0) this.releaseSegment(f, id)
        else {
          const cls = this.segClass[f][id]
          if (left * 2 < SIZE_CLASSES[cls] && cls > 0) {
            this.resize(f, id, classFor(left))
            if (this.indexOf(f, id) !== undefined) this.buildIndex(f, id)
          }
        }
      }
      if (this.count[0][id] + this.count[1][id] === 0) this.deleteTorrent(id)
    }
    for (let f = 0 as Family; f < 2; f++) {
      const pool = this.pools[f]
      if (pool.freeBytes > COMPACT_FREE_SHARE * pool.chunkBytes && pool.freeBytes > CHUNK_SLACK_BYTES) this.compact(f)
    }
  }

  /**
   * Segments outgrown by their torrents wait in free lists for torrents of the same size; when
   * swarms grow together nobody reuses them. Past a share of the pool, copy every live segment
   * into fresh chunks and let the old ones go.
   */
  compact(f: 0 | 1): void {
    const old = this.pools[f]
    const fresh = new SegmentPool(old.recordSize)
    const chunks = this.segChunk[f]
    const offsets = this.segOffset[f]
    const classes = this.segClass[f]
    for (let id = 0; id < this.idHigh; id++) {
      if (this.inUse[id] === 0 || chunks[id] < 0) continue
      const bytes = old.segmentBytes(classes[id])
      const chunk = fresh.alloc(classes[id])
      const from = offsets[id]
      fresh.chunks[chunk].set(old.chunks[chunks[id]].subarray(from, from + bytes), fresh.lastOffset)
      chunks[id] = chunk
      offsets[id] = fresh.lastOffset
    }
    this.pools[f] = fresh
  }

  /** Every torrent with its counts (full-scrape snapshots). */
  forEachTorrent(fn: (hashes: Uint8Array, offset: number, seeders: number, leechers: number, completed: number) => void): void {
    for (let id = 0; id < this.idHigh; id++) {
      if (this.inUse[id] === 0) continue
      const l = this.leechers[0][id] + this.leechers[1][id]
      fn(this.hashes, id * 20, this.count[0][id] + this.count[1][id] - l, l, this.completedCount[id])
    }
  }

  /** Bytes held in peer chunks (for memory reports). */
  poolBytes(): number {
    return this.pools[0].chunkBytes + this.pools[1].chunkBytes
  }

  /** Figures for the metrics module. */
  gauges(): {
    torrents(): number
    peers(v: 0 | 1): number
    seeders(): number
    leechers(): number
    completed(): number
    peersExpired(): number
    refusals(): Record<string, number>
  } {
    return {
      torrents: () => this.torrents,
      peers: v => this.peers[v],
      seeders: () => this.seeders,
      leechers: () => this.leecherTotal,
      completed: () => this.completedTotal,
      peersExpired: () => this.peersExpired,
      refusals: () => ({torrent_limit: this.refusedTorrentLimit, peer_limit: this.refusedPeerLimit}),
    }
  }
}
