/**
 * Batched TCP I/O through the bundled addon (`native/tcp_batch.c`, `native/tcp_accept.c`) for
 * plain TCP on Linux. Connections come in two ways: handed over after Node answered their
 * handshake (`adopt`, WebSocket), or accepted by the addon itself (`listen`, HTTP). The reads of
 * all ready connections reach JS in one call per turn of the event loop; writes go straight to
 * the kernel; no JS object stands between, only a NativeLink per connection.
 */
import type {Socket} from 'node:net'
import {nativeAddon} from './native.js'
import {type Batcher, StreamLink, type TcpLink, type TcpLinkOwner} from './tcp.js'

// Record kinds (native/tcp_batch.h).
const REC_DATA = 1
const REC_CLOSED = 2
const REC_DRAINED = 3
const REC_ACCEPTED = 4
const REC_ENDED = 5
/** SLOT_BITS of native/tcp_batch.h. */
const SLOT_MASK = (1 << 22) - 1

interface NativeHub {
  handle: unknown
  arena: ArrayBuffer
  records: ArrayBuffer
}

interface NativeListenerHandle {
  handle: unknown
  id: number
  port: number
}

interface TcpBatchAddon {
  open(onBatch: (count: number) => void): NativeHub
  adopt(hub: unknown, fd: number): number
  listen(
    hub: unknown,
    family: 4 | 6,
    host: string,
    port: number,
    reusePort: boolean,
    ipv6Only: boolean,
    backlog: number,
    deferAcceptSeconds: number,
    halfOpen: boolean,
  ): NativeListenerHandle
  unlisten(listener: unknown): void
  write(hub: unknown, id: number, data: Buffer, length: number, more: boolean): number
  reading(hub: unknown, id: number, on: boolean): void
  end(hub: unknown, id: number, close: boolean): boolean
  release(hub: unknown, id: number): void
  close(hub: unknown): void
}

export interface NativeListenOptions {
  family: 4 | 6
  host: string
  port: number
  /** Several workers bind the same port (SO_REUSEPORT). */
  reusePort: boolean
  ipv6Only: boolean
  backlog: number
  /**
   * TCP_DEFER_ACCEPT: the kernel hands a connection over once its first bytes are in, waiting
   * this long for them (0: at once).
   */
  deferAcceptSeconds: number
}

/**
 * A new connection: its link (attach an owner before returning) and its peer. `ip` is reused for
 * the next connection: copy what is kept.
 */
export type OnNativeAccept = (link: TcpLink, ipFamily: 0 | 4 | 6, ip: Uint8Array, port: number) => void

/** A listening socket of the addon; its connections stay open past `close`. */
export interface NativeListener {
  readonly port: number
  close(): void
}

/** Writes gathered while a link is corked leave in one write; bigger ones go on their own. */
const GATHER_SIZE = 65_536

/** One worker's batched connections. */
export class NativeTcp {
  private readonly hub: NativeHub
  private readonly arena: Buffer
  private readonly records: Uint32Array
  /** Links by slot (the low bits of their id, native/tcp_batch.h); an id tells a slot's generations apart. */
  private readonly links: (NativeLink | undefined)[] = []
  private readonly listeners = new Map<number, {handle: unknown; onAccept: OnNativeAccept}>()
  private readonly peerIp = new Uint8Array(16)
  /** The corked link whose writes are being gathered, and what they are. */
  gatherFor: NativeLink | null = null
  readonly gather = Buffer.allocUnsafe(GATHER_SIZE)
  gathered = 0

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

  get handle(): unknown {
    return this.hub.handle
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
    let id: number
    try {
      id = this.io.adopt(this.hub.handle, handle.fd)
    } catch {
      // Out of file descriptors, say: this connection stays on Node's socket, which reads again
      // (its stream may count on a read in progress and not ask for one).
      handle.reading = true
      handle.readStart()
      return {link: new StreamLink(socket), head: first}
    }
    // Node's fd is closed; the connection lives on in the addon's duplicate.
    socket.destroy()
    const link = new NativeLink(this, id)
    this.links[id & SLOT_MASK] = link
    return {link, head: first}
  }

  /**
   * Binds and listens; every connection it accepts goes to `onAccept`, usually in the same batch
   * as its first bytes. Throws as bind does (with `code`: EADDRINUSE, EACCES, EADDRNOTAVAIL...).
   * Accepted connections stay open for writing when the peer ends its side (`linkEnded`).
   */
  listen(o: NativeListenOptions, onAccept: OnNativeAccept): NativeListener {
    const l = this.io.listen(this.hub.handle, o.family, o.host, o.port, o.reusePort, o.ipv6Only, o.backlog, o.deferAcceptSeconds, true)
    this.listeners.set(l.id, {handle: l.handle, onAccept})
    return {
      port: l.port,
      close: () => {
        if (this.listeners.delete(l.id)) this.io.unlisten(l.handle)
      },
    }
  }

  forget(id: number): void {
    const slot = id & SLOT_MASK
    if (this.links[slot]?.id === id) this.links[slot] = undefined
  }

  private onBatch(count: number): void {
    const r = this.records
    for (let i = 0; i < 4 * count; i += 4) {
      const id = r[i]
      const kind = r[i + 1]
      if (kind === REC_ACCEPTED) {
        this.accepted(id, r[i + 2], r[i + 3])
        continue
      }
      const link = this.links[id & SLOT_MASK]
      if (link === undefined || link.id !== id || link.owner === null) continue
      if (kind === REC_DATA) {
        if (!link.gone) link.owner.receive(this.arena, r[i + 2], r[i + 2] + r[i + 3])
      } else if (kind === REC_DRAINED) link.drained(r[i + 3])
      else if (kind === REC_CLOSED) link.lost()
      else if (kind === REC_ENDED) {
        if (link.owner.linkEnded) link.owner.linkEnded()
        else link.end()
      }
    }
  }

  private accepted(id: number, at: number, listenerId: number): void {
    const listener = this.listeners.get(listenerId)
    if (listener === undefined) {
      this.io.release(this.hub.handle, id)
      return
    }
    const a = this.arena
    const family = a[at] === 4 ? 4 : a[at] === 6 ? 6 : 0
    const ip = this.peerIp
    for (let k = 0; k < 16; k++) ip[k] = a[at + 4 + k]
    const link = new NativeLink(this, id)
    this.links[id & SLOT_MASK] = link
    listener.onAccept(link, family, ip, (a[at + 2] << 8) | a[at + 3])
    // Refused at once (no owner): the addon lets go of it now.
    if (link.owner === null) link.lost()
  }

  /** After every connection is closed; closes the listening sockets. */
  close(): void {
    for (const l of this.listeners.values()) this.io.unlisten(l.handle)
    this.listeners.clear()
    this.io.close(this.hub.handle)
  }
}

class NativeLink implements TcpLink {
  readonly copiesWrites = true
  owner: TcpLinkOwner | null = null
  buffered = 0
  gone = false
  private released = false
  private paused = false
  private corked = false
  /** Bytes handed to the addon. */
  private written = 0

  constructor(
    private readonly tcp: NativeTcp,
    readonly id: number,
  ) {}

  attach(owner: TcpLinkOwner): void {
    this.owner = owner
  }

  start(): void {
    // The addon reads from the moment it has the connection.
  }

  reading(on: boolean): void {
    this.paused = !on
    if (!this.released) this.tcp.io.reading(this.tcp.handle, this.id, on)
  }

  /** The addon's queue shrank to `queued` bytes. */
  drained(queued: number): void {
    this.buffered = queued
    if (this.paused) this.owner?.linkDrained?.()
  }

  get sent(): number {
    return this.written - this.buffered
  }

  cork(): void {
    // One link gathers at a time; a write of another meanwhile goes out on its own.
    if (this.tcp.gatherFor !== null) return
    this.tcp.gatherFor = this
    this.corked = true
  }

  uncork(): void {
    if (!this.corked) return
    this.corked = false
    this.tcp.gatherFor = null
    this.flushGathered()
  }

  /** `last`: the end follows at once. */
  private flushGathered(last = false): void {
    const t = this.tcp
    if (t.gathered === 0) return
    const length = t.gathered
    t.gathered = 0
    this.send(t.gather, length, last)
  }

  write(out: Buffer, length: number, last = false): boolean {
    if (this.released) return true
    if (this.corked) {
      const t = this.tcp
      if (t.gathered + length > GATHER_SIZE) this.flushGathered()
      if (length <= GATHER_SIZE) {
        out.copy(t.gather, t.gathered, 0, length)
        t.gathered += length
        return true
      }
    }
    this.send(out, length, last)
    // The addon copies what the kernel did not take.
    return true
  }

  private send(out: Buffer, length: number, last: boolean): void {
    if (this.released || this.gone) return
    const queued = this.tcp.io.write(this.tcp.handle, this.id, out, length, last)
    if (queued < 0) {
      // The kernel refused the connection (reset by the peer): closed as from the peer's side.
      this.gone = true
      process.nextTick(() => this.lost())
    } else {
      this.written += length
      this.buffered = queued
    }
  }

  end(): void {
    this.finish(false)
  }

  close(): void {
    this.finish(true)
  }

  private finish(close: boolean): void {
    if (this.corked) {
      this.corked = false
      this.tcp.gatherFor = null
      this.flushGathered(true)
    }
    if (this.released) return
    // Closed at once when nothing waits for the kernel and nothing is to be waited for (close,
    // or the peer has ended its side); else once the queue is written.
    if (this.tcp.io.end(this.tcp.handle, this.id, close)) this.lost(true)
  }

  destroy(): void {
    if (this.released) return
    this.gone = true
    // The close is reported after the current call, as Node's sockets do.
    process.nextTick(() => this.lost())
  }

  /** The connection is gone: the addon lets go of it (unless it has) and the owner hears of it, once. */
  lost(releasedByAddon = false): void {
    if (this.released) return
    this.released = true
    this.gone = true
    this.buffered = 0
    if (this.corked) {
      this.corked = false
      this.tcp.gatherFor = null
      this.tcp.gathered = 0
    }
    if (!releasedByAddon) this.tcp.io.release(this.tcp.handle, this.id)
    this.tcp.forget(this.id)
    this.owner?.linkClosed()
  }
}
