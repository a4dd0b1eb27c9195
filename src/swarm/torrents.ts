/**
 * The torrent table of the compact swarm: torrent ids keyed by a keyed hash of the info hash, in
 * an open-addressing table; per-torrent fields live in typed arrays indexed by id (here and in
 * each family's `PeerLists`).
 */
export class TorrentTable {
  private slots: Int32Array
  private slotMask: number
  /** Info hashes, 20 bytes per id. */
  hashes: Uint8Array
  completed: Uint32Array
  /** 1 where the id holds a torrent. */
  inUse: Uint8Array
  /** Ids allocated so far; every id in use is below it. */
  idHigh = 0
  private idCap: number
  private readonly freeIds: number[] = []
  /** Torrents held. */
  size = 0

  constructor(private readonly key: Int32Array) {
    this.idCap = 1024
    this.slots = new Int32Array(2048)
    this.slotMask = 2047
    this.hashes = new Uint8Array(this.idCap * 20)
    this.completed = new Uint32Array(this.idCap)
    this.inUse = new Uint8Array(this.idCap)
  }

  /** Ids the per-torrent arrays must hold (grows when `create` needs more). */
  get capacity(): number {
    return this.idCap
  }

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

  /** A new torrent for the info hash at b[o..o+20] (not in the table); returns its id. */
  create(b: Uint8Array, o: number): number {
    let id: number
    if (this.freeIds.length > 0) id = this.freeIds.pop()!
    else {
      if (this.idHigh === this.idCap) this.growIds()
      id = this.idHigh++
    }
    this.hashes.set(b.subarray(o, o + 20), id * 20)
    this.inUse[id] = 1
    this.completed[id] = 0
    if ((this.size + 1) * 2 > this.slots.length) this.growSlots()
    this.insertSlot(id)
    this.size++
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
    const hashes = new Uint8Array(cap * 20)
    hashes.set(this.hashes)
    this.hashes = hashes
    this.completed = grow(this.completed, cap)
    this.inUse = grow(this.inUse, cap)
    this.idCap = cap
  }

  /** Removes torrent `id` from the table; its id is free for reuse. */
  delete(id: number): void {
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
    this.inUse[id] = 0
    this.freeIds.push(id)
    this.size--
  }
}

/** A copy of `a` with room for `cap` entries; new entries hold `fill` (default 0). */
export function grow<T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(a: T, cap: number, fill?: number): T {
  const next = new (a.constructor as new (n: number) => T)(cap)
  if (fill !== undefined) next.fill(fill)
  next.set(a)
  return next
}
