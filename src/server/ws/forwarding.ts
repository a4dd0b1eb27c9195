/**
 * WebTorrent work across shards: an announce goes to its torrent's owner as it came (the bytes,
 * not re-encoded), the messages the owner makes come back for the connections they are for,
 * and a closed connection's peers are removed where their torrents live.
 */
import type {WsConfig} from '../../config/index.js'
import {parseWsMessage, type MessageWriter, type WsRequest} from '../../protocol/ws/index.js'
import type {ConnectionRef} from '../../swarm/index.js'
import {
  FRAME,
  WS_MESSAGE_HEAD,
  WsDeliverFrame,
  WsRemoveFrame,
  WsRequestFrame,
  writeWsDeliver,
  writeWsDeliverText,
  writeWsRemove,
  writeWsRequest,
} from '../frames.js'
import type {FrameHandler, Mesh} from '../mesh.js'
import type {WsHandler} from './handler.js'
import type {WsConnection} from './transport.js'

/** What a relayed message adds to the bytes it carries: its ids, escaped, and the keys around them. */
const RELAY_OVERHEAD = 1024

export class WsForwarding implements FrameHandler {
  /** Frames to other workers are written here; the mesh copies them. */
  private frame: Buffer
  private readonly requestIn = new WsRequestFrame()
  private readonly deliverIn = new WsDeliverFrame()
  private readonly removeIn = new WsRemoveFrame()

  constructor(
    private readonly mesh: Mesh,
    private readonly cfg: WsConfig,
    private readonly handler: WsHandler,
  ) {
    this.frame = Buffer.allocUnsafe(WsForwarding.maxFrame(cfg.network.max_message_size))
  }

  /** The largest frame forwarding sends: a message as it came (an announce), or one relayed with its ids. */
  static maxFrame(maxMessageSize: number): number {
    return WS_MESSAGE_HEAD + maxMessageSize + RELAY_OVERHEAD
  }

  /** Hands the announce message `data` of `conn` to worker `owner`; false when its link is full. */
  request(owner: number, conn: WsConnection, data: Buffer): boolean {
    const frame = this.frameFor(data.length)
    const length = writeWsRequest(frame, 0, conn.id, conn.family, data, 0, data.length)
    return this.mesh.send(owner, FRAME.wsRequest, frame, 0, length)
  }

  /** Sends the message in a writer, or a text, to connection `ref` of another worker. */
  deliver(ref: ConnectionRef, msg: MessageWriter | string, type: number): void {
    const frame = this.frameFor(typeof msg === 'string' ? Buffer.byteLength(msg) : msg.length)
    const length = typeof msg === 'string' ? writeWsDeliverText(frame, 0, ref.id, type, msg) : writeWsDeliver(frame, 0, ref.id, type, msg.buf, 0, msg.length)
    // The outcome of work done here (a reply, a relayed offer or answer): an answer on the mesh.
    this.mesh.answer(ref.worker, FRAME.wsDeliver, frame, 0, length)
  }

  /** The peer `peerId` of closed connection `conn` leaves torrent `infoHash`, which worker `owner` holds. */
  remove(owner: number, conn: WsConnection, infoHash: string, peerId: string): void {
    const length = writeWsRemove(this.frame, 0, conn.id, conn.family, infoHash, peerId)
    // An answer's bound: a peer left behind would linger until max_peer_age.
    this.mesh.answer(owner, FRAME.wsRemove, this.frame, 0, length)
  }

  /** `this.frame`, with room for a message of `bytes` after its head. */
  private frameFor(bytes: number): Buffer {
    if (this.frame.length < WS_MESSAGE_HEAD + bytes) this.frame = Buffer.allocUnsafe(WS_MESSAGE_HEAD + bytes)
    return this.frame
  }

  /** Handles the WebSocket frames of other workers; false for other frames. */
  onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): boolean {
    if (type === FRAME.wsRequest) {
      const f = this.requestIn
      if (!f.decode(buf, offset, length)) return true
      const bytes = buf.subarray(f.start, f.end)
      // Checked by the connection's worker already; parsed again here, where the swarm is.
      let req: WsRequest
      try {
        req = parseWsMessage(bytes, this.cfg.protocol.max_offers, this.cfg.protocol.max_scrape_torrents)
      } catch {
        return true
      }
      if (req.action === 'announce') this.handler.announce({worker: from, id: f.connId}, f.family, req, bytes)
      return true
    }
    if (type === FRAME.wsDeliver) {
      const f = this.deliverIn
      if (!f.decode(buf, offset, length)) return true
      const transport = this.handler.transport
      const conn = transport.connections.get(f.connId)
      if (conn) transport.sendBytes(conn, buf, f.start, f.end, f.type)
      return true
    }
    if (type === FRAME.wsRemove) {
      const f = this.removeIn
      if (f.decode(buf, offset, length)) this.handler.swarm.removePeer(f.family, f.infoHash, f.peerId, {worker: from, id: f.connId})
      return true
    }
    return false
  }
}
