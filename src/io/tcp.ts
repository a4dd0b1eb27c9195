/**
 * The two ways a TCP connection's bytes travel (an HTTP request's, a WebSocket's, in the servers
 * and the load generator): Node's socket stream (TLS, or when the addon is not built), or batched
 * I/O through the bundled addon (native-tcp.ts) for plain TCP on Linux.
 */
import type {Duplex} from 'node:stream'

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
  /**
   * The peer ended its side; what is written still leaves, then `end` or `close`. Without it, our
   * side ends too.
   */
  linkEnded?(): void
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
  /**
   * Writes out[0, length); true when `out` may be filled again at once (nothing kept a reference).
   * `last`: `end` or `close` follows at once, and the bytes may wait to leave with it.
   */
  write(out: Buffer, length: number, last?: boolean): boolean
  /** Every write copies what it does not send at once: a writer may fill one buffer again and again. */
  readonly copiesWrites: boolean
  /** Until `uncork`, writes are gathered to leave together. */
  cork(): void
  uncork(): void
  /** Bytes written but not yet taken by the kernel. */
  readonly buffered: number
  /** Bytes the kernel has taken. */
  readonly sent: number
  /** Whether the connection is gone or going (nothing more can be written). */
  readonly gone: boolean
  /** Closes our side once what is written has left; the connection closes when the peer's side ends. */
  end(): void
  /**
   * Closes the connection once what is written has left, without waiting for the peer (what it
   * sends meanwhile is not read). `linkClosed` may come before this returns.
   */
  close(): void
  /** Closes the connection at once. */
  destroy(): void
}

export class StreamLink implements TcpLink {
  readonly copiesWrites = false
  private owner: TcpLinkOwner | null = null
  private paused = false

  constructor(private readonly socket: Duplex) {}

  /**
   * Bytes reached the kernel: Node's 'drain' (the stream emptied after passing its high-water
   * mark), and each write made while reading is paused. Made once.
   */
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
    s.on('end', () => (owner.linkEnded ? owner.linkEnded() : s.end()))
    s.on('close', () => owner.linkClosed())
    s.on('drain', this.written)
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
    // A callback per write costs a tick each: only while someone waits for it.
    this.socket.write(out.subarray(0, length), this.paused ? this.written : undefined)
    // Nothing left in the stream means the kernel took it all at once.
    return this.socket.writableLength === 0
  }

  cork(): void {
    this.socket.cork()
  }

  uncork(): void {
    this.socket.uncork()
  }

  get buffered(): number {
    return this.socket.writableLength
  }

  get sent(): number {
    const bytes = (this.socket as Duplex & {bytesWritten?: number}).bytesWritten
    return bytes === undefined ? 0 : bytes - this.socket.writableLength
  }

  get gone(): boolean {
    return this.socket.destroyed
  }

  end(): void {
    this.socket.end()
  }

  close(): void {
    const s = this.socket as Duplex & {destroySoon?(): void}
    if (s.destroySoon) s.destroySoon()
    else s.end(() => s.destroy())
  }

  destroy(): void {
    this.socket.destroy()
  }
}
