import {createConnection, createServer, type Server, type Socket} from 'node:net'
import {join} from 'node:path'
import {unlinkSync} from 'node:fs'

/**
 * Direct links between worker processes over Unix domain sockets, so that a worker can hand a
 * request to the worker that owns its swarm shard without a hop through the primary.
 * Frames are `[u32 length][u8 type][payload]` (frames.ts owns every type and payload); frames for one peer are gathered during a tick
 * and written together, in writes of at most 64 KiB, answers first.
 *
 * Every link is bounded in bytes: what is queued to it (the outbox and what its socket has not
 * yet handed to the kernel). Past the bound a frame is dropped, counted, and `send`/`answer`
 * return false so that the caller can answer its client. Reading is bounded too: a frame longer
 * than any worker sends breaks the link, and one link is read for at most `readBudget` bytes
 * before the worker's own clients get their turn.
 */
export type MeshHandler = (from: number, type: number, buf: Buffer, offset: number, length: number) => void

/** A part of a worker that handles some frame types (the scrape router, forwarding, full scrape). */
export interface FrameHandler {
  /** Handles the frame `buf[offset, offset + length)` if its type is this part's; false if not. */
  onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): boolean
}

export interface MeshLimits {
  /** Requests are refused once this many bytes are queued to the link. */
  requestBytes: number
  /** Answers are refused once this many bytes are queued to the link (the hard bound). */
  answerBytes: number
  /** Largest frame payload sent or read; a longer one read from a link breaks the link. */
  maxFrame: number
  /** Bytes read from one link before it pauses until the event loop's next turn. */
  readBudget: number
}

/**
 * Why answers get the higher bound and leave first: dropping a request costs that one request,
 * and the worker that wanted to send it learns so at once and can answer its client (busy) or
 * treat it as a lost packet. Dropping an answer also wastes the work done for it and leaves the
 * asking worker's state waiting for nothing until its timeout. And answers are made only for
 * requests the other worker could queue under its own request bound, so they cannot outgrow it
 * by much unless that worker stops reading: the hard bound is for that case.
 * 2 MiB of requests is about 2,700 cross-shard UDP scrapes (35 hashes each), more than a turn's
 * batch of datagrams can make (1,024), and some tens of milliseconds of the receiver's work.
 */
export const MESH_LIMITS: Readonly<MeshLimits> = {
  requestBytes: 2 << 20,
  answerBytes: 8 << 20,
  // A default until the protocol worker declares its largest frame (every one does, full
  // scrape on or off: parts travel in chunks); see `limitFrames`.
  maxFrame: 1 << 30,
  // A turn's share for another worker's frames, of the order of what one turn gives the
  // worker's own UDP socket (up to 1,024 datagrams). Without it, one turn under a scrape flood
  // read up to 1 MB of frames from a link (76 ms); with it, at most about 290 KB.
  readBudget: 256 << 10,
}

const HEADER = 5
/** A write hands at most this much to the socket, so that answers queued meanwhile go first. */
const WRITE_BATCH = 64 << 10

export function meshSocketPath(dir: string, index: number): string {
  return join(dir, `w${index}.sock`)
}

/** Frames waiting for a write, oldest first. */
class FrameQueue {
  private frames: (Buffer | undefined)[] = []
  private head = 0
  bytes = 0

  push(frame: Buffer): void {
    this.frames.push(frame)
    this.bytes += frame.length
  }

  /** Moves frames to `into` until `room` bytes are taken or none are left; returns the bytes. */
  take(into: Buffer[], room: number): number {
    let taken = 0
    const frames = this.frames
    while (this.head < frames.length && taken < room) {
      const frame = frames[this.head]!
      frames[this.head++] = undefined
      taken += frame.length
      into.push(frame)
    }
    if (this.head === frames.length) {
      frames.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head > frames.length >> 1) {
      this.frames = frames.slice(this.head)
      this.head = 0
    }
    this.bytes -= taken
    return taken
  }
}

class OutLink {
  readonly answers = new FrameQueue()
  readonly requests = new FrameQueue()
  /** A write is with the socket; its callback writes the next batch. */
  writing = false
  readonly written: (error?: Error | null) => void

  constructor(
    readonly socket: Socket,
    next: (link: OutLink) => void,
  ) {
    this.written = error => {
      this.writing = false
      if (!error) next(this)
    }
  }

  /** Bytes queued to this link: the outbox and what the socket still holds. */
  queued(): number {
    return this.answers.bytes + this.requests.bytes + this.socket.writableLength
  }
}

/** Turns one link's bytes into frames: the sender's index (one byte), then frames. */
export class FrameReader {
  from = -1
  private readonly head = Buffer.alloc(HEADER)
  private headFill = 0
  /** The frame being filled, when it spans reads (its length is known). */
  private body: Buffer | null = null
  private bodyFill = 0
  private type = 0

  constructor(
    private readonly limits: Readonly<MeshLimits>,
    private readonly handler: MeshHandler,
  ) {}

  /**
   * Handles every frame `chunk` completes. Returns the length of a frame longer than
   * `limits.maxFrame` (nothing is allocated for it, and the link is broken), else -1.
   */
  push(chunk: Buffer): number {
    const n = chunk.length
    let pos = 0
    if (this.from < 0 && n > 0) this.from = chunk[pos++]
    while (pos < n) {
      if (this.body) {
        const body = this.body
        const take = Math.min(body.length - this.bodyFill, n - pos)
        chunk.copy(body, this.bodyFill, pos, pos + take)
        this.bodyFill += take
        pos += take
        if (this.bodyFill < body.length) return -1
        this.body = null
        this.handler(this.from, this.type, body, 0, body.length)
        continue
      }
      let length: number
      let type: number
      if (this.headFill === 0 && n - pos >= HEADER) {
        length = chunk.readUInt32LE(pos)
        type = chunk[pos + 4]
        if (length > this.limits.maxFrame) return length
        pos += HEADER
        if (n - pos >= length) {
          // The whole frame is in this read: handled where it lies.
          this.handler(this.from, type, chunk, pos, length)
          pos += length
          continue
        }
      } else {
        // A header split across reads.
        while (this.headFill < HEADER && pos < n) this.head[this.headFill++] = chunk[pos++]
        if (this.headFill < HEADER) return -1
        this.headFill = 0
        length = this.head.readUInt32LE(0)
        type = this.head[4]
        if (length > this.limits.maxFrame) return length
        if (length === 0) {
          this.handler(this.from, type, this.head, HEADER, 0)
          continue
        }
      }
      this.body = Buffer.allocUnsafe(length)
      this.bodyFill = 0
      this.type = type
    }
    return -1
  }
}

export class Mesh {
  private server?: Server
  private readonly out: (OutLink | undefined)[] = []
  private readonly incoming = new Set<Socket>()
  private flushScheduled = false
  private handler: MeshHandler = () => {}
  private closing = false
  private readonly limits: MeshLimits
  private readonly batch: Buffer[] = []
  /** Frames refused because their link was full, by kind. */
  readonly dropped = {requests: 0, answers: 0, tooLarge: 0}
  /** Frames and bytes (headers included) queued to other workers and read from them. */
  readonly traffic = {sentFrames: 0, sentBytes: 0, receivedFrames: 0, receivedBytes: 0}

  constructor(
    readonly index: number,
    readonly count: number,
    readonly dir: string,
    private readonly onBroken: (reason: string) => void,
    limits: Partial<MeshLimits> = {},
  ) {
    this.limits = {...MESH_LIMITS, ...limits}
  }

  onMessage(handler: MeshHandler): void {
    this.handler = handler
  }

  /** Hands every frame to the first of `parts` whose type it is (null parts, ones a worker lacks, are left out). */
  route(parts: readonly (FrameHandler | null)[]): void {
    const list = parts.filter(part => part !== null)
    this.onMessage((from, type, buf, offset, length) => {
      for (let i = 0; i < list.length; i++) if (list[i].onFrame(from, type, buf, offset, length)) return
    })
  }

  /**
   * The largest frame payload this protocol's workers send (every worker of a tracker declares
   * the same). A longer frame read from a link breaks it; a longer one is never sent.
   */
  limitFrames(maxFrame: number): void {
    this.limits.maxFrame = maxFrame
  }

  /** Drops by reason, for `tracker_dropped_total`. */
  drops(): Record<string, number> {
    return {mesh_queue_full: this.dropped.requests + this.dropped.answers, mesh_frame_too_large: this.dropped.tooLarge}
  }

  /** Bytes queued to worker `to` (outbox and socket). */
  queued(to: number): number {
    return this.out[to]?.queued() ?? 0
  }

  /** Listen for the other workers. Call on every worker before `connect`. */
  async listen(): Promise<void> {
    const path = meshSocketPath(this.dir, this.index)
    try {
      unlinkSync(path)
    } catch {
      // no stale socket
    }
    this.server = createServer(socket => this.accept(socket))
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject)
      this.server!.listen(path, () => resolve())
    })
  }

  /** Connect to every other worker (they must be listening). */
  async connect(): Promise<void> {
    const jobs: Promise<void>[] = []
    for (let i = 0; i < this.count; i++) {
      if (i === this.index) continue
      jobs.push(
        new Promise((resolve, reject) => {
          const socket = createConnection(meshSocketPath(this.dir, i), () => {
            socket.off('error', reject)
            socket.setNoDelay(true)
            // Tell the peer who we are: one byte.
            socket.write(Buffer.from([this.index]))
            this.out[i] = new OutLink(socket, link => this.write(link))
            socket.on('error', error => this.broken(`link to worker ${i} failed: ${error.message}`))
            socket.on('close', () => this.broken(`link to worker ${i} closed`))
            resolve()
          })
          socket.once('error', reject)
        }),
      )
    }
    await Promise.all(jobs)
  }

  private accept(socket: Socket): void {
    this.incoming.add(socket)
    // The handler is read per frame: the protocol worker sets it after links are accepted.
    const traffic = this.traffic
    const reader = new FrameReader(this.limits, (from, type, buf, offset, length) => {
      traffic.receivedFrames++
      this.handler(from, type, buf, offset, length)
    })
    const budget = this.limits.readBudget
    let read = 0
    const resume = (): void => {
      read = 0
      if (!socket.destroyed) socket.resume()
    }
    socket.on('data', (chunk: Buffer) => {
      if (reader.from < 0 && chunk.length > 0 && (chunk[0] >= this.count || chunk[0] === this.index)) {
        this.broken(`a link says it comes from worker ${chunk[0]}, which is not one of the other ${this.count - 1}`)
        socket.destroy()
        return
      }
      const tooLong = reader.push(chunk)
      if (tooLong >= 0) {
        this.broken(`worker ${reader.from} sent a frame of ${tooLong} bytes, more than the largest any worker sends (${this.limits.maxFrame})`)
        socket.destroy()
        return
      }
      read += chunk.length
      traffic.receivedBytes += chunk.length
      if (read >= budget) {
        // The rest waits for the next turn (the kernel holds it; the sender's bound applies).
        socket.pause()
        setImmediate(resume)
      }
    })
    const name = (): string => (reader.from < 0 ? 'a link from a worker that had not said which' : `link from worker ${reader.from}`)
    socket.on('error', error => this.broken(`${name()} failed: ${error.message}`))
    socket.on('close', () => {
      this.incoming.delete(socket)
      this.broken(`${name()} closed`)
    })
  }

  private broken(reason: string): void {
    if (!this.closing) this.onBroken(reason)
  }

  /**
   * Queues a request (or any frame that is not an answer) for worker `to`; false when the link
   * holds `requestBytes` or more, and the frame is dropped (counted). `payload` is copied now,
   * so the caller may reuse its buffer.
   */
  send(to: number, type: number, payload: Uint8Array, offset = 0, length = payload.length - offset): boolean {
    return this.queue(to, type, payload, offset, length, false)
  }

  /**
   * Queues an answer to a frame worker `to` sent: it leaves before the requests queued with it,
   * and is refused only when the link holds `answerBytes` or more.
   */
  answer(to: number, type: number, payload: Uint8Array, offset = 0, length = payload.length - offset): boolean {
    return this.queue(to, type, payload, offset, length, true)
  }

  private queue(to: number, type: number, payload: Uint8Array, offset: number, length: number, answer: boolean): boolean {
    const link = this.out[to]
    if (!link) throw new Error(`no mesh link to worker ${to}`)
    if (length > this.limits.maxFrame) {
      this.dropped.tooLarge++
      return false
    }
    // The bound is checked before the frame joins: a link holds at most its bound plus one frame
    // (a frame larger than the bound still goes when there is room).
    if (link.queued() >= (answer ? this.limits.answerBytes : this.limits.requestBytes)) {
      if (answer) this.dropped.answers++
      else this.dropped.requests++
      return false
    }
    const frame = Buffer.allocUnsafe(HEADER + length)
    frame.writeUInt32LE(length, 0)
    frame[4] = type
    frame.set(payload.subarray(offset, offset + length), HEADER)
    if (answer) link.answers.push(frame)
    else link.requests.push(frame)
    this.traffic.sentFrames++
    this.traffic.sentBytes += frame.length
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
    return true
  }

  private flush(): void {
    this.flushScheduled = false
    for (const link of this.out) if (link) this.write(link)
  }

  /** Hands the socket the next batch, answers first, unless it is still writing the last one. */
  private write(link: OutLink): void {
    if (link.writing || this.closing) return
    const batch = this.batch
    let bytes = link.answers.take(batch, WRITE_BATCH)
    if (bytes < WRITE_BATCH) bytes += link.requests.take(batch, WRITE_BATCH - bytes)
    if (bytes === 0) return
    const data = batch.length === 1 ? batch[0] : Buffer.concat(batch, bytes)
    batch.length = 0
    link.writing = true
    link.socket.write(data, link.written)
  }

  async close(): Promise<void> {
    this.closing = true
    for (const link of this.out) link?.socket.destroy()
    for (const socket of this.incoming) socket.destroy()
    await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}
