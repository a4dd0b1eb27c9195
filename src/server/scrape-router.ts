import {addWorkerCounts} from '../metrics/index.js'
import {ScrapeCounts} from '../swarm/index.js'
import {
  FRAME,
  ScrapeRequestFrame,
  ScrapeResponseFrame,
  scrapeRequestBytes,
  scrapeResponseBytes,
  writeScrapeRequestEntry,
  writeScrapeHead,
  writeScrapeResponseEntry,
} from './frames.js'
import type {FrameHandler} from './mesh.js'
import type {WorkerContext} from './runtime/worker-api.js'

/** What can count a torrent by its 20 info-hash bytes (either swarm engine). */
export interface ScrapeCounter {
  scrape(b: Uint8Array, o: number, out: ScrapeCounts): unknown
}

/**
 * The end of a scrape: `counts[3i..3i+2]` are `[seeders, completed, leechers]` of hash i (the
 * array may be longer, and is the router's again once `done` returns), or null when another
 * worker's part could not be had (its link was full, too many scrapes were waiting, or it did
 * not answer in time): answer the client MESSAGE.busy.
 */
export type ScrapeDone = (counts: Uint32Array | null) => void

export interface ScrapeLimits {
  /** Scrapes waiting for other workers at once; more are refused. */
  maxPending: number
  /** Info hashes those scrapes hold (their counts and the callers' copies grow with them). */
  maxPendingHashes: number
  /** A scrape still waiting after this long (to within a sweep) ends in failure. */
  timeoutMs: number
}

/**
 * A part normally comes back within a turn or two of the other worker's loop. 4,096 scrapes in
 * flight is 40 ms at 100,000 cross-shard scrapes a second; 2^17 hashes is at most a few MiB of
 * counts and hashes. It is also below what a link takes: their parts are at most 2^17 * 22 bytes
 * (about 1.4 MiB per link with 2 workers, less with more), so a scrape flood is turned away here
 * before it fills a link, and announces forwarded over the link still get through.
 * 5 s is well past any pause a worker makes while serving (GC, a big access-list reload), and
 * under a UDP client's first retry (15 s).
 */
export const SCRAPE_LIMITS: Readonly<ScrapeLimits> = {maxPending: 4096, maxPendingHashes: 1 << 17, timeoutMs: 5000}

const SWEEP_MS = 500

interface Pending {
  counts: Uint32Array
  waiting: number
  hashes: number
  /** The sweep it was made in. */
  born: number
  done: ScrapeDone
}

/**
 * Scrapes across swarm shards: hashes this worker owns are counted at once, the others are asked
 * of their owners over the mesh (one frame per other worker, whatever the hash count), and
 * `done` runs when every part has come back, or with null when one cannot.
 */
export class ScrapeRouter implements FrameHandler {
  private readonly pending = new Map<number, Pending>()
  private pendingHashes = 0
  private nextId = 1
  private readonly scratch = new ScrapeCounts()
  private readonly limits: ScrapeLimits
  private readonly timeoutSweeps: number
  private sweeps = 0
  private sweeper?: NodeJS.Timeout
  /** Scrapes ended in failure: refused at once, and timed out. */
  readonly failed = {refused: 0, timedOut: 0}
  // Reused per scrape: owner of each hash, counts of an all-local scrape, frames, per-worker fill.
  private owners = new Uint16Array(256)
  private localCounts = new Uint32Array(3 * 256)
  private frames = Buffer.allocUnsafe(1024)
  private readonly perWorker: Uint32Array
  private readonly frameAt: Uint32Array
  private readonly request = new ScrapeRequestFrame()
  private readonly response = new ScrapeResponseFrame()

  constructor(
    private readonly ctx: WorkerContext,
    private readonly swarm: ScrapeCounter,
    limits: Partial<ScrapeLimits> = {},
  ) {
    this.limits = {...SCRAPE_LIMITS, ...limits}
    this.timeoutSweeps = Math.max(1, Math.ceil(this.limits.timeoutMs / SWEEP_MS))
    this.perWorker = new Uint32Array(ctx.count)
    this.frameAt = new Uint32Array(ctx.count)
    // Both are answered MESSAGE.busy.
    addWorkerCounts(ctx.registry, {refusals: () => ({busy: this.failed.refused, scrape_timeout: this.failed.timedOut})})
  }

  /** Scrapes waiting for other workers. */
  get waiting(): number {
    return this.pending.size
  }

  /** Whether every hash at buf[offset + 20*i] is owned by this worker. */
  allLocal(buf: Uint8Array, offset: number, count: number): boolean {
    if (!this.ctx.mesh) return true
    for (let i = 0; i < count; i++) if (this.ctx.ownerOf(buf, offset + 20 * i) !== this.ctx.index) return false
    return true
  }

  /**
   * Counts each hash at buf[offset + 20*i]. When `done` has run before this returns (all hashes
   * local, or a refusal), returns true; else `done` runs later and this returns false.
   */
  scrape(buf: Uint8Array, offset: number, count: number, done: ScrapeDone): boolean {
    const {mesh, index: self} = this.ctx
    const c = this.scratch
    let remote = 0
    if (mesh) {
      if (this.owners.length < count) this.owners = new Uint16Array(count)
      for (let i = 0; i < count; i++) {
        const owner = this.ctx.ownerOf(buf, offset + 20 * i)
        this.owners[i] = owner
        if (owner !== self) remote++
      }
    }
    if (remote === 0) {
      if (this.localCounts.length < 3 * count) this.localCounts = new Uint32Array(3 * count)
      const counts = this.localCounts
      for (let i = 0; i < count; i++) {
        this.swarm.scrape(buf, offset + 20 * i, c)
        counts[3 * i] = c.seeders
        counts[3 * i + 1] = c.completed
        counts[3 * i + 2] = c.leechers
      }
      done(counts)
      return true
    }
    if (this.pending.size >= this.limits.maxPending || this.pendingHashes + count > this.limits.maxPendingHashes) return this.refuse(done)
    const owners = this.owners
    const counts = new Uint32Array(3 * count)
    // One frame per other worker: the frames lie side by side in one reused buffer.
    const perWorker = this.perWorker.fill(0)
    for (let i = 0; i < count; i++) perWorker[owners[i]]++
    let bytes = 0
    for (let w = 0; w < perWorker.length; w++) {
      if (w === self || perWorker[w] === 0) continue
      this.frameAt[w] = bytes
      bytes += scrapeRequestBytes(perWorker[w])
    }
    if (this.frames.length < bytes) this.frames = Buffer.allocUnsafe(bytes)
    const frames = this.frames
    const id = this.nextId
    this.nextId = (id + 1) >>> 0 || 1
    for (let w = 0; w < perWorker.length; w++) {
      if (w === self || perWorker[w] === 0) continue
      writeScrapeHead(frames, this.frameAt[w], id, perWorker[w])
      perWorker[w] = 0
    }
    for (let i = 0; i < count; i++) {
      const at = offset + 20 * i
      const owner = owners[i]
      if (owner === self) {
        this.swarm.scrape(buf, at, c)
        counts[3 * i] = c.seeders
        counts[3 * i + 1] = c.completed
        counts[3 * i + 2] = c.leechers
        continue
      }
      writeScrapeRequestEntry(frames, this.frameAt[owner], perWorker[owner]++, i, buf, at)
    }
    let waiting = 0
    for (let w = 0; w < perWorker.length; w++) {
      if (w === self || perWorker[w] === 0) continue
      // A part that cannot be queued ends the scrape now; parts already sent come back to no one.
      if (!mesh!.send(w, FRAME.scrapeRequest, frames, this.frameAt[w], scrapeRequestBytes(perWorker[w]))) return this.refuse(done)
      waiting++
    }
    this.pending.set(id, {counts, waiting, hashes: count, born: this.sweeps, done})
    this.pendingHashes += count
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref()
    return false
  }

  private refuse(done: ScrapeDone): true {
    this.failed.refused++
    done(null)
    return true
  }

  /** Ends the scrapes that have waited too long (the map is in age order). */
  private sweep(): void {
    this.sweeps++
    for (const [id, p] of this.pending) {
      if (this.sweeps - p.born < this.timeoutSweeps) break
      this.pending.delete(id)
      this.pendingHashes -= p.hashes
      this.failed.timedOut++
      p.done(null)
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  /** Handles the router's mesh frames; returns false for frames that are not its own. */
  onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): boolean {
    if (type === FRAME.scrapeRequest) {
      const q = this.request
      if (!q.decode(buf, offset, length)) return true
      const n = q.count
      const size = scrapeResponseBytes(n)
      if (this.frames.length < size) this.frames = Buffer.allocUnsafe(size)
      const reply = this.frames
      writeScrapeHead(reply, 0, q.id, n)
      const c = this.scratch
      for (let k = 0; k < n; k++) {
        this.swarm.scrape(buf, q.hashOffset(k), c)
        writeScrapeResponseEntry(reply, 0, k, q.index(k), c.seeders, c.completed, c.leechers)
      }
      // Refused only at the link's hard bound (counted); the asking worker's scrape then times out.
      this.ctx.mesh!.answer(from, FRAME.scrapeResponse, reply, 0, size)
      return true
    }
    if (type === FRAME.scrapeResponse) {
      const r = this.response
      if (!r.decode(buf, offset, length)) return true
      const pending = this.pending.get(r.id)
      if (!pending) return true
      const counts = pending.counts
      for (let k = 0; k < r.count; k++) {
        const i = r.index(k)
        if (3 * i >= counts.length) continue
        counts[3 * i] = r.seeders(k)
        counts[3 * i + 1] = r.completed(k)
        counts[3 * i + 2] = r.leechers(k)
      }
      if (--pending.waiting === 0) {
        this.pending.delete(r.id)
        this.pendingHashes -= pending.hashes
        pending.done(counts)
      }
      return true
    }
    return false
  }
}
