import {createConnection, createServer, type Server, type Socket} from 'node:net'
import {join} from 'node:path'
import {unlinkSync} from 'node:fs'

/**
 * Direct links between worker processes over Unix domain sockets, so that a worker can hand a
 * request to the worker that owns its swarm shard without a hop through the primary.
 * Frames are `[u32 length][u8 type][payload]`; frames for one peer are gathered during a tick
 * and written once.
 */
export type MeshHandler = (from: number, type: number, buf: Buffer, offset: number, length: number) => void

const HEADER = 5

export function meshSocketPath(dir: string, index: number): string {
  return join(dir, `w${index}.sock`)
}

class Outbox {
  chunks: Buffer[] = []
  bytes = 0
  constructor(readonly socket: Socket) {}
}

export class Mesh {
  private server?: Server
  private readonly out: (Outbox | undefined)[] = []
  private readonly incoming = new Set<Socket>()
  private flushScheduled = false
  private handler: MeshHandler = () => {}
  private closing = false

  constructor(readonly index: number, readonly count: number, readonly dir: string,
    private readonly onBroken: (reason: string) => void) {}

  onMessage(handler: MeshHandler): void {
    this.handler = handler
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
      jobs.push(new Promise((resolve, reject) => {
        const socket = createConnection(meshSocketPath(this.dir, i), () => {
          socket.off('error', reject)
          socket.setNoDelay(true)
          // Tell the peer who we are: one byte.
          socket.write(Buffer.from([this.index]))
          this.out[i] = new Outbox(socket)
          socket.on('error', error => this.broken(`link to worker ${i} failed: ${error.message}`))
          socket.on('close', () => this.broken(`link to worker ${i} closed`))
          resolve()
        })
        socket.once('error', reject)
      }))
    }
    await Promise.all(jobs)
  }

  private accept(socket: Socket): void {
    this.incoming.add(socket)
    let from = -1
    let pending: Buffer | undefined
    socket.on('data', (chunk: Buffer) => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk
      pending = undefined
      let pos = 0
      if (from < 0) {
        from = buf[0]
        pos = 1
      }
      while (buf.length - pos >= HEADER) {
        const length = buf.readUInt32LE(pos)
        if (buf.length - pos < HEADER + length) break
        this.handler(from, buf[pos + 4], buf, pos + HEADER, length)
        pos += HEADER + length
      }
      if (pos < buf.length) pending = buf.subarray(pos)
      // A kept remainder must not pin a large chunk forever.
      if (pending && pending.length < 4096 && chunk.length > 65536) pending = Buffer.from(pending)
    })
    socket.on('error', error => this.broken(`link from worker ${from} failed: ${error.message}`))
    socket.on('close', () => {
      this.incoming.delete(socket)
      this.broken(`link from worker ${from} closed`)
    })
  }

  private broken(reason: string): void {
    if (!this.closing) this.onBroken(reason)
  }

  /**
   * Queue a frame for worker `to`. `payload` is copied now, so the caller may reuse its buffer.
   */
  send(to: number, type: number, payload: Uint8Array, offset = 0, length = payload.length - offset): void {
    const box = this.out[to]
    if (!box) throw new Error(`no mesh link to worker ${to}`)
    const frame = Buffer.allocUnsafe(HEADER + length)
    frame.writeUInt32LE(length, 0)
    frame[4] = type
    frame.set(payload.subarray(offset, offset + length), HEADER)
    box.chunks.push(frame)
    box.bytes += frame.length
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
  }

  private flush(): void {
    this.flushScheduled = false
    for (const box of this.out) {
      if (!box || box.bytes === 0) continue
      const data = box.chunks.length === 1 ? box.chunks[0] : Buffer.concat(box.chunks, box.bytes)
      box.chunks = []
      box.bytes = 0
      box.socket.write(data)
    }
  }

  async close(): Promise<void> {
    this.closing = true
    for (const box of this.out) box?.socket.destroy()
    for (const socket of this.incoming) socket.destroy()
    await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}
