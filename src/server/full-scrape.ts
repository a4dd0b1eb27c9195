/**
 * The full scrape (a scrape that names no torrent: every torrent's counts), for the protocols
 * that offer it (HTTP, WebSocket). Each worker builds its shard's part every
 * `full_scrape_interval` seconds and shares it with the other workers over the mesh; each keeps
 * every worker's latest part and the reply merged from them until a part changes. What a part
 * holds and how parts merge is the protocol's: its FullScrapeFormat (entries bencoded, or JSON).
 *
 * Parts go in chunks of at most `chunkBytes`, so that the largest frame a protocol sends stays
 * bounded (`mesh.limitFrames`) however many torrents a shard holds, and a part never fills a
 * link: a chunk is queued only while the link holds less than a chunk, so requests and answers
 * keep their room and go between chunks. What is held is bounded by the workers' parts: one
 * complete part per worker (a new one replaces it) and one being received.
 */
import {FRAME, FULL_SCRAPE_CHUNK_HEAD, FullScrapeChunkFrame, writeFullScrapeChunk} from './frames.js'
import type {FrameHandler} from './mesh.js'
import type {WorkerContext} from './runtime/worker-api.js'

export interface FullScrapeFormat {
  /** This worker's part, built from its shard now. */
  part(): Buffer
  /** The reply from each worker's latest part (undefined for a worker whose first has not come). */
  merge(parts: readonly (Buffer | undefined)[]): Buffer
}

/**
 * Bytes of a part one chunk carries: the mesh's read budget per turn, an eighth of a link's
 * request bound. A chunk is written whole, so answers queued meanwhile wait behind at most one.
 */
export const FULL_SCRAPE_CHUNK = 256 << 10

/** How soon a part that waits for room on a link is tried again. */
const RETRY_MS = 1

/** A part on its way to one other worker. */
class Outgoing {
  part: Buffer | null = null
  generation = 0
  /** The next chunk to send. */
  next = 0
  /** The newest part built while `part` was being sent: it goes next (an older one is dropped). */
  waiting: Buffer | null = null
  waitingGeneration = 0
}

/** A part coming from one other worker. */
class Incoming {
  generation = 0
  /** The chunk expected next; -1 when none is (wait for a part's first chunk). */
  next = -1
  chunks: Buffer[] = []
}

export class FullScrape implements FrameHandler {
  /** Each worker's latest part, this one's included. */
  private readonly parts: (Buffer | undefined)[]
  private merged: Buffer | null = null
  private generation = 0
  private readonly out: Outgoing[] = []
  private readonly in: Incoming[] = []
  private readonly chunk = new FullScrapeChunkFrame()
  /** Chunks are written here; the mesh copies them. */
  private readonly scratch: Buffer
  private timer?: NodeJS.Timeout
  private retry?: NodeJS.Timeout
  private closed = false

  constructor(
    private readonly ctx: Pick<WorkerContext, 'index' | 'count' | 'mesh'>,
    private readonly format: FullScrapeFormat,
    /** How often this worker's part is rebuilt (ms). */
    private readonly intervalMs: number,
    private readonly chunkBytes = FULL_SCRAPE_CHUNK,
  ) {
    this.parts = new Array(ctx.count).fill(undefined)
    for (let w = 0; w < ctx.count; w++) {
      this.out.push(new Outgoing())
      this.in.push(new Incoming())
    }
    this.scratch = Buffer.allocUnsafe(ctx.mesh ? this.maxFrame : 0)
  }

  /** The largest frame this sends (a protocol's `mesh.limitFrames` must allow it). */
  get maxFrame(): number {
    return FULL_SCRAPE_CHUNK_HEAD + this.chunkBytes
  }

  /** Builds this worker's part now and on every interval. */
  start(): void {
    this.build()
    this.timer = setInterval(() => this.build(), this.intervalMs)
    this.timer.unref()
  }

  /** The reply to a full scrape: the same Buffer until a part changes, and never changed itself. */
  reply(): Buffer {
    this.merged ??= this.format.merge(this.parts)
    return this.merged
  }

  /** Builds this worker's part and sends it to the other workers. */
  build(): void {
    const part = this.format.part()
    this.parts[this.ctx.index] = part
    this.merged = null
    if (!this.ctx.mesh) return
    const generation = (this.generation = (this.generation + 1) >>> 0)
    for (let w = 0; w < this.ctx.count; w++) {
      if (w === this.ctx.index) continue
      const out = this.out[w]
      if (out.part !== null) {
        out.waiting = part
        out.waitingGeneration = generation
      } else {
        out.part = part
        out.generation = generation
        out.next = 0
      }
    }
    this.send()
  }

  /** Queues chunks while their links have room; tries again soon for those that had none. */
  private send(): void {
    this.retry = undefined
    const mesh = this.ctx.mesh!
    const size = this.chunkBytes
    let more = false
    for (let w = 0; w < this.ctx.count; w++) {
      const out = this.out[w]
      while (out.part !== null && mesh.queued(w) < size) {
        const part = out.part
        const start = out.next * size
        const end = Math.min(start + size, part.length)
        const last = end === part.length
        const length = writeFullScrapeChunk(this.scratch, 0, out.generation, out.next, last, part, start, end)
        // Refused at the link's request bound: the same chunk is tried again.
        if (!mesh.send(w, FRAME.fullScrapeChunk, this.scratch, 0, length)) break
        if (last) {
          out.part = out.waiting
          out.generation = out.waitingGeneration
          out.next = 0
          out.waiting = null
        } else out.next++
      }
      if (out.part !== null) more = true
    }
    if (more && !this.closed) {
      this.retry = setTimeout(() => this.send(), RETRY_MS)
      this.retry.unref()
    }
  }

  /** Handles full-scrape chunks; false for frames that are not. */
  onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): boolean {
    if (type !== FRAME.fullScrapeChunk) return false
    const c = this.chunk
    if (!c.decode(buf, offset, length) || from === this.ctx.index || from >= this.ctx.count) return true
    const incoming = this.in[from]
    if (c.index === 0) {
      incoming.generation = c.generation
      incoming.next = 0
      incoming.chunks = []
    } else if (c.generation !== incoming.generation || c.index !== incoming.next) {
      // Out of turn (never on a link, which keeps order and loses nothing): wait for the next part.
      incoming.next = -1
      incoming.chunks = []
      return true
    }
    // A copy: the mesh reuses its buffer.
    incoming.chunks.push(Buffer.from(buf.subarray(c.start, c.end)))
    incoming.next++
    if (c.last) {
      const chunks = incoming.chunks
      this.parts[from] = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
      this.merged = null
      incoming.next = -1
      incoming.chunks = []
    }
    return true
  }

  close(): void {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    if (this.retry) clearTimeout(this.retry)
  }
}
