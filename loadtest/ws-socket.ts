/**
 * The client side of RFC 6455, lean enough for a load generator: text messages out, each framed,
 * masked and written at once (one write per message, as a browser sends it); whole messages in,
 * as the bytes of their payload. No events or objects per message: with the `ws` client the
 * generator spent more CPU per announce cycle than our tracker did.
 */
import {randomBytes} from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import type {NativeTcp} from '../src/io/native-tcp.js'
import {StreamLink, type TcpLink, type TcpLinkOwner} from '../src/io/tcp.js'
import {
  acceptKey,
  FIN,
  FrameHeader,
  frameHeaderLength,
  FrameStatus,
  maskPayload,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  parseFrameHeader,
  writeFrameHeader,
} from '../src/protocol/ws/frame.js'

const EMPTY = Buffer.alloc(0)
const HANDSHAKE_TIMEOUT_MS = 10_000
/** The header of the frame being read (its fields are copied out before any handler runs). */
const HEADER = new FrameHeader()

/** The upgrade request of a WebSocket handshake. */
export function handshakeRequest(host: string, key = randomBytes(16).toString('base64')): string {
  return `GET / HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
}

/** A final, masked client frame of `opcode` around `payload` (a string is sent as UTF-8). */
export function maskedFrame(payload: Buffer | string, opcode = OP_TEXT): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  const frame = Buffer.allocUnsafe(frameHeaderLength(length, true) + length)
  // A fresh key per frame, as RFC 6455 asks; Math.random is enough for a load generator.
  const start = writeFrameHeader(frame, 0, FIN | opcode, length, (Math.random() * 0x1_0000_0000) >>> 0)
  // The payload goes into the frame once and is masked there.
  const body = frame.subarray(start)
  if (typeof payload === 'string') body.write(payload)
  else payload.copy(body)
  maskPayload(body, frame, start - 4)
  return frame
}

export interface LoadSocketOptions {
  host: string
  port: number
  tls: boolean
  /** Plain connections are handed to the batched TCP addon after the handshake, when given. */
  batched: NativeTcp | null
  onMessage(data: Buffer): void
  onClose(): void
}

export class LoadSocket implements TcpLinkOwner {
  open = false
  private link: TcpLink | null = null
  private buf = EMPTY
  private fragments: Buffer[] = []

  private constructor(private readonly o: LoadSocketOptions) {}

  /** Connects and completes the handshake; rejects with what went wrong. */
  static connect(o: LoadSocketOptions): Promise<LoadSocket> {
    const socket = o.tls
      ? tls.connect({host: o.host, port: o.port, rejectUnauthorized: false, servername: net.isIP(o.host) ? undefined : o.host})
      : net.connect({host: o.host, port: o.port})
    socket.setNoDelay(true)
    const ws = new LoadSocket(o)
    const key = randomBytes(16).toString('base64')
    const accept = acceptKey(key)
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0)
      const fail = (why: string) => {
        socket.destroy()
        reject(new Error(why))
      }
      const onError = (error: Error) => fail(error.message)
      const onClose = () => fail('the connection closed during the handshake')
      const onHandshake = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const response = head.toString('latin1', 0, end)
        if (!/^HTTP\/1\.1 101 /.test(response)) return fail(`the handshake was refused: ${response.split('\r\n')[0]}`)
        if (!new RegExp(`\r\nsec-websocket-accept: *${accept.replace(/[+/]/g, '\\$&')}`, 'i').test(response))
          return fail('the handshake answer has a wrong Sec-WebSocket-Accept')
        // From here the link carries the bytes (a TLS socket is never handed to the addon).
        socket.off('data', onHandshake)
        socket.off('error', onError)
        socket.off('close', onClose)
        socket.setTimeout(0)
        const rest = head.subarray(end + 4)
        const io = o.batched && !o.tls ? o.batched.adopt(socket, rest) : {link: new StreamLink(socket), head: rest}
        ws.link = io.link
        ws.open = true
        io.link.attach(ws)
        resolve(ws)
        if (io.head.length > 0) ws.receive(io.head, 0, io.head.length)
        io.link.start()
      }
      socket.once(o.tls ? 'secureConnect' : 'connect', () =>
        socket.write(handshakeRequest(net.isIPv6(o.host) ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`, key)),
      )
      socket.on('error', onError)
      socket.on('close', onClose)
      socket.on('data', onHandshake)
      socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => fail(`no answer to the handshake within ${HANDSHAKE_TIMEOUT_MS / 1000} s`))
    })
  }

  /** Sends a text message (UTF-8). */
  send(text: string | Buffer): void {
    if (!this.open) return
    const frame = maskedFrame(text)
    this.link!.write(frame, frame.length)
  }

  terminate(): void {
    this.open = false
    this.link?.destroy()
  }

  linkClosed(): void {
    if (!this.open) return
    this.open = false
    this.o.onClose()
  }

  receive(chunk: Buffer, start: number, end: number): void {
    const data = this.buf.length > 0 ? Buffer.concat([this.buf, chunk.subarray(start, end)]) : chunk
    let pos = this.buf.length > 0 ? 0 : start
    const stop = this.buf.length > 0 ? data.length : end
    while (this.open) {
      const status = parseFrameHeader(data, pos, stop, false, HEADER)
      if (status === FrameStatus.NeedMore) break
      if (status !== FrameStatus.Ok) {
        // Not a frame a server may send (RFC 6455 section 5.1): the connection fails.
        this.link!.destroy()
        this.linkClosed()
        break
      }
      const at = pos + HEADER.headerLength
      if (stop < at + HEADER.length) break
      const payload = data.subarray(at, at + HEADER.length)
      pos = at + HEADER.length
      this.frame(HEADER.opcode, HEADER.fin, payload)
    }
    // The rest waits for more bytes (copied: the link may reuse the chunk).
    this.buf = pos < stop && this.open ? Buffer.from(data.subarray(pos, stop)) : EMPTY
  }

  private frame(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode === OP_TEXT || opcode === OP_BINARY || opcode === OP_CONTINUATION) {
      if (fin && this.fragments.length === 0) this.o.onMessage(payload)
      else {
        this.fragments.push(Buffer.from(payload))
        if (fin) {
          const whole = Buffer.concat(this.fragments)
          this.fragments = []
          this.o.onMessage(whole)
        }
      }
    } else if (opcode === OP_PING) {
      const pong = maskedFrame(payload, OP_PONG)
      this.link!.write(pong, pong.length)
    } else if (opcode === OP_CLOSE) {
      const close = maskedFrame(payload.subarray(0, 2), OP_CLOSE)
      this.link!.write(close, close.length)
      this.link!.end()
      this.linkClosed()
    }
  }
}
