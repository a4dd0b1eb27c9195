/**
 * One write per connection per turn of the event loop, and the output buffers they reuse. Its
 * users are the WebSocket server's connections (WsSocket); it is the `Batcher` that a NativeTcp
 * runs its reads in.
 */

/** A connection with output gathered this turn. */
export interface Flushable {
  /** Writes what was gathered. */
  flush(): void
}

/** Output buffers are this big unless a turn's messages need more; so many are kept for reuse. */
const SPARE_SIZE = 16_384
const MAX_SPARES = 64

/**
 * Connections with output gathered this turn; one `flush` per connection once the current I/O
 * phase is over, so messages to one connection leave in one write.
 */
export class FlushQueue {
  private queue: Flushable[] = []
  /** Inside `batch`: flushes wait for its end. */
  private held = false
  /** Output buffers the socket gave back (written synchronously), for any connection to reuse. */
  private readonly spare: Buffer[] = []

  /** A buffer of at least `bytes`: a spare one when it fits. */
  take(bytes: number): Buffer {
    if (bytes <= SPARE_SIZE && this.spare.length > 0) return this.spare.pop()!
    return Buffer.allocUnsafeSlow(Math.max(bytes, SPARE_SIZE))
  }

  give(buffer: Buffer): void {
    if (buffer.length === SPARE_SIZE && this.spare.length < MAX_SPARES) this.spare.push(buffer)
  }

  add(connection: Flushable): void {
    this.queue.push(connection)
    if (this.queue.length === 1 && !this.held) setImmediate(this.flushAll)
  }

  /**
   * Runs `work` (a batch of reads) with its flushes at its end rather than in an immediate: the
   * same one write per connection, without the immediate's round trip.
   */
  batch(work: () => void): void {
    this.held = true
    try {
      work()
    } finally {
      this.held = false
      if (this.queue.length > 0) this.flushAll()
    }
  }

  private readonly flushAll = (): void => {
    const list = this.queue
    this.queue = []
    for (const connection of list) connection.flush()
  }
}
