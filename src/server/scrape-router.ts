import {ScrapeCounts} from '../swarm/index.js'
import type {WorkerContext} from './runtime.js'

/** Mesh frame types the scrape router uses; protocol workers number their own frames from 16. */
export const FRAME_SCRAPE_REQUEST = 2
export const FRAME_SCRAPE_RESPONSE = 3

/** What can count a torrent by its 20 info-hash bytes (either swarm engine). */
export interface ScrapeCounter {
  scrape(b: Uint8Array, o: number, out: ScrapeCounts): unknown
}

interface Pending {
  counts: Uint32Array
  waiting: number
  done: (counts: Uint32Array) => void
}

/**
 * Scrapes across swarm shards: hashes this worker owns are counted at once, the others are asked
 * of their owners over the mesh, and `done` runs when every part has come back.
 */
export class ScrapeRouter {
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private readonly scratch = new ScrapeCounts()

  constructor(private readonly ctx: WorkerContext, private readonly swarm: ScrapeCounter) {}

  /** Whether every hash at buf[offset + 20*i] is owned by this worker. */
  allLocal(buf: Uint8Array, offset: number, count: number): boolean {
    if (!this.ctx.mesh) return true
    for (let i = 0; i < count; i++) if (this.ctx.ownerOf(buf, offset + 20 * i) !== this.ctx.index) return false
    return true
  }

  /**
   * Counts `[seeders, completed, leechers]` for each hash at buf[offset + 20*i]. When all are
   * local, `done` runs before this returns true; else it runs later and this returns false.
   */
  scrape(buf: Uint8Array, offset: number, count: number, done: (counts: Uint32Array) => void): boolean {
    const counts = new Uint32Array(count * 3)
    const c = this.scratch
    const perOwner = new Map<number, number[]>()
    for (let i = 0; i < count; i++) {
      const at = offset + 20 * i
      const owner = this.ctx.mesh ? this.ctx.ownerOf(buf, at) : this.ctx.index
      if (owner === this.ctx.index) {
        this.swarm.scrape(buf, at, c)
        counts[3 * i] = c.seeders
        counts[3 * i + 1] = c.completed
        counts[3 * i + 2] = c.leechers
      } else {
        let list = perOwner.get(owner)
        if (!list) perOwner.set(owner, (list = []))
        list.push(i)
      }
    }
    if (perOwner.size === 0) {
      done(counts)
      return true
    }
    const id = this.nextId++
    this.pending.set(id, {counts, waiting: perOwner.size, done})
    for (const [owner, indices] of perOwner) {
      const frame = Buffer.allocUnsafe(6 + 22 * indices.length)
      frame.writeUInt32LE(id, 0)
      frame.writeUInt16LE(indices.length, 4)
      indices.forEach((i, k) => {
        frame.writeUInt16LE(i, 6 + 22 * k)
        frame.set(buf.subarray(offset + 20 * i, offset + 20 * i + 20), 8 + 22 * k)
      })
      this.ctx.mesh!.send(owner, FRAME_SCRAPE_REQUEST, frame)
    }
    return false
  }

  /** Handles the router's mesh frames; returns false for frames that are not its own. */
  onFrame(from: number, type: number, buf: Buffer, offset: number): boolean {
    if (type === FRAME_SCRAPE_REQUEST) {
      const id = buf.readUInt32LE(offset)
      const n = buf.readUInt16LE(offset + 4)
      const reply = Buffer.allocUnsafe(6 + 14 * n)
      reply.writeUInt32LE(id, 0)
      reply.writeUInt16LE(n, 4)
      const c = this.scratch
      for (let k = 0; k < n; k++) {
        const at = offset + 6 + 22 * k
        this.swarm.scrape(buf, at + 2, c)
        reply.writeUInt16LE(buf.readUInt16LE(at), 6 + 14 * k)
        reply.writeUInt32LE(c.seeders, 8 + 14 * k)
        reply.writeUInt32LE(c.completed, 12 + 14 * k)
        reply.writeUInt32LE(c.leechers, 16 + 14 * k)
      }
      this.ctx.mesh!.send(from, FRAME_SCRAPE_RESPONSE, reply)
      return true
    }
    if (type === FRAME_SCRAPE_RESPONSE) {
      const id = buf.readUInt32LE(offset)
      const pending = this.pending.get(id)
      if (!pending) return true
      const n = buf.readUInt16LE(offset + 4)
      for (let k = 0; k < n; k++) {
        const at = offset + 6 + 14 * k
        const i = buf.readUInt16LE(at)
        pending.counts[3 * i] = buf.readUInt32LE(at + 2)
        pending.counts[3 * i + 1] = buf.readUInt32LE(at + 6)
        pending.counts[3 * i + 2] = buf.readUInt32LE(at + 10)
      }
      if (--pending.waiting === 0) {
        this.pending.delete(id)
        pending.done(pending.counts)
      }
      return true
    }
    return false
  }
}
