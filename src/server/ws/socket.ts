/**
 * The server side of RFC 6455 over a link (a Node socket, plain or TLS, or the batched TCP addon),
 * lean enough for a tracker's relay path:
 * no per-message objects or events, incoming frames unmasked in place, and each connection's
 * outgoing messages gathered into one buffer and one write per turn of the event loop.
 *
 * Every outgoing byte (messages and control frames: pongs, pings, closes) counts against the
 * connection's bound. Past it, the connection is not read any more (so a peer that sends pings and
 * never reads cannot make us queue pongs) until what is queued has drained to a quarter of it.
 *
 * What it does not do: extensions (permessage-deflate is never negotiated, so RSV bits are a
 * protocol error) and subprotocols (none is selected).
 *
 * One connection's state machine (reading, fragments, control frames, the outgoing queue, close),
 * kept in one file; the framing itself is protocol/ws/frame.ts.
 */
import {isUtf8} from 'node:buffer'
import type http from 'node:http'
import type {Duplex} from 'node:stream'
import type {FlushQueue} from '../../io/flush-queue.js'
import type {TcpLink, TcpLinkOwner} from '../../io/tcp.js'
import {
  CLOSE_INVALID_DATA,
  CLOSE_NORMAL,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TOO_BIG,
  FIN,
  FrameHeader,
  frameHeaderLength,
  FrameStatus,
  isValidCloseCode,
  maskPayload,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  parseFrameHeader,
  writeFrameHeader,
} from '../../protocol/ws/frame.js'
import {answerUpgrade, httpErrorResponse} from '../../protocol/ws/upgrade.js'

const enum State {
  Open,
  /** Our close frame is sent; waiting for the peer's. */
  Closing,
  Closed,
}

/** What a connection reports to its owner. */
export interface WsSocketHandler {
  /** A whole message (text or binary, valid UTF-8); `data` is only valid during the call. */
  onMessage(socket: WsSocket, data: Buffer): void
  /** A pong; `payload` (what the ping it answers carried, if any) is only valid during the call. */
  onPong(socket: WsSocket, payload: Buffer): void
  /**
   * The outgoing queue went over the bound (`over`: reading stops) or drained below a quarter of
   * it (reading starts again).
   */
  onBackpressure(socket: WsSocket, over: boolean): void
  /** Once, when the underlying socket is gone. */
  onClose(socket: WsSocket): void
}

/**
 * Answers an upgrade request with an HTTP error (`why` is the body) and closes the socket once
 * the answer has left, whether or not the peer closes its side. Returns false.
 */
export function refuse(socket: Duplex, status: string, why: string, extra = ''): false {
  socket.end(httpErrorResponse(status, why, extra), () => socket.destroy())
  return false
}

/**
 * Checks an upgrade request and, when it is a valid WebSocket handshake, answers 101 and returns
 * true. Otherwise answers with an HTTP error that says what was wrong, and returns false.
 */
export function acceptHandshake(req: http.IncomingMessage, socket: Duplex): boolean {
  const h = req.headers
  const answer = answerUpgrade({
    method: req.method ?? '',
    upgrade: h.upgrade,
    version: h['sec-websocket-version'] as string | undefined,
    key: h['sec-websocket-key'],
  })
  if (!answer.accepted) {
    socket.end(answer.response, () => socket.destroy())
    return false
  }
  socket.write(answer.response)
  return true
}

const EMPTY = Buffer.alloc(0)

/** The header of the frame being read (its fields are copied out before any handler runs). */
const HEADER = new FrameHeader()

/** The close reason of each bad-header status. */
const HEADER_ERRORS: Record<number, string> = {
  [FrameStatus.ReservedBits]: 'RSV bits set without an extension',
  [FrameStatus.WrongMasking]: 'client frames must be masked',
  [FrameStatus.BadControlFrame]: 'control frames must be whole and at most 125 bytes',
}

export class WsSocket implements TcpLinkOwner {
  private state = State.Open
  /** Bytes received but not yet a whole frame, and how many are needed before parsing again. */
  private stash: Buffer[] = []
  private stashed = 0
  private need = 0
  /** Fragments of a message still being received. */
  private fragments: Buffer[] = []
  private fragmented = 0
  private fragmentOpcode = -1
  /** Frames gathered for the next write. */
  private out: Buffer | null = null
  private outLength = 0
  private queued = false
  /** Over the bound: not reading until the queue drains to `resumeAt`. */
  private over = false
  private readonly resumeAt: number

  constructor(
    private readonly link: TcpLink,
    private readonly handler: WsSocketHandler,
    private readonly flushQueue: FlushQueue,
    /** The largest message accepted; a larger one closes the connection with 1009. */
    private readonly maxPayload: number,
    /** The most bytes queued to the peer before reading stops (backpressure). */
    private readonly maxBuffered: number,
  ) {
    this.resumeAt = maxBuffered >>> 2
    link.attach(this)
  }

  /**
   * Starts reading, beginning with `head` (bytes that came with the handshake). Separate from the
   * constructor so that messages reach a fully built connection (a subclass's fields included).
   */
  start(head: Buffer): void {
    if (head.length > 0) this.receive(head, 0, head.length)
    this.link.start()
  }

  linkClosed(): void {
    this.state = State.Closed
    this.out = null
    this.handler.onClose(this)
  }

  linkDrained(): void {
    if (this.over) this.drained()
  }

  get open(): boolean {
    return this.state === State.Open
  }

  /** Over the bound: reading is paused and messages for it should be dropped. */
  get congested(): boolean {
    return this.over
  }

  /** Bytes waiting to leave: gathered this turn plus those the socket has not written yet. */
  get bufferedAmount(): number {
    return this.outLength + this.link.buffered
  }

  /** Queues a text message; `data[start, end)` is copied. */
  sendBytes(data: Uint8Array, start: number, end: number): void {
    if (this.state !== State.Open) return
    const length = end - start
    const at = this.reserve(frameHeaderLength(length) + length)
    const p = writeFrameHeader(this.out!, at, FIN | OP_TEXT, length)
    this.out!.set(data.subarray(start, end), p)
  }

  /** Queues a text message. */
  sendText(text: string): void {
    if (this.state !== State.Open) return
    const length = Buffer.byteLength(text)
    const at = this.reserve(frameHeaderLength(length) + length)
    const p = writeFrameHeader(this.out!, at, FIN | OP_TEXT, length)
    this.out!.write(text, p, 'utf8')
  }

  /** Queues a ping carrying `data[start, end)` (at most 125 bytes), which the pong must echo. */
  ping(data: Uint8Array = EMPTY, start = 0, end = data.length): void {
    if (this.state !== State.Open) return
    const length = end - start
    const at = this.reserve(2 + length)
    this.out!.set(data.subarray(start, end), writeFrameHeader(this.out!, at, FIN | OP_PING, length))
  }

  /** Starts the closing handshake; the socket ends when the peer answers (or is terminated). */
  close(code: number, reason = ''): void {
    if (this.state !== State.Open) return
    this.sendClose(code, reason)
    this.state = State.Closing
  }

  /** Drops the connection at once. */
  terminate(): void {
    this.state = State.Closed
    this.link.destroy()
  }

  /** Writes what was gathered; called by the FlushQueue. */
  flush(): void {
    this.queued = false
    const out = this.out
    if (out === null || this.link.gone) return
    this.out = null
    const length = this.outLength
    this.outLength = 0
    // When the link keeps no reference to `out`, the next turn (of any connection) can fill it again.
    if (this.link.write(out, length)) this.flushQueue.give(out)
    if (this.over) this.drained()
  }

  /** Reads again once the queue is down to `resumeAt`, beginning with what came while paused. */
  private drained(): void {
    if (this.state === State.Closed || this.bufferedAmount > this.resumeAt) return
    this.over = false
    this.link.reading(true)
    this.handler.onBackpressure(this, false)
    if (this.stashed > 0 && this.stashed >= this.need) this.parseStash()
  }

  /** Room for `bytes` more in the output; returns its offset. */
  private reserve(bytes: number): number {
    const at = this.outLength
    const needed = at + bytes
    if (this.out === null) {
      this.out = this.flushQueue.take(needed)
    } else if (needed > this.out.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.out.length * 2))
      this.out.copy(grown, 0, 0, at)
      this.out = grown
    }
    this.outLength = needed
    if (!this.over && needed + this.link.buffered > this.maxBuffered) {
      this.over = true
      this.link.reading(false)
      this.handler.onBackpressure(this, true)
    }
    if (!this.queued) {
      this.queued = true
      this.flushQueue.add(this)
    }
    return at
  }

  private sendClose(code: number, reason: string): void {
    const length = 2 + Buffer.byteLength(reason)
    const at = this.reserve(frameHeaderLength(length) + length)
    const p = writeFrameHeader(this.out!, at, FIN | OP_CLOSE, length)
    this.out!.writeUInt16BE(code, p)
    this.out!.write(reason, p + 2, 'utf8')
  }

  /** Fails the connection: a close frame with `code`, then the socket ends. */
  private fail(code: number, reason: string): void {
    if (this.state === State.Open) this.sendClose(code, reason)
    this.state = State.Closed
    this.stash = []
    this.fragments = []
    this.flush()
    this.link.end()
  }

  // -------------------------------------------------------------------------------------------
  // Incoming frames

  receive(chunk: Buffer, start: number, end: number): void {
    if (this.state === State.Closed) return
    if (this.stashed === 0 && !this.over) {
      this.parse(chunk, start, end)
      return
    }
    // Copied: the link may reuse the chunk's memory. While paused, at most one read of the link's
    // arrives after the pause.
    this.stash.push(Buffer.from(chunk.subarray(start, end)))
    this.stashed += end - start
    // Concatenate only once the awaited frame is whole: a message in many small pieces is
    // copied once, not once a piece.
    if (this.stashed >= this.need && !this.over) this.parseStash()
  }

  private parseStash(): void {
    const data = this.stash.length === 1 ? this.stash[0] : Buffer.concat(this.stash, this.stashed)
    this.stash = []
    this.stashed = 0
    this.parse(data, 0, data.length)
  }

  private parse(data: Buffer, pos: number, length: number): void {
    while (pos < length && this.isReading()) {
      const used = this.frame(data, pos, length)
      if (used === 0) break
      pos += used
    }
    if (pos >= length || this.state === State.Closed) return
    // A frame not whole yet (`need` says how much it takes), or the queue went over the bound:
    // the rest waits (`need` 0: parsed as soon as reading starts again).
    if (this.over) this.need = 0
    const rest = Buffer.from(data.subarray(pos, length))
    this.stash = [rest]
    this.stashed = rest.length
  }

  private isReading(): boolean {
    return this.state !== State.Closed && !this.over
  }

  /** Handles the frame at `pos` (bytes up to `end`); returns the bytes it took, or 0 when it is not whole yet. */
  private frame(data: Buffer, pos: number, end: number): number {
    const h = HEADER
    const status = parseFrameHeader(data, pos, end, true, h)
    if (status !== FrameStatus.Ok && status !== FrameStatus.NeedMore) return this.protocolError(HEADER_ERRORS[status])
    const length = h.length
    if (length < 0) {
      this.need = h.need
      return 0
    }
    const fin = h.fin
    const opcode = h.opcode
    const header = h.headerLength
    // Refused as soon as its length is known, before the masking key arrives.
    if (opcode < OP_CLOSE && length + this.fragmented > this.maxPayload) {
      this.fail(CLOSE_TOO_BIG, 'Message too big')
      return end - pos
    }
    if (end - pos < header + length) {
      this.need = header + length
      return 0
    }
    const start = pos + header
    const payload = data.subarray(start, start + length)
    maskPayload(payload, data, start - 4)
    switch (opcode) {
      case OP_TEXT:
      case OP_BINARY:
        if (this.fragmentOpcode !== -1) return this.protocolError('a new message began before the last one ended')
        if (fin) this.message(payload)
        else {
          this.fragmentOpcode = opcode
          this.fragments.push(Buffer.from(payload))
          this.fragmented = length
        }
        break
      case OP_CONTINUATION:
        if (this.fragmentOpcode === -1) return this.protocolError('a continuation frame without a message')
        this.fragments.push(Buffer.from(payload))
        this.fragmented += length
        if (fin) {
          const whole = Buffer.concat(this.fragments, this.fragmented)
          this.fragments = []
          this.fragmented = 0
          this.fragmentOpcode = -1
          this.message(whole)
        }
        break
      case OP_CLOSE:
        this.onCloseFrame(payload)
        break
      case OP_PING:
        if (this.state === State.Open) {
          const at = this.reserve(2 + length)
          this.out!.set(payload, writeFrameHeader(this.out!, at, FIN | OP_PONG, length))
        }
        break
      case OP_PONG:
        this.handler.onPong(this, payload)
        break
      default:
        return this.protocolError(`unknown opcode ${opcode}`)
    }
    return header + length
  }

  private message(payload: Buffer): void {
    if (this.state !== State.Open) return
    // Messages are relayed byte for byte into other peers' text frames, so they must be UTF-8.
    if (!isUtf8(payload)) {
      this.fail(CLOSE_INVALID_DATA, 'Invalid UTF-8')
      return
    }
    this.handler.onMessage(this, payload)
  }

  private onCloseFrame(payload: Buffer): void {
    if (this.state === State.Open) {
      let code = CLOSE_NORMAL
      if (payload.length >= 2) {
        const asked = payload.readUInt16BE(0)
        // Echo a valid code; answer an invalid one as a protocol error.
        code = isValidCloseCode(asked) ? asked : CLOSE_PROTOCOL_ERROR
      } else if (payload.length === 1) {
        code = CLOSE_PROTOCOL_ERROR
      }
      this.sendClose(code, '')
    }
    this.state = State.Closed
    this.flush()
    this.link.end()
  }

  private protocolError(why: string): number {
    this.fail(CLOSE_PROTOCOL_ERROR, why)
    // Nothing after a protocol error is read.
    return Number.MAX_SAFE_INTEGER
  }
}
