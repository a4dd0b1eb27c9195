/**
 * The two ways a UDP socket talks to the network: node:dgram, or batched I/O through the bundled
 * addon (`native/udp_batch.c`: recvmmsg/sendmmsg, one JS call and one syscall per batch each way).
 * The user (the UDP server's worker) handles packets the same way on both; a link owns the buffer
 * each reply is written into and sends it to `PeerAddress`.
 */
import dgram, {type Socket} from 'node:dgram'
import {formatIp, parseIpInto} from '../net/ip.js'
import {nativeAddon} from './native.js'

/** The peer a request came from (and its reply goes to). */
export class PeerAddress {
  port = 0
  family: 4 | 6 = 4
  /** IPv4 in the first 4 bytes, or IPv6 in all 16. */
  readonly ip = new Uint8Array(16)
  private readonly ip4 = this.ip.subarray(0, 4)
  /** The address as text, when the link gave it (dgram) or it was needed once. */
  private text: string | null = null

  /** Sets the address from text; false when it is not an IP address. */
  setText(address: string, port: number): boolean {
    const family = parseIpInto(address, this.ip)
    if (family === 0) return false
    this.family = family
    this.port = port
    this.text = address
    return true
  }

  /** The address's own bytes: 4 for IPv4, 16 for IPv6 (views made once, not per packet). */
  get bytes(): Uint8Array {
    return this.family === 4 ? this.ip4 : this.ip
  }

  setBytes(bytes: Uint8Array, offset: number, family: 4 | 6, port: number): void {
    // A loop, not set(subarray()): no view allocated per packet.
    for (let i = 0, n = family === 4 ? 4 : 16; i < n; i++) this.ip[i] = bytes[offset + i]
    this.family = family
    this.port = port
    this.text = null
  }

  get address(): string {
    this.text ??= formatIp(this.ip, 0, this.family)
    return this.text
  }

  copy(): PeerAddress {
    const c = new PeerAddress()
    c.ip.set(this.ip)
    c.family = this.family
    c.port = this.port
    c.text = this.text
    return c
  }
}

export interface UdpLink {
  /** What the operator sees in the "listening" line. */
  readonly kind: 'batched I/O' | 'node:dgram'
  /** 0: an IPv4 socket, 1: IPv6. */
  readonly socketFamily: 0 | 1
  readonly port: number
  /** Where the next reply is written. */
  out: Buffer
  /** Sends out[0, length) to `peer`; false when the kernel refused it. */
  send(length: number, peer: PeerAddress): boolean
  close(): Promise<void>
}

export interface UdpLinkOptions {
  family: 0 | 1
  host: string
  port: number
  reusePort: boolean
  ipv6Only: boolean
  recvBufferSize: number
  /** The largest reply. */
  outSize: number
  /** Called for each datagram; `length` of `msg` is valid, the peer is in `peer`. */
  onPacket(link: UdpLink, msg: Buffer, peer: PeerAddress): void
}

export class DgramLink implements UdpLink {
  readonly kind = 'node:dgram'
  out: Buffer
  readonly socketFamily: 0 | 1
  private readonly peer = new PeerAddress()

  private constructor(
    readonly socket: Socket,
    private readonly options: UdpLinkOptions,
  ) {
    this.socketFamily = options.family
    this.out = Buffer.allocUnsafe(options.outSize)
    socket.on('message', (msg, rinfo) => {
      // A port of 0 is kept: the worker drops it.
      if (!this.peer.setText(rinfo.address, rinfo.port)) this.peer.port = -1
      options.onPacket(this, msg, this.peer)
    })
  }

  static open(o: UdpLinkOptions, onError: (error: Error) => void): Promise<DgramLink> {
    const type = o.family === 0 ? 'udp4' : 'udp6'
    // A synchronous lookup makes `send` hand the buffer to the kernel before it returns
    // (the default lookup defers the send to the next tick, after our buffer is reused).
    const lookup = (addr: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void) => cb(null, addr, o.family === 0 ? 4 : 6)
    const options: dgram.SocketOptions = {
      type,
      lookup: lookup as dgram.SocketOptions['lookup'],
      ipv6Only: o.family === 1 && o.ipv6Only,
      ...(o.reusePort ? {reusePort: true} : {}),
    }
    if (o.recvBufferSize > 0) options.recvBufferSize = o.recvBufferSize
    const socket = dgram.createSocket(options)
    const link = new DgramLink(socket, o)
    return new Promise((resolve, reject) => {
      socket.once('error', reject)
      socket.bind({port: o.port, address: o.host, exclusive: o.reusePort}, () => {
        socket.removeAllListeners('error')
        socket.on('error', onError)
        resolve(link)
      })
    })
  }

  get port(): number {
    return this.socket.address().port
  }

  send(length: number, peer: PeerAddress): boolean {
    try {
      this.socket.send(this.out, 0, length, peer.port, peer.address)
    } catch {
      return false
    }
    // A send the kernel could not take at once is queued with a reference to our buffer.
    if (this.socket.getSendQueueCount() > 0) this.out = Buffer.allocUnsafe(this.options.outSize)
    return true
  }

  close(): Promise<void> {
    return new Promise(resolve => this.socket.close(() => resolve()))
  }
}

interface NativeSocket {
  handle: unknown
  in: ArrayBuffer
  inMeta: ArrayBuffer
  inAddr: ArrayBuffer
  out: ArrayBuffer
  outMeta: ArrayBuffer
  outAddr: ArrayBuffer
  port: number
  batch: number
  slot: number
}

interface NativeBatchIo {
  open(
    family: 4 | 6,
    host: string,
    port: number,
    reusePort: boolean,
    ipv6Only: boolean,
    recvBuffer: number,
    sendBuffer: number,
    onBatch: (count: number) => void,
  ): NativeSocket
  send(handle: unknown, count: number): number
  close(handle: unknown): void
  steer(handle: unknown, workers: number): void
  unsteer(handle: unknown): void
}

/** The addon, or null when it was not built (not Linux, or no compiler at install). */
export function batchIo(): NativeBatchIo | null {
  return nativeAddon<NativeBatchIo>('udp_batch')
}

export class BatchLink implements UdpLink {
  readonly kind = 'batched I/O'
  out: Buffer
  readonly socketFamily: 0 | 1
  readonly port: number
  private readonly inViews: Buffer[] = []
  private readonly outViews: Buffer[] = []
  private readonly inMeta: Int32Array
  private readonly inAddr: Uint8Array
  private readonly outMeta: Int32Array
  private readonly outAddr: Uint8Array
  /** Replies written in this batch. */
  private pending = 0
  private inBatch = false
  private closed = false
  private readonly peer = new PeerAddress()

  private constructor(
    private readonly io: NativeBatchIo,
    private readonly native: NativeSocket,
    private readonly options: UdpLinkOptions,
    private readonly onSendFailed: (count: number) => void,
  ) {
    this.socketFamily = options.family
    this.port = native.port
    for (let i = 0; i < native.batch; i++) {
      this.inViews.push(Buffer.from(native.in, i * native.slot, native.slot))
      this.outViews.push(Buffer.from(native.out, i * native.slot, native.slot))
    }
    this.inMeta = new Int32Array(native.inMeta)
    this.inAddr = new Uint8Array(native.inAddr)
    this.outMeta = new Int32Array(native.outMeta)
    this.outAddr = new Uint8Array(native.outAddr)
    this.out = this.outViews[0]
  }

  /** A batched socket, or null when the addon is missing or the largest reply does not fit a slot. */
  static open(o: UdpLinkOptions, onSendFailed: (count: number) => void): BatchLink | null {
    const io = batchIo()
    if (!io) return null
    let link: BatchLink | undefined
    const native = io.open(o.family === 0 ? 4 : 6, o.host, o.port, o.reusePort, o.ipv6Only, o.recvBufferSize, 0, count => link!.onBatch(count))
    if (o.outSize > native.slot) {
      io.close(native.handle)
      return null
    }
    link = new BatchLink(io, native, o, onSendFailed)
    return link
  }

  private onBatch(count: number): void {
    this.inBatch = true
    try {
      const meta = this.inMeta
      for (let i = 0; i < count; i++) {
        const length = meta[3 * i]
        const family = meta[3 * i + 2] as 4 | 6
        this.peer.setBytes(this.inAddr, 16 * i, family, meta[3 * i + 1])
        // A datagram longer than a slot (length -1) reaches the worker empty: it is dropped as malformed.
        this.options.onPacket(this, this.inViews[i].subarray(0, Math.max(0, length)), this.peer)
      }
    } finally {
      this.inBatch = false
      this.flush()
    }
  }

  send(length: number, peer: PeerAddress): boolean {
    if (this.closed) return false
    const k = this.pending
    this.outMeta[3 * k] = length
    this.outMeta[3 * k + 1] = peer.port
    this.outMeta[3 * k + 2] = peer.family
    this.outAddr.set(peer.bytes, 16 * k)
    this.pending = k + 1
    // Replies made outside a batch (from another worker's answer) leave at once.
    if (!this.inBatch || this.pending === this.outViews.length) this.flush()
    this.out = this.outViews[this.pending]
    return true
  }

  private flush(): void {
    const count = this.pending
    if (count === 0) return
    this.pending = 0
    this.out = this.outViews[0]
    const sent = this.io.send(this.native.handle, count)
    if (sent < count) this.onSendFailed(count - sent)
  }

  /**
   * Every announce and scrape of this socket's SO_REUSEPORT group goes to the socket at index
   * (first info-hash byte % workers) of the group (see server/udp/steering.ts). Throws when the
   * kernel refuses the program.
   */
  steer(workers: number): void {
    this.io.steer(this.native.handle, workers)
  }

  /** The group is spread by the kernel's hash again. */
  unsteer(): void {
    this.io.unsteer(this.native.handle)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.io.close(this.native.handle)
  }
}
