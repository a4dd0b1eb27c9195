/** A WebTorrent tracker client for tests: JSON messages in, queued messages out. */
import {randomBytes} from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import WebSocket from 'ws'
import {handshakeRequest as upgradeRequest, maskedFrame as maskedTextFrame} from '../loadtest/ws-socket.js'
import {OP_PING, OP_PONG} from '../src/protocol/ws/frame.js'

// biome-ignore lint/suspicious/noExplicitAny: whatever JSON a tracker sends; tests check its shape
export type Msg = Record<string, any>

/** 20 random bytes as a binary string, with characters that need escaping in JSON. */
export function binaryId(): string {
  const b = randomBytes(20)
  b[0] = 0x22 // "
  b[1] = 0x5c // \
  b[2] = 0x00
  b[3] = 0x0a
  b[4] = 0xff
  return b.toString('latin1')
}

export class WsTestClient {
  private readonly queue: Msg[] = []
  private waiters: (() => void)[] = []
  closed = false

  private constructor(readonly ws: WebSocket) {
    ws.on('message', data => {
      this.queue.push(JSON.parse(data.toString()) as Msg)
      this.wake()
    })
    ws.on('close', () => {
      this.closed = true
      this.wake()
    })
    ws.on('error', () => {})
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  static open(url: string): Promise<WsTestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {rejectUnauthorized: false, perMessageDeflate: false})
      ws.once('open', () => resolve(new WsTestClient(ws)))
      ws.once('error', reject)
    })
  }

  send(msg: Msg | string): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg))
  }

  /** The next message matching `match` (others stay queued); fails after `ms`. */
  async next(match: (m: Msg) => boolean = () => true, ms = 3000): Promise<Msg> {
    const deadline = Date.now() + ms
    for (;;) {
      const i = this.queue.findIndex(match)
      if (i >= 0) return this.queue.splice(i, 1)[0]
      if (this.closed) throw new Error('connection closed while waiting for a message')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no matching message within ${ms} ms; queued: ${JSON.stringify(this.queue).slice(0, 500)}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Resolves if no message matching `match` arrives within `ms`. */
  async nothing(match: (m: Msg) => boolean = () => true, ms = 300): Promise<void> {
    await new Promise(resolve => setTimeout(resolve, ms))
    const m = this.queue.find(match)
    if (m) throw new Error(`unexpected message: ${JSON.stringify(m)}`)
  }

  async waitClosed(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`still open after ${ms} ms`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  close(): void {
    this.ws.terminate()
  }
}

export const isAnnounceResponse = (m: Msg): boolean => m.action === 'announce' && 'interval' in m
export const isOffer = (m: Msg): boolean => 'offer' in m
export const isAnswer = (m: Msg): boolean => 'answer' in m
export const isFailure = (m: Msg): boolean => 'failure reason' in m

/** A client's text frame (masked) holding `msg` as JSON. */
export function maskedFrame(msg: Msg): Buffer {
  return maskedTextFrame(JSON.stringify(msg))
}

/** A client's masked frame of `opcode` around `payload`. */
export function maskedControlFrame(opcode: number, payload: Buffer): Buffer {
  return maskedTextFrame(payload, opcode)
}

/** The upgrade request of a WebSocket handshake, as a client sends it. */
export function handshakeRequest(): string {
  return upgradeRequest('localhost')
}

/**
 * A WebSocket client that stops reading after the handshake: the tracker's queue to it fills up.
 * Sends masked text frames by hand.
 */
export class StalledClient {
  private constructor(readonly socket: net.Socket) {}

  static async open(port: number, o: {tls?: boolean} = {}): Promise<StalledClient> {
    const socket = o.tls ? tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false}) : net.connect({port, host: '127.0.0.1'})
    await new Promise<void>((resolve, reject) => {
      socket.once(o.tls ? 'secureConnect' : 'connect', () => resolve())
      socket.once('error', reject)
    })
    socket.write(handshakeRequest())
    await new Promise<void>(resolve => socket.once('data', () => resolve()))
    socket.pause()
    return new StalledClient(socket)
  }

  send(msg: Msg): void {
    this.socket.write(maskedFrame(msg))
  }

  closedByServer(): Promise<boolean> {
    return new Promise(resolve => {
      if (this.socket.destroyed) return resolve(true)
      this.socket.once('close', () => resolve(true))
    })
  }

  close(): void {
    this.socket.destroy()
  }
}

/**
 * A WebSocket client that reads the server's frames by hand and answers pings (echoing their
 * payload) only when told to: for tests of the tracker's liveness checks.
 */
export class RawWsClient {
  /** Payloads of the pings received. */
  readonly pings: Buffer[] = []
  closed = false
  private buf: Buffer = Buffer.alloc(0)

  private constructor(
    readonly socket: net.Socket,
    private readonly answerPings: boolean,
  ) {
    socket.on('data', (d: Buffer) => this.onData(d))
    socket.on('close', () => (this.closed = true))
    socket.on('error', () => {})
  }

  static async open(port: number, o: {answerPings: boolean; tls?: boolean}): Promise<RawWsClient> {
    const socket = o.tls ? tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false}) : net.connect({port, host: '127.0.0.1'})
    await new Promise<void>((resolve, reject) => {
      socket.once(o.tls ? 'secureConnect' : 'connect', () => resolve())
      socket.once('error', reject)
    })
    socket.write(handshakeRequest())
    const head = await new Promise<Buffer>((resolve, reject) => {
      let got: Buffer = Buffer.alloc(0)
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d])
        const end = got.indexOf('\r\n\r\n')
        if (end < 0) return
        socket.off('data', onData)
        if (got.toString('latin1', 0, end).startsWith('HTTP/1.1 101 ')) resolve(got.subarray(end + 4))
        else reject(new Error(`handshake refused: ${got.toString('latin1', 0, end)}`))
      }
      socket.on('data', onData)
    })
    const client = new RawWsClient(socket, o.answerPings)
    if (head.length > 0) client.onData(head)
    return client
  }

  send(opcode: number, payload: Buffer): void {
    this.socket.write(maskedControlFrame(opcode, payload))
  }

  sendMessage(msg: Msg): void {
    this.socket.write(maskedFrame(msg))
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d])
    // Server frames are unmasked; the tracker's control frames and short messages are all this test reads.
    while (this.buf.length >= 2) {
      let length = this.buf[1] & 0x7f
      let at = 2
      if (length === 126) {
        if (this.buf.length < 4) return
        length = this.buf.readUInt16BE(2)
        at = 4
      } else if (length === 127) {
        if (this.buf.length < 10) return
        length = this.buf.readUInt32BE(6)
        at = 10
      }
      if (this.buf.length < at + length) return
      const opcode = this.buf[0] & 0x0f
      const payload = Buffer.from(this.buf.subarray(at, at + length))
      this.buf = this.buf.subarray(at + length)
      if (opcode === OP_PING) {
        this.pings.push(payload)
        if (this.answerPings) this.send(OP_PONG, payload)
      }
    }
  }

  close(): void {
    this.socket.destroy()
  }
}
