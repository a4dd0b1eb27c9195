/**
 * HTTP announces for torrents another worker owns: handed to the owner over the mesh, answered
 * there by its handler, and the reply sent to the client here. A reply that does not come in
 * time is answered with a failure reason, and the connection goes on.
 */
import type {TrafficStats} from '../../metrics/index.js'
import {MESSAGE} from '../../protocol/messages.js'
import {AnnounceQuery} from '../../protocol/http/index.js'
import {announceBodyMax} from '../../protocol/http/response.js'
import {
  FRAME,
  HTTP_ANNOUNCE_BYTES,
  HTTP_ANNOUNCE_REPLY_HEAD,
  HttpAnnounceFrame,
  HttpAnnounceReplyFrame,
  writeHttpAnnounce,
  writeHttpAnnounceReply,
} from '../frames.js'
import type {FrameHandler, Mesh} from '../mesh.js'
import type {SwarmShard} from '../shard.js'
import type {HttpHandler} from './handler.js'
import {DROP, RES} from './stats.js'
import type {HttpConnection} from './connection.js'

/** An announce handed to another worker is answered with a failure reason if its reply takes longer. */
const FORWARD_TIMEOUT_MS = 5000

interface Forwarded {
  conn: HttpConnection
  keepAlive: boolean
  http11: boolean
  /** When it was sent (ms): a reply that has not come by FORWARD_TIMEOUT_MS is given up. */
  sentAt: number
}

export class HttpForwarding implements FrameHandler {
  /** Announces waiting for another worker's reply, oldest first. */
  private readonly forwarded = new Map<number, Forwarded>()
  private nextId = 1
  /** Forwarded announces are written here, their replies in `replyFrame`; the mesh copies them. */
  private readonly announceFrame = Buffer.allocUnsafe(HTTP_ANNOUNCE_BYTES)
  private readonly replyFrame: Buffer
  private readonly announceIn = new HttpAnnounceFrame()
  private readonly replyIn = new HttpAnnounceReplyFrame()
  /** Announces from other workers are decoded here. */
  private readonly query = new AnnounceQuery()

  constructor(
    private readonly mesh: Mesh,
    private readonly stats: TrafficStats,
    private readonly shard: SwarmShard,
    private readonly handler: HttpHandler,
  ) {
    this.replyFrame = Buffer.allocUnsafe(HTTP_ANNOUNCE_REPLY_HEAD + handler.body.length)
  }

  /** The largest frame forwarding sends: an announce, or a reply of up to `maxPeers` peers. */
  static maxFrame(maxPeers: number): number {
    return Math.max(HTTP_ANNOUNCE_BYTES, HTTP_ANNOUNCE_REPLY_HEAD + announceBodyMax(maxPeers))
  }

  /** Hands the announce in `q` to worker `owner`; `conn` reads nothing more until the reply. */
  forward(owner: number, conn: HttpConnection, q: AnnounceQuery, ipFamily: 4 | 6, ip: Uint8Array, keepAlive: boolean, http11: boolean): void {
    this.stats.forwarded[0]++
    const id = this.nextId
    this.nextId = (id + 1) >>> 0
    const length = writeHttpAnnounce(this.announceFrame, 0, id, q, ipFamily, ip)
    // A link too full to take it: the client hears so at once (the mesh counts the drop).
    if (!this.mesh.send(owner, FRAME.httpAnnounce, this.announceFrame, 0, length)) {
      this.handler.fail(conn, MESSAGE.busy, keepAlive, http11)
      return
    }
    this.forwarded.set(id, {conn, keepAlive, http11, sentAt: this.shard.nowMs})
    this.handler.transport.hold(conn)
  }

  /** Forwarded announces whose reply has not come in time get a failure reason, and their connection goes on. */
  expire(): void {
    const before = this.shard.nowMs - FORWARD_TIMEOUT_MS
    for (const [id, f] of this.forwarded) {
      if (f.sentAt > before) break
      this.forwarded.delete(id)
      this.stats.drops[DROP.forward_timeout]++
      this.handler.fail(f.conn, MESSAGE.busy, f.keepAlive, f.http11)
      this.handler.transport.release(f.conn)
    }
  }

  /** Handles announces from other workers and the replies to ours; false for other frames. */
  onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): boolean {
    if (type === FRAME.httpAnnounce) {
      const f = this.announceIn
      if (!f.decode(buf, offset, length, this.query)) return true
      const bodyLength = this.handler.announce(this.query, f.ipFamily, f.ip)
      const replyLength = writeHttpAnnounceReply(this.replyFrame, 0, f.id, this.handler.body, bodyLength)
      this.mesh.answer(from, FRAME.httpAnnounceReply, this.replyFrame, 0, replyLength)
      return true
    }
    if (type === FRAME.httpAnnounceReply) {
      const r = this.replyIn
      if (!r.decode(buf, offset, length)) return true
      const f = this.forwarded.get(r.id)
      if (!f) return true
      this.forwarded.delete(r.id)
      // Copied out of the mesh's buffer by respond.
      this.handler.transport.respond(f.conn, 200, buf.subarray(r.bodyStart), r.bodyLength, f.keepAlive, f.http11, RES.announce)
      this.handler.transport.release(f.conn)
      return true
    }
    return false
  }
}
