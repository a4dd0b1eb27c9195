/**
 * The two ways a TCP connection's bytes travel (a WebSocket's, in the server and the load
 * generator): Node's socket stream (TLS, or when the addon is not built), or batched I/O through
 * the bundled addon (`native/tcp_batch.c`) for plain TCP on Linux: after the handshake the
 * connection is handed over, the reads of all ready connections reach JS in one call per turn of
 * the event loop, and writes go straight to the kernel.
 */
import type {Socket} from 'node:net'
import type {Duplex} from 'node:stream'
import {nativeAddon} from './native.js'

/** Runs a batch of reads (a FlushQueue writes what they queued as it ends). */
export interface Batcher {
  batch(work: () => void): void
}

/** What a link reports to the protocol on top of it (a WebSocket). */
export interface TcpLinkOwner {
  /** Bytes received: chunk[start, end). The chunk may be reused after the call: copy what is kept. */
  receive(chunk: Buffer, start: number, end: number): void
  /** Once, when the connection is gone. */
  linkClosed(): void
  /** Some of what was written left while reading was paused (owners that pause look at `buffered`). */
  linkDrained?(): void
}

export interface TcpLink {
  attach(owner: TcpLinkOwner): void
  /** Starts reading. */
  start(): void
  /**
   * Stops (false) or starts again (true) reading from the connection: backpressure while its
   * outgoing queue is over its bound. What is written still leaves.
   */
  reading(on: boolean): void
  /** Writes out[0, length); true when `out` may be filled again at once (nothing kept a reference). */
  write(out: Buffer, length: number): boolean
  /** Bytes written but not yet taken by the kernel. */
  readonly buffered: number
  /** Whether the connection is gone or going (nothing more can be written). */
  readonly gone: boolean
  /** Closes our side once what is written has left; the connection closes when the peer's side ends. */
  end(): void
  /** Closes the connection at once. */
  destroy(): void
}

export class StreamLink implements TcpLink {
  private owner: TcpLinkOwner | null = null
  private paused = false

  constructor(private readonly socket: Duplex) {}

  /** A write's bytes reached the kernel; made once, passed to every write. */
  private readonly written = (): void => {
    if (this.paused) this.owner?.linkDrained?.()
  }

  attach(owner: TcpLinkOwner): void {
    this.owner = owner
    const s = this.socket as Duplex & {setNoDelay?(on: boolean): void; setTimeout?(ms: number): void}
    s.setNoDelay?.(true)
    s.setTimeout?.(0)
    s.on('data', (chunk: Buffer) => owner.receive(chunk, 0, chunk.length))
    s.on('error', () => s.destroy())
    s.on('end', () => s.end())
    s.on('close', () => owner.linkClosed())
  }

  start(): void {
    if (!this.paused) this.socket.resume()
  }

  reading(on: boolean): void {
    this.paused = !on
    if (on) this.socket.resume()
    else this.socket.pause()
  }

  write(out: Buffer, length: number): boolean {
    this.socket.write(out.subarray(0, length), this.written)
    // Nothing left in the stream means the kernel took it all at once.
    return this.socket.writableLength === 0
  }

  get buffered(): number {
    return this.socket.writableLength
  }

  get gone(): boolean {
    return this.socket.destroyed
  }

  end(): void {
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }
}

// Record kinds (native/tcp_batch.c).
const REC_DATA = 1
const REC_CLOSED = 2
const REC_DRAINED = 3

interface NativeHub {
  handle: unknown
  arena: ArrayBuffer
  records: ArrayBuffer
}

interface TcpBatchAddon {
  open(onBatch: (count: number) => void): NativeHub
  adopt(hub: unknown, fd: number, id: number): unknown
  write(conn: unknown, data: Buffer, length: number): number
  reading(conn: unknown, on: boolean): void
  end(conn: unknown): void
  release(conn: unknown): void
  close(hub: unknown): void
}

/** One worker's batched connections. */
export class NativeTcp {
  private readonly hub: NativeHub
  private readonly arena: Buffer
  private readonly records: Uint32Array
  private readonly links = new Map<number, NativeLink>()
  private nextId = 1

  private constructor(
    readonly io: TcpBatchAddon,
    batcher: Batcher,
  ) {
    this.hub = io.open(count => batcher.batch(() => this.onBatch(count)))
    this.arena = Buffer.from(this.hub.arena)
    this.records = new Uint32Array(this.hub.records)
  }

  /**
   * Null when the addon was not built (not Linux, or no compiler at install). Each batch of reads
   * runs inside `batcher.batch` (a FlushQueue: what the reads queued leaves as it ends).
   */
  static open(batcher: Batcher = {batch: work => work()}): NativeTcp | null {
    const io = nativeAddon<TcpBatchAddon>('tcp_batch')
    return io ? new NativeTcp(io, batcher) : null
  }

  /**
   * Takes over a plain TCP socket whose handshake is answered. Returns the link to use and the
   * bytes to read first (`head` and whatever Node had read past it); when the socket cannot be
   * handed over (bytes still in Node's write queue, no fd, or the addon refuses it), it stays
   * Node's and the link is a StreamLink.
   */
  adopt(socket: Socket, head: Buffer): {link: TcpLink; head: Buffer} {
    const handle = (socket as Socket & {_handle?: {fd?: number; reading?: boolean; readStop?(): number; readStart?(): number}})._handle
    if (!handle || typeof handle.fd !== 'number' || handle.fd < 0 || !handle.readStop || !handle.readStart || socket.writableLength > 0) {
      return {link: new StreamLink(socket), head}
    }
    // Node reads no more; what it had read already is taken from its buffer.
    handle.reading = false
    handle.readStop()
    const read: Buffer[] = head.length > 0 ? [head] : []
    for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) read.push(chunk)
    const first = read.length === 1 ? read[0] : Buffer.concat(read)
    const id = this.nextId++ >>> 0
    let conn: unknown
    try {
      conn = this.io.adopt(this.hub.handle, handle.fd, id)
    } catch {
      // Out of file descriptors, say: this connection stays on Node's socket, which reads again
      // (its stream may count on a read in progress and not ask for one).
      handle.reading = true
      handle.readStart()
      return {link: new StreamLink(socket), head: first}
    }
    // Node's fd is closed; the connection lives on in the addon's duplicate.
    socket.destroy()
    const link = new NativeLink(this, id, conn)
    this.links.set(id, link)
    return {link, head: first}
  }

  forget(id: number): void {
    this.links.delete(id)
  }

  private onBatch(count: number): void {
    const r = this.records
    for (let i = 0; i < 4 * count; i += 4) {
      const link = this.links.get(r[i])
      if (link === undefined) continue
      const kind = r[i + 1]
      if (kind === REC_DATA) link.owner!.receive(this.arena, r[i + 2], r[i + 2] + r[i + 3])
      else if (kind === REC_DRAINED) link.drained(r[i + 3])
      else if (kind === REC_CLOSED) link.lost()
    }
  }

  /** After every connection is closed. */
  close(): void {
    this.io.close(this.hub.handle)
  }
}

class NativeLink implements TcpLink {
  owner: TcpLinkOwner | null = null
  buffered = 0
  gone = false
  private released = false
  private paused = false

  constructor(
    private readonly tcp: NativeTcp,
    private readonly id: number,
    private readonly conn: unknown,
  ) {}

  attach(owner: TcpLinkOwner): void {
    this.owner = owner
  }

  start(): void {
    // The addon reads from the moment it adopts the connection.
  }

  reading(on: boolean): void {
    this.paused = !on
    if (!this.released) this.tcp.io.reading(this.conn, on)
  }

  /** The addon's queue shrank to `queued` bytes. */
  drained(queued: number): void {
    this.buffered = queued
    if (this.paused) this.owner?.linkDrained?.()
  }

  write(out: Buffer, length: number): boolean {
    if (this.released) return true
    const queued = this.tcp.io.write(this.conn, out, length)
    if (queued < 0) {
      // The kernel refused the connection (reset by the peer): closed as from the peer's side.
      this.gone = true
      process.nextTick(() => this.lost())
    } else {
      this.buffered = queued
    }
    // The addon copies what the kernel did not take.
    return true
  }

  end(): void {
    if (!this.released) this.tcp.io.end(this.conn)
  }

  destroy(): void {
    if (this.released) return
    this.gone = true
    // The close is reported after the current call, as Node's sockets do.
    process.nextTick(() => this.lost())
  }

  /** The connection is gone: the addon lets go of it and the owner hears of it, once. */
  lost(): void {
    if (this.released) return
    this.released = true
    this.gone = true
    this.buffered = 0
    this.tcp.io.release(this.conn)
    this.tcp.forget(this.id)
    this.owner?.linkClosed()
  }
}
